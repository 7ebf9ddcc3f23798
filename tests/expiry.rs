//! Hold expiry (issue 5): deadlines, lazy and swept reclaim, heartbeat, late commits, events,
//! persistence in the FileStore, and expiry racing a commit. Every test drives a ManualClock;
//! nothing sleeps.

use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use budget_guard::expiry::ReserveOptions;
use budget_guard::{
    Amount, Budget, Cost, Error, Event, Limit, ManualClock, MemoryStore, OveragePolicy, Store,
    Timestamp, Unit,
};

#[path = "support/scratch.rs"]
mod scratch;
use scratch::fresh_path;

const START: Timestamp = Timestamp::from_unix_nanos(1_700_000_000_000_000_000);

fn usd(text: &str) -> Amount {
    Amount::usd(text).unwrap()
}

fn ttl(seconds: u64) -> ReserveOptions {
    ReserveOptions::new().ttl(Duration::from_secs(seconds))
}

fn secs(seconds: u64) -> Duration {
    Duration::from_secs(seconds)
}

/// (spent, reserved, debt) in USD.
fn books(budget: &Budget) -> (Amount, Amount, Amount) {
    let balance = budget.balance(Unit::Usd).unwrap();
    (balance.spent, balance.reserved, balance.debt)
}

fn zero() -> Amount {
    Amount::zero(Unit::Usd)
}

fn memory(limit: &str) -> (Budget, ManualClock) {
    let clock = ManualClock::new(START);
    let org = Budget::builder("org", Limit::hard(usd(limit)))
        .child("agent", Limit::hard(usd(limit)))
        .build_in(MemoryStore::with_clock(clock.clone()))
        .unwrap();
    (org, clock)
}

#[test]
fn expiry_is_an_event_delivered_once() {
    let (org, clock) = memory("1");
    let agent = org.at("agent").unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    org.on_event(move |event| {
        if let Event::HoldExpired(expired) = event {
            log.lock()
                .unwrap()
                .push((expired.node.to_string(), expired.hold, expired.expired_at));
        }
    });
    let stuck = agent.reserve_with(usd("0.90"), &ttl(30)).unwrap();
    let id = stuck.id();
    std::mem::forget(stuck); // a caller that died without dropping its guard
    clock.advance(secs(31));
    // The reserve that needs the room reclaims the hold and reports it.
    let fresh = agent.reserve(usd("0.50")).unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [("org/agent".to_owned(), id, START.saturating_add(secs(30)))]
    );
    assert!(org.sweep().unwrap().is_empty());
    assert_eq!(seen.lock().unwrap().len(), 1, "reported twice");
    fresh.commit(usd("0.50")).unwrap();
    assert_eq!(books(&org), (usd("0.50"), zero(), zero()));
}

#[test]
fn a_denied_reserve_leaves_its_reclaims_to_the_next_sweep() {
    let (org, clock) = memory("1");
    let agent = org.at("agent").unwrap();
    let (_, events) = org.subscribe();
    let stuck = agent.reserve_with(usd("0.40"), &ttl(5)).unwrap();
    clock.advance(secs(6));
    let error = agent.reserve(usd("2")).unwrap_err();
    assert!(error.is_denial());
    assert_eq!(books(&agent), (zero(), zero(), zero()), "reclaimed anyway");
    assert!(matches!(events.try_recv(), Ok(Event::ReserveDenied(_))));
    assert!(events.try_recv().is_err(), "an expiry without its report");
    let swept = org.sweep().unwrap();
    assert_eq!(swept.len(), 1);
    assert_eq!(swept[0].hold, stuck.id());
    assert!(matches!(events.try_recv(), Ok(Event::HoldExpired(e)) if e.hold == stuck.id()));
}

#[test]
fn recorded_spend_survives_expiry_and_a_late_commit_adds_only_the_rest() {
    let (org, clock) = memory("1");
    let agent = org.at("agent").unwrap();
    let stream = agent.reserve_with(usd("0.60"), &ttl(10)).unwrap();
    stream.record(usd("0.20")).unwrap();
    clock.advance(secs(10));
    let expired = org.sweep().unwrap();
    assert_eq!(expired[0].recorded, Cost::from(usd("0.20")));
    assert_eq!(books(&agent), (usd("0.20"), zero(), zero()));
    let committed = stream.commit(usd("0.50")).unwrap();
    assert!(committed.expired);
    assert_eq!(books(&agent), (usd("0.50"), zero(), zero()));
    assert_eq!(books(&org), (usd("0.50"), zero(), zero()));
}

#[test]
fn a_late_commit_under_an_overdraft_records_the_excess_as_debt() {
    let clock = ManualClock::new(START);
    let overdraft = OveragePolicy::AllowWithOverdraft { limit: usd("0.50") };
    let org = Budget::builder("org", Limit::hard(usd("10")))
        .child("agent", Limit::hard(usd("1")).with_overage(overdraft))
        .build_in(MemoryStore::with_clock(clock.clone()))
        .unwrap();
    let agent = org.at("agent").unwrap();
    let late = agent.reserve_with(usd("0.50"), &ttl(1)).unwrap();
    clock.advance(secs(1));
    org.sweep().unwrap();
    let other = agent.reserve(usd("0.80")).unwrap();
    // $0.20 left: $0.20 of the $0.30 late spend fits, $0.10 becomes debt (within $0.50).
    let committed = late.commit(usd("0.30")).unwrap();
    assert!(committed.expired);
    assert_eq!(books(&agent), (usd("0.20"), usd("0.80"), usd("0.10")));
    assert_eq!(books(&org), (usd("0.30"), usd("0.80"), zero()));
    other.release().unwrap();
}

#[test]
fn a_late_commit_past_the_memory_of_reclaimed_holds_is_unknown() {
    let (org, clock) = memory("100000");
    let agent = org.at("agent").unwrap();
    let first = agent.reserve_with(usd("1"), &ttl(1)).unwrap();
    let mut rest = Vec::new();
    for _ in 0..budget_guard::expiry::EXPIRED_HOLDS_REMEMBERED {
        rest.push(agent.reserve_with(usd("1"), &ttl(1)).unwrap());
    }
    clock.advance(secs(1));
    assert_eq!(
        org.sweep().unwrap().len(),
        budget_guard::expiry::EXPIRED_HOLDS_REMEMBERED + 1
    );
    let id = first.id();
    let error = first.commit(usd("1")).unwrap_err();
    assert!(matches!(error.error(), Error::UnknownHold { hold } if *hold == id));
    // The most recent ones are still remembered.
    assert!(rest.pop().unwrap().commit(usd("1")).unwrap().expired);
}

#[test]
fn reserve_up_to_reclaims_when_not_even_the_minimum_fits() {
    let (org, clock) = memory("1");
    let agent = org.at("agent").unwrap();
    let _stuck = agent.reserve_with(usd("0.95"), &ttl(2)).unwrap();
    assert!(agent.reserve_up_to(usd("0.10"), usd("0.50")).is_err());
    clock.advance(secs(2));
    let granted = agent.reserve_up_to(usd("0.10"), usd("0.50")).unwrap();
    assert_eq!(granted.held(), Cost::from(usd("0.50")));
}

#[test]
fn bad_durations_are_typed_errors_and_change_nothing() {
    let (org, _clock) = memory("1");
    let agent = org.at("agent").unwrap();
    let zero_ttl = ReserveOptions::new().ttl(Duration::ZERO);
    let error = agent.reserve_with(usd("0.10"), &zero_ttl).unwrap_err();
    assert!(matches!(error, Error::InvalidDuration { .. }), "{error}");
    assert!(error.to_string().contains("ttl"), "{error}");
    let guard = agent.reserve(usd("0.10")).unwrap();
    let before = guard.expires_at();
    assert!(matches!(
        guard.extend(Duration::ZERO),
        Err(Error::InvalidDuration { .. })
    ));
    assert_eq!(guard.expires_at(), before);
    assert_eq!(books(&agent), (zero(), usd("0.10"), zero()));
    // A very long ttl saturates at "never" instead of overflowing.
    let forever = agent
        .reserve_with(usd("0.10"), &ReserveOptions::new().ttl(Duration::MAX))
        .unwrap();
    assert_eq!(forever.expires_at(), Timestamp::MAX);
}

#[test]
fn the_file_store_keeps_deadlines_and_reclaims_across_reopen() {
    let path = fresh_path("reopen");
    let clock = ManualClock::new(START);
    let open = scratch::reopener(&path, &clock);
    let store = open();
    let org = Budget::builder("org", Limit::hard(usd("1")))
        .build_shared(store.clone())
        .unwrap();
    let org_id = org.id();
    // One hold reclaimed lazily, one by a sweep, one extended, one live: then a crash.
    let lazy = store
        .reserve_with(org_id, &usd("0.30").into(), &ttl(5))
        .unwrap();
    let swept = store
        .reserve_with(org_id, &usd("0.20").into(), &ttl(5))
        .unwrap();
    let beating = store
        .reserve_with(org_id, &usd("0.10").into(), &ttl(5))
        .unwrap();
    clock.advance(secs(4));
    store.extend(beating.hold, secs(100)).unwrap();
    clock.advance(secs(2));
    let fresh = store.reserve(org_id, &usd("0.60").into()).unwrap();
    assert_eq!(fresh.expired.len(), 2, "both expired holds were reclaimed");
    let _ = (lazy, swept);
    let committed = store.commit(fresh.expired[0].hold, &usd("0.35").into());
    assert!(
        committed.is_err(),
        "no room for a late commit: nothing recorded"
    );
    let late = store
        .commit(fresh.expired[1].hold, &usd("0.05").into())
        .unwrap();
    assert!(late.expired);
    let before = store.snapshot().unwrap();
    assert_eq!(before.holds.len(), 2);
    assert_eq!(
        before.expired_holds.len(),
        1,
        "one reclaimed hold is still committable"
    );
    drop(org);
    drop(store);

    let store = open();
    assert_eq!(
        store.snapshot().unwrap(),
        before,
        "deadlines and tombstones replay"
    );
    let root = store.resolve("org").unwrap();
    // The extended hold is due at 104 s, the fresh one at 66 s.
    clock.advance(secs(61));
    let expired = store.sweep().unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].hold, fresh.hold);
    let after_sweep = store.snapshot().unwrap();
    drop(store);
    let store = open();
    assert_eq!(
        store.snapshot().unwrap(),
        after_sweep,
        "the sweep was logged"
    );
    // The remembered hold from before the first reopen still commits late.
    let late = store
        .commit(fresh.expired[0].hold, &usd("0.10").into())
        .unwrap();
    assert!(late.expired);
    assert_eq!(store.balance(root, Unit::Usd).unwrap().spent, usd("0.15"));
    store.compact().unwrap();
    let compacted = store.snapshot().unwrap();
    drop(store);
    assert_eq!(open().snapshot().unwrap(), compacted);
}

/// Expiry racing a commit: whichever runs first under the lock decides, and the books agree
/// with the outcome every time.
#[test]
fn expiry_racing_a_commit_has_one_outcome_and_conserves_money() {
    const ROUNDS: usize = 300;
    let (org, clock) = memory("1000");
    let agent = org.at("agent").unwrap();
    let (mut normal, mut late) = (0, 0);
    for round in 0..ROUNDS {
        let guard = agent.reserve_owned_with(usd("0.50"), &ttl(10)).unwrap();
        let id = guard.id();
        let barrier = Barrier::new(2);
        let (committed, swept) = std::thread::scope(|scope| {
            let committer = scope.spawn(|| {
                barrier.wait();
                guard.commit(usd("0.40")).unwrap()
            });
            let sweeper = scope.spawn(|| {
                barrier.wait();
                clock.advance(secs(10));
                org.sweep().unwrap()
            });
            (committer.join().unwrap(), sweeper.join().unwrap())
        });
        let reclaimed = swept.iter().any(|expired| expired.hold == id);
        assert_eq!(committed.expired, reclaimed, "round {round}: two outcomes");
        if reclaimed {
            late += 1;
            assert_eq!(committed.returned, Cost::from(zero()));
        } else {
            normal += 1;
            assert_eq!(committed.returned, Cost::from(usd("0.10")));
        }
        let spent = usd("0.40").minor_units() * (round as i64 + 1);
        for node in [&org, &agent] {
            let (node_spent, reserved, debt) = books(node);
            assert_eq!(node_spent.minor_units(), spent, "round {round}");
            assert_eq!((reserved, debt), (zero(), zero()), "round {round}");
        }
    }
    assert_eq!(normal + late, ROUNDS);
}

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn the_background_sweeper_reclaims_without_any_reserve() {
    let (org, clock) = memory("1");
    let (_, mut events) = org.subscribe_async();
    let guard = org.reserve_owned_with(usd("0.70"), &ttl(30)).unwrap();
    let id = guard.id();
    std::mem::forget(guard);
    let sweeper = org.spawn_sweeper(secs(10)).unwrap();
    clock.advance(secs(31));
    tokio::time::advance(secs(10)).await;
    match events.recv().await {
        Some(Event::HoldExpired(expired)) => assert_eq!(expired.hold, id),
        other => panic!("expected an expiry, got {other:?}"),
    }
    assert_eq!(books(&org), (zero(), zero(), zero()));
    sweeper.abort();
    assert!(matches!(
        org.spawn_sweeper(Duration::ZERO),
        Err(Error::InvalidDuration { .. })
    ));
}
