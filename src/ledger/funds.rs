//! Limits and funds: setting and removing limits, credits and debits.

use super::account::cap_for;
use super::{Ledger, Node};
use crate::amount::{Amount, Unit};
use crate::balance::Balance;
use crate::cost::Cost;
use crate::error::Error;
use crate::ids::NodeId;
use crate::policy::{Limit, LimitKind};
use crate::threshold::Alarm;

impl Ledger {
    pub(super) fn check_limit_covers(node: &Node, limit: &Limit) -> Result<(), Error> {
        let unit_account = &node.accounts[limit.unit().index()];
        let account = unit_account.cap(cap_for(unit_account, limit));
        // A limit of the same period keeps the period's extra (see `Account::set_limit`).
        let mut after = account.clone();
        after.set_more(None);
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
        account.set_more(None);
        account.set_limit(None);
        // Without a limit nothing is "beyond the limit": the debt is plain spend now.
        account.repay_debt(account.debt);
        account.alarm = Alarm::IDLE;
        Ok(self.balance_at(index, unit))
    }

    pub(super) fn limit_of(&self, index: u32, unit: Unit) -> Result<Limit, Error> {
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
}
