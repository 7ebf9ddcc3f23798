//! The money rules, as a pure state machine: no I/O, no clock, no locks, no user code.
//!
//! Every store that keeps the books in process (memory, file) drives one `Ledger`; a remote
//! backend re-implements these operations server-side and must pass the same conformance suite.
//! Each public method either changes nothing and returns an error, or applies its whole effect
//! (the one documented exception is a commit over its hold, which records the spend *and* reports
//! the overage; see [`OveragePolicy`]).

mod apply;
mod cancel;
mod check;
mod expiry;
mod hold_slot;
mod idempotency;
pub(crate) mod image;
mod period;
mod rate;
mod snapshot;
mod state;
#[cfg(test)]
mod tests;
mod top_up;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use crate::amount::{Amount, Unit};
use crate::balance::{Balance, NodeInfo};
use crate::clock::Timestamp;
use crate::cost::Cost;
use crate::error::{AmountError, Error, Exceeded};
use crate::expiry::ExpiredHold;
use crate::idempotency::HoldEnd;
use crate::ids::{HoldId, MAX_LIVE_HOLDS, NodeId};
use crate::node_state::NodeState;
use crate::policy::{Limit, LimitKind, Limits, OveragePolicy};
use crate::store::{Committed, Reservation};
use crate::threshold::{Alarm, Crossings, ThresholdCrossing};

pub(crate) use self::apply::INTERPRETER_VERSION;
pub(crate) use self::expiry::Lease;
use self::expiry::Tombstones;
use self::hold_slot::HoldSlot;
pub(crate) use self::idempotency::{Keyed, Remember, Request};

/// Longest node name accepted.
const MAX_NAME_LEN: usize = 128;

/// The books of one or more budget trees.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    nodes: Vec<NodeSlot>,
    free_nodes: Vec<u32>,
    by_path: HashMap<Arc<str>, NodeId>,
    holds: Vec<HoldSlot>,
    free_holds: Vec<u32>,
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

#[derive(Debug)]
struct NodeSlot {
    serial: u32,
    node: Option<Node>,
}

#[derive(Debug)]
struct Node {
    path: Arc<str>,
    parent: Option<u32>,
    children: Vec<u32>,
    accounts: [Account; Unit::COUNT],
    live_holds: u32,
    /// Active, frozen or closed (applies to the subtree).
    state: NodeState,
    /// The request rate limit and its recent requests, if any.
    rate: Option<Box<rate::RateWindow>>,
    /// The burn-rate buckets, if the node tracks its burn rate.
    burn: Option<Box<top_up::BurnTracker>>,
    /// The auto top-up rule and its counters, if any.
    top_up: Option<Box<top_up::TopUpState>>,
}

/// One node's figures in one unit, in minor units.
///
/// The account's own `limit` is the unit's first cap (it governs overage policy, debt, credits
/// and threshold levels). Further caps of the same unit with other periods (daily *and* weekly
/// *and* monthly) live in `more`, each an `Account` of its own with its own spent-this-period;
/// `reserved` is mirrored into each, `debt` stays here.
#[derive(Clone, Debug)]
struct Account {
    /// Change only through [`Account::set_limit`], which keeps the caps below in step. Boxed:
    /// a `Limit` is 144 bytes and most accounts (units a node does not limit) have none, while
    /// the reserve walk reads only the integer caps below (issue 16, node layout).
    limit_box: Option<Box<Limit>>,
    spent: i64,
    reserved: i64,
    debt: i64,
    /// Which threshold levels of `limit` are crossed, and when to look again.
    alarm: Alarm,
    /// `limit` as plain integers for the reserve walk: the hard cap (`i64::MAX` without one)
    /// and the soft cap (likewise).
    hard_cap: i64,
    soft_cap: i64,
    /// What the current period allows beyond the allocation (`limit.amount()`): carried in by a
    /// rollover, plus credits, minus debits, this period. Zero without a period; part of the caps.
    extra: i64,
    /// When the current period ends: `Timestamp::MAX` without a period, `period::NOT_STARTED`
    /// before the first `now` reached the account.
    period_end: Timestamp,
    /// The unit's further caps (other periods), if any: `None` keeps the one-cap account free of
    /// allocations and costs the reserve walk one pointer test.
    more: Option<Box<[Account]>>,
}

impl Default for Account {
    fn default() -> Self {
        Account {
            limit_box: None,
            spent: 0,
            reserved: 0,
            debt: 0,
            alarm: Alarm::default(),
            hard_cap: i64::MAX,
            soft_cap: i64::MAX,
            extra: 0,
            period_end: Timestamp::MAX,
            more: None,
        }
    }
}

/// What an operation does about threshold levels on the accounts it changes. Levels re-arm only
/// where spend can fall back below them (period resets, credits, new limits: see
/// [`Account::rearm`]), never on a reserve, release or commit.
pub(crate) enum Scan<'a> {
    /// Nothing: spend did not rise (a release), or it rose where the caller cannot report it
    /// and the next reporting operation does.
    Skip,
    /// Report the levels reached since they were last armed into the given list.
    Collect(&'a mut Crossings),
}

impl Account {
    /// The unit's first cap, if any.
    #[inline]
    fn limit(&self) -> Option<Limit> {
        self.limit_box.as_deref().copied()
    }

    /// The further caps of this unit (other periods); empty for the usual one-cap account.
    fn extras(&self) -> &[Account] {
        self.more.as_deref().unwrap_or(&[])
    }

    fn extras_mut(&mut self) -> &mut [Account] {
        self.more.as_deref_mut().unwrap_or(&mut [])
    }

    /// Every cap of the unit: this account's own, then the further ones.
    fn caps(&self) -> impl Iterator<Item = &Account> {
        std::iter::once(self).chain(self.extras())
    }

    /// Cap `position` of [`Account::caps`].
    fn cap(&self, position: usize) -> &Account {
        match position {
            0 => self,
            _ => &self.extras()[position - 1],
        }
    }

    /// Moves `delta` into (or out of) the holds, on every cap.
    #[inline]
    fn add_reserved(&mut self, delta: i64) {
        self.reserved += delta;
        if let Some(more) = self.more.as_deref_mut() {
            more.iter_mut().for_each(|cap| cap.reserved += delta);
        }
    }

    /// Records `delta` of spend on every cap (each counts it in its own period).
    #[inline]
    fn add_spent(&mut self, delta: i64) {
        self.spent += delta;
        if let Some(more) = self.more.as_deref_mut() {
            more.iter_mut().for_each(|cap| cap.spent += delta);
        }
    }

    /// Ends `outstanding` of a hold with `within` of it spent, on every cap, in one pass; returns
    /// whether spend has now reached a hard cap (any period's). What a commit does per node:
    /// [`Account::add_reserved`], [`Account::add_spent`] and [`Account::spent_out`] at once,
    /// testing for further caps once instead of three times.
    #[inline]
    fn settle(&mut self, outstanding: i64, within: i64) -> bool {
        self.reserved -= outstanding;
        self.spent += within;
        let mut out = self.spent >= self.hard_cap;
        if let Some(more) = self.more.as_deref_mut() {
            for cap in more.iter_mut() {
                cap.reserved -= outstanding;
                cap.spent += within;
                out |= cap.spent >= cap.hard_cap;
            }
        }
        out
    }

    /// Whether spend has reached a hard cap (any period's).
    #[inline]
    fn spent_out(&self) -> bool {
        self.spent >= self.hard_cap
            || self
                .more
                .as_deref()
                .is_some_and(|more| more.iter().any(|cap| cap.spent >= cap.hard_cap))
    }

    /// Fails with `Overflow` when `spent + reserved + debt + extra` leaves `i64` minor units, so
    /// that recording `extra` more spend cannot overflow any figure of this account.
    fn check_room_for_spend(&self, extra: i64) -> Result<(), Error> {
        let fits = |cap: &Account| {
            cap.spent
                .checked_add(cap.reserved)
                .and_then(|total| total.checked_add(self.debt))
                .and_then(|total| total.checked_add(extra))
                .is_some()
        };
        if self.caps().all(fits) {
            return Ok(());
        }
        Err(Error::Overflow {
            operation: "commit beyond i64 minor units",
        })
    }

    /// Sets the limit and the integer caps derived from it. A limit of another period (or none)
    /// drops the current period's extra and starts a new period at the next `now`.
    fn set_limit(&mut self, limit: Option<Limit>) {
        let period = limit.and_then(|limit| limit.period());
        if period.is_none() || self.limit().and_then(|old| old.period()) != period {
            self.extra = 0;
            self.period_end = match period {
                Some(_) => period::NOT_STARTED,
                None => Timestamp::MAX,
            };
        }
        self.limit_box = limit.map(Box::new);
        self.refresh_caps();
    }

    /// Recomputes the integer caps from the limit and the period's extra.
    fn refresh_caps(&mut self) {
        let allowance = self.allowance();
        let limit = self.limit();
        let cap = |kind| match limit {
            Some(limit) if limit.kind() == kind => allowance,
            _ => i64::MAX,
        };
        self.hard_cap = cap(LimitKind::Hard);
        self.soft_cap = cap(LimitKind::Soft);
    }

    /// What the limit allows in the current period: the allocation plus the period's extra
    /// (never negative; zero without a limit).
    fn allowance(&self) -> i64 {
        self.limit().map_or(0, |limit| {
            limit
                .amount()
                .minor_units()
                .saturating_add(self.extra)
                .max(0)
        })
    }

    /// The limit in force this period: `limit` with the allowance as its amount (thresholds are
    /// percents of it).
    fn effective(&self) -> Option<Limit> {
        let limit = self.limit()?;
        if self.extra == 0 {
            return Some(limit);
        }
        Some(limit.with_amount(Amount::from_minor(self.allowance(), limit.unit())))
    }

    /// Room under the allowance: `allowance − spent − reserved`, floored at zero.
    fn room(&self) -> i64 {
        (self.allowance() - self.spent - self.reserved).max(0)
    }

    /// The hot-path threshold check after the account changed: one comparison unless a level
    /// is due.
    #[inline]
    fn watch(&mut self, path: &Arc<str>, index: u32, unit: Unit, scan: &mut Scan<'_>) {
        if let Scan::Collect(out) = scan
            && self
                .alarm
                .due(self.alarm.watched(self.spent, self.reserved))
        {
            self.fire(path, index, unit, out);
        }
    }

    /// Re-arms the levels spend is now below (after spend fell or the allowance changed).
    fn rearm(&mut self) {
        let effective = self.effective();
        self.alarm.rearm(effective.as_ref(), self.spent);
    }

    #[cold]
    fn fire(&mut self, path: &Arc<str>, index: u32, unit: Unit, out: &mut Crossings) {
        let (spent, reserved) = (self.spent, self.reserved);
        let watched = self.alarm.watched(spent, reserved);
        match self.effective() {
            Some(limit) => self.alarm.fire(Some(&limit), watched, |bit, level| {
                out.push(ThresholdCrossing::new(
                    path.clone(),
                    index,
                    unit,
                    &limit,
                    spent,
                    reserved,
                    (bit, level),
                ));
            }),
            None => self.alarm = Alarm::IDLE,
        }
    }

    /// Room left under a hard limit; `None` for soft or no limit.
    fn hard_room(&self) -> Option<i64> {
        match self.limit() {
            Some(limit) if limit.kind() == LimitKind::Hard => {
                Some(self.allowance() - self.spent - self.reserved)
            }
            _ => None,
        }
    }

    /// The least room left under any hard cap of the unit (every period); `None` without one.
    fn hard_room_all(&self) -> Option<i64> {
        self.caps().filter_map(Account::hard_room).min()
    }

    /// Room left under a soft limit (may be negative); `None` for hard or no limit.
    fn soft_room(&self) -> Option<i64> {
        match self.limit() {
            Some(limit) if limit.kind() == LimitKind::Soft => {
                Some(self.allowance() - self.spent - self.reserved)
            }
            _ => None,
        }
    }

    fn is_active(&self) -> bool {
        self.limit().is_some() || self.spent != 0 || self.reserved != 0 || self.debt != 0
    }

    /// Takes `extra` of new spend: what fits under a hard limit is spent, the rest becomes debt.
    fn absorb(&mut self, extra: i64) {
        let fits = self
            .hard_room_all()
            .map_or(extra, |room| extra.min(room.max(0)));
        self.add_spent(fits);
        self.debt += extra - fits;
    }

    /// Repays debt out of `funds` newly added to the limit: what is repaid moves from debt to
    /// spent. Debt is never repaid out of room the node already had (under `Reject` that room was
    /// deliberately left alone), only out of new money.
    fn repay_debt(&mut self, funds: i64) {
        let repaid = self.debt.min(funds.max(0));
        self.debt -= repaid;
        self.add_spent(repaid);
    }
}

#[derive(Clone, Copy, Debug)]
struct Hold {
    node: u32,
    held: Cost,
    recorded: Cost,
    /// The deadline; past it, the hold may be reclaimed.
    expires: Timestamp,
}

impl Hold {
    fn outstanding(&self, unit: Unit) -> i64 {
        self.held.minor(unit) - self.recorded.minor(unit)
    }
}

/// What one walk up the path learns about a unit.
struct PathView {
    /// Smallest room under a hard limit, the node that has it and which of its caps
    /// ([`Account::cap`]).
    tightest: Option<(i64, u32, usize)>,
    /// Smallest room under a soft limit, and the node that has it.
    softest: Option<(i64, u32)>,
    /// Largest `spent + reserved + debt` on the path (for overflow checks).
    most_used: i128,
}

impl Ledger {
    pub(crate) fn new() -> Self {
        Ledger::default()
    }

    fn serial(&mut self) -> u32 {
        self.next_serial = self.next_serial.wrapping_add(1);
        self.next_serial
    }

    // ---- nodes -------------------------------------------------------------------------------

    fn node(&self, index: u32) -> &Node {
        self.nodes[index as usize]
            .node
            .as_ref()
            .expect("ledger invariant: a referenced node slot is occupied")
    }

    fn node_mut(&mut self, index: u32) -> &mut Node {
        self.nodes[index as usize]
            .node
            .as_mut()
            .expect("ledger invariant: a referenced node slot is occupied")
    }

    /// The slot index of a live node id.
    fn live(&self, id: NodeId) -> Result<u32, Error> {
        match self.nodes.get(id.index() as usize) {
            Some(slot) if slot.serial == id.serial() && slot.node.is_some() => Ok(id.index()),
            _ => Err(Error::UnknownNode {
                path: id.to_string(),
            }),
        }
    }

    pub(crate) fn resolve(&self, path: &str) -> Result<NodeId, Error> {
        self.by_path
            .get(path.trim_matches('/'))
            .copied()
            .ok_or_else(|| Error::UnknownNode {
                path: path.to_owned(),
            })
    }

    pub(crate) fn create_node(
        &mut self,
        parent: Option<NodeId>,
        name: &str,
        limits: &Limits,
    ) -> Result<NodeId, Error> {
        validate_name(name)?;
        let parent_index = parent.map(|id| self.live(id)).transpose()?;
        let path: Arc<str> = match parent_index {
            Some(index) => format!("{}/{name}", self.node(index).path).into(),
            None => name.into(),
        };
        let accounts = accounts_from(&path, limits)?;
        if self.by_path.contains_key(&path) {
            return Err(Error::DuplicateNode {
                path: path.to_string(),
            });
        }
        let node = Node {
            path: path.clone(),
            parent: parent_index,
            children: Vec::new(),
            accounts,
            live_holds: 0,
            state: NodeState::Active,
            rate: None,
            burn: None,
            top_up: None,
        };
        let serial = self.serial();
        let slot = NodeSlot {
            serial,
            node: Some(node),
        };
        let index = place(
            &mut self.nodes,
            &mut self.free_nodes,
            slot,
            "create more than 2^32 nodes",
        )?;
        if let Some(parent) = parent_index {
            self.node_mut(parent).children.push(index);
        }
        self.note_unstarted(index);
        let id = NodeId::new(index, serial);
        self.by_path.insert(path, id);
        Ok(id)
    }

    pub(crate) fn remove_node(&mut self, id: NodeId) -> Result<(), Error> {
        let index = self.live(id)?;
        let node = self.node(index);
        let Some(parent) = node.parent else {
            return Err(Error::RootRemoval {
                node: node.path.clone(),
            });
        };
        if !node.children.is_empty() || node.live_holds > 0 {
            return Err(Error::NodeInUse {
                node: node.path.clone(),
                children: node.children.len(),
                holds: node.live_holds as usize,
            });
        }
        let path = node.path.clone();
        let rate_limited = node.rate.is_some();
        if node.state != NodeState::Active {
            self.restricted -= 1;
        }
        if rate_limited {
            self.rate_limited -= 1;
        }
        self.forget_timed(index);
        self.node_mut(parent)
            .children
            .retain(|child| *child != index);
        self.by_path.remove(&path);
        self.nodes[index as usize].node = None;
        self.free_nodes.push(index);
        Ok(())
    }

    /// The slot indices from `leaf` up to its root.
    fn path_indices(&self, leaf: u32) -> impl Iterator<Item = u32> + '_ {
        std::iter::successors(Some(leaf), |index| self.node(*index).parent)
    }

    // ---- reserve -----------------------------------------------------------------------------

    /// Walks the path once for `unit`: debt, the tightest hard room, soft room, overflow headroom.
    fn view(&self, leaf: u32, unit: Unit) -> Result<PathView, Error> {
        let mut view = PathView {
            tightest: None,
            softest: None,
            most_used: 0,
        };
        for index in self.path_indices(leaf) {
            let node = self.node(index);
            if let Some(owed) = Unit::ALL
                .into_iter()
                .find(|owed| node.accounts[owed.index()].debt > 0)
            {
                return Err(Error::InDebt {
                    node: node.path.clone(),
                    debt: Amount::from_minor(node.accounts[owed.index()].debt, owed),
                });
            }
            let account = &node.accounts[unit.index()];
            for (position, cap) in account.caps().enumerate() {
                if let Some(room) = cap.hard_room()
                    && view.tightest.is_none_or(|(least, _, _)| room < least)
                {
                    view.tightest = Some((room, index, position));
                }
                if let Some(room) = cap.soft_room()
                    && view.softest.is_none_or(|(least, _)| room < least)
                {
                    view.softest = Some((room, index));
                }
                let used =
                    i128::from(cap.spent) + i128::from(cap.reserved) + i128::from(account.debt);
                view.most_used = view.most_used.max(used);
            }
        }
        Ok(view)
    }

    fn exceeded(&self, index: u32, unit: Unit, cap: usize, requested: i64) -> Error {
        Error::BudgetExceeded(Box::new(self.exceeded_details(index, unit, cap, requested)))
    }

    /// The figures of cap `cap` ([`Account::cap`]) of node `index` in `unit`, for a request of
    /// `requested`.
    fn exceeded_details(&self, index: u32, unit: Unit, cap: usize, requested: i64) -> Exceeded {
        let node = self.node(index);
        let account = node.accounts[unit.index()].cap(cap);
        let limit = account.allowance();
        Exceeded {
            node: node.path.clone(),
            limit: Amount::from_minor(limit, unit),
            spent: Amount::from_minor(account.spent, unit),
            reserved: Amount::from_minor(account.reserved, unit),
            requested: Amount::from_minor(requested, unit),
            period: account.limit().and_then(|limit| limit.period()),
        }
    }

    /// Checks that `amount` of `unit` can be added to the reserved total of every node on the
    /// path; returns the node with the least soft room if the amount passes its soft limit.
    ///
    /// The hot path: plain integer compares per node. Whenever anything is off (debt, no room,
    /// overflow), [`Ledger::check_fits_exactly`] decides and builds the error, so both paths
    /// give the same answer. A unit no node limits is simply tracked (every unit is ledgered).
    #[inline]
    fn check_fits(&self, leaf: u32, unit: Unit, amount: i64) -> Result<Option<u32>, Error> {
        let mut least_soft = (i64::MAX, leaf);
        let mut index = leaf;
        loop {
            let node = self.node(index);
            let in_debt = node.accounts.iter().fold(0, |owed, a| owed | a.debt) != 0;
            let account = &node.accounts[unit.index()];
            let used = account.spent.checked_add(account.reserved);
            let total = used
                .and_then(|used| used.checked_add(account.debt))
                .and_then(|total| total.checked_add(amount));
            let (Some(used), Some(_)) = (used, total) else {
                return self.check_fits_exactly(leaf, unit, amount);
            };
            if in_debt || used + amount > account.hard_cap {
                return self.check_fits_exactly(leaf, unit, amount);
            }
            if let Some(more) = account.more.as_deref() {
                // Further caps (other periods): every one must have room too.
                for cap in more {
                    let used = cap.spent.saturating_add(cap.reserved);
                    if used.saturating_add(amount) > cap.hard_cap {
                        return self.check_fits_exactly(leaf, unit, amount);
                    }
                    let soft_room = cap.soft_cap.saturating_sub(used);
                    if soft_room < least_soft.0 {
                        least_soft = (soft_room, index);
                    }
                }
            }
            let soft_room = account.soft_cap - used;
            if soft_room < least_soft.0 {
                least_soft = (soft_room, index);
            }
            match node.parent {
                Some(parent) => index = parent,
                None => break,
            }
        }
        Ok((amount > least_soft.0).then_some(least_soft.1))
    }

    /// The reference form of [`Ledger::check_fits`]: one [`PathView`] walk with full error
    /// details (the tightest hard limit is the one named in `BudgetExceeded`).
    #[cold]
    fn check_fits_exactly(&self, leaf: u32, unit: Unit, amount: i64) -> Result<Option<u32>, Error> {
        let view = self.view(leaf, unit)?;
        if let Some((room, index, cap)) = view.tightest
            && amount > room
        {
            return Err(self.exceeded(index, unit, cap, amount));
        }
        if view.most_used + i128::from(amount) > i128::from(i64::MAX) {
            return Err(Error::Overflow {
                operation: "reserve beyond i64 minor units",
            });
        }
        Ok(view
            .softest
            .and_then(|(room, index)| (amount > room).then_some(index)))
    }

    fn add_reserved(&mut self, leaf: u32, unit: Unit, delta: i64, mut scan: Scan<'_>) {
        let mut next = Some(leaf);
        while let Some(index) = next {
            let Node {
                accounts,
                path,
                parent,
                ..
            } = self.node_mut(index);
            let account = &mut accounts[unit.index()];
            account.add_reserved(delta);
            account.watch(path, index, unit, &mut scan);
            next = *parent;
        }
    }

    /// Evaluates the thresholds of `unit` on the path of `leaf` without changing figures.
    fn scan_path(&mut self, leaf: u32, unit: Unit, mut scan: Scan<'_>) {
        let mut next = Some(leaf);
        while let Some(index) = next {
            let Node {
                accounts,
                path,
                parent,
                ..
            } = self.node_mut(index);
            accounts[unit.index()].watch(path, index, unit, &mut scan);
            next = *parent;
        }
    }

    /// Forgets crossings that could not be reported, so they fire at the next evaluation.
    fn unmark(&mut self, crossings: &Crossings) {
        for crossing in crossings {
            let (index, unit, bit) = crossing.slot();
            if let Some(Some(node)) = self.nodes.get_mut(index as usize).map(|s| s.node.as_mut()) {
                let account = &mut node.accounts[unit.index()];
                let limit = account.effective();
                account.alarm.unmark(limit.as_ref(), bit);
            }
        }
    }

    /// Holds `cost` on `node` and every ancestor, or nothing at all; the hold never expires.
    #[cfg(test)]
    pub(crate) fn reserve(&mut self, id: NodeId, cost: &Cost) -> Result<Reservation, Error> {
        self.reserve_at(id, cost, Lease::NEVER)
    }

    /// Holds `cost` on `node` and every ancestor, or nothing at all, until `lease.expires`. A
    /// reserve that would be denied first reclaims the holds expired at `lease.now`, then checks
    /// again.
    pub(crate) fn reserve_at(
        &mut self,
        id: NodeId,
        cost: &Cost,
        lease: Lease,
    ) -> Result<Reservation, Error> {
        self.timed_begin(id, lease.now);
        // Rate first, read-only: a rate denial holds nothing; a budget denial takes no slot.
        self.check_rate(id, lease.now)?;
        // Assigned in place rather than through a `match` that moves the result (a copy).
        let mut outcome = self.try_reserve(id, cost, lease.expires);
        if matches!(outcome, Err(Error::BudgetExceeded(_))) && self.may_reclaim(lease.now) {
            self.reclaim_expired(lease.now.unwrap_or(Timestamp::MAX));
            outcome = self.try_reserve(id, cost, lease.expires);
        }
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
    fn report_reclaimed(&mut self, outcome: &mut Result<Reservation, Error>) {
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
    fn admit(&self, leaf: u32, cost: &Cost) -> Result<Option<u32>, Error> {
        self.check_open(leaf)?;
        let mut over_soft = None;
        for unit in cost.units() {
            if let Some(index) = self.check_fits(leaf, unit, cost.minor(unit))? {
                over_soft.get_or_insert(index);
            }
        }
        Ok(over_soft)
    }

    fn try_reserve(
        &mut self,
        id: NodeId,
        cost: &Cost,
        expires: Timestamp,
    ) -> Result<Reservation, Error> {
        cost.validate_reservable()?;
        let leaf = self.live(id)?;
        let over_soft = self.admit(leaf, cost)?;
        self.check_hold_room()?;
        let mut events = Crossings::new();
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

    fn try_reserve_up_to(
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
    fn check_hold_room(&self) -> Result<(), Error> {
        if self.free_holds.is_empty() && self.holds.len() >= MAX_LIVE_HOLDS as usize {
            return Err(Error::TooLarge {
                what: "live holds",
                size: u64::from(MAX_LIVE_HOLDS) + 1,
                limit: u64::from(MAX_LIVE_HOLDS),
            });
        }
        Ok(())
    }

    fn open_hold(
        &mut self,
        leaf: u32,
        held: Cost,
        over_soft: Option<u32>,
        events: Crossings,
        expires: Timestamp,
    ) -> Result<Reservation, Error> {
        let serial = self.serial();
        let hold = Hold {
            node: leaf,
            held,
            recorded: held.zeroed(),
            expires,
        };
        let slot = HoldSlot::live(serial, &hold);
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
            expired: Vec::new(),
            replayed: false,
            top_ups: Vec::new(),
            top_up_caps: Vec::new(),
        })
    }

    // ---- holds -------------------------------------------------------------------------------

    fn hold(&self, id: HoldId) -> Result<Hold, Error> {
        self.holds
            .get(id.index() as usize)
            .filter(|slot| slot.serial == id.serial())
            .and_then(HoldSlot::hold)
            .ok_or(Error::UnknownHold { hold: id })
    }

    fn set_hold(&mut self, id: HoldId, hold: Hold) {
        self.holds[id.index() as usize].set(&hold);
    }

    fn close_hold(&mut self, id: HoldId, hold: &Hold, how: HoldEnd) {
        self.keys.hold_ended(id, how);
        self.holds[id.index() as usize].clear();
        self.free_holds.push(id.index());
        self.node_mut(hold.node).live_holds -= 1;
    }

    /// A commit names every unit the hold holds; it may name more (a provider's token count
    /// booked with a dollar hold): a unit the hold did not hold counts as held at zero, so its
    /// whole amount is an overage under the governing policy (plain spend where nothing limits
    /// that unit).
    fn check_units(hold: &Hold, given: &Cost, context: &'static str) -> Result<(), Error> {
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
            let mut next = Some(hold.node);
            while let Some(index) = next {
                let node = self.node_mut(index);
                let account = &mut node.accounts[unit.index()];
                account.add_reserved(-amount);
                account.add_spent(amount);
                exhausted |= account.spent_out();
                next = node.parent;
            }
            hold.recorded.set(unit, hold.recorded.minor(unit) + amount);
        }
        if exhausted {
            self.bump_epoch();
        }
        self.set_hold(id, hold);
        Ok(())
    }

    /// Ends a hold with its actual total cost. See [`OveragePolicy`] for costs above the hold.
    pub(crate) fn commit(&mut self, id: HoldId, actual: &Cost) -> Result<Committed, Error> {
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
            let mut next = Some(hold.node);
            while let Some(index) = next {
                let Node {
                    accounts,
                    path,
                    parent,
                    ..
                } = self.node_mut(index);
                let account = &mut accounts[unit.index()];
                exhausted |= account.settle(outstanding, within);
                account.watch(path, index, unit, &mut Scan::Collect(&mut committed.events));
                next = *parent;
            }
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

    #[cold]
    fn check_overage_fits(&self, leaf: u32, unit: Unit, extra: i64) -> Result<(), Error> {
        for index in self.path_indices(leaf) {
            let account = &self.node(index).accounts[unit.index()];
            account.check_room_for_spend(extra)?;
        }
        Ok(())
    }

    /// Records `excess` spend above a hold on the path of `leaf` under the governing overage
    /// policy. Returns `Some(debt this charge recorded)` if the policy rejects the overage: the
    /// most debt any node on the path took on from this charge, not what it owed before.
    fn charge_overage(&mut self, leaf: u32, unit: Unit, excess: i64) -> Option<i64> {
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

    /// Ends a hold without spending its outstanding part. `Ok(false)` if it was not live.
    pub(crate) fn release(&mut self, id: HoldId) -> Result<bool, Error> {
        let Ok(hold) = self.hold(id) else {
            return Ok(false);
        };
        for unit in hold.held.units() {
            self.add_reserved(hold.node, unit, -hold.outstanding(unit), Scan::Skip);
        }
        self.close_hold(id, &hold, HoldEnd::Released);
        Ok(true)
    }

    // ---- limits and funds --------------------------------------------------------------------

    fn check_limit_covers(node: &Node, limit: &Limit) -> Result<(), Error> {
        let unit_account = &node.accounts[limit.unit().index()];
        let account = unit_account.cap(cap_for(unit_account, limit));
        // A limit of the same period keeps the period's extra (see `Account::set_limit`).
        let mut after = Account {
            more: None,
            ..account.clone()
        };
        after.set_limit(Some(*limit));
        let allowance = after.allowance();
        if limit.kind() == LimitKind::Hard && allowance < account.spent + account.reserved {
            return Err(Error::LimitBelowUsage {
                node: node.path.clone(),
                unit: limit.unit(),
                requested_limit: Amount::from_minor(allowance, limit.unit()),
                spent: Amount::from_minor(account.spent, limit.unit()),
                reserved: Amount::from_minor(account.reserved, limit.unit()),
            });
        }
        Ok(())
    }

    /// Sets (or adds) the node's limit in `limit.unit()`: the cap of the same period when the
    /// unit has several, else the unit's first cap. Raising the first cap repays debt out of the
    /// added amount first.
    pub(crate) fn set_limit(&mut self, id: NodeId, limit: Limit) -> Result<Balance, Error> {
        let index = self.live(id)?;
        let node = self.node(index);
        limit.validate()?;
        Self::check_limit_covers(node, &limit)?;
        let position = cap_for(&node.accounts[limit.unit().index()], &limit);
        if position > 0 {
            // A further cap: its own figures only (debt and levels live on the first cap).
            limit.validate_as_further_cap()?;
            self.bump_epoch();
            let account = &mut self.node_mut(index).accounts[limit.unit().index()];
            account.extras_mut()[position - 1].set_limit(Some(limit));
            self.note_unstarted(index);
            return Ok(self.balance_at(index, limit.unit()));
        }
        self.bump_epoch();
        let account = &mut self.node_mut(index).accounts[limit.unit().index()];
        let added = account.limit().map_or(0, |old| {
            limit.amount().minor_units() - old.amount().minor_units()
        });
        let same_levels = account
            .limit()
            .is_some_and(|old| old.thresholds() == limit.thresholds());
        account.set_limit(Some(limit));
        account.repay_debt(added);
        // A raised limit re-arms levels spend is now below; a lowered one leaves the levels it
        // passes to the next operation on the path, which reports them. New levels (or a new
        // basis) start armed.
        if same_levels {
            account.rearm();
        } else {
            let effective = account.effective();
            account.alarm.reset(effective.as_ref());
        }
        self.note_unstarted(index);
        Ok(self.balance_at(index, limit.unit()))
    }

    /// Drops the node's limit in `unit`; it keeps tracking spend, and any debt becomes spent.
    pub(crate) fn remove_limit(&mut self, id: NodeId, unit: Unit) -> Result<Balance, Error> {
        let index = self.live(id)?;
        self.bump_epoch();
        let account = &mut self.node_mut(index).accounts[unit.index()];
        account.more = None;
        account.set_limit(None);
        // Without a limit nothing is "beyond the limit": the debt is plain spend now.
        account.repay_debt(account.debt);
        account.alarm = Alarm::IDLE;
        Ok(self.balance_at(index, unit))
    }

    fn limit_of(&self, index: u32, unit: Unit) -> Result<Limit, Error> {
        let node = self.node(index);
        node.accounts[unit.index()]
            .limit()
            .ok_or_else(|| Error::UnitNotBudgeted {
                node: node.path.clone(),
                unit,
            })
    }

    /// Adds funds: raises the limit by `amount`, repaying debt first.
    pub(crate) fn credit(&mut self, id: NodeId, amount: Amount) -> Result<Balance, Error> {
        Cost::from(amount).validate_reservable()?;
        let index = self.live(id)?;
        let limit = self.limit_of(index, amount.unit())?;
        if limit.period().is_some() {
            return self.fund_period(index, amount, true);
        }
        let raised = limit.amount().checked_add(amount)?;
        self.set_limit(id, limit.with_amount(raised))
    }

    /// Removes funds: lowers the limit by `amount`, never below what is spent and held.
    pub(crate) fn debit(&mut self, id: NodeId, amount: Amount) -> Result<Balance, Error> {
        Cost::from(amount).validate_reservable()?;
        let index = self.live(id)?;
        let limit = self.limit_of(index, amount.unit())?;
        if limit.period().is_some() {
            return self.fund_period(index, amount, false);
        }
        let lowered = limit.amount().minor_units() - amount.minor_units();
        if lowered < 0 {
            let account = &self.node(index).accounts[amount.unit().index()];
            return Err(Error::LimitBelowUsage {
                node: self.node(index).path.clone(),
                unit: amount.unit(),
                requested_limit: Amount::zero(amount.unit()),
                spent: Amount::from_minor(account.spent, amount.unit()),
                reserved: Amount::from_minor(account.reserved, amount.unit()),
            });
        }
        self.set_limit(
            id,
            limit.with_amount(Amount::from_minor(lowered, amount.unit())),
        )
    }

    // ---- inspection --------------------------------------------------------------------------

    fn balance_at(&self, index: u32, unit: Unit) -> Balance {
        let node = self.node(index);
        let account = &node.accounts[unit.index()];
        let mut balance = Balance {
            node: node.path.clone(),
            unit,
            limit: account.limit(),
            spent: Amount::from_minor(account.spent, unit),
            reserved: Amount::from_minor(account.reserved, unit),
            debt: Amount::from_minor(account.debt, unit),
            // A node owing debt (in any unit) refuses every reserve: nothing remains.
            remaining: account.limit().map(|_| {
                let in_debt = node.accounts.iter().any(|owed| owed.debt > 0);
                Amount::from_minor(if in_debt { 0 } else { account.room() }, unit)
            }),
            allowance: account
                .limit()
                .map(|_| Amount::from_minor(account.allowance(), unit)),
            resets_at: account.resets_at(),
            burn_rate: None,
            depletes_at: None,
        };
        self.fill_burn(index, &mut balance, None);
        balance
    }

    pub(crate) fn balance(&self, id: NodeId, unit: Unit) -> Result<Balance, Error> {
        Ok(self.balance_at(self.live(id)?, unit))
    }

    pub(crate) fn node_info(&self, id: NodeId) -> Result<NodeInfo, Error> {
        let index = self.live(id)?;
        let node = self.node(index);
        Ok(NodeInfo {
            path: node.path.clone(),
            parent: node.parent.map(|parent| self.node(parent).path.clone()),
            children: node
                .children
                .iter()
                .map(|child| self.node(*child).path.clone())
                .collect(),
            balances: Unit::ALL
                .into_iter()
                .filter(|unit| node.accounts[unit.index()].is_active())
                .map(|unit| self.balance_at(index, unit))
                .collect(),
            live_holds: node.live_holds as usize,
            state: node.state,
            rate_limit: node.rate.as_ref().map(|window| window.limit),
            burn_window: node.burn.as_ref().map(|tracker| tracker.window),
            top_up: node.top_up.as_ref().map(|state| state.rule),
        })
    }

    /// Live node ids, parents before children (creation order within a parent).
    pub(crate) fn nodes_in_order(&self) -> Vec<u32> {
        let mut order: Vec<u32> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.node.as_ref().is_some_and(|node| node.parent.is_none()))
            .map(|(index, _)| index as u32)
            .collect();
        let mut next = 0;
        while next < order.len() {
            let children = self.node(order[next]).children.clone();
            order.extend(children);
            next += 1;
        }
        order
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

pub(crate) fn validate_name(name: &str) -> Result<(), Error> {
    let reason = if name.is_empty() {
        Some("names cannot be empty")
    } else if name.contains('/') {
        Some("names cannot contain '/' (it separates path segments)")
    } else if name == "." || name == ".." {
        Some("'.' and '..' are reserved")
    } else if name.len() > MAX_NAME_LEN {
        Some("names are at most 128 bytes")
    } else if name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        Some("names cannot contain whitespace or control characters")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Which cap of `account` a new `limit` replaces ([`Account::cap`]): the one with the same
/// period, else the account's own (first) cap.
fn cap_for(account: &Account, limit: &Limit) -> usize {
    let period = limit.period();
    if account.limit().is_none_or(|own| own.period() == period) {
        return 0;
    }
    account
        .extras()
        .iter()
        .position(|cap| cap.limit().is_some_and(|other| other.period() == period))
        .map_or(0, |position| position + 1)
}

fn accounts_from(path: &str, limits: &Limits) -> Result<[Account; Unit::COUNT], Error> {
    limits.validate(path)?;
    let mut accounts: [Account; Unit::COUNT] = std::array::from_fn(|_| Account::default());
    for limit in limits.iter() {
        let account = &mut accounts[limit.unit().index()];
        if account.limit().is_none() {
            account.set_limit(Some(*limit));
            account.alarm.reset(Some(limit));
            continue;
        }
        // A further cap of the unit (another period; `validate` refused a second one of the
        // same period).
        let mut cap = Account {
            alarm: Alarm::IDLE,
            ..Account::default()
        };
        cap.set_limit(Some(*limit));
        let mut more = account.more.take().map(Vec::from).unwrap_or_default();
        more.push(cap);
        account.more = Some(more.into_boxed_slice());
    }
    Ok(accounts)
}
