//! Cancellation of live holds: the epoch counter guards compare, and the query they make when it
//! moved.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::Ledger;
use crate::amount::Unit;
use crate::cancel::Cancellation;
use crate::ids::HoldId;
use crate::node_state::NodeState;

impl Ledger {
    /// Records that a live hold may have become cancelled. Called only on rare paths (a state
    /// change, a reclaim, an overage, a limit change, spend reaching a hard limit).
    #[cold]
    pub(super) fn bump_epoch(&self) {
        self.epoch.fetch_add(1, Ordering::Release);
    }

    /// The counter a store exposes as [`Store::cancel_epoch`](crate::Store::cancel_epoch).
    pub(crate) fn epoch_cell(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.epoch)
    }

    /// Takes over `previous`'s counter (a restore replaces the ledger; guards keep comparing the
    /// same counter) and bumps it, since every hold may have changed.
    pub(crate) fn adopt_epoch(&mut self, previous: &Ledger) {
        self.epoch = previous.epoch_cell();
        self.bump_epoch();
        self.adopt_timed(previous);
    }

    /// Why the work of live hold `id` should stop, if it should. See [`Cancellation`].
    pub(crate) fn cancellation(&self, id: HoldId) -> Option<Cancellation> {
        let hold = match self.hold(id) {
            Ok(hold) => hold,
            Err(_) => {
                return Some(match self.tombstones.get(id) {
                    Some(tombstone) => Cancellation::Expired {
                        expired_at: tombstone.expired_at,
                    },
                    None => Cancellation::Ended,
                });
            }
        };
        for index in self.path_indices(hold.node) {
            let node = self.node(index);
            match node.state {
                NodeState::Frozen => {
                    return Some(Cancellation::Frozen {
                        node: node.path.clone(),
                    });
                }
                NodeState::Closed => {
                    return Some(Cancellation::Closed {
                        node: node.path.clone(),
                    });
                }
                _ => {}
            }
        }
        for index in self.path_indices(hold.node) {
            let node = self.node(index);
            let exhausted = Unit::ALL.into_iter().find(|unit| {
                let account = &node.accounts[unit.index()];
                hold.held.has(*unit) && (account.debt > 0 || account.spent_out())
            });
            if let Some(unit) = exhausted {
                return Some(Cancellation::Exhausted {
                    node: node.path.clone(),
                    unit,
                });
            }
        }
        None
    }
}
