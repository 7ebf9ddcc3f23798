//! The `Check` read: the reserve script's dry run, and its reply as the ledger's [`Check`].

use crate::amount::{Amount, Unit};
use crate::balance::Balance;
use crate::check::{Check, LimitStatus, Verdict};
use crate::cost::Cost;
use crate::error::{Exceeded, Result};
use crate::ids::NodeId;
use crate::policy::LimitKind;

use super::RedisStore;
use super::codec::{self, BALANCE_FIELDS, field};

impl RedisStore {
    /// What a reserve of `cost` on `node` would do now, holding nothing. As a reserve, a check
    /// a hard limit would refuse first reclaims the expired holds.
    pub(super) fn check(&self, node: NodeId, cost: &Cost) -> Result<Check> {
        cost.validate_reservable()?;
        let mut args = vec![node.into_raw().to_string(), "1".to_owned(), "?".to_owned()];
        codec::cost_args(cost, &mut args)?;
        let reply = self.run(&self.scripts.reserve, None, "", args)?;
        if field(&reply, 0)? != "ok" {
            return Err(codec::refusal(&reply, None, "", Some(cost)));
        }
        let refusal_len = usize::try_from(codec::int(field(&reply, 1)?)?).unwrap_or(usize::MAX);
        let rest = reply.get(2..).unwrap_or_default();
        let (refusal, rest) = rest.split_at(refusal_len.min(rest.len()));
        let soft = field(rest, 0)?;
        let path_len = usize::try_from(codec::int(field(rest, 1)?)?).unwrap_or(usize::MAX);
        let per_node = BALANCE_FIELDS * Unit::ALL.len();
        let figures = path_len
            .checked_mul(per_node)
            .and_then(|len| rest.get(2..2 + len))
            .ok_or_else(|| codec::bad_reply("check path"))?;
        let expired = &rest[2 + figures.len()..];
        // Per path node (leaf first), per unit in order.
        let balances: Vec<Vec<Balance>> = figures
            .chunks(per_node)
            .map(|node| node.chunks(BALANCE_FIELDS).map(codec::balance).collect())
            .collect::<Result<_>>()?;
        let verdict = if refusal.is_empty() {
            Verdict::Fits
        } else {
            Verdict::from_refusal(codec::refusal(refusal, None, "", Some(cost)))?
        };
        let fits = matches!(verdict, Verdict::Fits);
        Ok(Check {
            node: balances
                .first()
                .and_then(|units| units.first())
                .map(|balance| balance.node.clone())
                .ok_or_else(|| codec::bad_reply("check path"))?,
            requested: *cost,
            verdict,
            limiting: cost
                .iter()
                .filter_map(|amount| tightest(&balances, amount))
                .collect(),
            over_soft_limit: (fits && !soft.is_empty()).then(|| soft.into()),
            expired: expired
                .iter()
                .map(|entry| codec::expired_hold(entry))
                .collect::<Result<_>>()?,
            approvals: Vec::new(),
            limits: statuses(&balances, cost),
        })
    }
}

/// Room under a hard limit's allowance (this period's, for a periodic limit); `None` for a
/// soft limit or none.
fn hard_room(balance: &Balance) -> Option<i64> {
    balance
        .limit
        .filter(|limit| limit.kind() == LimitKind::Hard)?;
    Some(
        balance.allowance?.minor_units()
            - balance.spent.minor_units()
            - balance.reserved.minor_units(),
    )
}

/// The node on the path with the least room under a hard limit in the request's unit (the
/// nearest the leaf on a tie), as the ledger names it.
fn tightest(balances: &[Vec<Balance>], requested: Amount) -> Option<Exceeded> {
    let unit = requested.unit();
    let mut least: Option<(i64, &Balance)> = None;
    for node in balances {
        let balance = node.get(unit.index())?;
        if let Some(room) = hard_room(balance)
            && least.is_none_or(|(smallest, _)| room < smallest)
        {
            least = Some((room, balance));
        }
    }
    let (_, balance) = least?;
    Some(
        Exceeded::new(
            balance.node.clone(),
            balance.allowance?,
            balance.spent,
            balance.reserved,
            requested,
        )
        .with_period(balance.limit.and_then(|limit| limit.period())),
    )
}

/// Every limit on the path (leaf first, units in order), plus the request's units a node only
/// tracks.
fn statuses(balances: &[Vec<Balance>], cost: &Cost) -> Vec<LimitStatus> {
    let mut out = Vec::new();
    for node in balances {
        for balance in node {
            let unit = balance.unit;
            let requested = cost.get(unit).unwrap_or(Amount::zero(unit));
            if balance.limit.is_none() && cost.get(unit).is_none() {
                continue;
            }
            out.push(LimitStatus {
                balance: balance.clone(),
                requested,
                refuses: hard_room(balance).is_some_and(|room| requested.minor_units() > room),
            });
        }
    }
    out
}
