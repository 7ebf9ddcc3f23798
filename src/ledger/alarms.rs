//! Threshold alarm bookkeeping across the whole ledger (restore, unreported crossings).

use super::Ledger;
use crate::threshold::Crossings;

impl Ledger {
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
