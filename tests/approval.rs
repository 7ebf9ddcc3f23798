//! Approval rules (issue 5 item 8): a reserve above a node's threshold asks the node's approver,
//! and every ancestor's, before anything is held; the approvers run outside every lock.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use budget_guard::approval::{Approval, ApprovalRequest, Approver};
use budget_guard::{
    Amount, Budget, Cost, Error, FallbackError, Ladder, Limit, Limits, MemoryStore, Outcome, Store,
    Unit,
};

fn usd(text: &str) -> Amount {
    Amount::usd(text).unwrap()
}

/// `acme → team → agent` with room everywhere, and a sibling `other` under `acme`.
fn tree() -> Budget {
    Budget::builder("acme", Limit::hard(usd("100")))
        .child("team", Limit::hard(usd("50")))
        .child("team/agent", Limit::hard(usd("20")))
        .child("other", Limit::hard(usd("20")))
        .build()
        .unwrap()
}

/// An approver that records every request it sees and answers with `answer`.
#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Vec<ApprovalRequest>>>,
}

impl Recorder {
    fn approver(&self, answer: Approval) -> impl Approver {
        let seen = self.seen.clone();
        move |request: &ApprovalRequest| {
            seen.lock().unwrap().push(request.clone());
            answer.clone()
        }
    }

    fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    fn requests(&self) -> Vec<ApprovalRequest> {
        self.seen.lock().unwrap().clone()
    }
}

fn reserved(budget: &Budget) -> Amount {
    budget.balance(Unit::Usd).unwrap().reserved
}

#[test]
fn an_approved_reserve_is_held_and_the_approver_sees_the_request() {
    let org = tree();
    let agent = org.at("team/agent").unwrap();
    let log = Recorder::default();
    agent
        .require_approval(usd("5"), log.approver(Approval::Approved))
        .unwrap();

    let guard = agent.reserve(usd("7.50")).unwrap();
    assert_eq!(reserved(&org), usd("7.50"));
    let [request] = log.requests().try_into().unwrap();
    assert_eq!(&*request.node, "acme/team/agent");
    assert_eq!(&*request.rule_node, "acme/team/agent");
    assert_eq!(request.estimate, usd("7.50"));
    assert_eq!(request.threshold, usd("5"));
    assert_eq!(request.requested, Cost::from(usd("7.50")));
    guard.commit(usd("6")).unwrap();
    assert_eq!(org.balance(Unit::Usd).unwrap().spent, usd("6"));
}

#[test]
fn a_denied_reserve_changes_nothing_and_names_node_estimate_threshold_and_reason() {
    let org = tree();
    let agent = org.at("team/agent").unwrap();
    let _running = agent.reserve(usd("1")).unwrap();
    agent
        .require_approval(usd("5"), |_: &ApprovalRequest| {
            Approval::deny("needs a manager")
        })
        .unwrap();
    let before = org.snapshot().unwrap();

    let error = agent.reserve(usd("6")).unwrap_err();
    match &error {
        Error::ApprovalDenied {
            node,
            estimate,
            threshold,
            reason,
        } => {
            assert_eq!(&**node, "acme/team/agent");
            assert_eq!(*estimate, usd("6"));
            assert_eq!(*threshold, usd("5"));
            assert_eq!(reason, "needs a manager");
        }
        other => panic!("expected ApprovalDenied, got {other:?}"),
    }
    assert!(error.is_denial());
    assert_eq!(
        error.to_string(),
        "acme/team/agent requires approval above $5.00; a request of $6.00 was denied: needs a manager"
    );
    assert_eq!(org.snapshot().unwrap(), before, "a denial holds nothing");
    assert_eq!(reserved(&org), usd("1"));
}

#[test]
fn exactly_the_threshold_is_not_asked_one_minor_unit_more_is() {
    let org = tree();
    let log = Recorder::default();
    org.require_approval(usd("5"), log.approver(Approval::deny("no")))
        .unwrap();
    let agent = org.at("team/agent").unwrap();

    agent.reserve(usd("5")).unwrap().release().unwrap();
    agent.reserve(usd("0.01")).unwrap().release().unwrap();
    assert_eq!(log.count(), 0);

    let just_above = Amount::try_from_minor(usd("5").minor_units() + 1, Unit::Usd).unwrap();
    assert!(matches!(
        agent.reserve(just_above),
        Err(Error::ApprovalDenied { .. })
    ));
    assert_eq!(log.count(), 1);
}

#[test]
fn an_ancestor_rule_covers_every_descendant_and_rules_are_asked_leaf_to_root() {
    let org = tree();
    let order = Arc::new(Mutex::new(Vec::new()));
    let asked = |name: &'static str, answer: Approval| {
        let order = order.clone();
        move |request: &ApprovalRequest| {
            order
                .lock()
                .unwrap()
                .push((name, request.rule_node.to_string()));
            answer.clone()
        }
    };
    org.require_approval(usd("5"), asked("org", Approval::Approved))
        .unwrap();
    org.at("team")
        .unwrap()
        .require_approval(usd("2"), asked("team", Approval::Approved))
        .unwrap();
    let agent = org.at("team/agent").unwrap();

    // Deep in the tree: the team's rule first, then the org's.
    agent.reserve(usd("6")).unwrap().release().unwrap();
    assert_eq!(
        *order.lock().unwrap(),
        [("team", "acme/team".to_owned()), ("org", "acme".to_owned())]
    );
    order.lock().unwrap().clear();

    // Above the team's threshold only: the org is not asked.
    agent.reserve(usd("3")).unwrap().release().unwrap();
    assert_eq!(*order.lock().unwrap(), [("team", "acme/team".to_owned())]);
    order.lock().unwrap().clear();

    // A sibling subtree is covered by the org's rule, not the team's.
    org.at("other")
        .unwrap()
        .reserve(usd("6"))
        .unwrap()
        .release()
        .unwrap();
    assert_eq!(*order.lock().unwrap(), [("org", "acme".to_owned())]);
}

#[test]
fn the_first_denial_stops_the_walk_and_a_lower_approval_does_not_excuse_a_higher_rule() {
    let org = tree();
    let root_log = Recorder::default();
    org.require_approval(usd("5"), root_log.approver(Approval::deny("org says no")))
        .unwrap();
    let team = org.at("team").unwrap();
    let team_log = Recorder::default();
    team.require_approval(usd("1"), team_log.approver(Approval::deny("team says no")))
        .unwrap();
    let agent = org.at("team/agent").unwrap();

    let error = agent.reserve(usd("6")).unwrap_err();
    assert!(
        matches!(&error, Error::ApprovalDenied { node, reason, .. } if &**node == "acme/team" && reason == "team says no")
    );
    assert_eq!((team_log.count(), root_log.count()), (1, 0));

    // The team approves now; the org's rule still applies and denies.
    team.require_approval(usd("1"), team_log.approver(Approval::Approved))
        .unwrap();
    let error = agent.reserve(usd("6")).unwrap_err();
    assert!(matches!(&error, Error::ApprovalDenied { node, .. } if &**node == "acme"));
    assert_eq!((team_log.count(), root_log.count()), (2, 1));
    assert_eq!(reserved(&org), usd("0"));
}

#[test]
fn rules_are_per_unit_and_replace_only_their_own_unit() {
    let org = Budget::builder("org", Limits::from([Limit::hard(usd("100"))]))
        .build()
        .unwrap();
    org.set_limit(Limit::hard(Amount::tokens(1_000_000)))
        .unwrap();
    let tokens = Recorder::default();
    org.require_approval(
        Amount::tokens(10_000),
        tokens.approver(Approval::deny("tokens")),
    )
    .unwrap();

    // A dollars-only reserve above any dollar figure is not asked by a token rule.
    org.reserve(usd("50")).unwrap().release().unwrap();
    assert_eq!(tokens.count(), 0);

    // A multi-unit reserve is asked about its tokens, and the request carries the whole cost.
    let cost = Cost::from(usd("1")).with(Amount::tokens(20_000)).unwrap();
    let error = org.reserve(cost).unwrap_err();
    assert!(
        matches!(error, Error::ApprovalDenied { estimate, .. } if estimate == Amount::tokens(20_000))
    );
    assert_eq!(tokens.requests()[0].requested, cost);

    // A dollar rule next to it does not replace the token rule; a second dollar rule replaces
    // the first.
    let dollars = Recorder::default();
    org.require_approval(usd("10"), |_: &ApprovalRequest| Approval::deny("old"))
        .unwrap();
    org.require_approval(usd("10"), dollars.approver(Approval::Approved))
        .unwrap();
    org.reserve(usd("20")).unwrap().release().unwrap();
    assert_eq!(dollars.count(), 1);
    assert!(org.reserve(cost).is_err());

    // Removing the token rule leaves the dollar rule.
    assert!(org.remove_approval(Unit::Tokens));
    assert!(!org.remove_approval(Unit::Tokens));
    org.reserve(cost).unwrap().release().unwrap();
    org.reserve(usd("20")).unwrap().release().unwrap();
    assert_eq!(dollars.count(), 2);
}

#[test]
fn reserve_with_reserve_up_to_run_and_owned_reserves_all_ask() {
    let org = tree();
    let log = Recorder::default();
    org.require_approval(usd("5"), log.approver(Approval::deny("no")))
        .unwrap();
    let agent = org.at("team/agent").unwrap();

    let options = budget_guard::expiry::ReserveOptions::new().ttl(Duration::from_secs(30));
    assert!(matches!(
        agent.reserve_with(usd("6"), &options),
        Err(Error::ApprovalDenied { .. })
    ));
    assert!(matches!(
        agent.reserve_owned(usd("6")),
        Err(Error::ApprovalDenied { .. })
    ));

    // reserve_up_to is asked about its maximum, even if less would be held.
    assert!(matches!(
        agent.reserve_up_to(usd("1"), usd("6")),
        Err(Error::ApprovalDenied { estimate, .. }) if estimate == usd("6")
    ));
    agent
        .reserve_up_to(usd("1"), usd("5"))
        .unwrap()
        .release()
        .unwrap();
    // Bounds the store rejects anyway are reported as such, without asking.
    let asked = log.count();
    assert!(matches!(
        agent.reserve_up_to(usd("7"), usd("6")),
        Err(Error::InvalidAmount { .. })
    ));
    assert_eq!(log.count(), asked);

    let mut ran = false;
    let result = agent.run(usd("6"), |_guard| {
        ran = true;
        Ok::<_, std::io::Error>(((), usd("1")))
    });
    assert!(!ran, "a denied run does not run its work");
    assert!(result.unwrap_err().is_denial());
    assert_eq!(log.count(), asked + 1);
    assert_eq!(reserved(&org), usd("0"));
}

#[test]
fn a_ladder_moves_to_a_tier_that_needs_no_approval() {
    let org = tree();
    org.require_approval(usd("5"), |request: &ApprovalRequest| {
        Approval::deny(format!("{} is not approved", request.estimate))
    })
    .unwrap();
    let agent = org.at("team/agent").unwrap();
    let ladder = Ladder::new()
        .tier("premium", usd("8"))
        .tier("standard", usd("3"));

    let (tier, guard) = ladder.reserve(&agent).unwrap();
    assert_eq!(tier.name(), "standard");
    guard.release().unwrap();

    let served = ladder
        .fallback(
            &agent,
            |_: &()| false,
            |tier, _guard| Ok::<_, ()>((tier.name().to_owned(), usd("2"))),
        )
        .unwrap();
    assert_eq!(served.value, "standard");
    assert!(matches!(
        &served.attempts[0].outcome,
        Outcome::Denied(Error::ApprovalDenied { .. })
    ));

    // When every tier needs an approval that is denied, the chain is exhausted.
    let expensive = Ladder::new().tier("premium", usd("8"));
    let error = expensive
        .fallback(&agent, |_: &()| false, |_, _| Ok::<_, ()>(((), usd("1"))))
        .unwrap_err();
    assert!(matches!(error, FallbackError::Exhausted { .. }));
    assert_eq!(org.balance(Unit::Usd).unwrap().spent, usd("2"));
}

#[test]
fn a_check_lists_the_requests_a_reserve_would_make_and_asks_nobody() {
    let org = tree();
    let log = Recorder::default();
    org.require_approval(usd("5"), log.approver(Approval::deny("no")))
        .unwrap();
    org.at("team")
        .unwrap()
        .require_approval(usd("2"), log.approver(Approval::deny("no")))
        .unwrap();
    let agent = org.at("team/agent").unwrap();

    let check = agent.check(usd("6")).unwrap();
    assert!(check.fits(), "the money fits");
    assert!(check.needs_approval());
    let rules: Vec<&str> = check.approvals.iter().map(|r| &*r.rule_node).collect();
    assert_eq!(rules, ["acme/team", "acme"]);
    assert_eq!(check.approvals[1].threshold, usd("5"));
    assert_eq!(log.count(), 0, "a dry run asks nobody");

    assert!(!agent.check(usd("2")).unwrap().needs_approval());
    assert_eq!(reserved(&org), usd("0"));
}

/// Runs `f` on another thread and fails the test if it does not finish in time (a deadlock).
fn within_seconds<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = mpsc::channel();
    thread::spawn(move || done.send(f()).unwrap());
    result
        .recv_timeout(Duration::from_secs(20))
        .expect("deadlock: the operation did not finish")
}

#[test]
fn an_approver_may_use_the_budget_without_deadlock() {
    within_seconds(|| {
        let org = tree();
        let other = org.at("other").unwrap();
        let inside = org.clone();
        org.require_approval(usd("5"), move |request: &ApprovalRequest| {
            // Reads the tree, reserves on another node of it, and changes the rules.
            let before = inside.balance(Unit::Usd).unwrap();
            assert_eq!(before.reserved, usd("0"), "nothing is held while asking");
            other.reserve(usd("1")).unwrap().commit(usd("1")).unwrap();
            // Reserving on the asking node itself, below the threshold, is not asked again.
            let node = inside.store().resolve(&request.node).unwrap();
            let held = inside.store().reserve(node, &usd("0.50").into()).unwrap();
            inside.store().release(held.hold).unwrap();
            inside
                .at("team")
                .unwrap()
                .require_approval(usd("50"), |_: &ApprovalRequest| Approval::Approved)
                .unwrap();
            let check = inside.check(request.estimate).unwrap();
            assert!(check.needs_approval());
            Approval::Approved
        })
        .unwrap();
        let agent = org.at("team/agent").unwrap();
        agent.reserve(usd("6")).unwrap().commit(usd("6")).unwrap();
        assert_eq!(org.balance(Unit::Usd).unwrap().spent, usd("7"));
    });
}

#[test]
fn approvers_of_concurrent_reserves_run_at_the_same_time() {
    // Two approvers that each wait for the other: they finish only if neither runs under a
    // lock the other needs (rules, ledger, or a lock serializing approvals).
    within_seconds(|| {
        let org = tree();
        let arrived = Arc::new(AtomicUsize::new(0));
        let seen = arrived.clone();
        org.require_approval(usd("5"), move |_: &ApprovalRequest| {
            seen.fetch_add(1, Ordering::SeqCst);
            while seen.load(Ordering::SeqCst) < 2 {
                thread::yield_now();
            }
            Approval::Approved
        })
        .unwrap();
        let handles: Vec<_> = ["team/agent", "other"]
            .into_iter()
            .map(|path| {
                let node = org.at(path).unwrap();
                thread::spawn(move || node.reserve(usd("6")).unwrap().commit(usd("6")).unwrap())
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
        assert_eq!(arrived.load(Ordering::SeqCst), 2);
        assert_eq!(org.balance(Unit::Usd).unwrap().spent, usd("12"));
    });
}

#[test]
fn a_panicking_approver_propagates_and_leaves_the_books_unchanged() {
    let org = tree();
    let agent = org.at("team/agent").unwrap();
    agent
        .require_approval(usd("5"), |_: &ApprovalRequest| -> Approval {
            panic!("approver crashed")
        })
        .unwrap();
    let before = org.snapshot().unwrap();

    let panic = catch_unwind(AssertUnwindSafe(|| agent.reserve(usd("6")))).unwrap_err();
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"approver crashed"));
    assert_eq!(org.snapshot().unwrap(), before);

    // Nothing is poisoned: below the threshold works, and the rule can be replaced.
    agent.reserve(usd("4")).unwrap().commit(usd("4")).unwrap();
    agent
        .require_approval(usd("5"), |_: &ApprovalRequest| Approval::Approved)
        .unwrap();
    agent.reserve(usd("6")).unwrap().commit(usd("6")).unwrap();
    assert_eq!(org.balance(Unit::Usd).unwrap().spent, usd("10"));
}

#[test]
fn an_approved_reserve_can_still_be_denied_by_a_limit() {
    let org = tree();
    let agent = org.at("team/agent").unwrap();
    let log = Recorder::default();
    org.require_approval(usd("5"), log.approver(Approval::Approved))
        .unwrap();
    let error = agent.reserve(usd("25")).unwrap_err();
    assert!(
        matches!(error, Error::BudgetExceeded(ref details) if &*details.node == "acme/team/agent")
    );
    assert_eq!(log.count(), 1);
}

#[test]
fn rules_belong_to_the_handle_family_and_die_with_their_node() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let org = Budget::builder("org", Limit::hard(usd("100")))
        .build_shared(store.clone())
        .unwrap();
    let task = org.add_child("task", Limit::hard(usd("10"))).unwrap();
    task.require_approval(usd("1"), |_: &ApprovalRequest| Approval::deny("no"))
        .unwrap();

    // Every handle derived from the same root sees the rule; another `open` does not.
    assert!(org.at("task").unwrap().reserve(usd("2")).is_err());
    let reopened = Budget::open(store.clone(), "org/task").unwrap();
    reopened.reserve(usd("2")).unwrap().release().unwrap();

    // Removing the node drops its rule: a new node at the same path starts without one.
    org.at("task").unwrap().remove().unwrap();
    let again = org.add_child("task", Limit::hard(usd("10"))).unwrap();
    again.reserve(usd("2")).unwrap().release().unwrap();

    // A rule cannot be set on a removed node.
    let gone = again.clone();
    again.remove().unwrap();
    assert!(matches!(
        gone.require_approval(usd("1"), |_: &ApprovalRequest| Approval::Approved),
        Err(Error::UnknownNode { .. })
    ));
}

#[cfg(feature = "tokio")]
mod asynchronous {
    use super::*;
    use budget_guard::RunError;

    #[tokio::test]
    async fn an_async_approver_is_awaited_and_can_deny() {
        let org = tree();
        let agent = org.at("team/agent").unwrap();
        let asked = Arc::new(AtomicUsize::new(0));
        let count = asked.clone();
        org.require_approval_async(usd("5"), move |request: ApprovalRequest| {
            count.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                if request.estimate <= usd("8") {
                    Approval::Approved
                } else {
                    Approval::deny("async no")
                }
            }
        })
        .unwrap();

        agent
            .reserve_async(usd("4"))
            .await
            .unwrap()
            .release()
            .unwrap();
        assert_eq!(asked.load(Ordering::SeqCst), 0);
        let guard = agent.reserve_async(usd("7")).await.unwrap();
        assert_eq!(reserved(&org), usd("7"));
        guard.commit(usd("7")).unwrap();

        let error = agent.reserve_async(usd("9")).await.unwrap_err();
        assert!(matches!(
            &error,
            Error::ApprovalDenied { node, estimate, threshold, reason }
                if &**node == "acme" && *estimate == usd("9") && *threshold == usd("5") && reason == "async no"
        ));
        assert_eq!(asked.load(Ordering::SeqCst), 2);
        assert_eq!(reserved(&org), usd("0"));

        // A blocking reserve does not block on an async approver, and asks nothing.
        assert!(matches!(
            agent.reserve(usd("7")),
            Err(Error::AsyncApprovalRequired { node, threshold }) if &*node == "acme" && threshold == usd("5")
        ));
        assert_eq!(asked.load(Ordering::SeqCst), 2);
        // Below the threshold it does not matter.
        agent.reserve(usd("1")).unwrap().release().unwrap();
    }

    #[tokio::test]
    async fn run_async_and_fallback_async_await_the_approver_and_blocking_rules_still_apply() {
        let org = tree();
        let agent = org.at("team/agent").unwrap();
        org.require_approval_async(usd("5"), async |_: ApprovalRequest| {
            Approval::deny("premium needs a human")
        })
        .unwrap();
        let team_log = Recorder::default();
        org.at("team")
            .unwrap()
            .require_approval(usd("2"), team_log.approver(Approval::Approved))
            .unwrap();

        let denied = agent
            .run_async(usd("6"), async |_guard| Ok::<_, ()>(((), usd("1"))))
            .await
            .unwrap_err();
        assert!(matches!(
            denied,
            RunError::Budget(Error::ApprovalDenied { .. })
        ));
        // The blocking team rule was asked first (leaf to root), the async org rule denied.
        assert_eq!(team_log.count(), 1);

        let value = agent
            .run_async(usd("3"), async |_guard| Ok::<_, ()>(("ok", usd("2"))))
            .await
            .unwrap();
        assert_eq!(value, "ok");

        let ladder = Ladder::new()
            .tier("premium", usd("8"))
            .tier("standard", usd("3"));
        let served = ladder
            .fallback_async(
                &agent,
                |_: &()| false,
                async |tier, _guard| Ok::<_, ()>((tier.name().to_owned(), usd("1"))),
            )
            .await
            .unwrap();
        assert_eq!(served.value, "standard");
        assert!(matches!(
            &served.attempts[0].outcome,
            Outcome::Denied(Error::ApprovalDenied { .. })
        ));
        assert_eq!(org.balance(Unit::Usd).unwrap().spent, usd("3"));
    }

    #[tokio::test]
    async fn a_reserve_dropped_while_its_approver_is_pending_holds_nothing() {
        let org = tree();
        org.require_approval_async(usd("5"), async |_: ApprovalRequest| {
            std::future::pending::<()>().await;
            Approval::Approved
        })
        .unwrap();
        let agent = org.at("team/agent").unwrap();
        let timed_out =
            tokio::time::timeout(Duration::from_millis(20), agent.reserve_async(usd("6"))).await;
        assert!(timed_out.is_err());
        assert_eq!(reserved(&org), usd("0"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn async_reserves_are_send_and_call_blocking_approvers_in_place() {
        let org = tree();
        let log = Recorder::default();
        org.require_approval(usd("5"), log.approver(Approval::Approved))
            .unwrap();
        let agent = org.at("team/agent").unwrap();
        let task = tokio::spawn(async move {
            let guard = agent.reserve_async(usd("6")).await.unwrap();
            guard.commit(usd("6")).unwrap();
            agent
                .run_async(usd("6"), async |_guard| Ok::<_, ()>(((), usd("1"))))
                .await
                .unwrap();
        });
        task.await.unwrap();
        assert_eq!(log.count(), 2);
        assert_eq!(org.balance(Unit::Usd).unwrap().spent, usd("7"));
    }
}
