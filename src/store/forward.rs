//! `Store` for `Arc<S>` and `Box<S>`: every method, typed ones included, forwards to the inner
//! store, so a store that overrides a typed method keeps its override behind a pointer.

use std::sync::Arc;
use std::time::Duration;

use super::{Committed, Reservation, Store};
use crate::amount::{Amount, Unit};
use crate::balance::{Balance, NodeInfo, Snapshot};
use crate::burn::BurnWindow;
use crate::cancel::Cancellation;
use crate::check::Check;
use crate::clock::Timestamp;
use crate::cost::Cost;
use crate::error::Result;
use crate::expiry::{ExpiredHold, ReserveOptions};
use crate::idempotency::OpOptions;
use crate::ids::{HoldId, NodeId};
use crate::node_state::NodeState;
use crate::op::{Answer, Applied, Op, OpKind, Query};
use crate::policy::{Limit, Limits};
use crate::rate::RateLimit;
use crate::top_up::TopUp;

macro_rules! forward_store {
    ($($wrapper:ty),*) => {$(
        impl<S: Store + ?Sized> Store for $wrapper {
            fn create_node(&self, parent: Option<NodeId>, name: &str, limits: &Limits) -> Result<NodeId> {
                (**self).create_node(parent, name, limits)
            }
            fn remove_node(&self, node: NodeId) -> Result<()> {
                (**self).remove_node(node)
            }
            fn validate_limits(&self, limits: &Limits) -> Result<()> {
                (**self).validate_limits(limits)
            }
            fn resolve(&self, path: &str) -> Result<NodeId> {
                (**self).resolve(path)
            }
            fn apply(&self, op: &Op) -> Result<Applied> {
                (**self).apply(op)
            }
            fn read(&self, query: &Query) -> Result<Answer> {
                (**self).read(query)
            }
            fn supports(&self, kind: OpKind) -> bool {
                (**self).supports(kind)
            }
            fn now(&self) -> Timestamp {
                (**self).now()
            }
            fn reserve(&self, node: NodeId, cost: &Cost) -> Result<Reservation> {
                (**self).reserve(node, cost)
            }
            fn reserve_with(&self, node: NodeId, cost: &Cost, options: &ReserveOptions) -> Result<Reservation> {
                (**self).reserve_with(node, cost, options)
            }
            fn check(&self, node: NodeId, cost: &Cost) -> Result<Check> {
                (**self).check(node, cost)
            }
            fn reserve_up_to(&self, node: NodeId, min: Amount, max: Amount) -> Result<Reservation> {
                (**self).reserve_up_to(node, min, max)
            }
            fn reserve_up_to_with(&self, node: NodeId, min: Amount, max: Amount, options: &ReserveOptions) -> Result<Reservation> {
                (**self).reserve_up_to_with(node, min, max, options)
            }
            fn set_state(&self, node: NodeId, state: NodeState) -> Result<NodeState> {
                (**self).set_state(node, state)
            }
            fn cancel_epoch(&self) -> Option<u64> {
                (**self).cancel_epoch()
            }
            fn cancellation(&self, hold: HoldId) -> Result<Option<Cancellation>> {
                (**self).cancellation(hold)
            }
            fn extend(&self, hold: HoldId, ttl: Duration) -> Result<Timestamp> {
                (**self).extend(hold, ttl)
            }
            fn sweep(&self) -> Result<Vec<ExpiredHold>> {
                (**self).sweep()
            }
            fn record(&self, hold: HoldId, partial: &Cost) -> Result<()> {
                (**self).record(hold, partial)
            }
            fn commit(&self, hold: HoldId, actual: &Cost) -> Result<Committed> {
                (**self).commit(hold, actual)
            }
            fn release(&self, hold: HoldId) -> Result<bool> {
                (**self).release(hold)
            }
            fn commit_with(&self, hold: HoldId, actual: &Cost, options: &OpOptions) -> Result<Committed> {
                (**self).commit_with(hold, actual, options)
            }
            fn release_with(&self, hold: HoldId, options: &OpOptions) -> Result<bool> {
                (**self).release_with(hold, options)
            }
            fn credit_with(&self, node: NodeId, amount: Amount, options: &OpOptions) -> Result<Balance> {
                (**self).credit_with(node, amount, options)
            }
            fn debit_with(&self, node: NodeId, amount: Amount, options: &OpOptions) -> Result<Balance> {
                (**self).debit_with(node, amount, options)
            }
            fn set_limit(&self, node: NodeId, limit: Limit) -> Result<Balance> {
                (**self).set_limit(node, limit)
            }
            fn set_rate_limit(&self, node: NodeId, limit: Option<RateLimit>) -> Result<Option<RateLimit>> {
                (**self).set_rate_limit(node, limit)
            }
            fn set_burn_window(&self, node: NodeId, window: Option<BurnWindow>) -> Result<Option<BurnWindow>> {
                (**self).set_burn_window(node, window)
            }
            fn set_top_up(&self, node: NodeId, rule: Option<TopUp>) -> Result<Option<TopUp>> {
                (**self).set_top_up(node, rule)
            }
            fn remove_limit(&self, node: NodeId, unit: Unit) -> Result<Balance> {
                (**self).remove_limit(node, unit)
            }
            fn credit(&self, node: NodeId, amount: Amount) -> Result<Balance> {
                (**self).credit(node, amount)
            }
            fn debit(&self, node: NodeId, amount: Amount) -> Result<Balance> {
                (**self).debit(node, amount)
            }
            fn balance(&self, node: NodeId, unit: Unit) -> Result<Balance> {
                (**self).balance(node, unit)
            }
            fn node_info(&self, node: NodeId) -> Result<NodeInfo> {
                (**self).node_info(node)
            }
            fn snapshot(&self) -> Result<Snapshot> {
                (**self).snapshot()
            }
            fn restore(&self, snapshot: &Snapshot) -> Result<()> {
                (**self).restore(snapshot)
            }
        }
    )*};
}

forward_store!(Arc<S>, Box<S>);
