//! The ledger's rules, one test each, asserted with numbers.

use super::*;
use crate::amount::{Amount, Unit};
use crate::balance::Snapshot;
use crate::cost::Cost;
use crate::error::AmountError;
use crate::policy::{Limit, Limits, OveragePolicy};

fn usd(text: &str) -> Amount {
    Amount::usd(text).unwrap()
}

fn cost(text: &str) -> Cost {
    Cost::from(usd(text))
}

/// acme ($10) → team ($4) → task ($1, given policy).
fn tree(task_limit: Limit) -> (Ledger, NodeId, NodeId, NodeId) {
    let mut ledger = Ledger::new();
    let acme = ledger
        .create_node(None, "acme", &Limit::hard(usd("10")).into())
        .unwrap();
    let team = ledger
        .create_node(Some(acme), "team", &Limit::hard(usd("4")).into())
        .unwrap();
    let task = ledger
        .create_node(Some(team), "task", &task_limit.into())
        .unwrap();
    (ledger, acme, team, task)
}

fn figures(ledger: &Ledger, node: NodeId) -> (String, String, String) {
    let balance = ledger.balance(node, Unit::Usd).unwrap();
    (
        balance.spent.to_string(),
        balance.reserved.to_string(),
        balance.debt.to_string(),
    )
}

fn owned(spent: &str, reserved: &str, debt: &str) -> (String, String, String) {
    (spent.to_owned(), reserved.to_owned(), debt.to_owned())
}

#[test]
fn reserve_holds_on_every_ancestor() {
    let (mut ledger, acme, team, task) = tree(Limit::hard(usd("1")));
    ledger.reserve(task, &cost("0.40")).unwrap();
    for node in [acme, team, task] {
        assert_eq!(figures(&ledger, node), owned("$0.00", "$0.40", "$0.00"));
    }
}

#[test]
fn denial_names_the_limiting_ancestor_and_holds_nothing() {
    let (mut ledger, acme, team, task) = tree(Limit::hard(usd("5")));
    ledger.reserve(task, &cost("3")).unwrap();
    let before = ledger.snapshot();
    let error = ledger.reserve(task, &cost("1.50")).unwrap_err();
    let details = error.exceeded().expect("BudgetExceeded");
    assert_eq!(&*details.node, "acme/team");
    assert_eq!(details.limit, usd("4"));
    assert_eq!(details.reserved, usd("3"));
    assert_eq!(details.requested, usd("1.50"));
    assert_eq!(details.remaining(), usd("1"));
    assert_eq!(ledger.snapshot(), before);
    let _ = (acme, team);
}

#[test]
fn commit_below_the_hold_returns_the_rest() {
    let (mut ledger, acme, _, task) = tree(Limit::hard(usd("1")));
    let hold = ledger.reserve(task, &cost("0.50")).unwrap().hold;
    let committed = ledger.commit(hold, &cost("0.20")).unwrap();
    assert_eq!(committed.returned.get(Unit::Usd), Some(usd("0.30")));
    assert_eq!(figures(&ledger, acme), owned("$0.20", "$0.00", "$0.00"));
    assert!(matches!(
        ledger.commit(hold, &cost("0.20")),
        Err(Error::UnknownHold { .. })
    ));
}

#[test]
fn release_is_idempotent() {
    let (mut ledger, acme, _, task) = tree(Limit::hard(usd("1")));
    let hold = ledger.reserve(task, &cost("0.50")).unwrap().hold;
    assert!(ledger.release(hold).unwrap());
    assert!(!ledger.release(hold).unwrap());
    assert_eq!(figures(&ledger, acme), owned("$0.00", "$0.00", "$0.00"));
}

#[test]
fn reject_records_the_excess_as_debt_on_the_reserving_node() {
    let (mut ledger, acme, team, task) = tree(Limit::hard(usd("1")));
    let hold = ledger.reserve(task, &cost("0.50")).unwrap().hold;
    let error = ledger.commit(hold, &cost("0.70")).unwrap_err();
    assert!(matches!(error, Error::OverageRejected { debt, .. } if debt == usd("0.20")));
    // The task keeps the excess as debt; ancestors had room and absorbed it.
    assert_eq!(figures(&ledger, task), owned("$0.50", "$0.00", "$0.20"));
    assert_eq!(figures(&ledger, team), owned("$0.70", "$0.00", "$0.00"));
    assert_eq!(figures(&ledger, acme), owned("$0.70", "$0.00", "$0.00"));
    assert!(matches!(
        ledger.reserve(task, &cost("0.01")),
        Err(Error::InDebt { debt, .. }) if debt == usd("0.20")
    ));
    // A credit repays the debt first, then the node works again.
    let after = ledger.credit(task, usd("0.20")).unwrap();
    assert_eq!(after.debt, Amount::zero(Unit::Usd));
    assert_eq!(after.spent, usd("0.70"));
    assert_eq!(after.remaining, Some(usd("0.50")));
    assert!(ledger.reserve(task, &cost("0.50")).is_ok());
}

#[test]
fn allow_if_available_takes_the_excess_when_every_node_has_room() {
    let limit = Limit::hard(usd("1")).with_overage(OveragePolicy::AllowIfAvailable);
    let (mut ledger, acme, _, task) = tree(limit);
    let hold = ledger.reserve(task, &cost("0.50")).unwrap().hold;
    let committed = ledger.commit(hold, &cost("0.80")).unwrap();
    assert_eq!(committed.overage.get(Unit::Usd), Some(usd("0.30")));
    assert_eq!(figures(&ledger, task), owned("$0.80", "$0.00", "$0.00"));
    assert_eq!(figures(&ledger, acme), owned("$0.80", "$0.00", "$0.00"));
    // Now only $0.20 is left on the task; an excess of $0.30 does not fit.
    let hold = ledger.reserve(task, &cost("0.10")).unwrap().hold;
    let error = ledger.commit(hold, &cost("0.40")).unwrap_err();
    assert!(matches!(error, Error::OverageRejected { .. }));
    assert_eq!(figures(&ledger, task), owned("$0.90", "$0.00", "$0.30"));
    assert_eq!(figures(&ledger, acme), owned("$1.20", "$0.00", "$0.00"));
}

#[test]
fn overdraft_allows_debt_up_to_its_limit() {
    let overdraft = OveragePolicy::AllowWithOverdraft { limit: usd("0.25") };
    let (mut ledger, _, team, task) = tree(Limit::hard(usd("1")).with_overage(overdraft));
    let hold = ledger.reserve(task, &cost("0.90")).unwrap().hold;
    ledger.commit(hold, &cost("1.10")).unwrap();
    assert_eq!(figures(&ledger, task), owned("$1.00", "$0.00", "$0.10"));
    assert_eq!(figures(&ledger, team), owned("$1.10", "$0.00", "$0.00"));
    assert!(matches!(
        ledger.reserve(task, &cost("0.01")),
        Err(Error::InDebt { .. })
    ));
    // Past the overdraft limit the spend is still recorded, and the commit says so.
    // $0.20 more: $0.10 repays the debt, $0.10 is new room.
    ledger.credit(task, usd("0.20")).unwrap();
    assert_eq!(figures(&ledger, task), owned("$1.10", "$0.00", "$0.00"));
    let hold = ledger.reserve(task, &cost("0.10")).unwrap().hold;
    let error = ledger.commit(hold, &cost("0.50")).unwrap_err();
    assert!(matches!(error, Error::OverageRejected { debt, .. } if debt == usd("0.40")));
    assert_eq!(figures(&ledger, task), owned("$1.20", "$0.00", "$0.40"));
}

#[test]
fn ancestors_without_room_take_overage_as_debt() {
    let overdraft = OveragePolicy::AllowWithOverdraft { limit: usd("10") };
    let (mut ledger, acme, team, task) = tree(Limit::hard(usd("9")).with_overage(overdraft));
    let hold = ledger.reserve(task, &cost("4")).unwrap().hold;
    ledger.commit(hold, &cost("5")).unwrap();
    // team's hard limit is $4: $1 of the spend is its debt; spent + reserved stays <= limit.
    assert_eq!(figures(&ledger, team), owned("$4.00", "$0.00", "$1.00"));
    assert_eq!(figures(&ledger, acme), owned("$5.00", "$0.00", "$0.00"));
    assert_eq!(figures(&ledger, task), owned("$5.00", "$0.00", "$0.00"));
}

#[test]
fn record_grows_the_hold_only_while_there_is_room() {
    let (mut ledger, acme, _, task) = tree(Limit::hard(usd("1")));
    let hold = ledger.reserve(task, &cost("0.30")).unwrap().hold;
    ledger.record(hold, &cost("0.20")).unwrap();
    assert_eq!(figures(&ledger, acme), owned("$0.20", "$0.10", "$0.00"));
    ledger.record(hold, &cost("0.50")).unwrap(); // grows the hold to 0.70
    assert_eq!(figures(&ledger, acme), owned("$0.70", "$0.00", "$0.00"));
    let before = ledger.snapshot();
    assert!(ledger.record(hold, &cost("0.31")).unwrap_err().is_denial());
    assert_eq!(ledger.snapshot(), before);
    assert!(matches!(
        ledger.commit(hold, &cost("0.69")),
        Err(Error::InvalidAmount {
            reason: AmountError::BelowRecorded { .. },
            ..
        })
    ));
    ledger.commit(hold, &cost("0.70")).unwrap();
    assert_eq!(figures(&ledger, task), owned("$0.70", "$0.00", "$0.00"));
}

#[test]
fn soft_limits_pass_and_report() {
    let (mut ledger, _, _, task) = tree(Limit::soft(usd("0.50")));
    let reservation = ledger.reserve(task, &cost("0.80")).unwrap();
    assert_eq!(
        reservation.over_soft_limit.as_deref(),
        Some("acme/team/task")
    );
    let quiet = ledger.reserve(task, &cost("0.10")).unwrap();
    assert_eq!(quiet.over_soft_limit.as_deref(), Some("acme/team/task"));
}

#[test]
fn units_must_match_but_need_no_limit() {
    let (mut ledger, root, _, task) = tree(Limit::hard(usd("1")));
    // Issue 13 item 3: a unit nobody limits is held and recorded like any other.
    let tokens = ledger
        .reserve(task, &Cost::from(Amount::tokens(10)))
        .unwrap();
    assert_eq!(
        ledger.balance(root, Unit::Tokens).unwrap().reserved,
        Amount::tokens(10)
    );
    ledger.release(tokens.hold).unwrap();
    let hold = ledger.reserve(task, &cost("0.10")).unwrap().hold;
    let before = ledger.snapshot();
    // A commit must name every held unit.
    assert!(matches!(
        ledger.commit(hold, &Cost::from(Amount::tokens(10))),
        Err(Error::UnitMismatch { .. })
    ));
    assert_eq!(ledger.snapshot(), before);
}

#[test]
fn multi_unit_reserve_is_all_or_nothing() {
    let mut ledger = Ledger::new();
    let limits = Limits::from([Limit::hard(usd("1")), Limit::hard(Amount::tokens(1_000))]);
    let agent = ledger.create_node(None, "agent", &limits).unwrap();
    let both = cost("0.10").with(Amount::tokens(900)).unwrap();
    ledger.reserve(agent, &both).unwrap();
    let before = ledger.snapshot();
    let error = ledger.reserve(agent, &both).unwrap_err();
    assert_eq!(error.exceeded().unwrap().requested, Amount::tokens(900));
    assert_eq!(
        ledger.snapshot(),
        before,
        "the USD part must not be held either"
    );
}

#[test]
fn reserve_up_to_takes_what_fits() {
    let (mut ledger, _, team, task) = tree(Limit::hard(usd("5")));
    ledger.reserve(team, &cost("3.25")).unwrap();
    let reservation = ledger.reserve_up_to(task, usd("0.10"), usd("2")).unwrap();
    assert_eq!(reservation.held.get(Unit::Usd), Some(usd("0.75")));
    let error = ledger
        .reserve_up_to(task, usd("0.10"), usd("2"))
        .unwrap_err();
    assert_eq!(&*error.exceeded().unwrap().node, "acme/team");
    assert!(matches!(
        ledger.reserve_up_to(task, usd("2"), usd("1")),
        Err(Error::InvalidAmount {
            reason: AmountError::EmptyRange,
            ..
        })
    ));
}

#[test]
fn limits_cannot_drop_below_usage() {
    let (mut ledger, _, _, task) = tree(Limit::hard(usd("1")));
    ledger.reserve(task, &cost("0.60")).unwrap();
    assert!(matches!(
        ledger.set_limit(task, Limit::hard(usd("0.50"))),
        Err(Error::LimitBelowUsage { .. })
    ));
    assert!(matches!(
        ledger.debit(task, usd("0.50")),
        Err(Error::LimitBelowUsage { .. })
    ));
    let balance = ledger.debit(task, usd("0.40")).unwrap();
    assert_eq!(balance.remaining, Some(Amount::zero(Unit::Usd)));
}

#[test]
fn nodes_are_removed_only_when_idle_and_ids_go_stale() {
    let (mut ledger, acme, team, task) = tree(Limit::hard(usd("1")));
    assert!(matches!(
        ledger.remove_node(acme),
        Err(Error::RootRemoval { .. })
    ));
    assert!(matches!(
        ledger.remove_node(team),
        Err(Error::NodeInUse { children: 1, .. })
    ));
    let hold = ledger.reserve(task, &cost("0.10")).unwrap().hold;
    assert!(matches!(
        ledger.remove_node(task),
        Err(Error::NodeInUse { holds: 1, .. })
    ));
    ledger.commit(hold, &cost("0.10")).unwrap();
    ledger.remove_node(task).unwrap();
    assert!(matches!(
        ledger.reserve(task, &cost("0.10")),
        Err(Error::UnknownNode { .. })
    ));
    // The slot is reused by a new node, but the old id stays stale.
    let again = ledger
        .create_node(Some(team), "task", &Limit::hard(usd("1")).into())
        .unwrap();
    assert_ne!(again, task);
    assert!(matches!(
        ledger.balance(task, Unit::Usd),
        Err(Error::UnknownNode { .. })
    ));
    // The removed task's spend still counts on its ancestors.
    assert_eq!(figures(&ledger, team), owned("$0.10", "$0.00", "$0.00"));
}

#[test]
fn names_are_validated() {
    let mut ledger = Ledger::new();
    for bad in ["", "a/b", "..", "has space", &"x".repeat(129)] {
        assert!(
            matches!(
                ledger.create_node(None, bad, &Limits::none()),
                Err(Error::InvalidName { .. })
            ),
            "{bad:?} should be refused"
        );
    }
    ledger.create_node(None, "ok", &Limits::none()).unwrap();
    assert!(matches!(
        ledger.create_node(None, "ok", &Limits::none()),
        Err(Error::DuplicateNode { .. })
    ));
}

#[test]
fn snapshot_round_trips_with_holds() {
    let (mut ledger, _, _, task) = tree(Limit::hard(usd("1")));
    let kept = ledger.reserve(task, &cost("0.30")).unwrap().hold;
    ledger.record(kept, &cost("0.10")).unwrap();
    let done = ledger.reserve(task, &cost("0.20")).unwrap().hold;
    ledger.commit(done, &cost("0.05")).unwrap();
    let snapshot = ledger.snapshot();
    let mut restored = Ledger::from_snapshot(&snapshot).unwrap();
    assert_eq!(restored.snapshot(), snapshot);
    // The restored hold is live under its old id and commits normally.
    restored.commit(kept, &cost("0.25")).unwrap();
    let task = restored.resolve("acme/team/task").unwrap();
    assert_eq!(figures(&restored, task), owned("$0.30", "$0.00", "$0.00"));
}

#[test]
fn inconsistent_snapshots_are_refused() {
    let (mut ledger, _, _, task) = tree(Limit::hard(usd("1")));
    ledger.reserve(task, &cost("0.30")).unwrap();
    let mut snapshot = ledger.snapshot();
    snapshot.holds.clear(); // reserved totals no longer match any hold
    assert!(matches!(
        Ledger::from_snapshot(&snapshot),
        Err(Error::InvalidSnapshot { .. })
    ));
    let mut orphan = Snapshot::default();
    orphan.nodes.push(ledger.snapshot().nodes[2].clone()); // a child without its parents
    assert!(matches!(
        Ledger::from_snapshot(&orphan),
        Err(Error::InvalidSnapshot { .. })
    ));
}
