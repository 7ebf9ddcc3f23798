//! Conformance checks of idempotency keys (see [`crate::idempotency`]).

use std::sync::{Arc, Barrier};
use std::time::Duration;

use super::{books, supports_all, tree, usd, zero};
use crate::budget::Budget;
use crate::clock::ManualClock;
use crate::cost::Cost;
use crate::error::Error;
use crate::expiry::ReserveOptions;
use crate::idempotency::{DEFAULT_KEY_TTL, HoldEnd, IdempotencyKey, OpOptions};
use crate::op::OpKind;
use crate::policy::Limit;
use crate::store::Store;

fn key(text: &str) -> IdempotencyKey {
    IdempotencyKey::new(text).expect("a valid test key")
}

fn keyed(text: &str) -> OpOptions {
    OpOptions::new().idempotency_key(key(text))
}

fn keyed_reserve(text: &str) -> ReserveOptions {
    ReserveOptions::new().idempotency_key(key(text))
}

/// A retried reserve, reserve_up_to, commit, release, credit and debit with the same key and
/// request returns the first result and changes the books once.
pub fn idempotent_retries_apply_once(store: Arc<dyn Store>) {
    if !supports_all(
        &*store,
        &[OpKind::ReserveUpTo, OpKind::Credit, OpKind::Debit],
    ) {
        return;
    }
    let (acme, team, task) = tree(store.clone(), Limit::hard(usd("1")));
    let node = task.id();
    // Reserve: the same hold, held once.
    let cost = Cost::from(usd("0.40"));
    let first = store
        .reserve_with(node, &cost, &keyed_reserve("r1"))
        .expect("fits");
    let retry = store
        .reserve_with(node, &cost, &keyed_reserve("r1"))
        .expect("a retry is answered");
    assert!(
        !first.replayed && retry.replayed,
        "only the retry is a replay"
    );
    assert_eq!(
        (retry.hold, retry.held, retry.expires_at),
        (first.hold, first.held, first.expires_at),
        "a retried reserve returns the first hold"
    );
    assert_eq!(books(&acme), (zero(), usd("0.40"), zero()), "held once");
    // reserve_up_to: the same grant.
    let (min, max) = (usd("0.10"), usd("0.50"));
    let options = keyed_reserve("r2");
    let granted = store
        .reserve_up_to_with(node, min, max, &options)
        .expect("fits");
    let again = store
        .reserve_up_to_with(node, min, max, &options)
        .expect("answered");
    assert_eq!((again.hold, again.held), (granted.hold, granted.held));
    assert_eq!(books(&task), (zero(), usd("0.90"), zero()));
    // Commit: the first result, recorded once.
    let spent = Cost::from(usd("0.25"));
    let committed = store
        .commit_with(first.hold, &spent, &keyed("c1"))
        .expect("commit");
    let recommitted = store
        .commit_with(first.hold, &spent, &keyed("c1"))
        .expect("a retried commit is answered, not UnknownHold");
    assert!(!committed.replayed && recommitted.replayed);
    assert_eq!(
        (recommitted.spent, recommitted.returned, recommitted.overage),
        (committed.spent, committed.returned, committed.overage)
    );
    assert_eq!(books(&task), (usd("0.25"), usd("0.50"), zero()));
    // Release: the first answer, released once.
    assert!(
        store
            .release_with(granted.hold, &keyed("x1"))
            .expect("release")
    );
    assert!(
        store
            .release_with(granted.hold, &keyed("x1"))
            .expect("answered"),
        "a retried release repeats the first answer"
    );
    assert_eq!(books(&task), (usd("0.25"), zero(), zero()));
    // Credit and debit: funds move once.
    let credited = store
        .credit_with(team.id(), usd("2"), &keyed("f1"))
        .expect("credit");
    let recredited = store
        .credit_with(team.id(), usd("2"), &keyed("f1"))
        .expect("answered");
    assert_eq!(recredited, credited, "nothing changed in between");
    assert_eq!(recredited.limit.map(|l| l.amount()), Some(usd("6")));
    store
        .debit_with(team.id(), usd("1"), &keyed("d1"))
        .expect("debit");
    let after = store
        .debit_with(team.id(), usd("1"), &keyed("d1"))
        .expect("answered");
    assert_eq!(
        after.limit.map(|l| l.amount()),
        Some(usd("5")),
        "debited once"
    );
    // A keyed commit whose overage was rejected recorded the spend: its retry records nothing.
    let hold = store
        .reserve_with(node, &Cost::from(usd("0.10")), &ReserveOptions::new())
        .expect("fits");
    let over = Cost::from(usd("0.90"));
    let rejected = store.commit_with(hold.hold, &over, &keyed("c2"));
    assert!(matches!(rejected, Err(Error::OverageRejected { .. })));
    let before = books(&task);
    let again = store.commit_with(hold.hold, &over, &keyed("c2"));
    match (rejected, again) {
        (Err(first), Err(second)) => assert_eq!(first.to_string(), second.to_string()),
        other => panic!("a retried rejected commit repeats its error: {other:?}"),
    }
    assert_eq!(books(&task), before, "the retry recorded nothing");
}

/// The same key with a different request is `IdempotencyMismatch` naming the key and changes
/// nothing; a keyed operation that failed is not remembered.
pub fn idempotency_mismatch_changes_nothing(store: Arc<dyn Store>) {
    if !supports_all(&*store, &[OpKind::Credit]) {
        return;
    }
    let (_, team, task) = tree(store.clone(), Limit::hard(usd("1")));
    let node = task.id();
    let hold = store
        .reserve_with(node, &Cost::from(usd("0.40")), &keyed_reserve("k"))
        .expect("fits")
        .hold;
    let before = store.snapshot().expect("snapshot");
    let mismatches = [
        store
            .reserve_with(node, &Cost::from(usd("0.30")), &keyed_reserve("k"))
            .map(|_| ()),
        store
            .reserve_with(
                node,
                &Cost::from(usd("0.40")),
                &keyed_reserve("k").ttl(Duration::from_secs(5)),
            )
            .map(|_| ()),
        store
            .reserve_with(team.id(), &Cost::from(usd("0.40")), &keyed_reserve("k"))
            .map(|_| ()),
        store
            .commit_with(hold, &Cost::from(usd("0.40")), &keyed("k"))
            .map(|_| ()),
        store.release_with(hold, &keyed("k")).map(|_| ()),
        store.credit_with(node, usd("1"), &keyed("k")).map(|_| ()),
    ];
    for outcome in mismatches {
        match outcome {
            Err(Error::IdempotencyMismatch { key, first, .. }) => {
                assert_eq!((&*key, first), ("k", "reserve"));
            }
            other => panic!("expected IdempotencyMismatch, got {other:?}"),
        }
    }
    assert_eq!(
        store.snapshot().expect("snapshot"),
        before,
        "nothing changed"
    );
    // A denied keyed reserve is not remembered: after a credit the same key succeeds.
    let big = Cost::from(usd("0.90"));
    let denied = store.reserve_with(node, &big, &keyed_reserve("later"));
    assert!(
        matches!(denied, Err(Error::BudgetExceeded(_))),
        "{denied:?}"
    );
    store.credit(node, usd("1")).expect("credit");
    let granted = store
        .reserve_with(node, &big, &keyed_reserve("later"))
        .expect("the key was not used up by the denial");
    assert!(!granted.replayed);
}

/// Many threads reserving with one key and one request: exactly one hold is created, every
/// caller gets it, and exactly one guard owns the release on drop.
pub fn concurrent_retries_hold_once(store: Arc<dyn Store>) {
    const THREADS: usize = 8;
    let (acme, _, task) = tree(store, Limit::hard(usd("1")));
    let barrier = Barrier::new(THREADS);
    let guards: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let (task, barrier) = (task.clone(), &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    task.reserve_owned_with(usd("0.30"), &keyed_reserve("shared"))
                        .expect("one reserve fits; the others are answered")
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    let hold = guards[0].id();
    assert!(guards.iter().all(|guard| guard.id() == hold), "one hold");
    let owners = guards.iter().filter(|guard| !guard.is_replay()).count();
    assert_eq!(owners, 1, "exactly one guard is the first reserve's");
    assert_eq!(books(&acme), (zero(), usd("0.30"), zero()), "held once");
    // Dropping the replayed guards leaves the hold to its owner.
    let (owner, replays): (Vec<_>, Vec<_>) = guards.into_iter().partition(|g| !g.is_replay());
    drop(replays);
    assert_eq!(books(&acme), (zero(), usd("0.30"), zero()));
    for guard in owner {
        guard.commit(usd("0.20")).expect("the owner commits");
    }
    assert_eq!(books(&acme), (usd("0.20"), zero(), zero()));
}

/// A key is remembered for the store's key TTL (by default 24 hours) from its operation, then
/// forgotten: the same key applies the operation again.
pub fn idempotency_keys_expire_after_their_ttl(store: Arc<dyn Store>, clock: &ManualClock) {
    if !supports_all(&*store, &[OpKind::Credit]) {
        return;
    }
    let wallet = Budget::builder("wallet", Limit::hard(usd("5")))
        .build_shared(store)
        .expect("build");
    let top_up = keyed("top-up");
    wallet.credit_with(usd("1"), &top_up).expect("credit");
    clock.advance(DEFAULT_KEY_TTL - Duration::from_secs(1));
    wallet.credit_with(usd("1"), &top_up).expect("answered");
    let limit = |budget: &Budget| {
        budget
            .balance(crate::amount::Unit::Usd)
            .expect("balance")
            .limit
            .map(|limit| limit.amount())
    };
    assert_eq!(limit(&wallet), Some(usd("6")), "remembered within its TTL");
    clock.advance(Duration::from_secs(1));
    wallet.credit_with(usd("1"), &top_up).expect("credit again");
    assert_eq!(limit(&wallet), Some(usd("7")), "forgotten after its TTL");
    // A reserve key likewise: after the TTL the same key holds again.
    let once = keyed_reserve("hold").ttl(DEFAULT_KEY_TTL * 2);
    let first = wallet.reserve_owned_with(usd("1"), &once).expect("fits");
    clock.advance(DEFAULT_KEY_TTL);
    let second = wallet.reserve_owned_with(usd("1"), &once).expect("fits");
    assert_ne!(first.id(), second.id());
    assert!(!second.is_replay());
    assert_eq!(
        wallet
            .balance(crate::amount::Unit::Usd)
            .expect("balance")
            .reserved,
        usd("2")
    );
}

/// A reserve retried after its hold ended (committed, released, expired, or committed late after
/// expiring) is [`Error::HoldEnded`] naming the key, the hold and how it ended, and changes
/// nothing; while the hold is live the retry is answered with it. A new key holds again.
pub fn a_retried_reserve_of_an_ended_hold_says_how_it_ended(
    store: Arc<dyn Store>,
    clock: &ManualClock,
) {
    if !supports_all(&*store, &[OpKind::Sweep]) {
        return;
    }
    let (acme, _team, task) = tree(store.clone(), Limit::hard(usd("1")));
    let node = task.id();
    let cost = Cost::from(usd("0.20"));
    let reserve = |text: &str| {
        store.reserve_with(
            node,
            &cost,
            &keyed_reserve(text).ttl(Duration::from_secs(10)),
        )
    };
    let ended = |text: &str, hold, how| {
        let before = store.snapshot().expect("snapshot");
        match reserve(text) {
            Err(Error::HoldEnded {
                key,
                hold: reported,
                how: reported_how,
            }) => {
                assert_eq!(&*key, text);
                assert_eq!((reported, reported_how), (hold, how), "key {text}");
            }
            other => panic!("a retry of {text} after its hold was {how}: {other:?}"),
        }
        assert_eq!(
            store.snapshot().expect("snapshot"),
            before,
            "the retry changed the books"
        );
    };
    // Committed.
    let committed = reserve("committed").expect("fits").hold;
    assert!(reserve("committed").expect("live: answered").replayed);
    store
        .commit(committed, &Cost::from(usd("0.15")))
        .expect("commit");
    ended("committed", committed, HoldEnd::Committed);
    // Released.
    let released = reserve("released").expect("fits").hold;
    assert!(store.release(released).expect("release"));
    ended("released", released, HoldEnd::Released);
    // Expired, then committed late (the spend is booked after all).
    let expired = reserve("expired").expect("fits").hold;
    let late = reserve("late").expect("fits").hold;
    clock.advance(Duration::from_secs(10));
    assert_eq!(store.sweep().expect("sweep").len(), 2);
    ended("expired", expired, HoldEnd::Expired);
    store
        .commit(late, &Cost::from(usd("0.05")))
        .expect("a late commit that fits");
    ended("late", late, HoldEnd::Committed);
    assert_eq!(books(&acme), (usd("0.20"), zero(), zero()));
    // A new key holds again.
    let fresh = reserve("released-2").expect("a new key holds");
    assert!(!fresh.replayed);
    assert_eq!(books(&acme), (usd("0.20"), usd("0.20"), zero()));
}
