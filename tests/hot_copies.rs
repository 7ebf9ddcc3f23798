//! The hot path without whole-result copies (issue 16, wave 6) keeps every answer it gave:
//! the reserve rules reclaim expired holds themselves when a reserve would be denied (and
//! report them with the reserve they made room for, or with the next operation when even that
//! is denied); a commit that hands its guard back leaves a guard that still commits; a stale
//! handle's reserve names its path; an ended guard releases nothing when it is dropped.

use std::time::Duration;

use budget_guard::expiry::ReserveOptions;
use budget_guard::{Amount, Budget, Cost, Error, Limit, ManualClock, MemoryStore, Timestamp, Unit};

fn usd(text: &str) -> Amount {
    Amount::usd(text).unwrap()
}

/// A $1 budget on a manual clock with a stuck $0.80 hold (5 s TTL) that is 1 s past its
/// deadline.
fn stuck_hold() -> (Budget, ManualClock, budget_guard::HoldId) {
    let clock = ManualClock::new(Timestamp::EPOCH);
    let run = Budget::builder("run", Limit::hard(usd("1")))
        .build_in(MemoryStore::with_clock(clock.clone()))
        .unwrap();
    let short = ReserveOptions::new().ttl(Duration::from_secs(5));
    let stuck = run
        .store()
        .reserve_with(run.id(), &Cost::from(usd("0.80")), &short)
        .unwrap();
    clock.advance(Duration::from_secs(6));
    (run, clock, stuck.hold)
}

#[test]
fn a_reserve_that_fits_only_after_reclaiming_reports_the_reclaimed_hold_with_its_reservation() {
    let (run, _clock, stuck) = stuck_hold();
    // $0.50 does not fit beside the $0.80; the expired hold is reclaimed and the reserve granted.
    let granted = run
        .store()
        .reserve(run.id(), &Cost::from(usd("0.50")))
        .unwrap();
    assert_eq!(granted.held, Cost::from(usd("0.50")));
    assert_eq!(granted.expired.len(), 1);
    let expired = &granted.expired[0];
    assert_eq!(expired.hold, stuck);
    assert_eq!(&*expired.node, "run");
    assert_eq!(expired.held, Cost::from(usd("0.80")));
    assert_eq!(
        expired.expired_at,
        Timestamp::from_unix_nanos(5_000_000_000)
    );
    let balance = run.balance(Unit::Usd).unwrap();
    assert_eq!(balance.reserved, usd("0.50"));
    assert_eq!(balance.spent, usd("0"));
    // Reported once: the next reserve reports nothing.
    let next = run
        .store()
        .reserve(run.id(), &Cost::from(usd("0.10")))
        .unwrap();
    assert!(next.expired.is_empty());
}

#[test]
fn a_reserve_still_denied_after_reclaiming_leaves_the_reclaimed_hold_for_the_next_operation() {
    let (run, _clock, stuck) = stuck_hold();
    let denied = run
        .store()
        .reserve(run.id(), &Cost::from(usd("1.50")))
        .unwrap_err();
    let exceeded = denied.exceeded().expect("BudgetExceeded");
    assert_eq!(exceeded.requested, usd("1.50"));
    // Decided after the reclaim: nothing is reserved any more.
    assert_eq!(exceeded.reserved, usd("0"));
    assert_eq!(run.balance(Unit::Usd).unwrap().reserved, usd("0"));
    let next = run
        .store()
        .reserve(run.id(), &Cost::from(usd("0.30")))
        .unwrap();
    let reported: Vec<_> = next.expired.iter().map(|hold| hold.hold).collect();
    assert_eq!(reported, vec![stuck]);
    assert_eq!(run.balance(Unit::Usd).unwrap().reserved, usd("0.30"));
}

#[test]
fn a_guard_handed_back_by_a_refused_commit_still_commits_and_its_shell_releases_nothing() {
    let team = Budget::builder("team", Limit::hard(usd("10")))
        .build()
        .unwrap();
    let guard = team.reserve(usd("0.50")).unwrap();
    let refused = guard.commit(Amount::tokens(100)).unwrap_err();
    assert!(matches!(refused.error(), Error::UnitMismatch { .. }));
    let guard = refused.into_guard().expect("the hold is still live");
    assert_eq!(team.balance(Unit::Usd).unwrap().reserved, usd("0.50"));
    let committed = guard.commit(usd("0.30")).unwrap();
    assert_eq!(committed.spent, Cost::from(usd("0.30")));
    assert_eq!(committed.returned, Cost::from(usd("0.20")));
    let balance = team.balance(Unit::Usd).unwrap();
    assert_eq!((balance.reserved, balance.spent), (usd("0"), usd("0.30")));
    // A second hold is unaffected by the ended guards being dropped.
    let second = team.reserve(usd("1")).unwrap();
    second.release().unwrap();
    let balance = team.balance(Unit::Usd).unwrap();
    assert_eq!((balance.reserved, balance.spent), (usd("0"), usd("0.30")));
}

#[test]
fn a_reserve_through_a_stale_handle_names_the_removed_node_by_its_path() {
    let org = Budget::builder("org", Limit::hard(usd("10")))
        .child("temp", Limit::hard(usd("1")))
        .build()
        .unwrap();
    let temp = org.at("temp").unwrap();
    let stale = temp.clone();
    temp.remove().unwrap();
    let error = stale.reserve(usd("0.10")).unwrap_err();
    assert!(
        matches!(&error, Error::UnknownNode { path } if path == "org/temp"),
        "{error}"
    );
    assert_eq!(org.balance(Unit::Usd).unwrap().reserved, usd("0"));
}
