//! The money core: holds on the whole path, commits, releases, records, bad input, several units, contention.

use std::sync::{Arc, Barrier};

use super::{books, supports_all, tree, usd, zero};
use crate::amount::{Amount, Unit};
use crate::budget::Budget;
use crate::cost::Cost;
use crate::error::Error;
use crate::op::OpKind;
use crate::policy::{Limit, Limits};
use crate::store::Store;

/// Reserving on a leaf holds the amount on the leaf and every ancestor.
pub fn reserve_holds_on_every_ancestor(store: Arc<dyn Store>) {
    let (acme, team, task) = tree(store, Limit::hard(usd("1")));
    let _guard = task.reserve(usd("0.40")).expect("fits");
    for node in [&acme, &team, &task] {
        assert_eq!(
            books(node),
            (zero(), usd("0.40"), zero()),
            "{}",
            node.path()
        );
    }
}

/// A denied reserve names the limiting node with its numbers and holds nothing anywhere.
pub fn denied_reserve_changes_nothing(store: Arc<dyn Store>) {
    let (acme, _, task) = tree(store.clone(), Limit::hard(usd("5")));
    let _held = task.reserve(usd("3")).expect("fits");
    let before = store.snapshot().expect("snapshot");
    let error = task.reserve(usd("1.5")).expect_err("team has only $1 left");
    let details = error.exceeded().expect("BudgetExceeded");
    assert_eq!(&*details.node, "acme/team");
    assert_eq!(
        (
            details.limit,
            details.spent,
            details.reserved,
            details.requested
        ),
        (usd("4"), zero(), usd("3"), usd("1.5"))
    );
    assert_eq!(
        store.snapshot().expect("snapshot"),
        before,
        "a denial changed the books"
    );
    assert_eq!(books(&acme), (zero(), usd("3"), zero()));
}

/// A commit below the hold spends the actual cost and returns the rest on every node.
pub fn commit_returns_the_unused_rest(store: Arc<dyn Store>) {
    let (acme, team, task) = tree(store, Limit::hard(usd("1")));
    let committed = task
        .reserve(usd("0.50"))
        .expect("fits")
        .commit(usd("0.20"))
        .expect("commit");
    assert_eq!(committed.returned.get(Unit::Usd), Some(usd("0.30")));
    for node in [&acme, &team, &task] {
        assert_eq!(
            books(node),
            (usd("0.20"), zero(), zero()),
            "{}",
            node.path()
        );
    }
}

/// Release returns everything; releasing an ended hold is `Ok(false)` and changes nothing.
pub fn release_is_idempotent(store: Arc<dyn Store>) {
    let (acme, _, task) = tree(store.clone(), Limit::hard(usd("1")));
    let guard = task.reserve(usd("0.50")).expect("fits");
    let hold = guard.id();
    guard.release().expect("release");
    assert_eq!(books(&acme), (zero(), zero(), zero()));
    assert!(!store.release(hold).expect("second release is not an error"));
    assert_eq!(books(&acme), (zero(), zero(), zero()));
}

/// Once a hold ended, commit and record on its id are `UnknownHold` and change nothing.
pub fn a_hold_ends_once(store: Arc<dyn Store>) {
    let (acme, _, task) = tree(store.clone(), Limit::hard(usd("1")));
    let guard = task.reserve(usd("0.50")).expect("fits");
    let hold = guard.id();
    guard.commit(usd("0.10")).expect("commit");
    let before = store.snapshot().expect("snapshot");
    let cost = Cost::from(usd("0.10"));
    assert!(matches!(
        store.commit(hold, &cost),
        Err(Error::UnknownHold { .. })
    ));
    // A store without `record` refuses it as `Unsupported` whatever the hold.
    if store.supports(OpKind::Record) {
        assert!(matches!(
            store.record(hold, &cost),
            Err(Error::UnknownHold { .. })
        ));
    }
    assert_eq!(store.snapshot().expect("snapshot"), before);
    assert_eq!(books(&acme), (usd("0.10"), zero(), zero()));
}

/// `record` spends at once, grows the hold while every node has room, and otherwise records
/// nothing.
pub fn record_grows_only_with_room(store: Arc<dyn Store>) {
    if !supports_all(&*store, &[OpKind::Record]) {
        return;
    }
    let (acme, _, task) = tree(store.clone(), Limit::hard(usd("1")));
    let guard = task.reserve(usd("0.30")).expect("fits");
    guard.record(usd("0.20")).expect("within the hold");
    assert_eq!(books(&acme), (usd("0.20"), usd("0.10"), zero()));
    guard.record(usd("0.50")).expect("grows the hold");
    assert_eq!(books(&acme), (usd("0.70"), zero(), zero()));
    let before = store.snapshot().expect("snapshot");
    assert!(
        guard
            .record(usd("0.31"))
            .expect_err("past the cap")
            .is_denial()
    );
    assert_eq!(store.snapshot().expect("snapshot"), before);
    guard.commit(usd("0.70")).expect("commit the total");
    assert_eq!(books(&task), (usd("0.70"), zero(), zero()));
}

/// `reserve_up_to` holds what the tightest node has room for, within bounds.
pub fn reserve_up_to_takes_what_fits(store: Arc<dyn Store>) {
    if !supports_all(&*store, &[OpKind::ReserveUpTo]) {
        return;
    }
    let (_, team, task) = tree(store, Limit::hard(usd("5")));
    let _busy = team.reserve(usd("3.25")).expect("fits");
    let guard = task
        .reserve_up_to(usd("0.10"), usd("2"))
        .expect("0.75 fits");
    assert_eq!(guard.held().get(Unit::Usd), Some(usd("0.75")));
    let error = task
        .reserve_up_to(usd("0.10"), usd("2"))
        .expect_err("nothing left");
    assert_eq!(
        &*error.exceeded().expect("BudgetExceeded").node,
        "acme/team"
    );
}

/// Invalid input is a typed error that changes nothing.
pub fn bad_input_changes_nothing(store: Arc<dyn Store>) {
    let (_, _, task) = tree(store.clone(), Limit::hard(usd("1")));
    let guard = task.reserve(usd("0.10")).expect("fits");
    let before = store.snapshot().expect("snapshot");
    let node = task.id();
    let tokens = Cost::from(Amount::tokens(5));
    let outcomes = [
        store.reserve(node, &Cost::new()).map(|_| ()),
        store.reserve(node, &Cost::from(zero())).map(|_| ()),
        // (A reserve of tokens nobody limits is not bad input: every unit is ledgered.)
        store.commit(guard.id(), &tokens).map(|_| ()),
        store.record(guard.id(), &tokens),
        store
            .reserve_up_to(node, usd("0.5"), usd("0.1"))
            .map(|_| ()),
        store
            .create_node(Some(node), "a/b", &Limits::none())
            .map(|_| ()),
        store.create_node(None, "acme", &Limits::none()).map(|_| ()),
        store.set_limit(node, Limit::hard(usd("0.05"))).map(|_| ()),
        store.debit(node, usd("5")).map(|_| ()),
        store.credit(node, Amount::tokens(5)).map(|_| ()),
    ];
    for (position, outcome) in outcomes.iter().enumerate() {
        assert!(outcome.is_err(), "bad input #{position} was accepted");
    }
    assert_eq!(
        store.snapshot().expect("snapshot"),
        before,
        "bad input changed the books"
    );
    let retry = guard
        .commit(Amount::tokens(5))
        .expect_err("unit mismatch")
        .into_guard()
        .expect("the hold is still live after bad input");
    retry
        .commit(usd("0.10"))
        .expect("retry with the right unit");
}

/// A reserve across several units holds all of them or none.
pub fn multi_unit_reserve_is_all_or_nothing(store: Arc<dyn Store>) {
    let limits = Limits::from([Limit::hard(usd("1")), Limit::hard(Amount::tokens(1_000))]);
    let agent = Budget::builder("agent", limits)
        .build_shared(store.clone())
        .expect("build");
    let both = Cost::from(usd("0.10"))
        .with(Amount::tokens(900))
        .expect("two units");
    let _first = agent.reserve(both).expect("fits");
    let before = store.snapshot().expect("snapshot");
    let error = agent.reserve(both).expect_err("tokens do not fit");
    assert_eq!(
        error.exceeded().expect("exceeded").requested,
        Amount::tokens(900)
    );
    assert_eq!(
        store.snapshot().expect("snapshot"),
        before,
        "the USD part was held"
    );
}

/// Many threads reserving on one leaf and its siblings never pass a hard limit, and exactly the
/// holds that fit are granted.
pub fn concurrent_reserves_never_pass_a_hard_limit(store: Arc<dyn Store>) {
    const THREADS: usize = 8;
    let root = Budget::builder("org", Limit::hard(usd("50")))
        .child("a", Limit::hard(usd("100")))
        .child("b", Limit::hard(usd("100")))
        .build_shared(store)
        .expect("build");
    let barrier = Barrier::new(THREADS);
    let granted: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|thread| {
                let leaf = root
                    .at(if thread % 2 == 0 { "a" } else { "b" })
                    .expect("leaf");
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    let mut kept = Vec::new();
                    for _ in 0..20 {
                        match leaf.reserve_owned(usd("1")) {
                            Ok(guard) => kept.push(guard),
                            Err(error) => assert!(error.is_denial(), "{error}"),
                        }
                    }
                    let count = kept.len();
                    for guard in kept {
                        guard.commit(usd("1")).expect("commit");
                    }
                    count
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).sum()
    });
    assert_eq!(granted, 50, "exactly $50 of $1 holds fit under the root");
    assert_eq!(books(&root), (usd("50"), zero(), zero()));
}
