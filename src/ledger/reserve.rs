//! Reserving: the admission rules, reclaiming expired holds on denial, and opening a hold.

use super::hold_slot::Amounts;
use super::{Hold, HoldSlot, Lease, Ledger, Scan, place};
use crate::amount::Amount;
use crate::clock::Timestamp;
use crate::cost::Cost;
use crate::error::{AmountError, Error};
use crate::ids::{HoldId, MAX_LIVE_HOLDS, NodeId};
use crate::store::Reservation;
use crate::threshold::Crossings;

impl Ledger {
    /// Holds `cost` on `node` and every ancestor, or nothing at all; the hold never expires.
    #[cfg(test)]
    pub(crate) fn reserve(&mut self, id: NodeId, cost: &Cost) -> Result<Reservation, Error> {
        self.reserve_at(id, cost, Lease::NEVER)
    }

    /// Holds `cost` on `node` and every ancestor, or nothing at all, until `lease.expires`. A
    /// reserve that would be denied first reclaims the holds expired at `lease.now`, then checks
    /// again.
    #[inline]
    pub(crate) fn reserve_at(
        &mut self,
        id: NodeId,
        cost: &Cost,
        lease: Lease,
    ) -> Result<Reservation, Error> {
        // No rate limit, burn rate, top-up rule or unreported reclaim anywhere (the usual
        // books): every hook around the rules would do nothing, so the rules' answer is the
        // reserve's, written straight into the caller's slot. A denial that expired holds may
        // turn around is turned around inside the rules (`try_reserve` reclaims and decides
        // again): inspecting the answer here first made it a local, and returning it a
        // 168-byte copy on every reserve (issue 16).
        if self.rate_limited == 0 && self.timed_idle() && self.reclaimed.is_empty() {
            return self.try_reserve(id, cost, lease.expires, lease.now);
        }
        self.reserve_in_full(id, cost, lease)
    }

    /// [`Ledger::reserve_at`] with every hook: rate limits, timed rules, reclaiming expired
    /// holds on a denial, reporting reclaimed holds.
    fn reserve_in_full(
        &mut self,
        id: NodeId,
        cost: &Cost,
        lease: Lease,
    ) -> Result<Reservation, Error> {
        self.timed_begin(id, lease.now);
        // Rate first, read-only: a rate denial holds nothing; a budget denial takes no slot.
        self.check_rate(id, lease.now)?;
        // Assigned in place rather than through a `match` that moves the result (a copy).
        let mut outcome = self.try_reserve(id, cost, lease.expires, lease.now);
        if outcome.is_ok() {
            self.take_rate(id, lease.now);
        }
        self.timed_reserved(id, &mut outcome, lease.now);
        self.report_reclaimed(&mut outcome);
        outcome
    }

    /// Hands the reclaimed holds not yet reported to a granted reservation.
    /// In place: the reservation is large, and moving it in and out is a copy each way.
    #[inline]
    pub(super) fn report_reclaimed(&mut self, outcome: &mut Result<Reservation, Error>) {
        if let Ok(granted) = outcome
            && !self.reclaimed.is_empty()
        {
            granted.expired = std::mem::take(&mut self.reclaimed);
        }
    }

    /// The reserve rules without their effect (shared by reserve and the dry run `check_at`):
    /// the path must be open and every unit must fit on every node. Returns the node with the
    /// least soft room if the cost passes a soft limit.
    #[inline]
    pub(super) fn admit(&self, leaf: u32, cost: &Cost) -> Result<Option<u32>, Error> {
        self.check_open(leaf)?;
        let mut over_soft = None;
        for unit in cost.units() {
            if let Some(index) = self.check_fits(leaf, unit, cost.minor(unit))? {
                over_soft.get_or_insert(index);
            }
        }
        Ok(over_soft)
    }

    /// The reserve rules and, when they grant, the new hold. A cost that exceeds a hard limit
    /// while a hold may have passed its deadline at `now` reclaims the expired holds first and
    /// is decided again; the reclaimed holds are reported with the reservation (or, if it is
    /// still denied, by a later operation).
    pub(super) fn try_reserve(
        &mut self,
        id: NodeId,
        cost: &Cost,
        expires: Timestamp,
        now: Option<Timestamp>,
    ) -> Result<Reservation, Error> {
        // A one-unit cost above zero is reservable; anything else is validated in full.
        let usual = cost.single_unit().filter(|unit| cost.minor(*unit) > 0);
        if usual.is_none() {
            cost.validate_reservable()?;
        }
        let leaf = self.live(id)?;
        let mut events = Crossings::new();
        // The usual reserve (one unit, an open path, room in the slab) checks and holds in one
        // walk; anything else, or a walk that meets anything but the plain case, takes the
        // exact path below, which decides and builds any error.
        if let Some(unit) = usual
            && self.restricted == 0
            && self.check_hold_room().is_ok()
            && let Some((over_soft, due)) = self.hold_on_path(leaf, unit, cost.minor(unit))
        {
            if due {
                self.scan_path(leaf, unit, Scan::Collect(&mut events));
            }
            return self.open_hold(leaf, *cost, over_soft, events, expires);
        }
        // A cost in several units (validated above: every amount above zero) holds the same
        // way, one walk per unit.
        if usual.is_none()
            && self.restricted == 0
            && self.check_hold_room().is_ok()
            && let Some((over_soft, due)) = self.hold_units_on_path(leaf, cost)
        {
            for unit in cost.units().filter(|unit| due & (1 << unit.index()) != 0) {
                self.scan_path(leaf, unit, Scan::Collect(&mut events));
            }
            return self.open_hold(leaf, *cost, over_soft, events, expires);
        }
        let over_soft = match self.admit(leaf, cost) {
            Err(Error::BudgetExceeded(_)) if self.may_reclaim(now) => {
                self.reclaim_expired(now.unwrap_or(Timestamp::MAX));
                self.admit(leaf, cost)?
            }
            admitted => admitted?,
        };
        self.check_hold_room()?;
        for unit in cost.units() {
            self.add_reserved(leaf, unit, cost.minor(unit), Scan::Collect(&mut events));
        }
        self.open_hold(leaf, *cost, over_soft, events, expires)
    }

    /// Holds as much of `unit` as the path has room for, between `min` and `max`; never expires.
    #[cfg(test)]
    pub(crate) fn reserve_up_to(
        &mut self,
        id: NodeId,
        min: Amount,
        max: Amount,
    ) -> Result<Reservation, Error> {
        self.reserve_up_to_at(id, min, max, Lease::NEVER)
    }

    /// Holds as much of `unit` as the path has room for, between `min` and `max`, until
    /// `lease.expires`. When not even `min` fits, expired holds are reclaimed first, as in
    /// [`Ledger::reserve_at`].
    pub(crate) fn reserve_up_to_at(
        &mut self,
        id: NodeId,
        min: Amount,
        max: Amount,
        lease: Lease,
    ) -> Result<Reservation, Error> {
        self.timed_begin(id, lease.now);
        self.check_rate(id, lease.now)?;
        // Assigned in place rather than through a `match` that moves the result (a copy).
        let mut outcome = self.try_reserve_up_to(id, min, max, lease.expires);
        if matches!(outcome, Err(Error::BudgetExceeded(_))) && self.may_reclaim(lease.now) {
            self.reclaim_expired(lease.now.unwrap_or(Timestamp::MAX));
            outcome = self.try_reserve_up_to(id, min, max, lease.expires);
        }
        if outcome.is_ok() {
            self.take_rate(id, lease.now);
        }
        self.timed_reserved(id, &mut outcome, lease.now);
        self.report_reclaimed(&mut outcome);
        outcome
    }

    pub(super) fn try_reserve_up_to(
        &mut self,
        id: NodeId,
        min: Amount,
        max: Amount,
        expires: Timestamp,
    ) -> Result<Reservation, Error> {
        min.same_unit(max, "reserve_up_to")?;
        Cost::from(min).validate_reservable()?;
        if min > max {
            return Err(Error::InvalidAmount {
                input: format!("{min}..={max}"),
                reason: AmountError::EmptyRange,
            });
        }
        let leaf = self.live(id)?;
        self.check_open(leaf)?;
        let unit = min.unit();
        let view = self.view(leaf, unit)?;
        let mut amount = max.minor_units();
        if let Some((room, index, cap)) = view.tightest {
            if room < min.minor_units() {
                return Err(self.exceeded(index, unit, cap, min.minor_units()));
            }
            amount = amount.min(room);
        }
        let over_soft = self.check_fits(leaf, unit, amount)?;
        self.check_hold_room()?;
        let mut events = Crossings::new();
        self.add_reserved(leaf, unit, amount, Scan::Collect(&mut events));
        let held = Cost::from(Amount::from_minor(amount, unit));
        self.open_hold(leaf, held, over_soft, events, expires)
    }

    /// Refuses a new hold once [`MAX_LIVE_HOLDS`] are live, before anything is charged: the
    /// slab never holds an index a snapshot or budget file of it could not be read back with.
    pub(super) fn check_hold_room(&self) -> Result<(), Error> {
        if self.free_holds.is_empty() && self.holds.len() >= MAX_LIVE_HOLDS as usize {
            return Err(Error::TooLarge {
                what: "live holds",
                size: u64::from(MAX_LIVE_HOLDS) + 1,
                limit: u64::from(MAX_LIVE_HOLDS),
            });
        }
        Ok(())
    }

    pub(super) fn open_hold(
        &mut self,
        leaf: u32,
        held: Cost,
        over_soft: Option<u32>,
        events: Crossings,
        expires: Timestamp,
    ) -> Result<Reservation, Error> {
        let serial = self.serial();
        let slot = match held.single_unit() {
            // The usual hold, written straight into its slot.
            Some(unit) => HoldSlot {
                serial,
                node: leaf,
                expires,
                amounts: Amounts::One {
                    unit,
                    held: held.minor(unit),
                    recorded: 0,
                },
            },
            None => {
                let hold = Hold {
                    node: leaf,
                    held,
                    recorded: held.zeroed(),
                    expires,
                };
                let mut slot = HoldSlot::free(serial);
                slot.set_reusing(&hold, &mut self.spare_costs);
                slot
            }
        };
        let index = place(
            &mut self.holds,
            &mut self.free_holds,
            slot,
            "open more than 2^32 holds",
        )?;
        self.node_mut(leaf).live_holds += 1;
        self.note_deadline(expires);
        Ok(Reservation {
            hold: HoldId::new(index, serial),
            held,
            over_soft_limit: over_soft.map(|index| self.node(index).path.clone()),
            events,
            expires_at: expires,
            // Holds a denial reclaimed to make room for this one (empty, no allocation, on
            // nearly every reserve).
            expired: std::mem::take(&mut self.reclaimed),
            replayed: false,
            top_ups: Vec::new(),
            top_up_caps: Vec::new(),
        })
    }
}
