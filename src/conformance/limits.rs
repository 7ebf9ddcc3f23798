//! Limits: overage policies, soft limits, changing limits and moving funds.

use std::sync::Arc;

use super::{books, supports_all, tree, usd, zero};
use crate::amount::Unit;
use crate::budget::Budget;
use crate::error::Error;
use crate::op::OpKind;
use crate::policy::{Limit, OveragePolicy};
use crate::store::Store;

/// `Reject`: the overage is recorded (held part spent, excess as the reserving node's debt),
/// the commit errs, and the node refuses reserves until a credit repays the debt.
pub fn reject_records_overage_as_debt(store: Arc<dyn Store>) {
    if !supports_all(&*store, &[OpKind::Credit]) {
        return;
    }
    let (acme, _, task) = tree(store, Limit::hard(usd("1")));
    let error = task
        .reserve(usd("0.50"))
        .expect("fits")
        .commit(usd("0.70"))
        .expect_err("Reject refuses an overage");
    assert!(matches!(error.error(), Error::OverageRejected { debt, .. } if *debt == usd("0.20")));
    assert!(error.into_guard().is_none(), "the hold has ended");
    assert_eq!(books(&task), (usd("0.50"), zero(), usd("0.20")));
    assert_eq!(books(&acme), (usd("0.70"), zero(), zero()));
    assert!(matches!(
        task.reserve(usd("0.01")),
        Err(Error::InDebt { .. })
    ));
    task.credit(usd("0.20")).expect("credit");
    assert_eq!(books(&task), (usd("0.70"), zero(), zero()));
    assert!(task.reserve(usd("0.50")).is_ok());
}

/// `AllowIfAvailable` takes the excess only when every node on the path has room.
pub fn allow_if_available_needs_room_everywhere(store: Arc<dyn Store>) {
    let policy = OveragePolicy::AllowIfAvailable;
    let (acme, team, task) = tree(store, Limit::hard(usd("5")).with_overage(policy));
    let committed = task
        .reserve(usd("1"))
        .expect("fits")
        .commit(usd("3"))
        .expect("room everywhere");
    assert_eq!(committed.overage.get(Unit::Usd), Some(usd("2")));
    assert_eq!(books(&team), (usd("3"), zero(), zero()));
    // team has $1 left: an excess of $1.50 does not fit there, so the commit errs.
    let error = task
        .reserve(usd("0.50"))
        .expect("fits")
        .commit(usd("2"))
        .expect_err("team has no room");
    assert!(matches!(error.error(), Error::OverageRejected { .. }));
    assert_eq!(books(&task), (usd("3.50"), zero(), usd("1.50")));
    assert_eq!(books(&team), (usd("4"), zero(), usd("1")));
    assert_eq!(books(&acme), (usd("5"), zero(), zero()));
}

/// `AllowWithOverdraft` succeeds while the debt stays within its limit and records beyond it.
pub fn overdraft_is_bounded(store: Arc<dyn Store>) {
    if !supports_all(&*store, &[OpKind::Credit]) {
        return;
    }
    let policy = OveragePolicy::AllowWithOverdraft { limit: usd("0.25") };
    let (_, _, task) = tree(store, Limit::hard(usd("1")).with_overage(policy));
    task.reserve(usd("0.90"))
        .expect("fits")
        .commit(usd("1.10"))
        .expect("within the overdraft");
    assert_eq!(books(&task), (usd("1"), zero(), usd("0.10")));
    assert!(matches!(
        task.reserve(usd("0.01")),
        Err(Error::InDebt { .. })
    ));
    task.credit(usd("0.20")).expect("credit");
    let error = task
        .reserve(usd("0.10"))
        .expect("fits")
        .commit(usd("0.50"))
        .expect_err("past the overdraft");
    assert!(matches!(error.error(), Error::OverageRejected { .. }));
    assert_eq!(books(&task), (usd("1.20"), zero(), usd("0.40")));
}

/// Soft limits let reserves through and name the node whose soft limit is passed.
pub fn soft_limits_report_without_denying(store: Arc<dyn Store>) {
    let (_, _, task) = tree(store, Limit::soft(usd("0.50")));
    let guard = task.reserve(usd("0.80")).expect("soft limits do not deny");
    assert_eq!(guard.over_soft_limit(), Some("acme/team/task"));
    let team = Budget::open(guard.budget().store().clone(), "acme/team").expect("team");
    let small = team.reserve(usd("0.10")).expect("fits");
    assert_eq!(small.over_soft_limit(), None);
}

/// Limits can be raised and lowered (never below usage); credit and debit move funds.
pub fn limits_and_funds(store: Arc<dyn Store>) {
    if !supports_all(
        &*store,
        &[
            OpKind::SetLimit,
            OpKind::Credit,
            OpKind::Debit,
            OpKind::RemoveLimit,
        ],
    ) {
        return;
    }
    let (_, _, task) = tree(store, Limit::hard(usd("1")));
    let _guard = task.reserve(usd("0.60")).expect("fits");
    assert!(matches!(
        task.set_limit(Limit::hard(usd("0.50"))),
        Err(Error::LimitBelowUsage { .. })
    ));
    assert_eq!(
        task.debit(usd("0.40")).expect("debit").remaining,
        Some(zero())
    );
    assert_eq!(
        task.credit(usd("1")).expect("credit").remaining,
        Some(usd("1"))
    );
    let raised = task.set_limit(Limit::hard(usd("3"))).expect("raise");
    assert_eq!(raised.remaining, Some(usd("2.40")));
    let untracked = task.remove_limit(Unit::Usd).expect("remove limit");
    assert_eq!((untracked.limit, untracked.remaining), (None, None));
}
