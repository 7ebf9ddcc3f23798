//! Walks up a node's path: whether an amount fits every node, and the `BudgetExceeded`
//! figures when it does not; moving reserved amounts and scanning thresholds along the path.

use super::{Account, Ledger, Node, Scan};
use crate::amount::{Amount, Unit};
use crate::cost::Cost;
use crate::error::{Error, Exceeded};

/// What one walk up the path learns about a unit.
pub(super) struct PathView {
    /// Smallest room under a hard limit, the node that has it and which of its caps
    /// ([`Account::cap`]).
    pub(super) tightest: Option<(i64, u32, usize)>,
    /// Smallest room under a soft limit, and the node that has it.
    pub(super) softest: Option<(i64, u32)>,
    /// Largest `spent + reserved + debt` on the path (for overflow checks).
    pub(super) most_used: i128,
}

impl Ledger {
    /// Walks the path once for `unit`: debt, the tightest hard room, soft room, overflow headroom.
    pub(super) fn view(&self, leaf: u32, unit: Unit) -> Result<PathView, Error> {
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

    pub(super) fn exceeded(&self, index: u32, unit: Unit, cap: usize, requested: i64) -> Error {
        Error::BudgetExceeded(Box::new(self.exceeded_details(index, unit, cap, requested)))
    }

    /// The figures of cap `cap` ([`Account::cap`]) of node `index` in `unit`, for a request of
    /// `requested`.
    pub(super) fn exceeded_details(
        &self,
        index: u32,
        unit: Unit,
        cap: usize,
        requested: i64,
    ) -> Exceeded {
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
    pub(super) fn check_fits(
        &self,
        leaf: u32,
        unit: Unit,
        amount: i64,
    ) -> Result<Option<u32>, Error> {
        let mut least_soft = (i64::MAX, leaf);
        let mut index = leaf;
        loop {
            let node = self.node(index);
            let in_debt = node.accounts.owe();
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
            if let Some(more) = account.more() {
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
    pub(super) fn check_fits_exactly(
        &self,
        leaf: u32,
        unit: Unit,
        amount: i64,
    ) -> Result<Option<u32>, Error> {
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

    /// The reserve's one walk (issue 16): checks that `amount` of `unit` fits each node on the
    /// path of `leaf` and adds it to the node's holds in the same step, leaf to root.
    ///
    /// Returns the node with the least soft room if the amount passes its soft limit, and
    /// whether a threshold level became due on some node (the caller then fires it with
    /// [`Ledger::scan_path`]: the figures it reads are the ones this walk left). Returns `None`,
    /// with every node it had changed put back, as soon as a node is not the plain case (debt,
    /// further caps, no room, overflow): the caller then takes the exact two-pass path
    /// ([`Ledger::check_fits`], [`Ledger::add_reserved`]), which decides and builds any error,
    /// so both paths give the same answer.
    #[inline]
    pub(super) fn hold_on_path(
        &mut self,
        leaf: u32,
        unit: Unit,
        amount: i64,
    ) -> Option<(Option<u32>, bool)> {
        let mut least_soft = (i64::MAX, leaf);
        let mut due = false;
        let mut index = leaf;
        loop {
            let node = self.node_mut(index);
            let in_debt = node.accounts.owe();
            let account = &mut node.accounts[unit.index()];
            // Without debt (else the exact path decides), `used + amount` is the whole total
            // an overflow check needs.
            let room = account
                .spent
                .checked_add(account.reserved)
                .filter(|used| {
                    used.checked_add(amount)
                        .is_some_and(|after| after <= account.hard_cap)
                })
                .filter(|_| !in_debt && account.more().is_none());
            let Some(used) = room else {
                self.unhold_below(leaf, index, unit, amount);
                return None;
            };
            let soft_room = account.soft_cap - used;
            if soft_room < least_soft.0 {
                least_soft = (soft_room, index);
            }
            account.reserved += amount;
            due |= account
                .alarm
                .due(account.alarm.watched(account.spent, account.reserved));
            match node.parent {
                Some(parent) => index = parent,
                None => break,
            }
        }
        Some(((amount > least_soft.0).then_some(least_soft.1), due))
    }

    /// [`Ledger::hold_on_path`] for every unit of a cost in several units (a priced call holds
    /// dollars, tokens and a request): one walk per unit, every amount above zero. Returns the
    /// soft-limit node of the first unit (in unit order) that passes one, as the exact path's
    /// [`Ledger::admit`] does, and which units have a threshold level due (bit `unit.index()`).
    /// `None`, with every unit already held taken back, as soon as one walk meets anything but
    /// the plain case; the caller then takes the exact path.
    pub(super) fn hold_units_on_path(
        &mut self,
        leaf: u32,
        cost: &Cost,
    ) -> Option<(Option<u32>, u8)> {
        let (mut over_soft, mut due, mut held) = (None, 0_u8, 0_u8);
        for unit in cost.units() {
            let amount = cost.minor(unit);
            let Some((soft, unit_due)) = self.hold_on_path(leaf, unit, amount) else {
                for done in cost.units().filter(|done| held & (1 << done.index()) != 0) {
                    self.change_path(leaf, done, Scan::Skip, |account| {
                        account.reserved -= cost.minor(done);
                    });
                }
                return None;
            };
            over_soft = over_soft.or(soft);
            due |= u8::from(unit_due) << unit.index();
            held |= 1 << unit.index();
        }
        Some((over_soft, due))
    }

    /// Takes `amount` of `unit` back out of the holds of the nodes from `leaf` up to (not
    /// including) `stop`: undoes a [`Ledger::hold_on_path`] walk that stopped there.
    #[cold]
    fn unhold_below(&mut self, leaf: u32, stop: u32, unit: Unit, amount: i64) {
        let mut index = leaf;
        while index != stop {
            let node = self.node_mut(index);
            node.accounts[unit.index()].reserved -= amount;
            index = node
                .parent
                .expect("ledger invariant: the walk stopped on the path of its leaf");
        }
    }

    pub(super) fn add_reserved(&mut self, leaf: u32, unit: Unit, delta: i64, scan: Scan<'_>) {
        self.change_path(leaf, unit, scan, |account| account.add_reserved(delta));
    }

    /// Evaluates the thresholds of `unit` on the path of `leaf` without changing figures.
    pub(super) fn scan_path(&mut self, leaf: u32, unit: Unit, scan: Scan<'_>) {
        self.change_path(leaf, unit, scan, |_| {});
    }

    /// The one mutable walk up the path of `leaf`, leaf to root: `change` each node's account
    /// in `unit`, then watch its threshold levels (into `scan`) with the figures changed, so
    /// crossings come leaf first. Reserving, settling a commit and scanning all walk this way.
    #[inline]
    pub(super) fn change_path(
        &mut self,
        leaf: u32,
        unit: Unit,
        mut scan: Scan<'_>,
        mut change: impl FnMut(&mut Account),
    ) {
        let mut next = Some(leaf);
        while let Some(index) = next {
            let Node {
                accounts,
                path,
                parent,
                ..
            } = self.node_mut(index);
            let account = &mut accounts[unit.index()];
            change(account);
            account.watch(path, index, unit, &mut scan);
            next = *parent;
        }
    }
}
