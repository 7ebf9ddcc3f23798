//! Read-only views: balances and node information.

use super::Ledger;
use crate::amount::{Amount, Unit};
use crate::balance::{Balance, NodeInfo};
use crate::error::Error;
use crate::ids::NodeId;

impl Ledger {
    pub(super) fn balance_at(&self, index: u32, unit: Unit) -> Balance {
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
                .children()
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
            rate_limit: node.extras().rate.as_ref().map(|window| window.limit),
            burn_window: node.extras().burn.as_ref().map(|tracker| tracker.window),
            top_up: node.extras().top_up.as_ref().map(|state| state.rule),
        })
    }
}
