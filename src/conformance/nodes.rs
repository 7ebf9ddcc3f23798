//! Nodes: adding and removing them, frozen and closed states, snapshots and restores.

use std::sync::Arc;

use super::{books, supports_all, tree, usd, zero};
use crate::budget::Budget;
use crate::cost::Cost;
use crate::error::Error;
use crate::node_state::NodeState;
use crate::op::OpKind;
use crate::policy::{Limit, Limits};
use crate::store::Store;

/// Nodes are added and removed at run time; busy nodes and roots cannot be removed; removed
/// nodes are unknown, and their spend stays on the ancestors.
pub fn node_lifecycle(store: Arc<dyn Store>) {
    if !supports_all(&*store, &[OpKind::RemoveNode]) {
        return;
    }
    let (acme, team, _) = tree(store, Limit::hard(usd("1")));
    let job = team
        .add_child("job-1", Limit::hard(usd("0.5")))
        .expect("add");
    assert!(matches!(
        team.add_child("job-1", Limits::none()),
        Err(Error::DuplicateNode { .. })
    ));
    let guard = job.reserve(usd("0.2")).expect("fits");
    assert!(matches!(
        job.clone().remove(),
        Err(Error::NodeInUse { holds: 1, .. })
    ));
    assert!(matches!(
        team.clone().remove(),
        Err(Error::NodeInUse { .. })
    ));
    assert!(matches!(
        acme.clone().remove(),
        Err(Error::RootRemoval { .. })
    ));
    guard.commit(usd("0.2")).expect("commit");
    let stale = job.clone();
    job.remove().expect("idle leaf");
    assert!(matches!(
        stale.reserve(usd("0.1")),
        Err(Error::UnknownNode { .. })
    ));
    assert_eq!(books(&team), (usd("0.2"), zero(), zero()));
    let children: Vec<String> = team
        .children()
        .expect("children")
        .iter()
        .map(|child| child.path().to_owned())
        .collect();
    assert_eq!(children, ["acme/team/task"]);
}

/// A frozen node refuses new holds on itself and its subtree (naming itself) while live holds
/// record and commit; a closed one also refuses recording; both change nothing when they
/// refuse, survive a snapshot, and lift when the node is active again.
pub fn frozen_and_closed_nodes_block_their_subtree(store: Arc<dyn Store>) {
    if !supports_all(
        &*store,
        &[
            OpKind::SetState,
            OpKind::ReserveUpTo,
            OpKind::Record,
            OpKind::Restore,
        ],
    ) {
        return;
    }
    let (acme, team, task) = tree(store.clone(), Limit::hard(usd("1")));
    let live = task.reserve(usd("0.50")).expect("fits");
    assert_eq!(
        team.set_state(NodeState::Frozen).expect("freeze"),
        NodeState::Active
    );
    assert_eq!(team.info().expect("info").state, NodeState::Frozen);
    let before = store.snapshot().expect("snapshot");
    assert!(matches!(
        task.reserve(usd("0.10")),
        Err(Error::Frozen { node }) if &*node == "acme/team"
    ));
    assert!(matches!(
        task.reserve_up_to(usd("0.10"), usd("0.20")),
        Err(Error::Frozen { .. })
    ));
    assert_eq!(
        store.snapshot().expect("snapshot"),
        before,
        "a refusal changed the books"
    );
    assert!(
        acme.reserve(usd("0.10")).is_ok(),
        "the parent is not frozen"
    );
    live.record(usd("0.10"))
        .expect("live holds record while frozen");
    store.restore(&before).expect("restore");
    assert!(
        matches!(
            Budget::open(store.clone(), "acme/team/task")
                .expect("task")
                .reserve(usd("0.10")),
            Err(Error::Frozen { .. })
        ),
        "the state survives a snapshot"
    );
    // Node ids may change on restore; handles are opened again by path.
    let acme = Budget::open(store.clone(), "acme").expect("acme");
    let team = Budget::open(store.clone(), "acme/team").expect("team");
    let task = Budget::open(store.clone(), "acme/team/task").expect("task");
    assert_eq!(
        acme.set_state(NodeState::Closed).expect("close"),
        NodeState::Active
    );
    assert!(matches!(
        task.reserve(usd("0.10")),
        Err(Error::Frozen { .. }) | Err(Error::Closed { .. })
    ));
    assert!(matches!(
        store.record(live.id(), &Cost::from(usd("0.10"))),
        Err(Error::Closed { node }) if &*node == "acme"
    ));
    store
        .commit(live.id(), &Cost::from(usd("0.30")))
        .expect("live holds commit while closed");
    drop(live);
    assert_eq!(books(&task), (usd("0.30"), zero(), zero()));
    acme.set_state(NodeState::Active).expect("reopen");
    team.set_state(NodeState::Active).expect("thaw");
    assert!(task.reserve(usd("0.10")).is_ok());
}

/// A snapshot restores exactly (holds included), and an inconsistent one is refused without
/// changing the store.
pub fn snapshot_restores_exactly(store: Arc<dyn Store>) {
    if !supports_all(&*store, &[OpKind::Restore]) {
        return;
    }
    let (_, _, task) = tree(store.clone(), Limit::hard(usd("1")));
    let live = task.reserve_owned(usd("0.30")).expect("fits");
    task.reserve(usd("0.20"))
        .expect("fits")
        .commit(usd("0.05"))
        .expect("commit");
    let snapshot = store.snapshot().expect("snapshot");
    store.restore(&snapshot).expect("restore");
    assert_eq!(store.snapshot().expect("snapshot"), snapshot);
    let mut broken = snapshot.clone();
    broken.holds.clear();
    assert!(matches!(
        store.restore(&broken),
        Err(Error::InvalidSnapshot { .. })
    ));
    assert_eq!(store.snapshot().expect("snapshot"), snapshot);
    // Node ids may change on restore; paths do not. The restored hold is still committable.
    let task = Budget::open(store.clone(), "acme/team/task").expect("task");
    let cost = Cost::from(usd("0.30"));
    store
        .commit(live.id(), &cost)
        .expect("restored hold commits");
    drop(live); // its release finds the hold ended: a no-op
    assert_eq!(books(&task), (usd("0.35"), zero(), zero()));
}
