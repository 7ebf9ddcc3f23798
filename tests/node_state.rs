//! Node state (issue 5): freezing and closing a subtree, persistence in the FileStore, and the
//! typed errors. The store-independent rules are in the conformance suite
//! (`frozen_and_closed_nodes_block_their_subtree`).

use std::sync::Arc;

use budget_guard::{Amount, Budget, Error, FileStore, Limit, NodeState, Store, Unit};

#[path = "support/scratch.rs"]
mod scratch;
use scratch::fresh_path;

fn usd(text: &str) -> Amount {
    Amount::usd(text).unwrap()
}

#[test]
fn freezing_a_node_freezes_every_descendant_but_not_its_siblings_or_parent() {
    let org = Budget::builder("org", Limit::hard(usd("100")))
        .child("a", Limit::hard(usd("10")))
        .child("a/x", Limit::hard(usd("1")))
        .child("a/x/task", Limit::hard(usd("1")))
        .child("b", Limit::hard(usd("10")))
        .build()
        .unwrap();
    org.at("a").unwrap().set_state(NodeState::Frozen).unwrap();
    for path in ["a", "a/x", "a/x/task"] {
        let error = org.at(path).unwrap().reserve(usd("0.10")).unwrap_err();
        assert!(
            matches!(&error, Error::Frozen { node } if &**node == "org/a"),
            "{path}: {error}"
        );
        assert_eq!(error.to_string(), "org/a is frozen: no new holds");
        assert!(!error.is_denial(), "a frozen node is not a budget denial");
    }
    assert!(org.at("b").unwrap().reserve(usd("0.10")).is_ok());
    assert!(org.reserve(usd("0.10")).is_ok());
    // The nearest blocked node on the path is named.
    org.at("a/x").unwrap().set_state(NodeState::Closed).unwrap();
    assert!(matches!(
        org.at("a/x/task").unwrap().reserve(usd("0.10")),
        Err(Error::Closed { node }) if &*node == "org/a/x"
    ));
    assert_eq!(
        org.balance(Unit::Usd).unwrap().reserved,
        Amount::zero(Unit::Usd)
    );
}

#[test]
fn a_removed_node_has_no_state_to_set() {
    let org = Budget::builder("org", Limit::hard(usd("1")))
        .build()
        .unwrap();
    let task = org.add_child("task", Limit::hard(usd("1"))).unwrap();
    let stale = task.clone();
    task.remove().unwrap();
    assert!(matches!(
        stale.set_state(NodeState::Frozen),
        Err(Error::UnknownNode { path }) if path == "org/task"
    ));
    // Removing a frozen node leaves no trace: a new node with its path is active.
    let task = org.add_child("task", Limit::hard(usd("1"))).unwrap();
    task.set_state(NodeState::Frozen).unwrap();
    task.remove().unwrap();
    let task = org.add_child("task", Limit::hard(usd("1"))).unwrap();
    assert!(task.reserve(usd("0.10")).is_ok());
}

#[test]
fn the_file_store_keeps_node_states_across_reopen_and_compaction() {
    let path = fresh_path("reopen");
    {
        let store = Arc::new(FileStore::open(&path).unwrap());
        let org = Budget::builder("org", Limit::hard(usd("1")))
            .child("frozen", Limit::hard(usd("1")))
            .child("closed", Limit::hard(usd("1")))
            .child("thawed", Limit::hard(usd("1")))
            .build_shared(store.clone())
            .unwrap();
        org.at("frozen")
            .unwrap()
            .set_state(NodeState::Frozen)
            .unwrap();
        org.at("closed")
            .unwrap()
            .set_state(NodeState::Closed)
            .unwrap();
        let thawed = org.at("thawed").unwrap();
        thawed.set_state(NodeState::Frozen).unwrap();
        thawed.set_state(NodeState::Active).unwrap();
    }
    for round in 0..2 {
        let store: Arc<dyn Store> = Arc::new(FileStore::open(&path).unwrap());
        let at = |name: &str| Budget::open(store.clone(), &format!("org/{name}")).unwrap();
        assert_eq!(
            at("frozen").info().unwrap().state,
            NodeState::Frozen,
            "{round}"
        );
        assert!(matches!(
            at("closed").reserve(usd("0.1")),
            Err(Error::Closed { .. })
        ));
        assert!(at("thawed").reserve(usd("0.1")).is_ok(), "{round}");
        // Opening rewrote the file as one snapshot: the second round reads the state from it.
    }
}
