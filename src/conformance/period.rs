//! Periodic limits: lazy resets, holds across the boundary, rollovers.

use std::sync::Arc;
use std::time::Duration;

use super::{CLOCK_START, books, supports_all, usd, zero};
use crate::amount::{Amount, Unit};
use crate::budget::Budget;
use crate::clock::ManualClock;
use crate::error::Error;
use crate::op::OpKind;
use crate::period::{Period, Rollover};
use crate::policy::Limit;
use crate::store::Store;

/// A daily team cap with a per-task cap under it: spend resets at the first operation after
/// midnight UTC (no thread), a live hold stays reserved across the boundary and its commit counts
/// in the new period, a rollover carries the unused rest (capped), and bad periodic limits are
/// typed errors that change nothing.
pub fn periods_reset_lazily_and_keep_holds(store: Arc<dyn Store>, clock: &ManualClock) {
    if !supports_all(&*store, &[OpKind::SetLimit]) {
        return;
    }
    let day = Duration::from_secs(86_400);
    // CLOCK_START is 22:13:20 UTC: the day ends 1 h 46 min 40 s later.
    let midnight = CLOCK_START.saturating_add(Duration::from_secs(6_400));
    let team = Budget::builder("team", Limit::hard(usd("10")).per(Period::daily()))
        .child("task", Limit::hard(usd("4")))
        .build_shared(store.clone())
        .expect("build the periodic tree");
    let task = team.at("task").expect("task exists");
    let balance = team.balance(Unit::Usd).expect("balance");
    assert_eq!(
        balance.resets_at,
        Some(midnight),
        "resets_at of a daily limit"
    );
    assert_eq!(balance.allowance, Some(usd("10")));
    task.reserve(usd("3"))
        .expect("fits")
        .commit(usd("3"))
        .expect("commit");
    let live = task.reserve(usd("1")).expect("fits");
    assert!(team.reserve(usd("7")).is_err(), "10 - 3 spent - 1 held");

    clock.set(midnight);
    let balance = team.balance(Unit::Usd).expect("balance");
    assert_eq!(
        (balance.spent, balance.reserved),
        (zero(), usd("1")),
        "spend resets at the boundary; the live hold stays reserved"
    );
    assert_eq!(balance.resets_at, Some(midnight.saturating_add(day)));
    assert_eq!(
        books(&task),
        (usd("3"), usd("1"), zero()),
        "a limit without period keeps its spend"
    );
    live.commit(usd("1")).expect("commit across the boundary");
    assert_eq!(
        team.balance(Unit::Usd).expect("balance").spent,
        usd("1"),
        "a hold's commit counts in the period it is committed in"
    );
    team.reserve(usd("9"))
        .expect("the new day has 9 left")
        .release()
        .expect("release");

    // Bad input changes nothing.
    let before = store.snapshot().expect("snapshot");
    assert!(matches!(
        team.set_limit(Limit::hard(usd("10")).with_rollover(Rollover::CapAtAllocation)),
        Err(Error::InvalidPeriod { .. })
    ));
    assert!(matches!(
        team.set_limit(Limit::hard(usd("10")).per(Period::daily()).with_rollover(
            Rollover::CarryForward {
                cap: Amount::tokens(5)
            }
        )),
        Err(Error::UnitMismatch { .. })
    ));
    assert_eq!(store.snapshot().expect("snapshot"), before);

    // A rollover on the same period keeps the current period and carries at the next boundary.
    team.set_limit(
        Limit::hard(usd("10"))
            .per(Period::daily())
            .with_rollover(Rollover::CarryForward { cap: usd("2") }),
    )
    .expect("same period, with a rollover");
    assert_eq!(
        team.balance(Unit::Usd).expect("balance").resets_at,
        Some(midnight.saturating_add(day))
    );
    clock.advance(day);
    let balance = team.balance(Unit::Usd).expect("balance");
    assert_eq!(balance.spent, zero());
    assert_eq!(balance.allowance, Some(usd("12")), "9 unused, capped at 2");
    // The snapshot carries the period state exactly.
    if store.supports(OpKind::Restore) {
        let snapshot = store.snapshot().expect("snapshot");
        store.restore(&snapshot).expect("restore");
        assert_eq!(team.balance(Unit::Usd).expect("balance"), balance);
    }
}
