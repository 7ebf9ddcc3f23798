//! Capabilities: a store that declares an operation unsupported refuses it with the typed
//! [`Error::Unsupported`] and changes nothing.

use std::sync::Arc;
use std::time::Duration;

use super::usd;
use crate::amount::Unit;
use crate::burn::BurnWindow;
use crate::cost::Cost;
use crate::error::Error;
use crate::node_state::NodeState;
use crate::op::{Op, OpKind};
use crate::policy::{Limit, Limits};
use crate::rate::RateLimit;
use crate::store::Store;
use crate::top_up::TopUp;

/// Every operation the store does not [`support`](Store::supports) returns
/// [`Error::Unsupported`] naming it, and leaves the books unchanged. (Nothing to check for a
/// store that supports everything, beyond building the tree.)
pub fn undeclared_ops_are_unsupported(store: Arc<dyn Store>) {
    let limits = Limits::from(Limit::hard(usd("10")));
    let root = store
        .create_node(None, "acme", &limits)
        .expect("create a root");
    let leaf = store
        .create_node(Some(root), "leaf", &limits)
        .expect("create a child");
    let hold = store
        .reserve(root, &Cost::from(usd("1")))
        .expect("reserve")
        .hold;
    let minute = Duration::from_secs(60);
    let sample = |kind: OpKind| -> Op {
        match kind {
            OpKind::CreateNode => Op::CreateNode {
                parent: Some(root),
                name: "another".into(),
                limits: limits.clone(),
            },
            OpKind::RemoveNode => Op::RemoveNode { node: leaf },
            OpKind::Reserve => Op::Reserve {
                node: root,
                cost: Cost::from(usd("1")),
                ttl: minute,
                idempotency_key: None,
            },
            OpKind::ReserveUpTo => Op::ReserveUpTo {
                node: root,
                min: usd("1"),
                max: usd("2"),
                ttl: minute,
                idempotency_key: None,
            },
            OpKind::Extend => Op::Extend { hold, ttl: minute },
            OpKind::Record => Op::Record {
                hold,
                partial: Cost::from(usd("0.5")),
            },
            OpKind::Commit => Op::Commit {
                hold,
                actual: Cost::from(usd("1")),
                idempotency_key: None,
            },
            OpKind::Release => Op::Release {
                hold,
                idempotency_key: None,
            },
            OpKind::Credit => Op::Credit {
                node: root,
                amount: usd("1"),
                idempotency_key: None,
            },
            OpKind::Debit => Op::Debit {
                node: root,
                amount: usd("1"),
                idempotency_key: None,
            },
            OpKind::SetState => Op::SetState {
                node: root,
                state: NodeState::Frozen,
            },
            OpKind::SetLimit => Op::SetLimit {
                node: root,
                limit: Limit::hard(usd("20")),
            },
            OpKind::RemoveLimit => Op::RemoveLimit {
                node: root,
                unit: Unit::Usd,
            },
            OpKind::SetRateLimit => Op::SetRateLimit {
                node: root,
                limit: Some(RateLimit::new(5, minute).expect("valid rate limit")),
            },
            OpKind::SetBurnWindow => Op::SetBurnWindow {
                node: root,
                window: Some(BurnWindow::new(minute).expect("valid window")),
            },
            OpKind::SetTopUp => Op::SetTopUp {
                node: root,
                rule: Some(TopUp::when_below(usd("2")).adding(usd("1"))),
            },
            OpKind::Restore => Op::Restore {
                snapshot: Box::new(store.snapshot().expect("snapshot")),
            },
            OpKind::Sweep => Op::Sweep,
        }
    };
    for kind in OpKind::ALL {
        if store.supports(kind) {
            continue;
        }
        let op = sample(kind);
        assert_eq!(op.kind(), kind, "the sample op of {kind}");
        let before = store.snapshot().expect("snapshot");
        match store.apply(&op) {
            Err(Error::Unsupported { op, .. }) => {
                assert_eq!(op, kind, "Unsupported names the refused op");
            }
            other => panic!("{kind} is declared unsupported but the store answered {other:?}"),
        }
        assert_eq!(
            store.snapshot().expect("snapshot"),
            before,
            "a refused {kind} changed the books"
        );
    }
}
