//! Arguments to the scripts and their replies. Money crosses as decimal strings of integer
//! minor units, checked here to lie within ±(2^53 − 1) (the integers a Lua double holds
//! exactly); the scripts check every sum against the same bound.

use std::sync::Arc;
use std::time::Duration;

use crate::amount::{Amount, Unit};
use crate::balance::{AccountSnapshot, Balance, HoldSnapshot, NodeInfo, NodeSnapshot, Snapshot};
use crate::cancel::Cancellation;
use crate::clock::Timestamp;
use crate::cost::Cost;
use crate::error::{AmountError, Error, Exceeded, Result, StoreError};
use crate::expiry::ExpiredHold;
use crate::idempotency::{HoldEnd, IdempotencyKey};
use crate::ids::HoldId;
use crate::node_state::NodeState;
use crate::op::OpKind;
use crate::policy::{Limit, LimitKind, OveragePolicy};
use crate::rate::RateLimit;
use crate::threshold::{ThresholdBasis, ThresholdCrossing, Thresholds};

/// The largest magnitude of minor units kept exact: 2^53 − 1 (about 9 million dollars in
/// nano-dollars, 9 × 10^15 tokens).
pub(super) const MAX_EXACT_MINOR: i64 = (1 << 53) - 1;

/// The store's name in [`Error::Unsupported`].
pub(super) const STORE: &str = "RedisStore";

mod refusal;
pub(super) use self::refusal::{op_name, refusal};

/// `amount` as a script argument.
pub(super) fn minor(amount: Amount) -> Result<String> {
    let value = amount.minor_units();
    if value.unsigned_abs() > MAX_EXACT_MINOR as u64 {
        return Err(Error::TooLarge {
            what: "amount in minor units for a RedisStore (exact up to 2^53 - 1)",
            size: value.unsigned_abs(),
            limit: MAX_EXACT_MINOR as u64,
        });
    }
    Ok(value.to_string())
}

/// `unit, minor` pairs of `cost`.
pub(super) fn cost_args(cost: &Cost, args: &mut Vec<String>) -> Result<()> {
    for amount in cost.iter() {
        args.push(amount.unit().name().to_owned());
        args.push(minor(amount)?);
    }
    Ok(())
}

/// A TTL in whole microseconds, rounded up (a hold never ends before its TTL).
pub(super) fn micros(ttl: Duration, what: &'static str) -> Result<String> {
    if ttl.is_zero() {
        return Err(Error::InvalidDuration {
            what,
            reason: "must be longer than zero",
        });
    }
    let micros = ttl.as_nanos().div_ceil(1_000);
    if micros > MAX_EXACT_MINOR as u128 {
        return Err(Error::InvalidDuration {
            what,
            reason: "too long for a RedisStore deadline (at most 2^53 - 1 microseconds)",
        });
    }
    Ok(micros.to_string())
}

/// A limit's `unit, amount, kind, overage, threshold levels, period, rollover` arguments (the
/// period as its spec, empty for none; the rollover `''`, `alloc` or `carry:<minor>`).
///
/// # Errors
/// As [`minor`]; [`Error::InvalidPeriod`] for a window the store cannot roll exactly (see
/// `periods::validate`); [`Error::TooLarge`] when the allocation plus the rollover cap (the
/// most a period can allow) passes 2^53 − 1 minor units.
pub(super) fn limit_args(limit: &Limit, args: &mut Vec<String>) -> Result<()> {
    args.push(limit.unit().name().to_owned());
    args.push(minor(limit.amount())?);
    args.push(
        match limit.kind() {
            LimitKind::Hard => "hard",
            LimitKind::Soft => "soft",
        }
        .to_owned(),
    );
    args.push(match limit.overage() {
        OveragePolicy::Reject => "reject".to_owned(),
        OveragePolicy::AllowIfAvailable => "available".to_owned(),
        OveragePolicy::AllowWithOverdraft { limit } => format!("overdraft:{}", minor(limit)?),
    });
    args.push(levels(limit.thresholds()));
    super::periods::limit_args(limit, args)
}

/// Refuses a node with two limits in one unit (a periodic one and another): the scripts keep
/// one cap per unit.
fn one_limit_per_unit(limits: &crate::policy::Limits) -> Result<()> {
    let mut seen = [false; Unit::COUNT];
    for limit in limits.iter() {
        let index = limit.unit().index();
        if seen[index] {
            return Err(Error::Unsupported {
                op: OpKind::CreateNode,
                store: STORE,
            });
        }
        seen[index] = true;
    }
    Ok(())
}

/// The limit arguments of a new node (`limit_args` of each), after checking the store can keep
/// them ([`one_limit_per_unit`]).
///
/// # Errors
/// As [`one_limit_per_unit`] and [`limit_args`].
pub(super) fn node_limit_args(
    limits: &crate::policy::Limits,
    args: &mut Vec<String>,
) -> Result<()> {
    one_limit_per_unit(limits)?;
    for limit in limits.iter() {
        limit_args(limit, args)?;
    }
    Ok(())
}

/// Threshold levels as the scripts keep them: `basis:percent,percent,...` (ascending), empty
/// for none.
fn levels(thresholds: &Thresholds) -> String {
    if thresholds.is_empty() {
        return String::new();
    }
    let basis = match thresholds.basis() {
        ThresholdBasis::SpentAndHeld => "held",
        _ => "spent",
    };
    let percents: Vec<String> = thresholds.levels().iter().map(u16::to_string).collect();
    format!("{basis}:{}", percents.join(","))
}

/// The threshold basis the scripts name `held` or `spent`.
fn basis(text: &str) -> ThresholdBasis {
    if text == "held" {
        ThresholdBasis::SpentAndHeld
    } else {
        ThresholdBasis::Spent
    }
}

/// A limit with its threshold levels as the scripts keep them ([`levels`]).
fn with_levels(limit: Limit, text: &str) -> Result<Limit> {
    let Some((name, percents)) = text.split_once(':') else {
        return Ok(limit);
    };
    let percents = percents
        .split(',')
        .map(|percent| {
            percent
                .parse::<u16>()
                .map_err(|_| bad_reply("threshold level"))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(limit
        .with_thresholds(percents)
        .with_threshold_basis(basis(name)))
}

/// A threshold crossing as the scripts report it, fields separated by the record separator:
/// node path, node id, unit, limit, spent, reserved, bit, level, limit kind, basis.
pub(super) fn crossing(entry: &str) -> Result<ThresholdCrossing> {
    let parts: Vec<&str> = entry.split('\u{1e}').collect();
    let [
        path,
        node,
        unit_name,
        limit,
        spent,
        reserved,
        bit,
        level,
        kind,
        basis_name,
    ] = parts[..]
    else {
        return Err(bad_reply("threshold crossing"));
    };
    let unit = unit(unit_name)?;
    let amount = amount(limit, unit)?;
    let limit = match kind {
        "soft" => Limit::soft(amount),
        _ => Limit::hard(amount),
    }
    .with_threshold_basis(basis(basis_name));
    let bad = |_| bad_reply("threshold crossing");
    Ok(ThresholdCrossing::new(
        Arc::from(path),
        // The ledger's node index; here the low half of the node id (it only keys
        // the ledger's own bookkeeping, never the crossing's meaning).
        id(node)? as u32,
        unit,
        &limit,
        int(spent)?,
        int(reserved)?,
        (bit.parse().map_err(bad)?, level.parse().map_err(bad)?),
    ))
}

pub(super) fn state_name(state: NodeState) -> &'static str {
    match state {
        NodeState::Active => "active",
        NodeState::Frozen => "frozen",
        NodeState::Closed => "closed",
    }
}

pub(super) fn bad_reply(what: &str) -> Error {
    StoreError::permanent(format!("redis: malformed script reply ({what})")).into()
}

pub(super) fn field(reply: &[String], index: usize) -> Result<&str> {
    reply
        .get(index)
        .map(String::as_str)
        .ok_or_else(|| bad_reply("too short"))
}

pub(super) fn int(text: &str) -> Result<i64> {
    text.parse().map_err(|_| bad_reply("not an integer"))
}

pub(super) fn unit(text: &str) -> Result<Unit> {
    Unit::ALL
        .into_iter()
        .find(|unit| unit.name() == text)
        .ok_or_else(|| bad_reply("unknown unit"))
}

pub(super) fn amount(text: &str, unit: Unit) -> Result<Amount> {
    Amount::try_from_minor(int(text)?, unit)
}

/// A node or hold id.
pub(super) fn id(text: &str) -> Result<u64> {
    text.parse().map_err(|_| bad_reply("not an id"))
}

pub(super) fn hold(text: &str) -> Result<HoldId> {
    Ok(HoldId::from_raw(id(text)?))
}

pub(super) fn state(text: &str) -> Result<NodeState> {
    match text {
        "active" => Ok(NodeState::Active),
        "frozen" => Ok(NodeState::Frozen),
        "closed" => Ok(NodeState::Closed),
        _ => Err(bad_reply("unknown state")),
    }
}

/// A script's time (microseconds) as a [`Timestamp`].
pub(super) fn timestamp(text: &str) -> Result<Timestamp> {
    Ok(Timestamp::from_unix_nanos(int(text)?.saturating_mul(1_000)))
}

/// How many fields a script's balance of one node and unit has ([`balance`]).
pub(super) const BALANCE_FIELDS: usize = 14;

/// A balance from its [`BALANCE_FIELDS`] fields: path, unit, limit (for a periodic limit the
/// current period's allowance), kind, overage, spent, reserved, debt, threshold levels,
/// whether the node owes debt in any unit (then nothing remains in any unit: a node in debt
/// refuses every reserve), then for a periodic limit its allocation, period spec, rollover
/// and the period's end in nanoseconds (four empty fields otherwise).
pub(super) fn balance(fields: &[String]) -> Result<Balance> {
    let unit = unit(field(fields, 1)?)?;
    let spent = amount(field(fields, 5)?, unit)?;
    let reserved = amount(field(fields, 6)?, unit)?;
    let debt = amount(field(fields, 7)?, unit)?;
    let mut balance = Balance::new(field(fields, 0)?, unit)
        .with_spent(spent)
        .with_reserved(reserved)
        .with_debt(debt);
    if !field(fields, 2)?.is_empty() {
        let allowance = amount(field(fields, 2)?, unit)?;
        let periodic = super::periods::period(field(fields, 11)?)?;
        let allocation = match periodic {
            Some(_) => amount(field(fields, 10)?, unit)?,
            None => allowance,
        };
        let mut limit = match field(fields, 3)? {
            "soft" => Limit::soft(allocation),
            _ => Limit::hard(allocation),
        };
        limit = with_levels(limit, field(fields, 8)?)?;
        let overage = field(fields, 4)?;
        if overage == "available" {
            limit = limit.with_overage(OveragePolicy::AllowIfAvailable);
        } else if let Some(overdraft) = overage.strip_prefix("overdraft:") {
            limit = limit.with_overage(OveragePolicy::AllowWithOverdraft {
                limit: amount(overdraft, unit)?,
            });
        }
        if let Some(period) = periodic {
            limit = limit
                .per(period)
                .with_rollover(super::periods::rollover(field(fields, 12)?, unit)?);
            balance =
                balance.with_resets_at(Some(Timestamp::from_unix_nanos(int(field(fields, 13)?)?)));
        }
        let room = if field(fields, 9)? == "0" {
            (allowance.minor_units() - spent.minor_units() - reserved.minor_units()).max(0)
        } else {
            0
        };
        balance = balance
            .with_limit(Some(limit))
            .with_allowance(Some(allowance))
            .with_remaining(Some(Amount::try_from_minor(room, unit)?));
    }
    Ok(balance)
}

/// A reclaimed hold as the scripts report it: id, path, deadline, then `unit=held=recorded`
/// entries,
/// separated by the record separator (a path may contain commas).
pub(super) fn expired_hold(entry: &str) -> Result<ExpiredHold> {
    let mut parts = entry.split('\u{1e}');
    let id = hold(parts.next().unwrap_or_default())?;
    let path = parts.next().ok_or_else(|| bad_reply("expired hold"))?;
    let expired_at = timestamp(parts.next().unwrap_or_default())?;
    let mut held = Cost::new();
    let mut recorded = Cost::new();
    for part in parts {
        let mut figures = part.split('=');
        let unit = unit(figures.next().unwrap_or_default())?;
        held = held.with(amount(figures.next().unwrap_or_default(), unit)?)?;
        recorded = recorded.with(amount(figures.next().unwrap_or("0"), unit)?)?;
    }
    Ok(ExpiredHold::new(id, path, held, recorded, expired_at))
}

/// A node's description: `ok`, path, state, parent path, live holds, child count, the child
/// paths, then the [`BALANCE_FIELDS`] of each unit (units without a limit or figures are left out,
/// as the ledger does).
pub(super) fn node_info(reply: &[String]) -> Result<NodeInfo> {
    let parent = field(reply, 3)?;
    let live = usize::try_from(int(field(reply, 4)?)?).map_err(|_| bad_reply("hold count"))?;
    let children = usize::try_from(int(field(reply, 5)?)?).map_err(|_| bad_reply("child count"))?;
    let rest = reply.get(6..).ok_or_else(|| bad_reply("too short"))?;
    if rest.len() != children + BALANCE_FIELDS * Unit::ALL.len() + 2 {
        return Err(bad_reply("node info length"));
    }
    let (kids, figures) = rest.split_at(children);
    let (figures, rate) = figures.split_at(figures.len() - 2);
    let mut balances = Vec::new();
    for fields in figures.chunks(BALANCE_FIELDS) {
        let balance = balance(fields)?;
        let active = balance.limit.is_some()
            || !balance.spent.is_zero()
            || !balance.reserved.is_zero()
            || !balance.debt.is_zero();
        if active {
            balances.push(balance);
        }
    }
    Ok(NodeInfo::new(field(reply, 1)?, state(field(reply, 2)?)?)
        .with_parent((!parent.is_empty()).then(|| parent.into()))
        .with_children(kids.iter().map(|kid| Arc::from(kid.as_str())).collect())
        .with_balances(balances)
        .with_live_holds(live)
        .with_rate_limit(rate_limit(rate)?))
}

/// The complete state: `ok`, next hold serial, node count, per node its path, state, rate
/// limit (two fields) and the
/// [`BALANCE_FIELDS`] of each unit, then the live holds (as [`expired_hold`] entries).
pub(super) fn snapshot(reply: &[String]) -> Result<Snapshot> {
    let next_serial = u32::try_from(int(field(reply, 1)?)?).map_err(|_| bad_reply("serial"))?;
    let count = usize::try_from(int(field(reply, 2)?)?).map_err(|_| bad_reply("node count"))?;
    let per_node = 4 + BALANCE_FIELDS * Unit::ALL.len();
    let rest = reply.get(3..).ok_or_else(|| bad_reply("too short"))?;
    let node_fields = count.checked_mul(per_node).filter(|len| *len <= rest.len());
    let (nodes, holds) = rest.split_at(node_fields.ok_or_else(|| bad_reply("node count"))?);
    let mut snapshot = Snapshot {
        next_serial,
        ..Snapshot::default()
    };
    for node in nodes.chunks(per_node) {
        let mut accounts = Vec::new();
        for fields in node[4..].chunks(BALANCE_FIELDS) {
            let balance = balance(fields)?;
            let active = balance.limit.is_some()
                || !balance.spent.is_zero()
                || !balance.reserved.is_zero()
                || !balance.debt.is_zero();
            if active {
                // The allowance is only reported for periodic limits, as the ledger does.
                let periodic = balance.resets_at.is_some();
                accounts.push(
                    AccountSnapshot::new(balance.unit, balance.limit)
                        .with_spent(balance.spent)
                        .with_reserved(balance.reserved)
                        .with_debt(balance.debt)
                        .with_allowance(balance.allowance.filter(|_| periodic))
                        .with_resets_at(balance.resets_at),
                );
            }
        }
        snapshot.nodes.push(
            NodeSnapshot::new(node[0].as_str())
                .with_state(state(&node[1])?)
                .with_rate_limit(rate_limit(&node[2..4])?)
                .with_accounts(accounts),
        );
    }
    for entry in holds {
        let hold = expired_hold(entry)?;
        snapshot.holds.push(HoldSnapshot::new(
            hold.hold,
            hold.node,
            hold.held,
            hold.recorded,
            hold.expired_at,
        ));
    }
    Ok(snapshot)
}

/// A rate limit as the scripts keep it: requests and window nanoseconds, empty for none.
fn rate_limit(fields: &[String]) -> Result<Option<RateLimit>> {
    let requests = field(fields, 0)?;
    if requests.is_empty() {
        return Ok(None);
    }
    let requests = requests.parse().map_err(|_| bad_reply("rate limit"))?;
    let window = Duration::from_nanos(id(field(fields, 1)?)?);
    RateLimit::new(requests, window).map(Some)
}

/// A rate limit's arguments: requests, the window in nanoseconds, and in microseconds rounded
/// up (the scripts count server microseconds); three empty strings to remove it.
pub(super) fn rate_args(limit: Option<RateLimit>) -> Vec<String> {
    match limit {
        None => vec![String::new(); 3],
        Some(limit) => {
            let nanos = limit.window().as_nanos();
            vec![
                limit.requests().to_string(),
                nanos.to_string(),
                nanos.div_ceil(1_000).to_string(),
            ]
        }
    }
}

/// The previous rate limit a set-rate script answers (`ok`, requests, window nanoseconds).
pub(super) fn previous_rate_limit(reply: &[String]) -> Result<Option<RateLimit>> {
    rate_limit(reply.get(1..).unwrap_or_default())
}

/// Why a hold's work should stop, as the cancellation read reports it.
pub(super) fn cancellation(reply: &[String]) -> Result<Option<Cancellation>> {
    let node = |index| field(reply, index).map(Arc::<str>::from);
    Ok(match field(reply, 1)? {
        "none" => None,
        "ended" => Some(Cancellation::Ended),
        "expired" => Some(Cancellation::Expired {
            expired_at: timestamp(field(reply, 2)?)?,
        }),
        "frozen" => Some(Cancellation::Frozen { node: node(2)? }),
        "closed" => Some(Cancellation::Closed { node: node(2)? }),
        "exhausted" => Some(Cancellation::Exhausted {
            node: node(2)?,
            unit: unit(field(reply, 3)?)?,
        }),
        _ => return Err(bad_reply("unknown cancellation")),
    })
}
