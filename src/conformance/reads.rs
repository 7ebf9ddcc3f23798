//! Reads that must change nothing: the `check` dry run and `cancellation`.

use std::sync::Arc;

use super::{supports_all, tree, usd, zero};
use crate::amount::{Amount, Unit};
use crate::cancel::Cancellation;
use crate::check::Verdict;
use crate::error::Error;
use crate::node_state::NodeState;
use crate::op::OpKind;
use crate::policy::Limit;
use crate::store::Store;

/// `check` gives the verdict `reserve` would give (fits, exceeded with the limiting node's
/// numbers, in debt, frozen, closed), names the tightest node when it fits, and changes nothing.
pub fn check_is_a_dry_run(store: Arc<dyn Store>) {
    if !supports_all(&*store, &[OpKind::SetState]) {
        return;
    }
    let (acme, team, task) = tree(store.clone(), Limit::hard(usd("1")));
    let _held = task.reserve(usd("0.50")).expect("fits");
    let before = store.snapshot().expect("snapshot");
    let fits = task.check(usd("0.50")).expect("check");
    assert!(fits.fits(), "{fits:?}");
    assert_eq!(fits.limiting.len(), 1);
    assert_eq!(&*fits.limiting[0].node, "acme/team/task");
    assert_eq!(fits.limiting[0].remaining(), usd("0.50"));
    let denied = task.check(usd("0.60")).expect("check");
    match &denied.verdict {
        Verdict::Exceeded(details) => {
            assert_eq!(&*details.node, "acme/team/task");
            assert_eq!(
                (details.limit, details.reserved, details.requested),
                (usd("1"), usd("0.50"), usd("0.60"))
            );
        }
        other => panic!("expected Exceeded, got {other:?}"),
    }
    let at_team = team.check(usd("3.60")).expect("check");
    assert_eq!(at_team.denied_by(), Some("acme/team"));
    let reserve_error = team.reserve(usd("3.60")).expect_err("team has $3.50 left");
    assert_eq!(
        reserve_error.exceeded().map(|d| &*d.node),
        Some("acme/team"),
        "check and reserve agree"
    );
    assert_eq!(
        store.snapshot().expect("snapshot"),
        before,
        "check held something"
    );
    team.set_state(NodeState::Frozen).expect("freeze");
    assert!(matches!(
        task.check(usd("0.10")).expect("check").verdict,
        Verdict::Frozen { node } if &*node == "acme/team"
    ));
    team.set_state(NodeState::Active).expect("thaw");
    acme.set_state(NodeState::Closed).expect("close");
    assert!(matches!(
        task.check(usd("0.10")).expect("check").verdict,
        Verdict::Closed { node } if &*node == "acme"
    ));
    acme.set_state(NodeState::Active).expect("reopen");
    assert!(matches!(
        task.check(zero()),
        Err(Error::InvalidAmount { .. })
    ));
    // Every unit is ledgered: a unit no node limits always fits.
    assert!(task.check(Amount::tokens(5)).expect("check").fits());
    let error = task
        .reserve(usd("0.20"))
        .expect("fits")
        .commit(usd("0.70"))
        .expect_err("Reject refuses the overage");
    assert!(matches!(error.error(), Error::OverageRejected { .. }));
    let in_debt = task.check(usd("0.01")).expect("check");
    assert!(
        matches!(&in_debt.verdict, Verdict::InDebt { node, debt }
            if &**node == "acme/team/task" && *debt == usd("0.50")),
        "{in_debt:?}"
    );
}

/// `cancellation` names a frozen or closed node on the path (the nearest), a hard limit used up
/// by spend or a node in debt, and a hold that ended; it changes nothing; and `cancel_epoch`,
/// when the store keeps one, moves whenever the answer may have changed.
pub fn cancellation_says_why_a_hold_should_stop(store: Arc<dyn Store>) {
    if !supports_all(&*store, &[OpKind::SetState]) {
        return;
    }
    let (acme, team, task) = tree(store.clone(), Limit::hard(usd("1")));
    let live = task.reserve(usd("0.40")).expect("fits");
    let other = task.reserve(usd("0.10")).expect("fits");
    let ask = |hold| store.cancellation(hold).expect("cancellation");
    assert_eq!(ask(live.id()), None);
    let before = store.snapshot().expect("snapshot");
    let epoch = store.cancel_epoch();
    let _ = ask(live.id());
    assert_eq!(
        store.snapshot().expect("snapshot"),
        before,
        "a query changed the books"
    );
    let _ = task.reserve(usd("0.10")).expect("fits").commit(usd("0.05"));
    assert_eq!(
        store.cancel_epoch(),
        epoch,
        "an ordinary reserve and commit moved the epoch"
    );
    acme.set_state(NodeState::Closed).expect("close");
    team.set_state(NodeState::Frozen).expect("freeze");
    // A store without a counter (`cancel_epoch` is `None`) is asked every time instead.
    if epoch.is_some() {
        assert_ne!(
            store.cancel_epoch(),
            epoch,
            "a state change must move the epoch"
        );
    }
    let frozen = Cancellation::Frozen {
        node: "acme/team".into(),
    };
    assert_eq!(ask(live.id()), Some(frozen), "the nearest blocked node");
    team.set_state(NodeState::Active).expect("thaw");
    let closed = Cancellation::Closed {
        node: "acme".into(),
    };
    assert_eq!(ask(live.id()), Some(closed));
    acme.set_state(NodeState::Active).expect("reopen");
    assert_eq!(
        ask(live.id()),
        None,
        "lifting the state lifts the cancellation"
    );
    let epoch = store.cancel_epoch();
    let error = live
        .commit(usd("0.90"))
        .expect_err("Reject refuses the overage");
    assert!(matches!(error.error(), Error::OverageRejected { .. }));
    // A store without a counter (`cancel_epoch` is `None`) is asked every time instead.
    if epoch.is_some() {
        assert_ne!(
            store.cancel_epoch(),
            epoch,
            "an overage must move the epoch"
        );
    }
    let exhausted = Cancellation::Exhausted {
        node: "acme/team/task".into(),
        unit: Unit::Usd,
    };
    assert_eq!(ask(other.id()), Some(exhausted), "a node in debt");
    let ended = other.id();
    other.release().expect("release");
    assert_eq!(ask(ended), Some(Cancellation::Ended));
}
