//! Live holds: lookup, recording partial spend, release, and closing a hold.

use super::hold_slot::Amounts;
use super::{HoldSlot, Ledger, Scan};
use crate::amount::Unit;
use crate::clock::Timestamp;
use crate::cost::Cost;
use crate::error::Error;
use crate::idempotency::HoldEnd;
use crate::ids::HoldId;

#[derive(Clone, Copy, Debug)]
pub(super) struct Hold {
    pub(super) node: u32,
    pub(super) held: Cost,
    pub(super) recorded: Cost,
    /// The deadline; past it, the hold may be reclaimed.
    pub(super) expires: Timestamp,
}

impl Hold {
    pub(super) fn outstanding(&self, unit: Unit) -> i64 {
        self.held.minor(unit) - self.recorded.minor(unit)
    }
}

impl Ledger {
    pub(super) fn hold(&self, id: HoldId) -> Result<Hold, Error> {
        self.holds
            .get(id.index() as usize)
            .filter(|slot| slot.serial == id.serial())
            .and_then(HoldSlot::hold)
            .ok_or(Error::UnknownHold { hold: id })
    }

    pub(super) fn set_hold(&mut self, id: HoldId, hold: Hold) {
        self.holds[id.index() as usize].set_reusing(&hold, &mut self.spare_costs);
    }

    pub(super) fn close_hold(&mut self, id: HoldId, hold: &Hold, how: HoldEnd) {
        self.end_hold(id, hold.node, how);
    }

    /// Frees the slot of live hold `id` on node `leaf`, ended `how`.
    #[inline]
    pub(super) fn end_hold(&mut self, id: HoldId, leaf: u32, how: HoldEnd) {
        self.keys.hold_ended(id, how);
        self.holds[id.index() as usize].clear(&mut self.spare_costs);
        self.free_holds.push(id.index());
        self.node_mut(leaf).live_holds -= 1;
    }

    /// Moves `partial` of a live hold into spent, growing the hold first where the partial spend
    /// runs past it and every node has room (zero grace: otherwise nothing is recorded).
    pub(crate) fn record(&mut self, id: HoldId, partial: &Cost) -> Result<(), Error> {
        let Ok(mut hold) = self.hold(id) else {
            return Err(self.not_live(id));
        };
        self.check_not_closed(hold.node)?;
        if !partial.units().all(|unit| hold.held.has(unit)) {
            let (expected, found) = hold.held.unit_difference(partial);
            return Err(Error::UnitMismatch {
                expected,
                found,
                context: "record on a hold",
            });
        }
        for unit in partial.units() {
            let total = hold.recorded.minor(unit).checked_add(partial.minor(unit));
            let total = total.ok_or(Error::Overflow {
                operation: "record spend on a hold",
            })?;
            let growth = total - hold.held.minor(unit);
            if growth > 0 {
                self.check_fits(hold.node, unit, growth)?;
            }
        }
        let mut exhausted = false;
        for unit in partial.units() {
            let amount = partial.minor(unit);
            let growth = hold.recorded.minor(unit) + amount - hold.held.minor(unit);
            if growth > 0 {
                // Growth raises usage; the hold's commit evaluates the levels it reached.
                self.add_reserved(hold.node, unit, growth, Scan::Skip);
                hold.held.set(unit, hold.held.minor(unit) + growth);
            }
            self.change_path(hold.node, unit, Scan::Skip, |account| {
                account.add_reserved(-amount);
                account.add_spent(amount);
                exhausted |= account.spent_out();
            });
            hold.recorded.set(unit, hold.recorded.minor(unit) + amount);
        }
        if exhausted {
            self.bump_epoch();
        }
        self.set_hold(id, hold);
        Ok(())
    }

    /// Ends a hold without spending its outstanding part. `Ok(false)` if it was not live.
    pub(crate) fn release(&mut self, id: HoldId) -> Result<bool, Error> {
        // The usual hold, in one unit, is released from its slot without building a `Hold`.
        if let Some(slot) = self.holds.get(id.index() as usize)
            && slot.serial == id.serial()
            && let Amounts::One {
                unit,
                held,
                recorded,
            } = slot.amounts
        {
            let leaf = slot.node;
            self.add_reserved(leaf, unit, recorded - held, Scan::Skip);
            self.end_hold(id, leaf, HoldEnd::Released);
            return Ok(true);
        }
        let Ok(hold) = self.hold(id) else {
            return Ok(false);
        };
        for unit in hold.held.units() {
            self.add_reserved(hold.node, unit, -hold.outstanding(unit), Scan::Skip);
        }
        self.close_hold(id, &hold, HoldEnd::Released);
        Ok(true)
    }
}
