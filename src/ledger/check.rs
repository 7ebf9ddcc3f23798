//! The dry run of a reserve: the reserve's own rules ([`Ledger::admit`]) without its effect.

use super::Ledger;
use crate::amount::Unit;
use crate::check::{Check, Verdict};
use crate::clock::Timestamp;
use crate::cost::Cost;
use crate::error::{Error, Exceeded};
use crate::ids::NodeId;

impl Ledger {
    /// What `reserve_at(id, cost, ..)` would do at `now`, holding nothing (and taking no rate
    /// slot). Like a reserve, a
    /// check that would be denied by a hard limit first reclaims the holds expired at `now`;
    /// the check hands over every reclaimed hold not yet reported.
    pub(crate) fn check_at(
        &mut self,
        id: NodeId,
        cost: &Cost,
        now: Option<Timestamp>,
    ) -> Result<Check, Error> {
        cost.validate_reservable()?;
        let leaf = self.live(id)?;
        // The reserve's order: the rate limit first, then the money.
        let mut outcome = self
            .check_rate(id, now)
            .and_then(|()| self.admit(leaf, cost));
        if matches!(outcome, Err(Error::BudgetExceeded(_))) && self.may_reclaim(now) {
            self.reclaim_expired(now.unwrap_or(Timestamp::MAX));
            outcome = self.admit(leaf, cost);
        }
        let (verdict, over_soft) = match outcome {
            Ok(over_soft) => (Verdict::Fits, over_soft),
            Err(refusal) => (Verdict::from_refusal(refusal)?, None),
        };
        let limiting = cost
            .units()
            .filter_map(|unit| self.tightest(leaf, unit, cost.minor(unit)))
            .collect();
        Ok(Check {
            node: self.node(leaf).path.clone(),
            requested: *cost,
            verdict,
            limiting,
            over_soft_limit: over_soft.map(|index| self.node(index).path.clone()),
            expired: std::mem::take(&mut self.reclaimed),
            approvals: Vec::new(), // filled by `Budget::check`, which holds the rules
        })
    }

    /// The node on the path of `leaf` with the least room under a hard limit in `unit`.
    fn tightest(&self, leaf: u32, unit: Unit, requested: i64) -> Option<Exceeded> {
        let (_, index) = self
            .path_indices(leaf)
            .filter_map(|index| {
                let room = self.node(index).accounts[unit.index()].hard_room()?;
                Some((room, index))
            })
            .min_by_key(|(room, _)| *room)?;
        Some(self.exceeded_details(index, unit, requested))
    }
}
