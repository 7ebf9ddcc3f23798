//! The [`Store`] implementation of the [`FileStore`]: `apply` and `read` dispatch each
//! operation to the store's per-operation code (`file.rs`, `keyed.rs`).

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::FileStore;
use crate::clock::{Clock, Timestamp};
use crate::error::Result;
use crate::expiry::ReserveOptions;
use crate::idempotency::{IdempotencyKey, OpOptions};
use crate::op::{Answer, Applied, Op, Query};
use crate::store::Store;

/// Each operation runs through the file store's own per-operation code, which applies it to
/// the ledger and appends that operation's record to the log (replacing this with
/// `Ledger::apply` plus a log of generic effects is the next step of the architecture work;
/// see `docs/architecture.md`).
impl Store for FileStore {
    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn cancel_epoch(&self) -> Option<u64> {
        Some(self.epoch.load(Ordering::Acquire))
    }

    fn apply(&self, op: &Op) -> Result<Applied> {
        let reserve = |ttl: &Duration, key: &Option<IdempotencyKey>| ReserveOptions {
            ttl: *ttl,
            idempotency_key: key.clone(),
        };
        let keyed = |key: &Option<IdempotencyKey>| OpOptions {
            idempotency_key: key.clone(),
        };
        Ok(match op {
            Op::CreateNode {
                parent,
                name,
                limits,
            } => Applied::Node(self.create_node_op(*parent, name, limits)?),
            Op::RemoveNode { node } => {
                self.remove_node_op(*node)?;
                Applied::Removed
            }
            Op::Reserve {
                node,
                cost,
                ttl,
                idempotency_key,
            } => Applied::Reserved(self.reserve_with_op(
                *node,
                cost,
                &reserve(ttl, idempotency_key),
            )?),
            Op::ReserveUpTo {
                node,
                min,
                max,
                ttl,
                idempotency_key,
            } => Applied::Reserved(self.reserve_up_to_with_op(
                *node,
                *min,
                *max,
                &reserve(ttl, idempotency_key),
            )?),
            Op::Extend { hold, ttl } => Applied::Extended(self.extend_op(*hold, *ttl)?),
            Op::Sweep => Applied::Swept(self.sweep_op()?),
            Op::Record { hold, partial } => {
                self.record_op(*hold, partial)?;
                Applied::Recorded
            }
            Op::Commit {
                hold,
                actual,
                idempotency_key,
            } => Applied::Committed(self.commit_with_op(*hold, actual, &keyed(idempotency_key))?),
            Op::Release {
                hold,
                idempotency_key,
            } => Applied::Released(self.release_with_op(*hold, &keyed(idempotency_key))?),
            Op::Credit {
                node,
                amount,
                idempotency_key,
            } => Applied::Balance(Box::new(self.credit_with_op(
                *node,
                *amount,
                &keyed(idempotency_key),
            )?)),
            Op::Debit {
                node,
                amount,
                idempotency_key,
            } => Applied::Balance(Box::new(self.debit_with_op(
                *node,
                *amount,
                &keyed(idempotency_key),
            )?)),
            Op::SetState { node, state } => Applied::State(self.set_state_op(*node, *state)?),
            Op::SetLimit { node, limit } => {
                Applied::Balance(Box::new(self.set_limit_op(*node, *limit)?))
            }
            Op::RemoveLimit { node, unit } => {
                Applied::Balance(Box::new(self.remove_limit_op(*node, *unit)?))
            }
            Op::SetRateLimit { node, limit } => {
                Applied::RateLimit(self.set_rate_limit_op(*node, *limit)?)
            }
            Op::SetBurnWindow { node, window } => {
                Applied::BurnWindow(self.set_burn_window_op(*node, *window)?)
            }
            Op::SetTopUp { node, rule } => Applied::TopUp(self.set_top_up_op(*node, *rule)?),
            Op::Restore { snapshot } => {
                self.restore_op(snapshot)?;
                Applied::Restored
            }
        })
    }

    fn read(&self, query: &Query) -> Result<Answer> {
        Ok(match query {
            Query::Resolve { path } => Answer::Node(self.resolve_op(path)?),
            Query::Check { node, cost } => Answer::Check(self.check_op(*node, cost)?),
            Query::Balance { node, unit } => Answer::Balance(self.balance_op(*node, *unit)?),
            Query::NodeInfo { node } => Answer::NodeInfo(self.node_info_op(*node)?),
            Query::Snapshot => Answer::Snapshot(Box::new(self.snapshot_op()?)),
            Query::Cancellation { hold } => Answer::Cancellation(self.cancellation_op(*hold)?),
        })
    }
}
