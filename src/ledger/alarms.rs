//! Threshold alarm bookkeeping across the whole ledger (restore, unreported crossings).

use super::Ledger;
use crate::threshold::Crossings;

impl Ledger {
    /// Marks every threshold level the watched value has reached as reported, silently, on
    /// every account: what a restore from a snapshot does, so that a store rebuilt from its
    /// file (by log replay or from a snapshot) ends in the same alarm state either way and
    /// repeats no event.
    pub(crate) fn settle_alarms(&mut self) {
        for slot in &mut self.nodes {
            if let Some(node) = slot.node.as_mut() {
                for account in node.accounts.iter_mut() {
                    let effective = account.effective();
                    account
                        .alarm
                        .settle(effective.as_ref(), account.spent, account.reserved);
                }
            }
        }
    }

    /// Forgets crossings that could not be reported, so they fire at the next evaluation.
    pub(super) fn unmark(&mut self, crossings: &Crossings) {
        for crossing in crossings {
            let (index, unit, bit) = crossing.slot();
            if let Some(Some(node)) = self.nodes.get_mut(index as usize).map(|s| s.node.as_mut()) {
                let account = &mut node.accounts[unit.index()];
                let limit = account.effective();
                account.alarm.unmark(limit.as_ref(), bit);
            }
        }
    }
}
