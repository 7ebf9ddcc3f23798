//! Hold expiry inside the ledger: deadlines, reclaiming expired holds, the heartbeat, and late
//! commits of reclaimed holds. Time comes in as arguments; the ledger never reads a clock.
//!
//! The public rules are documented in `crate::expiry`.

use std::collections::{HashMap, VecDeque};

use super::{Hold, Ledger, Scan};
use crate::amount::{Amount, Unit};
use crate::clock::Timestamp;
use crate::cost::Cost;
use crate::error::{AmountError, Error};
use crate::expiry::{EXPIRED_HOLDS_REMEMBERED, ExpiredHold};
use crate::idempotency::HoldEnd;
use crate::ids::{HoldId, NodeId};
use crate::policy::OveragePolicy;
use crate::store::Committed;
use crate::threshold::Crossings;

/// When a reserve's hold expires, and whether the reserve may reclaim expired holds first.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lease {
    /// The time of the operation; `None` never reclaims (a replayed record, whose reclaims were
    /// logged as records of their own).
    pub(crate) now: Option<Timestamp>,
    /// The new hold's deadline.
    pub(crate) expires: Timestamp,
}

impl Lease {
    /// A hold that never expires and a reserve that never reclaims (tests, replay of old data).
    #[cfg(test)]
    pub(crate) const NEVER: Lease = Lease {
        now: None,
        expires: Timestamp::MAX,
    };
}

/// A reclaimed hold, remembered so that a late commit can still record its spend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Tombstone {
    pub(super) node: NodeId,
    pub(super) held: Cost,
    pub(super) recorded: Cost,
    pub(super) expired_at: Timestamp,
}

/// The last [`EXPIRED_HOLDS_REMEMBERED`] reclaimed holds, oldest first.
#[derive(Debug, Default)]
pub(super) struct Tombstones {
    pub(super) map: HashMap<HoldId, Tombstone>,
    pub(super) order: VecDeque<HoldId>,
}

impl Tombstones {
    pub(super) fn insert(&mut self, id: HoldId, tombstone: Tombstone) {
        while self.map.len() >= EXPIRED_HOLDS_REMEMBERED {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
        if self.order.len() >= 2 * EXPIRED_HOLDS_REMEMBERED {
            let map = &self.map;
            self.order.retain(|id| map.contains_key(id));
        }
        self.order.push_back(id);
        self.map.insert(id, tombstone);
    }

    pub(super) fn get(&self, id: HoldId) -> Option<Tombstone> {
        self.map.get(&id).copied()
    }

    pub(super) fn remove(&mut self, id: HoldId) {
        self.map.remove(&id);
    }

    /// Oldest first.
    pub(super) fn iter(&self) -> impl Iterator<Item = (HoldId, Tombstone)> + '_ {
        self.order
            .iter()
            .filter_map(|id| self.map.get(id).map(|tombstone| (*id, *tombstone)))
    }
}

impl Ledger {
    /// `true` if a hold may have passed its deadline at `now` (the bound is never later than the
    /// earliest deadline of a live hold).
    #[inline]
    pub(super) fn may_reclaim(&self, now: Option<Timestamp>) -> bool {
        now.is_some_and(|now| now >= self.earliest_expiry)
    }

    /// Lowers the earliest-deadline bound for a hold that now ends at `expires`.
    #[inline]
    pub(super) fn note_deadline(&mut self, expires: Timestamp) {
        if expires < self.earliest_expiry {
            self.earliest_expiry = expires;
        }
    }

    /// Reclaims every hold whose deadline is at or before `now`, and makes the earliest-deadline
    /// bound exact. Reclaimed holds wait in `reclaimed` until reported.
    #[cold]
    pub(super) fn reclaim_expired(&mut self, now: Timestamp) {
        let mut earliest = Timestamp::MAX;
        for index in 0..self.holds.len() {
            let Some(hold) = self.holds[index].hold() else {
                continue;
            };
            if hold.expires <= now {
                let id = HoldId::new(index as u32, self.holds[index].serial);
                self.reclaim(id, hold);
            } else {
                earliest = earliest.min(hold.expires);
            }
        }
        self.earliest_expiry = earliest;
    }

    /// Ends `hold` by expiry: its outstanding part leaves `reserved` on the whole path.
    fn reclaim(&mut self, id: HoldId, hold: Hold) {
        self.bump_epoch();
        for unit in hold.held.units() {
            self.add_reserved(hold.node, unit, -hold.outstanding(unit), Scan::Skip);
        }
        self.close_hold(id, &hold, HoldEnd::Expired);
        let node = NodeId::new(hold.node, self.nodes[hold.node as usize].serial);
        self.tombstones.insert(
            id,
            Tombstone {
                node,
                held: hold.held,
                recorded: hold.recorded,
                expired_at: hold.expires,
            },
        );
        self.reclaimed.push(ExpiredHold {
            hold: id,
            node: self.node(hold.node).path.clone(),
            held: hold.held,
            recorded: hold.recorded,
            expired_at: hold.expires,
        });
    }

    /// Reclaims every hold expired at `now` and returns every reclaimed hold not yet reported
    /// (including those a denied reserve reclaimed).
    pub(crate) fn sweep(&mut self, now: Timestamp) -> Vec<ExpiredHold> {
        if self.may_reclaim(Some(now)) {
            self.reclaim_expired(now);
        }
        std::mem::take(&mut self.reclaimed)
    }

    /// Moves a live hold's deadline to `expires` (the heartbeat). A hold past its deadline that
    /// was not reclaimed yet is still live, so extending it revives it.
    pub(crate) fn extend(&mut self, id: HoldId, expires: Timestamp) -> Result<Timestamp, Error> {
        let Ok(mut hold) = self.hold(id) else {
            return Err(self.not_live(id));
        };
        hold.expires = expires;
        self.set_hold(id, hold);
        self.note_deadline(expires);
        Ok(expires)
    }

    /// The error for an operation on a hold that is not live: `ReservationExpired` if it was
    /// reclaimed (and is remembered), else `UnknownHold`.
    pub(super) fn not_live(&self, id: HoldId) -> Error {
        match self.tombstones.get(id) {
            Some(tombstone) => self.expired_error(id, &tombstone),
            None => Error::UnknownHold { hold: id },
        }
    }

    fn expired_error(&self, id: HoldId, tombstone: &Tombstone) -> Error {
        Error::ReservationExpired {
            hold: id,
            node: self.live(tombstone.node).map_or_else(
                |_| tombstone.node.to_string().into(),
                |index| self.node(index).path.clone(),
            ),
            expired_at: tombstone.expired_at,
        }
    }

    /// Commits a reclaimed hold, if it is remembered: `actual − recorded` is new spend with no
    /// hold behind it (see `crate::expiry` for the rule). `None` if the hold is not remembered.
    pub(super) fn commit_reclaimed(
        &mut self,
        id: HoldId,
        actual: &Cost,
    ) -> Option<Result<Committed, Error>> {
        let tombstone = self.tombstones.get(id)?;
        Some(self.commit_late(id, &tombstone, actual))
    }

    fn commit_late(
        &mut self,
        id: HoldId,
        tombstone: &Tombstone,
        actual: &Cost,
    ) -> Result<Committed, Error> {
        let leaf = self
            .live(tombstone.node)
            .map_err(|_| self.expired_error(id, tombstone))?;
        if !actual.includes_units(&tombstone.held) {
            let (expected, found) = tombstone.held.unit_difference(actual);
            return Err(Error::UnitMismatch {
                expected,
                found,
                context: "commit of a hold",
            });
        }
        for unit in actual.units() {
            let recorded = tombstone.recorded.minor(unit);
            if actual.minor(unit) < recorded {
                return Err(Error::InvalidAmount {
                    input: Amount::from_minor(actual.minor(unit), unit).to_string(),
                    reason: AmountError::BelowRecorded {
                        recorded_minor: recorded,
                    },
                });
            }
            let extra = actual.minor(unit) - recorded;
            if extra > 0 && !self.late_spend_fits(leaf, unit, extra)? {
                return Err(self.expired_error(id, tombstone));
            }
        }
        let mut events = Crossings::new();
        for unit in actual.units() {
            let extra = actual.minor(unit) - tombstone.recorded.minor(unit);
            if extra > 0 {
                for index in self.path_indices(leaf).collect::<Vec<_>>() {
                    self.node_mut(index).accounts[unit.index()].absorb(extra);
                }
                self.bump_epoch();
                self.scan_path(leaf, unit, Scan::Collect(&mut events));
            }
        }
        self.tombstones.remove(id);
        // The spend is booked: a retried reserve must not be told to book it again.
        self.keys.hold_ended(id, HoldEnd::Committed);
        let mut nothing = Cost::new();
        for unit in actual.units() {
            nothing.set(unit, 0);
        }
        Ok(Committed {
            spent: *actual,
            returned: nothing,
            overage: nothing,
            events,
            expired: true,
            replayed: false,
            top_ups: Vec::new(),
            top_up_caps: Vec::new(),
        })
    }

    /// Whether `extra` new spend without a hold may be recorded on the path of `leaf`: it fits
    /// under every hard limit, or the governing node allows an overdraft that every node's debt
    /// stays within.
    fn late_spend_fits(&self, leaf: u32, unit: Unit, extra: i64) -> Result<bool, Error> {
        let mut fits = true;
        for index in self.path_indices(leaf) {
            let account = &self.node(index).accounts[unit.index()];
            account.check_room_for_spend(extra)?;
            fits &= account.hard_room_all().is_none_or(|room| room >= extra);
        }
        if fits {
            return Ok(true);
        }
        let governing = self
            .path_indices(leaf)
            .find_map(|index| self.node(index).accounts[unit.index()].limit());
        let Some(OveragePolicy::AllowWithOverdraft { limit: overdraft }) =
            governing.map(|limit| limit.overage())
        else {
            return Ok(false);
        };
        Ok(self.path_indices(leaf).all(|index| {
            let account = &self.node(index).accounts[unit.index()];
            let fitting = account
                .hard_room_all()
                .map_or(extra, |room| extra.min(room.max(0)));
            account.debt + (extra - fitting) <= overdraft.minor_units()
        }))
    }
}
