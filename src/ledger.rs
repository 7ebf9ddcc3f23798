//! The money rules, as a pure state machine: no I/O, no clock, no locks, no user code.
//!
//! Every store that keeps the books in process (memory, file) drives one `Ledger`; a remote
//! backend re-implements these operations server-side and must pass the same conformance suite.
//! Each public method either changes nothing and returns an error, or applies its whole effect
//! (the one documented exception is a commit over its hold, which records the spend *and* reports
//! the overage; see [`OveragePolicy`]).

mod account;
mod accounts;
mod alarms;
mod apply;
mod cancel;
mod check;
mod commit;
mod expiry;
mod funds;
mod hold_slot;
mod holds;
mod idempotency;
pub(crate) mod image;
mod inspect;
mod path;
mod period;
mod rate;
mod reserve;
mod snapshot;
mod state;
#[cfg(test)]
mod tests;
mod top_up;
mod tree;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use crate::clock::Timestamp;
use crate::error::Error;
use crate::expiry::ExpiredHold;
use crate::ids::NodeId;

use self::account::{Account, Scan};
pub(crate) use self::apply::INTERPRETER_VERSION;
pub(crate) use self::expiry::Lease;
use self::expiry::Tombstones;
use self::hold_slot::{HoldSlot, SpareCosts};
use self::holds::Hold;
pub(crate) use self::idempotency::{Keyed, Remember, Request};
pub(crate) use self::tree::validate_name;
use self::tree::{Node, NodeSlot};

/// The books of one or more budget trees.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    nodes: Vec<NodeSlot>,
    free_nodes: Vec<u32>,
    by_path: HashMap<Arc<str>, NodeId>,
    holds: Vec<HoldSlot>,
    free_holds: Vec<u32>,
    /// Boxes of ended multi-unit holds, reused by the next (see `ledger/hold_slot.rs`).
    spare_costs: SpareCosts,
    /// Serial for the next node or hold id; never reused while the ledger lives.
    next_serial: u32,
    /// Never later than the earliest deadline of a live hold (exact after each reclaim scan).
    earliest_expiry: Timestamp,
    /// Holds reclaimed by expiry and not yet reported (by a reserve or a sweep).
    reclaimed: Vec<ExpiredHold>,
    /// Recently reclaimed holds, for late commits.
    tombstones: Tombstones,
    /// How many live nodes are not active (zero keeps state checks off the reserve path).
    restricted: u32,
    /// Bumped whenever a live hold may have become cancelled (see `ledger/cancel.rs`); shared
    /// with the store, which lets guards compare it without the lock.
    epoch: Arc<AtomicU64>,
    /// How many live nodes have a rate limit (zero keeps rate checks off the reserve path).
    rate_limited: u32,
    /// When the next period of a periodic limit ends (see `ledger/period.rs`): the one compare
    /// `roll_periods` pays while nothing is due.
    periods: period::Due,
    /// Remembered idempotency keys (see `ledger/idempotency.rs`).
    keys: idempotency::KeyTable,
    /// Burn-rate tracking and top-up rules (see `ledger/top_up.rs`).
    timed: top_up::Timed,
}

impl Ledger {
    pub(crate) fn new() -> Self {
        Ledger::default()
    }

    fn serial(&mut self) -> u32 {
        self.next_serial = self.next_serial.wrapping_add(1);
        self.next_serial
    }
}

/// Puts `slot` into a free index of `slots` (reused first, so tables stay dense) or a new one.
#[inline]
fn place<S>(
    slots: &mut Vec<S>,
    free: &mut Vec<u32>,
    slot: S,
    operation: &'static str,
) -> Result<u32, Error> {
    if let Some(index) = free.pop() {
        slots[index as usize] = slot;
        return Ok(index);
    }
    let index = u32::try_from(slots.len()).map_err(|_| Error::Overflow { operation })?;
    slots.push(slot);
    Ok(index)
}
