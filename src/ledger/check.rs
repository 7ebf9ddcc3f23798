//! The dry run of a reserve: the reserve's own rules ([`Ledger::admit`]) without its effect.

use super::{Account, Ledger};
use crate::amount::{Amount, Unit};
use crate::balance::Balance;
use crate::check::{Check, LimitStatus, Verdict};
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
            limits: self.limit_statuses(leaf, cost),
        })
    }

    /// Every limit on the path of `leaf` (leaf first; per node in unit order, each unit's caps
    /// in order), plus the request's units a node only tracks.
    fn limit_statuses(&self, leaf: u32, cost: &Cost) -> Vec<LimitStatus> {
        let mut out = Vec::new();
        for index in self.path_indices(leaf) {
            let node = self.node(index);
            for unit in Unit::ALL {
                let account = &node.accounts[unit.index()];
                let requested = cost.minor(unit);
                if account.limit().is_none() {
                    if cost.has(unit) {
                        out.push(LimitStatus {
                            balance: self.balance_at(index, unit),
                            requested: Amount::from_minor(requested, unit),
                            refuses: false,
                        });
                    }
                    continue;
                }
                for (position, cap) in account.caps().enumerate() {
                    let balance = match position {
                        0 => self.balance_at(index, unit),
                        _ => further_cap_balance(node.path.clone(), cap, unit),
                    };
                    out.push(LimitStatus {
                        balance,
                        requested: Amount::from_minor(requested, unit),
                        refuses: cap.hard_room().is_some_and(|room| requested > room),
                    });
                }
            }
        }
        out
    }

    /// The node on the path of `leaf` with the least room under a hard limit in `unit`.
    fn tightest(&self, leaf: u32, unit: Unit, requested: i64) -> Option<Exceeded> {
        let (_, index, cap) = self
            .path_indices(leaf)
            .flat_map(|index| {
                let account = &self.node(index).accounts[unit.index()];
                account
                    .caps()
                    .enumerate()
                    .filter_map(move |(cap, account)| Some((account.hard_room()?, index, cap)))
            })
            .min_by_key(|(room, _, _)| *room)?;
        Some(self.exceeded_details(index, unit, cap, requested))
    }
}

/// The figures of a unit's further cap (another period) as a [`Balance`]: its own spend,
/// allowance and reset; the holds it shares with the unit's first cap; no debt (that is kept
/// against the first cap).
fn further_cap_balance(node: std::sync::Arc<str>, cap: &Account, unit: Unit) -> Balance {
    let allowance = cap.allowance();
    Balance {
        node,
        unit,
        limit: cap.limit(),
        spent: Amount::from_minor(cap.spent, unit),
        reserved: Amount::from_minor(cap.reserved, unit),
        debt: Amount::zero(unit),
        remaining: Some(Amount::from_minor(
            (allowance - cap.spent - cap.reserved).max(0),
            unit,
        )),
        allowance: Some(Amount::from_minor(allowance, unit)),
        resets_at: cap.resets_at(),
        burn_rate: None,
        depletes_at: None,
    }
}
