//! Committing a hold: spend within it, and the overage policy for spend above it.

use super::hold_slot::Amounts;
use super::{Hold, Ledger, Scan};
use crate::amount::{Amount, Unit};
use crate::cost::Cost;
use crate::error::{AmountError, Error};
use crate::idempotency::HoldEnd;
use crate::ids::HoldId;
use crate::policy::{LimitKind, OveragePolicy};
use crate::store::Committed;
use crate::threshold::Crossings;

/// A live one-unit hold as the commit fast path reads it from its slot.
struct Within {
    node: u32,
    unit: Unit,
    held: i64,
    recorded: i64,
}

impl Ledger {
    /// A commit names every unit the hold holds; it may name more (a provider's token count
    /// booked with a dollar hold): a unit the hold did not hold counts as held at zero, so its
    /// whole amount is an overage under the governing policy (plain spend where nothing limits
    /// that unit).
    pub(super) fn check_units(
        hold: &Hold,
        given: &Cost,
        context: &'static str,
    ) -> Result<(), Error> {
        if given.includes_units(&hold.held) {
            return Ok(());
        }
        let (expected, found) = hold.held.unit_difference(given);
        Err(Error::UnitMismatch {
            expected,
            found,
            context,
        })
    }

    /// Ends a hold with its actual total cost. See [`OveragePolicy`] for costs above the hold.
    pub(crate) fn commit(&mut self, id: HoldId, actual: &Cost) -> Result<Committed, Error> {
        if let Some(within) = self.within_one_unit(id, actual) {
            return Ok(self.commit_within(id, within, actual));
        }
        let hold = match self.hold(id) {
            Ok(hold) => hold,
            Err(unknown) => return self.commit_reclaimed(id, actual).unwrap_or(Err(unknown)),
        };
        Self::check_units(&hold, actual, "commit of a hold")?;
        for unit in actual.units() {
            let recorded = hold.recorded.minor(unit);
            if actual.minor(unit) < recorded {
                return Err(Error::InvalidAmount {
                    input: Amount::from_minor(actual.minor(unit), unit).to_string(),
                    reason: AmountError::BelowRecorded {
                        recorded_minor: recorded,
                    },
                });
            }
            // Within the hold, spend only moves out of `reserved`, which reserve already checked
            // for overflow; only an overage adds new money that could overflow.
            if actual.minor(unit) > hold.held.minor(unit) {
                self.check_overage_fits(hold.node, unit, actual.minor(unit) - recorded)?;
            }
        }
        self.close_hold(id, &hold, HoldEnd::Committed);
        let mut committed = Committed {
            spent: *actual,
            returned: actual.zeroed(),
            overage: actual.zeroed(),
            events: Crossings::new(),
            expired: false,
            replayed: false,
            top_ups: Vec::new(),
            top_up_caps: Vec::new(),
        };
        let mut rejection = None;
        let mut exhausted = false;
        for unit in actual.units() {
            let held = hold.held.minor(unit);
            let actual_minor = actual.minor(unit);
            let outstanding = hold.outstanding(unit);
            let within = actual_minor.min(held) - hold.recorded.minor(unit);
            let events = Scan::Collect(&mut committed.events);
            self.change_path(hold.node, unit, events, |account| {
                exhausted |= account.settle(outstanding, within);
            });
            committed.returned.set(unit, (held - actual_minor).max(0));
            let excess = actual_minor - held;
            if excess > 0 {
                committed.overage.set(unit, excess);
                if let Some(debt) = self.charge_overage(hold.node, unit, excess) {
                    rejection.get_or_insert((unit, debt));
                }
                self.scan_path(hold.node, unit, Scan::Collect(&mut committed.events));
            }
        }
        if exhausted {
            self.bump_epoch();
        }
        match rejection {
            None => Ok(committed),
            Some((unit, debt)) => {
                // The error cannot carry the crossings: leave them to the next operation.
                self.unmark(&committed.events);
                Err(Error::OverageRejected {
                    node: self.node(hold.node).path.clone(),
                    held: Amount::from_minor(hold.held.minor(unit), unit),
                    actual: Amount::from_minor(actual.minor(unit), unit),
                    debt: Amount::from_minor(debt, unit),
                })
            }
        }
    }

    /// The usual commit, recognised without building a [`Hold`]: a live hold in one unit,
    /// committed in that unit alone, at or above what it recorded and at most what it holds
    /// (so no overage and no overflow check: the spend only moves out of `reserved`). `None`
    /// for anything else, which [`Ledger::commit`] handles in full.
    #[inline]
    fn within_one_unit(&self, id: HoldId, actual: &Cost) -> Option<Within> {
        let slot = self.holds.get(id.index() as usize)?;
        let Amounts::One {
            unit,
            held,
            recorded,
        } = slot.amounts
        else {
            return None;
        };
        let amount = actual.minor(unit);
        (slot.serial == id.serial()
            && actual.single_unit() == Some(unit)
            && (recorded..=held).contains(&amount))
        .then_some(Within {
            node: slot.node,
            unit,
            held,
            recorded,
        })
    }

    /// Commits `actual` within the one-unit hold `id` (see [`Ledger::within_one_unit`]): the
    /// same effect as the general path of [`Ledger::commit`], in one walk of the path.
    #[inline]
    fn commit_within(&mut self, id: HoldId, hold: Within, actual: &Cost) -> Committed {
        let Within {
            node: leaf,
            unit,
            held,
            recorded,
        } = hold;
        let amount = actual.minor(unit);
        self.end_hold(id, leaf, HoldEnd::Committed);
        let mut events = Crossings::new();
        let (outstanding, within) = (held - recorded, amount - recorded);
        let mut exhausted = false;
        self.change_path(leaf, unit, Scan::Collect(&mut events), |account| {
            exhausted |= account.settle(outstanding, within);
        });
        if exhausted {
            self.bump_epoch();
        }
        Committed {
            spent: *actual,
            returned: Cost::single(unit, held - amount),
            overage: Cost::single(unit, 0),
            events,
            expired: false,
            replayed: false,
            top_ups: Vec::new(),
            top_up_caps: Vec::new(),
        }
    }

    #[cold]
    pub(super) fn check_overage_fits(
        &self,
        leaf: u32,
        unit: Unit,
        extra: i64,
    ) -> Result<(), Error> {
        for index in self.path_indices(leaf) {
            let account = &self.node(index).accounts[unit.index()];
            account.check_room_for_spend(extra)?;
        }
        Ok(())
    }

    /// Records `excess` spend above a hold on the path of `leaf` under the governing overage
    /// policy. Returns `Some(debt this charge recorded)` if the policy rejects the overage: the
    /// most debt any node on the path took on from this charge, not what it owed before.
    pub(super) fn charge_overage(&mut self, leaf: u32, unit: Unit, excess: i64) -> Option<i64> {
        self.bump_epoch();
        let path: Vec<u32> = self.path_indices(leaf).collect();
        let debt_before: Vec<i64> = path
            .iter()
            .map(|index| self.node(*index).accounts[unit.index()].debt)
            .collect();
        let recorded = |ledger: &Self| {
            path.iter()
                .zip(&debt_before)
                .map(|(index, before)| ledger.node(*index).accounts[unit.index()].debt - before)
                .max()
                .unwrap_or(0)
        };
        // The reserving node governs; if it has no limit in this unit, the nearest ancestor that
        // has one does (nodes below the governing one only track, so they take the spend).
        let governing = path
            .iter()
            .position(|index| self.node(*index).accounts[unit.index()].limit().is_some());
        let Some(governing) = governing else {
            for index in path {
                self.node_mut(index).accounts[unit.index()].add_spent(excess);
            }
            return None;
        };
        let limit = self.node(path[governing]).accounts[unit.index()]
            .limit()
            .expect("governing node has a limit");
        let all_have_room = path.iter().all(|index| {
            self.node(*index).accounts[unit.index()]
                .hard_room_all()
                .is_none_or(|room| room >= excess)
        });
        let reject = match limit.overage() {
            OveragePolicy::AllowIfAvailable if all_have_room => false,
            OveragePolicy::Reject | OveragePolicy::AllowIfAvailable => true,
            OveragePolicy::AllowWithOverdraft { limit: overdraft } => {
                for index in &path {
                    self.node_mut(*index).accounts[unit.index()].absorb(excess);
                }
                let over = path.iter().any(|index| {
                    self.node(*index).accounts[unit.index()].debt > overdraft.minor_units()
                });
                return over.then(|| recorded(self));
            }
        };
        for (position, index) in path.iter().enumerate() {
            let account = &mut self.node_mut(*index).accounts[unit.index()];
            if reject && position == governing && limit.kind() == LimitKind::Hard {
                account.debt += excess;
            } else {
                account.absorb(excess);
            }
        }
        reject.then(|| recorded(self))
    }
}
