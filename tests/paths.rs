//! Paths and handles (hardening issue 12 item 8): `Budget::at` accepts only paths that name a
//! node below the handle, every route to a node gives the same handle, and approval rules and
//! subscriptions key on the node, not on the path string a handle was built from.

use std::sync::{Arc, Mutex};

use budget_guard::approval::{Approval, ApprovalRequest};
use budget_guard::{Amount, Budget, Error, Event, Limit, Limits};

fn usd(text: &str) -> Amount {
    Amount::usd(text).unwrap()
}

/// `org → team → agent`.
fn tree() -> Budget {
    Budget::builder("org", Limit::hard(usd("100")))
        .child("team", Limit::hard(usd("50")))
        .child("team/agent", Limit::hard(usd("20")))
        .build()
        .unwrap()
}

fn deny_all(_: &ApprovalRequest) -> Approval {
    Approval::deny("needs a human")
}

#[test]
fn an_empty_or_slash_only_path_is_refused_instead_of_naming_a_second_root_handle() {
    let org = tree();
    for relative in ["", "/", "//"] {
        match org.at(relative) {
            Err(Error::InvalidName { name, reason }) => {
                assert_eq!(name, relative);
                assert!(!reason.is_empty());
            }
            other => panic!("at({relative:?}) gave {other:?}"),
        }
    }
}

#[test]
fn a_path_with_an_empty_or_reserved_segment_is_refused_with_the_path() {
    let org = tree();
    for relative in [
        "team//agent",
        "//team",
        "team//",
        "team/../team",
        "team/./agent",
    ] {
        match org.at(relative) {
            Err(Error::InvalidName { name, .. }) => assert_eq!(name, relative),
            other => panic!("at({relative:?}) gave {other:?}"),
        }
    }
    // Nothing is created or changed by a refused lookup.
    assert_eq!(org.children().unwrap().len(), 1);
}

#[test]
fn one_leading_or_trailing_slash_names_the_same_node_with_its_canonical_path() {
    let org = tree();
    let plain = org.at("team/agent").unwrap();
    for relative in ["/team/agent", "team/agent/", "/team/agent/"] {
        let handle = org.at(relative).unwrap();
        assert_eq!(handle.path(), "org/team/agent");
        assert_eq!(handle.id(), plain.id());
    }
}

#[test]
fn every_route_to_a_node_gives_the_same_path_and_id() {
    let org = tree();
    let direct = org.at("team/agent").unwrap();
    let stepwise = org.at("team").unwrap().at("agent").unwrap();
    let from_children = org.at("team").unwrap().children().unwrap().remove(0);
    let from_parent = direct.parent().unwrap().unwrap().at("agent").unwrap();
    for handle in [&stepwise, &from_children, &from_parent] {
        assert_eq!(handle.path(), "org/team/agent");
        assert_eq!(handle.id(), direct.id());
    }
}

#[test]
fn a_rule_set_through_one_route_applies_to_reserves_made_through_another() {
    let org = tree();
    org.at("team")
        .unwrap()
        .at("agent")
        .unwrap()
        .require_approval(usd("5"), deny_all)
        .unwrap();
    let agent = org.at("/team/agent/").unwrap();
    match agent.reserve(usd("6")) {
        Err(Error::ApprovalDenied {
            node,
            estimate,
            threshold,
            ..
        }) => {
            assert_eq!(&*node, "org/team/agent");
            assert_eq!(estimate, usd("6"));
            assert_eq!(threshold, usd("5"));
        }
        other => panic!("expected a denial, got {other:?}"),
    }
    assert_eq!(
        agent.balance(budget_guard::Unit::Usd).unwrap().reserved,
        usd("0")
    );
    // At or below the threshold nobody is asked.
    agent.reserve(usd("5")).unwrap().commit(usd("5")).unwrap();
    // The rule is the node's: removing it through yet another route removes it.
    assert!(
        org.at("team/agent")
            .unwrap()
            .remove_approval(budget_guard::Unit::Usd)
    );
    agent.reserve(usd("6")).unwrap().commit(usd("6")).unwrap();
    assert_eq!(
        org.balance(budget_guard::Unit::Usd).unwrap().spent,
        usd("11")
    );
}

#[test]
fn a_subscription_made_through_one_route_sees_events_of_reserves_made_through_another() {
    let org = tree();
    let (_id, events) = org.at("/team").unwrap().subscribe();
    let agent = org.at("team").unwrap().at("agent").unwrap();
    assert!(agent.reserve(usd("21")).is_err());
    match events.try_recv() {
        Ok(Event::ReserveDenied(denied)) => assert_eq!(&*denied.node, "org/team/agent"),
        other => panic!("expected a denial event, got {other:?}"),
    }
}

#[test]
fn a_rule_of_a_removed_node_does_not_pass_to_a_new_node_of_the_same_name() {
    let org = tree();
    let team = org.at("team").unwrap();
    let old = team.add_child("task", Limits::none()).unwrap();
    old.require_approval(usd("1"), deny_all).unwrap();
    // Removed through the store, not through the handle, so the handle cannot clean up.
    org.store().remove_node(old.id()).unwrap();
    let new = team.add_child("task", Limits::none()).unwrap();
    assert_eq!(new.path(), old.path());
    assert_ne!(new.id(), old.id());
    new.reserve(usd("2")).unwrap().commit(usd("2")).unwrap();
    assert_eq!(
        team.balance(budget_guard::Unit::Usd).unwrap().spent,
        usd("2")
    );
}

#[test]
fn a_subscription_to_a_removed_node_does_not_pass_to_a_new_node_of_the_same_name() {
    let org = tree();
    let team = org.at("team").unwrap();
    let old = team.add_child("task", Limit::hard(usd("1"))).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    old.on_event(move |event| sink.lock().unwrap().push(event.node().to_owned()));
    org.store().remove_node(old.id()).unwrap();
    let new = team.add_child("task", Limit::hard(usd("1"))).unwrap();
    assert!(new.reserve(usd("2")).is_err());
    assert!(
        seen.lock().unwrap().is_empty(),
        "{:?}",
        seen.lock().unwrap()
    );
    // A subscription on the new node does see it.
    let sink = seen.clone();
    new.on_event(move |event| sink.lock().unwrap().push(event.node().to_owned()));
    assert!(new.reserve(usd("2")).is_err());
    assert_eq!(*seen.lock().unwrap(), ["org/team/task"]);
}
