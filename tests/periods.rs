//! Periodic limits through the public API, driven by a `ManualClock`: calendar edges (month ends,
//! leap day, 23- and 25-hour DST days), a hold across a boundary, layered caps, rollovers,
//! threshold re-arming, bad input, and a `FileStore` that replays its rolls after a reopen.

use std::sync::Arc;
use std::time::Duration;

use budget_guard::expiry::ReserveOptions;
use budget_guard::period::{Period, Rollover};
use budget_guard::{
    Amount, Budget, Error, FileStore, Limit, ManualClock, MemoryStore, Store, Timestamp, Unit,
};

fn at(text: &str) -> Timestamp {
    let instant: jiff::Timestamp = text.parse().expect("a valid RFC 3339 instant");
    Timestamp::from_unix_nanos(i64::try_from(instant.as_nanosecond()).expect("in range"))
}

fn usd(text: &str) -> Amount {
    Amount::usd(text).expect("valid amount")
}

fn memory(start: &str, limit: Limit) -> (Budget, ManualClock) {
    let clock = ManualClock::new(at(start));
    let budget = Budget::builder("b", limit)
        .build_in(MemoryStore::with_clock(clock.clone()))
        .expect("build");
    (budget, clock)
}

fn spend(budget: &Budget, amount: &str) {
    budget
        .reserve(usd(amount))
        .expect("fits")
        .commit(usd(amount))
        .expect("commit");
}

#[test]
fn january_31st_rolls_into_february_and_february_into_march() {
    let (budget, clock) = memory(
        "2026-01-31T23:59:59Z",
        Limit::hard(usd("100")).per(Period::monthly()),
    );
    spend(&budget, "100");
    assert!(budget.reserve(usd("0.01")).is_err(), "January is used up");
    assert_eq!(
        budget.balance(Unit::Usd).unwrap().resets_at,
        Some(at("2026-02-01T00:00:00Z"))
    );
    clock.advance(Duration::from_secs(1));
    let balance = budget.balance(Unit::Usd).unwrap();
    assert_eq!(balance.spent, Amount::zero(Unit::Usd));
    assert_eq!(balance.resets_at, Some(at("2026-03-01T00:00:00Z")));
    spend(&budget, "100");
    clock.set(at("2026-02-28T23:59:59.999999999Z"));
    assert!(budget.reserve(usd("0.01")).is_err(), "still February");
    clock.set(at("2026-03-01T00:00:00Z"));
    spend(&budget, "100");
}

#[test]
fn the_leap_day_is_a_day_of_its_own() {
    let (budget, clock) = memory(
        "2028-02-28T23:00:00Z",
        Limit::hard(usd("5")).per(Period::daily()),
    );
    spend(&budget, "5");
    clock.set(at("2028-02-29T00:00:00Z"));
    let balance = budget.balance(Unit::Usd).unwrap();
    assert_eq!(
        balance.spent,
        Amount::zero(Unit::Usd),
        "Feb 29 starts fresh"
    );
    assert_eq!(balance.resets_at, Some(at("2028-03-01T00:00:00Z")));
    spend(&budget, "5");
    clock.set(at("2028-02-29T23:59:59Z"));
    assert!(budget.reserve(usd("1")).is_err());
    clock.set(at("2028-03-01T00:00:00Z"));
    spend(&budget, "5");
}

#[test]
fn new_york_dst_days_last_23_and_25_hours() {
    let daily = Period::daily().in_zone("America/New_York").unwrap();
    // Spring forward: 2026-03-08 starts at 05:00Z (EST) and ends at 04:00Z next day (EDT).
    let (budget, clock) = memory("2026-03-08T06:00:00Z", Limit::hard(usd("1")).per(daily));
    spend(&budget, "1");
    assert_eq!(
        budget.balance(Unit::Usd).unwrap().resets_at,
        Some(at("2026-03-09T04:00:00Z")),
        "a 23-hour day"
    );
    clock.set(at("2026-03-09T03:59:59Z"));
    assert!(budget.reserve(usd("1")).is_err());
    clock.set(at("2026-03-09T04:00:00Z"));
    spend(&budget, "1");

    // Fall back: 2026-11-01 starts at 04:00Z (EDT) and ends at 05:00Z next day (EST).
    clock.set(at("2026-11-01T04:00:00Z"));
    spend(&budget, "1");
    assert_eq!(
        budget.balance(Unit::Usd).unwrap().resets_at,
        Some(at("2026-11-02T05:00:00Z")),
        "a 25-hour day"
    );
    clock.set(at("2026-11-02T04:30:00Z")); // 24.5 hours later: still Nov 1 in New York
    assert!(budget.reserve(usd("1")).is_err());
    clock.set(at("2026-11-02T05:00:00Z"));
    spend(&budget, "1");
}

#[test]
fn fixed_windows_reset_every_five_hours() {
    let every =
        Period::every_from(Duration::from_secs(5 * 3600), at("2026-05-01T05:00:00Z")).unwrap();
    let (budget, clock) = memory("2026-05-01T09:00:00Z", Limit::hard(usd("2")).per(every));
    spend(&budget, "2");
    assert_eq!(
        budget.balance(Unit::Usd).unwrap().resets_at,
        Some(at("2026-05-01T10:00:00Z"))
    );
    clock.set(at("2026-05-01T10:00:00Z"));
    spend(&budget, "2");
    // Three windows later, Rollover::None: still just the allocation.
    clock.advance(Duration::from_secs(15 * 3600 + 1));
    let balance = budget.balance(Unit::Usd).unwrap();
    assert_eq!(balance.allowance, Some(usd("2")));
    assert_eq!(balance.resets_at, Some(at("2026-05-02T06:00:00Z")));
}

/// The documented rule: the hold's commit counts to the period in which it is committed; the
/// outstanding hold stays reserved across the reset.
#[test]
fn a_hold_across_the_boundary_commits_into_the_new_period() {
    let (budget, clock) = memory(
        "2026-01-31T23:00:00Z",
        Limit::hard(usd("10")).per(Period::monthly()),
    );
    spend(&budget, "4");
    let two_hours = ReserveOptions::new().ttl(Duration::from_secs(7_200));
    let guard = budget.reserve_with(usd("5"), &two_hours).unwrap();
    clock.set(at("2026-02-01T00:30:00Z"));
    let february = budget.balance(Unit::Usd).unwrap();
    assert_eq!(february.spent, Amount::zero(Unit::Usd));
    assert_eq!(february.reserved, usd("5"), "the hold stays reserved");
    assert_eq!(february.remaining, Some(usd("5")));
    assert!(
        budget.reserve(usd("6")).is_err(),
        "the hold takes February room"
    );
    guard.commit(usd("3")).unwrap();
    let february = budget.balance(Unit::Usd).unwrap();
    assert_eq!(
        february.spent,
        usd("3"),
        "committed in February, counted in February"
    );
    assert_eq!(february.remaining, Some(usd("7")));
}

#[test]
fn a_per_task_cap_sits_under_a_monthly_team_cap() {
    let clock = ManualClock::new(at("2026-04-30T12:00:00Z"));
    let team = Budget::builder("team", Limit::hard(usd("10")).per(Period::monthly()))
        .child("task-a", Limit::hard(usd("6")))
        .child("task-b", Limit::hard(usd("6")))
        .build_in(MemoryStore::with_clock(clock.clone()))
        .unwrap();
    let (a, b) = (team.at("task-a").unwrap(), team.at("task-b").unwrap());
    assert!(a.reserve(usd("7")).is_err(), "the task cap binds");
    spend(&a, "6");
    let denied = b.reserve(usd("5")).unwrap_err();
    match denied {
        Error::BudgetExceeded(details) => assert_eq!(&*details.node, "team"),
        other => panic!("expected the team cap, got {other}"),
    }
    spend(&b, "4");
    clock.set(at("2026-05-01T00:00:00Z"));
    // May: the team has $10 again, but task-b's own cap (no period) has only $2 left.
    assert!(b.reserve(usd("3")).is_err());
    spend(&b, "2");
    assert_eq!(team.balance(Unit::Usd).unwrap().spent, usd("2"));
    let task = team.add_child("task-c", Limit::hard(usd("9"))).unwrap();
    spend(&task, "8");
    assert!(
        task.reserve(usd("1")).is_err(),
        "10 - 2 - 8 = 0 left this month"
    );
}

#[test]
fn rollovers_carry_capped_and_cap_at_allocation_doubles_at_most() {
    let daily = Period::daily();
    let (carry, clock) = memory(
        "2026-06-01T00:00:00Z",
        Limit::hard(usd("10"))
            .per(daily)
            .with_rollover(Rollover::CarryForward { cap: usd("4") }),
    );
    spend(&carry, "7"); // 3 unused
    clock.advance(Duration::from_secs(86_400));
    assert_eq!(carry.balance(Unit::Usd).unwrap().allowance, Some(usd("13")));
    spend(&carry, "1"); // 12 unused, capped at 4
    clock.advance(Duration::from_secs(86_400));
    assert_eq!(carry.balance(Unit::Usd).unwrap().allowance, Some(usd("14")));

    let (capped, clock) = memory(
        "2026-06-01T00:00:00Z",
        Limit::hard(usd("10"))
            .per(daily)
            .with_rollover(Rollover::CapAtAllocation),
    );
    clock.advance(Duration::from_secs(5 * 86_400)); // five idle days
    let balance = capped.balance(Unit::Usd).unwrap();
    assert_eq!(balance.allowance, Some(usd("20")));
    spend(&capped, "20");
}

#[test]
fn credits_on_a_periodic_limit_last_one_period() {
    let (budget, clock) = memory(
        "2026-06-01T00:00:00Z",
        Limit::hard(usd("10")).per(Period::daily()),
    );
    budget.credit(usd("5")).unwrap();
    spend(&budget, "15");
    clock.advance(Duration::from_secs(86_400));
    let balance = budget.balance(Unit::Usd).unwrap();
    assert_eq!(balance.allowance, Some(usd("10")));
    assert_eq!(balance.limit.unwrap().amount(), usd("10"));
}

#[test]
fn debt_survives_a_reset() {
    let (budget, clock) = memory(
        "2026-06-01T00:00:00Z",
        Limit::hard(usd("10")).per(Period::daily()),
    );
    let guard = budget.reserve(usd("10")).unwrap();
    assert!(
        guard.commit(usd("12")).is_err(),
        "Reject records the overage as debt"
    );
    clock.advance(Duration::from_secs(86_400));
    let balance = budget.balance(Unit::Usd).unwrap();
    assert_eq!(balance.debt, usd("2"));
    assert!(matches!(
        budget.reserve(usd("1")),
        Err(Error::InDebt { .. })
    ));
    budget.credit(usd("2")).unwrap();
    spend(&budget, "10");
}

#[test]
fn threshold_levels_rearm_at_the_reset() {
    let (budget, clock) = memory(
        "2026-06-01T00:00:00Z",
        Limit::hard(usd("10"))
            .per(Period::daily())
            .with_thresholds([50]),
    );
    // Levels fire on committed spend (semantics issue 13), so at the commits.
    let committed = budget.reserve(usd("6")).unwrap().commit(usd("6")).unwrap();
    assert_eq!(committed.events.len(), 1);
    let again = budget.reserve(usd("1")).unwrap().commit(usd("1")).unwrap();
    assert!(again.events.is_empty(), "still crossed today");
    clock.advance(Duration::from_secs(86_400));
    let tomorrow = budget.reserve(usd("6")).unwrap().commit(usd("6")).unwrap();
    let levels: Vec<u16> = tomorrow.events.iter().map(|c| c.level()).collect();
    assert_eq!(levels, [50], "the 50 % level fires again in the new period");
}

#[test]
fn bad_periods_are_typed_errors_and_change_nothing() {
    assert!(matches!(
        Period::every(Duration::ZERO),
        Err(Error::InvalidDuration { .. })
    ));
    let err = Period::monthly().in_zone("Europe/Atlantis").unwrap_err();
    assert!(matches!(&err, Error::UnknownTimeZone { name } if name == "Europe/Atlantis"));
    assert!(err.to_string().contains("Europe/Atlantis"));

    let (budget, _clock) = memory("2026-06-01T00:00:00Z", Limit::hard(usd("10")));
    spend(&budget, "3");
    let before = budget.balance(Unit::Usd).unwrap();
    assert!(matches!(
        budget.set_limit(Limit::hard(usd("10")).with_rollover(Rollover::CapAtAllocation)),
        Err(Error::InvalidPeriod { .. })
    ));
    assert!(matches!(
        budget.set_limit(Limit::hard(usd("10")).per(Period::daily()).with_rollover(
            Rollover::CarryForward {
                cap: Amount::tokens(1)
            }
        )),
        Err(Error::UnitMismatch { .. })
    ));
    assert!(matches!(
        budget.set_limit(Limit::hard(usd("2")).per(Period::daily())),
        Err(Error::LimitBelowUsage { .. })
    ));
    assert_eq!(budget.balance(Unit::Usd).unwrap(), before);
    assert!(
        Budget::builder(
            "bad",
            Limit::soft(Amount::tokens(5)).with_rollover(Rollover::CapAtAllocation)
        )
        .build()
        .is_err()
    );
}

#[test]
fn every_unit_can_have_a_period() {
    let (budget, clock) = memory(
        "2026-06-01T00:00:00Z",
        Limit::hard(Amount::requests(2)).per(Period::daily()),
    );
    budget
        .reserve(Amount::requests(2))
        .unwrap()
        .commit(Amount::requests(2))
        .unwrap();
    assert!(budget.reserve(Amount::requests(1)).is_err());
    clock.advance(Duration::from_secs(86_400));
    budget
        .reserve(Amount::requests(2))
        .unwrap()
        .release()
        .unwrap();
}

/// A FileStore logs each roll with its time, so a reopened store (replay, then a compacted
/// snapshot at open) has the same balances and the same next reset, and keeps rolling.
#[test]
fn a_reopened_file_store_keeps_period_state() {
    let dir = std::env::temp_dir().join(format!("bg-periods-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("periods.bg");
    let _ = std::fs::remove_file(&path);
    let clock = ManualClock::new(at("2026-03-07T20:00:00Z"));
    let open = |clock: &ManualClock| {
        Arc::new(
            FileStore::options()
                .clock(clock.clone())
                .open(&path)
                .expect("open"),
        )
    };
    let daily = Period::daily().in_zone("America/New_York").unwrap();
    let limit = Limit::hard(usd("10"))
        .per(daily)
        .with_rollover(Rollover::CapAtAllocation);
    let expected = {
        let store = open(&clock);
        let team = Budget::builder("team", limit)
            .child("task", Limit::hard(usd("100")))
            .build_shared(store.clone())
            .unwrap();
        let task = team.at("task").unwrap();
        spend(&task, "4");
        clock.set(at("2026-03-08T06:00:00Z")); // a new (23-hour) day: carries 6
        let held = task.reserve(usd("2")).unwrap();
        spend(&task, "1");
        team.credit(usd("1")).unwrap();
        held.commit(usd("2")).unwrap();
        let balance = team.balance(Unit::Usd).unwrap();
        assert_eq!(balance.allowance, Some(usd("17")));
        assert_eq!(balance.spent, usd("3"));
        assert_eq!(balance.resets_at, Some(at("2026-03-09T04:00:00Z")));
        balance
    };
    // Reopen twice: the first replays the log, the second reads the compacted snapshot.
    for _ in 0..2 {
        let store = open(&clock);
        let team = store.resolve("team").unwrap();
        assert_eq!(store.balance(team, Unit::Usd).unwrap(), expected);
    }
    let store = open(&clock);
    let team = store.resolve("team").unwrap();
    clock.set(at("2026-03-09T04:00:00Z"));
    let next = store.balance(team, Unit::Usd).unwrap();
    assert_eq!(next.spent, Amount::zero(Unit::Usd));
    assert_eq!(next.allowance, Some(usd("20")), "14 unused, capped at 10");
    drop(store);
    let store = open(&clock);
    let team = store.resolve("team").unwrap();
    assert_eq!(store.balance(team, Unit::Usd).unwrap(), next);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
