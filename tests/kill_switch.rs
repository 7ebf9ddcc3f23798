//! Semantics issue 13, items 6 and 7: `on_exceeded` is a kill switch, so it fires on refusals
//! only (denials, rejected overages, frozen or closed nodes), never on an overage the policy
//! allowed; a rejected overage reports the debt of that commit; a node in debt has nothing
//! remaining; and a denial event carries the refusing node's figures.

use std::sync::{Arc, Mutex};

use budget_guard::{
    Amount, Budget, DenialReason, DeniedEvent, Error, Event, Limit, NodeState, OverageEvent,
    OveragePolicy, Unit,
};

fn usd(text: &str) -> Amount {
    Amount::usd(text).expect("valid amount")
}

/// Every event `on_exceeded` hands to its callback on `budget`.
fn kill_log(budget: &Budget) -> Arc<Mutex<Vec<Event>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    budget.on_exceeded(move |event| log.lock().unwrap().push(event.clone()));
    seen
}

fn denial(event: &Event) -> &DeniedEvent {
    match event {
        Event::ReserveDenied(denied) => denied,
        other => panic!("expected a denial, got {other:?}"),
    }
}

#[test]
fn allowed_overages_do_not_trip_the_kill_switch() {
    let org = Budget::builder("org", Limit::hard(usd("100")))
        .child(
            "sandbox",
            Limit::hard(usd("4")).with_overage(OveragePolicy::AllowIfAvailable),
        )
        .build()
        .unwrap();
    let sandbox = org.at("sandbox").unwrap();
    let killed = kill_log(&org);
    let allowed = Arc::new(Mutex::new(Vec::<OverageEvent>::new()));
    let log = allowed.clone();
    org.on_event(move |event| {
        if let Event::OverageAllowed(overage) = event {
            log.lock().unwrap().push(overage.clone());
        }
    });
    let mut steps = 0;
    while let Ok(guard) = sandbox.reserve(usd("0.25")) {
        guard
            .commit(usd("0.30"))
            .expect("the parent has room: allowed");
        steps += 1;
    }
    assert_eq!(steps, 13);
    assert_eq!(
        allowed.lock().unwrap().len(),
        13,
        "each overage has its own event"
    );
    assert!(
        allowed
            .lock()
            .unwrap()
            .iter()
            .all(|o| !o.rejected && o.debt.is_none())
    );
    let killed = killed.lock().unwrap();
    assert_eq!(
        killed.len(),
        1,
        "before the fix: 14 (13 allowed overages + the denial)"
    );
    let denied = denial(&killed[0]);
    assert_eq!(denied.reason, DenialReason::Exceeded);
    assert_eq!(&*denied.limiting_node, "org/sandbox");
    assert_eq!(denied.spent, Some(usd("3.90")));
    assert_eq!(denied.limit, Some(usd("4")));
    assert_eq!(denied.remaining, Some(usd("0.10")));
    assert_eq!(denied.asked, Some(usd("0.25")));
}

#[test]
fn the_kill_the_sandbox_pattern_survives_its_first_overestimated_step() {
    let org = Budget::builder("org", Limit::hard(usd("100")))
        .child(
            "sandbox",
            Limit::hard(usd("1")).with_overage(OveragePolicy::AllowIfAvailable),
        )
        .build()
        .unwrap();
    let control = org.clone();
    org.on_exceeded(move |event| {
        let store = control.store();
        let _ = store
            .resolve(event.node())
            .and_then(|id| store.set_state(id, NodeState::Frozen));
    });
    let sandbox = org.at("sandbox").unwrap();
    sandbox
        .reserve(usd("0.25"))
        .unwrap()
        .commit(usd("0.30"))
        .unwrap();
    assert_eq!(sandbox.info().unwrap().state, NodeState::Active);
    // Two more steps take spend to $0.90; the next reserve ($0.90 + $0.25 > $1) is the kill.
    for _ in 0..2 {
        sandbox
            .reserve(usd("0.25"))
            .unwrap()
            .commit(usd("0.30"))
            .unwrap();
    }
    assert!(sandbox.reserve(usd("0.25")).is_err()); // $0.90 + $0.25 > $1
    assert_eq!(sandbox.info().unwrap().state, NodeState::Frozen);
}

#[test]
fn a_rejected_overage_reports_the_debt_of_its_own_commit() {
    let run = Budget::builder("run", Limit::hard(usd("5")))
        .build()
        .unwrap();
    let killed = kill_log(&run);
    run.reserve(usd("1")).unwrap().commit(usd("1")).unwrap();
    let first = run.reserve(usd("0.25")).unwrap();
    let second = run.reserve(usd("0.25")).unwrap();
    let debt_of = |error: Error| match error {
        Error::OverageRejected { debt, .. } => debt,
        other => panic!("expected OverageRejected, got {other}"),
    };
    assert_eq!(
        debt_of(first.commit(usd("0.30")).unwrap_err().into_error()),
        usd("0.05")
    );
    assert_eq!(
        debt_of(second.commit(usd("0.30")).unwrap_err().into_error()),
        usd("0.05"),
        "this commit's debt, not the node's total $0.10"
    );
    let balance = run.balance(Unit::Usd).unwrap();
    assert_eq!(balance.debt, usd("0.10"));
    let killed = killed.lock().unwrap();
    let debts: Vec<Option<Amount>> = killed
        .iter()
        .map(|event| match event {
            Event::OverageRejected(overage) => overage.debt,
            other => panic!("expected a rejected overage, got {other:?}"),
        })
        .collect();
    assert_eq!(debts, [Some(usd("0.05")), Some(usd("0.05"))]);
}

#[test]
fn a_node_in_debt_has_nothing_remaining_and_says_so_when_it_refuses() {
    let run = Budget::builder("run", Limit::hard(usd("5")))
        .build()
        .unwrap();
    run.reserve(usd("1")).unwrap().commit(usd("1")).unwrap();
    let over = run.reserve(usd("0.25")).unwrap();
    assert!(over.commit(usd("0.30")).is_err()); // rejected: $0.05 becomes debt
    let balance = run.balance(Unit::Usd).unwrap();
    assert_eq!(balance.spent, usd("1.25"));
    assert_eq!(balance.debt, usd("0.05"));
    assert_eq!(balance.remaining, Some(usd("0")), "before the fix: $3.75");
    let killed = kill_log(&run);
    assert!(matches!(
        run.reserve(usd("0.10")),
        Err(Error::InDebt { .. })
    ));
    let killed = killed.lock().unwrap();
    let denied = denial(&killed[0]);
    assert_eq!(denied.reason, DenialReason::InDebt);
    assert_eq!(denied.unit, Some(Unit::Usd));
    assert_eq!(denied.asked, Some(usd("0.10")));
    assert_eq!(denied.limit, Some(usd("5")));
    assert_eq!(denied.spent, Some(usd("1.25")));
    assert_eq!(denied.held, Some(usd("0")));
    assert_eq!(denied.remaining, Some(usd("0")));
    assert_eq!(denied.debt, Some(usd("0.05")));
    // Repaid by a credit, the node has room again.
    run.credit(usd("0.05")).unwrap();
    assert_eq!(run.balance(Unit::Usd).unwrap().remaining, Some(usd("3.75")));
}

#[test]
fn a_denial_event_carries_the_refusing_nodes_figures() {
    let org = Budget::builder("org", Limit::hard(usd("3")))
        .child("a", Limit::hard(usd("10")))
        .child("b", Limit::hard(usd("10")))
        .build()
        .unwrap();
    let killed = kill_log(&org);
    let a = org.at("a").unwrap();
    let b = org.at("b").unwrap();
    let _running = a.reserve(usd("1.00")).unwrap();
    b.reserve(usd("1.50")).unwrap().commit(usd("1.50")).unwrap();
    assert!(b.reserve(usd("0.60")).is_err());
    let killed = killed.lock().unwrap();
    let denied = denial(&killed[0]);
    assert_eq!(&*denied.node, "org/b");
    assert_eq!(&*denied.limiting_node, "org");
    assert_eq!(denied.reason, DenialReason::Exceeded);
    assert_eq!(denied.unit, Some(Unit::Usd));
    assert_eq!(denied.asked, Some(usd("0.60")));
    assert_eq!(denied.limit, Some(usd("3")));
    assert_eq!(denied.spent, Some(usd("1.50")));
    assert_eq!(denied.held, Some(usd("1.00")));
    assert_eq!(denied.remaining, Some(usd("0.50")));
    assert_eq!(denied.debt, None);
}

#[test]
fn killed_at_three_dollars_of_three_without_a_second_call() {
    let sandbox = Budget::builder("sandbox", Limit::hard(usd("3")))
        .build()
        .unwrap();
    let line = Arc::new(Mutex::new(String::new()));
    let out = line.clone();
    sandbox.on_exceeded(move |event| {
        if let Event::ReserveDenied(denied) = event {
            *out.lock().unwrap() = format!(
                "killed at {} of {}",
                denied.spent.expect("figures"),
                denied.limit.expect("figures")
            );
        }
    });
    sandbox.reserve(usd("3")).unwrap().commit(usd("3")).unwrap();
    assert!(sandbox.reserve(usd("0.01")).is_err());
    assert_eq!(*line.lock().unwrap(), "killed at $3.00 of $3.00");
}

#[test]
fn frozen_and_closed_refusals_reach_the_kill_switch_with_figures() {
    let org = Budget::builder("org", Limit::hard(usd("10")))
        .child("agent", Limit::hard(usd("2")))
        .build()
        .unwrap();
    let agent = org.at("agent").unwrap();
    agent
        .reserve(usd("0.40"))
        .unwrap()
        .commit(usd("0.40"))
        .unwrap();
    let killed = kill_log(&org);
    org.set_state(NodeState::Frozen).unwrap();
    assert!(matches!(
        agent.reserve(usd("0.10")),
        Err(Error::Frozen { .. })
    ));
    org.set_state(NodeState::Active).unwrap();
    agent.set_state(NodeState::Closed).unwrap();
    assert!(matches!(
        agent.reserve(usd("0.20")),
        Err(Error::Closed { .. })
    ));
    let killed = killed.lock().unwrap();
    assert_eq!(killed.len(), 2);
    let frozen = denial(&killed[0]);
    assert_eq!(frozen.reason, DenialReason::Frozen);
    assert_eq!(&*frozen.limiting_node, "org");
    assert_eq!(frozen.asked, Some(usd("0.10")));
    assert_eq!(frozen.limit, Some(usd("10")));
    assert_eq!(frozen.spent, Some(usd("0.40")));
    assert_eq!(frozen.remaining, Some(usd("9.60")));
    let closed = denial(&killed[1]);
    assert_eq!(closed.reason, DenialReason::Closed);
    assert_eq!(&*closed.limiting_node, "org/agent");
    assert_eq!(closed.asked, Some(usd("0.20")));
    assert_eq!(closed.limit, Some(usd("2")));
    assert_eq!(closed.spent, Some(usd("0.40")));
    assert_eq!(closed.remaining, Some(usd("1.60")));
}
