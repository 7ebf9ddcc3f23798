//! Cancellation of work in flight (issue 5, item 4): `Guard::is_cancelled` / `cancellation`,
//! `Guard::cancelled().await`, and `Budget::on_exceeded`. The store-level rules are in the
//! conformance suite (`cancellation_says_why_a_hold_should_stop`,
//! `a_reclaimed_hold_is_cancelled_as_expired`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use budget_guard::expiry::ReserveOptions;
use budget_guard::{
    Amount, Budget, Cancellation, Event, Limit, ManualClock, MemoryStore, NodeState, OveragePolicy,
    Store, Timestamp, Unit,
};

fn usd(text: &str) -> Amount {
    Amount::usd(text).unwrap()
}

fn org() -> Budget {
    Budget::builder("org", Limit::hard(usd("10")))
        .child("team", Limit::hard(usd("2")))
        .child("team/agent", Limit::hard(usd("1")))
        .child("other", Limit::hard(usd("2")))
        .build()
        .unwrap()
}

#[test]
fn freezing_an_ancestor_cancels_the_guards_below_it_only_while_frozen() {
    let org = org();
    let agent = org.at("team/agent").unwrap();
    let sibling = org.at("other").unwrap().reserve_owned(usd("0.50")).unwrap();
    let guard = agent.reserve(usd("0.50")).unwrap();
    assert_eq!(guard.cancellation(), None);
    org.at("team")
        .unwrap()
        .set_state(NodeState::Frozen)
        .unwrap();
    assert_eq!(
        guard.cancellation(),
        Some(Cancellation::Frozen {
            node: "org/team".into()
        })
    );
    assert!(!sibling.is_cancelled(), "a sibling subtree is not frozen");
    org.at("team")
        .unwrap()
        .set_state(NodeState::Active)
        .unwrap();
    assert!(!guard.is_cancelled());
    guard.commit(usd("0.20")).unwrap();
}

#[test]
fn a_state_change_made_through_the_store_directly_is_seen_too() {
    let org = org();
    let guard = org
        .at("team/agent")
        .unwrap()
        .reserve_owned(usd("0.50"))
        .unwrap();
    assert!(!guard.is_cancelled());
    let store = org.store().clone();
    store
        .set_state(store.resolve("org").unwrap(), NodeState::Closed)
        .unwrap();
    assert_eq!(
        guard.cancellation(),
        Some(Cancellation::Closed { node: "org".into() })
    );
}

#[test]
fn the_epoch_stays_put_on_ordinary_work_so_checks_cost_a_load() {
    let org = org();
    let agent = org.at("team/agent").unwrap();
    let store = org.store().clone();
    let guard = agent.reserve(usd("0.10")).unwrap();
    assert!(!guard.is_cancelled());
    let epoch = store
        .cancel_epoch()
        .expect("the memory store keeps an epoch");
    for _ in 0..100 {
        agent
            .reserve(usd("0.005"))
            .unwrap()
            .commit(usd("0.001"))
            .unwrap();
        assert!(!guard.is_cancelled());
    }
    assert_eq!(store.cancel_epoch(), Some(epoch));
}

#[test]
fn a_meter_that_spends_the_whole_limit_is_exhausted() {
    let org = org();
    let agent = org.at("team/agent").unwrap();
    let meter = agent.reserve(usd("0.50")).unwrap();
    let waiting = agent.reserve(usd("0.50")).unwrap();
    meter.record(usd("0.50")).unwrap();
    assert!(!waiting.is_cancelled(), "$0.50 is still held for it");
    waiting.release().unwrap();
    meter.record(usd("0.50")).unwrap(); // grows the hold to the whole $1
    assert_eq!(
        meter.cancellation(),
        Some(Cancellation::Exhausted {
            node: "org/team/agent".into(),
            unit: Unit::Usd
        })
    );
    let reserved_the_rest = org.at("team").unwrap().reserve_owned(usd("1")).unwrap();
    assert!(
        !reserved_the_rest.is_cancelled(),
        "holding the last of a budget is not exhaustion"
    );
    meter.commit(usd("1")).unwrap();
}

#[test]
fn a_reclaimed_hold_is_cancelled_as_expired() {
    let clock = ManualClock::new(Timestamp::EPOCH);
    let run = Budget::builder("run", Limit::hard(usd("1")))
        .build_in(MemoryStore::with_clock(clock.clone()))
        .unwrap();
    let guard = run
        .reserve_with(
            usd("0.50"),
            &ReserveOptions::new().ttl(Duration::from_secs(5)),
        )
        .unwrap();
    clock.advance(Duration::from_secs(6));
    assert!(
        !guard.is_cancelled(),
        "expired but not reclaimed: still live"
    );
    run.sweep().unwrap();
    assert_eq!(
        guard.cancellation(),
        Some(Cancellation::Expired {
            expired_at: Timestamp::EPOCH.saturating_add(Duration::from_secs(5))
        })
    );
}

#[test]
fn a_restore_without_the_hold_ends_it() {
    let org = org();
    let snapshot = org.snapshot().unwrap();
    let guard = org
        .at("team/agent")
        .unwrap()
        .reserve_owned(usd("0.50"))
        .unwrap();
    assert!(!guard.is_cancelled());
    org.store().restore(&snapshot).unwrap();
    assert_eq!(guard.cancellation(), Some(Cancellation::Ended));
}

/// Semantics issue 13, item 6: `on_exceeded` hears refusals only. (This test used to expect the
/// allowed overage to be heard and the frozen refusals not to be; both were the bug.)
#[test]
fn on_exceeded_hears_refusals_and_cut_off_meters_of_the_subtree_only() {
    let org = Budget::builder("org", Limit::hard(usd("10")))
        .child(
            "a",
            Limit::hard(usd("1")).with_overage(OveragePolicy::AllowIfAvailable),
        )
        .child("b", Limit::hard(usd("1")))
        .build()
        .unwrap();
    let heard = Arc::new(Mutex::new(Vec::new()));
    let log = heard.clone();
    let a = org.at("a").unwrap();
    a.on_exceeded(move |event| {
        let kind = match event {
            Event::ReserveDenied(denied) => format!("{:?}", denied.reason),
            Event::OverageRejected(_) => "overage rejected".to_owned(),
            other => format!("other: {other:?}"),
        };
        log.lock().unwrap().push(kind);
    });
    assert!(org.at("b").unwrap().reserve(usd("2")).is_err()); // not in a's subtree
    assert!(a.reserve(usd("2")).is_err());
    let meter = a.reserve(usd("0.50")).unwrap();
    assert!(meter.record(usd("1.50")).is_err());
    meter.commit(usd("0.60")).unwrap(); // allowed overage: not a kill
    a.set_state(NodeState::Frozen).unwrap();
    assert!(a.reserve(usd("0.10")).is_err()); // frozen: a refusal
    a.reserve(usd("0.01")).unwrap_err();
    a.set_state(NodeState::Active).unwrap();
    let guard = a.reserve(usd("0.10")).unwrap(); // a threshold-free success: nothing
    guard.commit(usd("0.10")).unwrap();
    assert_eq!(
        *heard.lock().unwrap(),
        ["Exceeded", "Exceeded", "Frozen", "Frozen"]
    );
}

#[test]
fn a_panicking_on_exceeded_callback_changes_nothing() {
    let org = org();
    org.on_exceeded(|_| panic!("the sandbox killer crashed"));
    let agent = org.at("team/agent").unwrap();
    assert!(agent.reserve(usd("5")).is_err());
    assert_eq!(agent.balance(Unit::Usd).unwrap().reserved, usd("0"));
    agent
        .reserve(usd("0.50"))
        .unwrap()
        .commit(usd("0.50"))
        .unwrap();
}

#[cfg(feature = "tokio")]
mod asynchronous {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn cancelled_wakes_when_the_tree_is_frozen() {
        let org = org();
        let guard = org
            .at("team/agent")
            .unwrap()
            .reserve_owned(usd("0.50"))
            .unwrap();
        let operator = org.at("team").unwrap();
        let waiter = tokio::spawn(async move {
            let reason = guard.cancelled().await;
            guard.commit(usd("0.25")).unwrap();
            reason
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        operator.set_state(NodeState::Frozen).unwrap();
        let reason = waiter.await.unwrap();
        assert_eq!(
            reason,
            Cancellation::Frozen {
                node: "org/team".into()
            }
        );
        assert_eq!(org.balance(Unit::Usd).unwrap().spent, usd("0.25"));
    }

    #[tokio::test(start_paused = true)]
    async fn cancelled_notices_changes_outside_the_tree_within_the_poll_interval() {
        let org = org();
        let guard = org
            .at("team/agent")
            .unwrap()
            .reserve_owned(usd("0.50"))
            .unwrap();
        let store = org.store().clone();
        let waiter = tokio::spawn(async move { guard.cancelled().await });
        tokio::task::yield_now().await;
        store
            .set_state(store.resolve("org").unwrap(), NodeState::Closed)
            .unwrap(); // no handle of the tree saw it
        tokio::time::sleep(budget_guard::expiry::CANCEL_POLL).await;
        let reason = tokio::time::timeout(Duration::from_millis(10), waiter)
            .await
            .expect("noticed within one poll interval")
            .unwrap();
        assert_eq!(reason, Cancellation::Closed { node: "org".into() });
    }
}
