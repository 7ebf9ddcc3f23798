//! Serde mirrors of the public value types (amounts, costs, limits, periods, rules) in the
//! shape the budget file stores them: plain integers and enums, no field skipped, so that
//! `postcard` (which is not self-describing) reads back exactly what it wrote.
//!
//! The public types' own serde derives (feature `serde`) are shaped for JSON (skipped fields,
//! tagged enums) and cannot round-trip through postcard; these mirrors are crate-internal and
//! always compiled. Every conversion back goes through the public constructors and their
//! checks, so hostile bytes give an error, never an invalid value.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::amount::{Amount, Unit};
use crate::burn::BurnWindow;
use crate::clock::Timestamp;
use crate::cost::Cost;
use crate::expiry::ExpiredHold;
use crate::ids::HoldId;
use crate::node_state::NodeState;
use crate::period::{Period, Rollover, codec as period_codec};
use crate::policy::{Limit, LimitKind, OveragePolicy};
use crate::rate::RateLimit;
use crate::threshold::{MAX_LEVELS, ThresholdBasis};
use crate::top_up::{TopUp, TopUpSnapshot};

/// Why a mirror does not convert back: a short description for `Error::Corrupted`.
pub(crate) type Invalid = String;

/// A unit by its index in [`Unit::ALL`].
pub(crate) fn unit(index: u8) -> Result<Unit, Invalid> {
    Unit::ALL
        .get(usize::from(index))
        .copied()
        .ok_or_else(|| format!("unknown unit {index}"))
}

/// An amount: unit index and minor units.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AmountW(pub(crate) u8, pub(crate) i64);

impl From<Amount> for AmountW {
    fn from(amount: Amount) -> Self {
        AmountW(amount.unit().index() as u8, amount.minor_units())
    }
}

impl AmountW {
    /// The amount; a negative one (which no API can make) is refused.
    pub(crate) fn into_amount(self) -> Result<Amount, Invalid> {
        amount(self.1, unit(self.0)?)
    }
}

/// `minor` units of `unit`, refused if negative (amounts never are).
pub(crate) fn amount(minor: i64, unit: Unit) -> Result<Amount, Invalid> {
    Amount::try_from_minor(minor, unit).map_err(|_| format!("a negative amount: {minor} {unit}"))
}

/// A cost: `(unit index, minor units)` per unit present, in unit order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CostW(Vec<(u8, i64)>);

impl From<&Cost> for CostW {
    fn from(cost: &Cost) -> Self {
        CostW(
            cost.units()
                .map(|unit| (unit.index() as u8, cost.minor(unit)))
                .collect(),
        )
    }
}

impl CostW {
    pub(crate) fn into_cost(self) -> Result<Cost, Invalid> {
        if self.0.len() > Unit::COUNT {
            return Err("a cost with more entries than units".into());
        }
        let mut cost = Cost::new();
        for (index, minor) in self.0 {
            let unit = unit(index)?;
            if cost.has(unit) {
                return Err("a cost names a unit twice".into());
            }
            cost.set(unit, amount(minor, unit)?.minor_units());
        }
        Ok(cost)
    }
}

/// A timestamp as Unix nanoseconds.
pub(crate) fn time(at: Timestamp) -> i64 {
    at.as_unix_nanos()
}

/// The inverse of [`time`].
pub(crate) fn at(nanos: i64) -> Timestamp {
    Timestamp::from_unix_nanos(nanos)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum NodeStateW {
    Active,
    Frozen,
    Closed,
}

impl From<NodeState> for NodeStateW {
    fn from(state: NodeState) -> Self {
        match state {
            NodeState::Active => NodeStateW::Active,
            NodeState::Frozen => NodeStateW::Frozen,
            NodeState::Closed => NodeStateW::Closed,
        }
    }
}

impl From<NodeStateW> for NodeState {
    fn from(state: NodeStateW) -> Self {
        match state {
            NodeStateW::Active => NodeState::Active,
            NodeStateW::Frozen => NodeState::Frozen,
            NodeStateW::Closed => NodeState::Closed,
        }
    }
}

/// A period: `(code, zone, nanos, anchor)` as `crate::period::codec` splits it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PeriodW(u8, String, i64, i64);

impl From<&Period> for PeriodW {
    fn from(period: &Period) -> Self {
        let (code, zone, nanos, anchor) = period_codec::parts(period);
        PeriodW(code, zone.to_owned(), nanos, anchor)
    }
}

impl PeriodW {
    fn into_period(self) -> Result<Period, Invalid> {
        period_codec::from_parts(self.0, &self.1, self.2, self.3).map_err(Invalid::from)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum RolloverW {
    None,
    CarryForward(AmountW),
    CapAtAllocation,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum OverageW {
    Reject,
    AllowIfAvailable,
    AllowWithOverdraft(AmountW),
}

/// A limit with its policy, threshold levels, period and rollover.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LimitW {
    amount: AmountW,
    soft: bool,
    overage: OverageW,
    levels: Vec<u16>,
    early_warning: bool,
    period: Option<PeriodW>,
    rollover: RolloverW,
}

impl From<&Limit> for LimitW {
    fn from(limit: &Limit) -> Self {
        LimitW {
            amount: limit.amount().into(),
            soft: limit.kind() == LimitKind::Soft,
            overage: match limit.overage() {
                OveragePolicy::Reject => OverageW::Reject,
                OveragePolicy::AllowIfAvailable => OverageW::AllowIfAvailable,
                OveragePolicy::AllowWithOverdraft { limit } => {
                    OverageW::AllowWithOverdraft(limit.into())
                }
            },
            levels: limit.thresholds().levels().to_vec(),
            early_warning: limit.thresholds().basis() == ThresholdBasis::SpentAndHeld,
            period: limit.period().as_ref().map(PeriodW::from),
            rollover: match limit.rollover() {
                Rollover::None => RolloverW::None,
                Rollover::CarryForward { cap } => RolloverW::CarryForward(cap.into()),
                Rollover::CapAtAllocation => RolloverW::CapAtAllocation,
            },
        }
    }
}

impl LimitW {
    /// The limit, checked as setting it would check it.
    pub(crate) fn into_limit(self) -> Result<Limit, Invalid> {
        let limit = self.into_unchecked_limit()?;
        limit
            .validate()
            .map_err(|e| format!("invalid limit: {e}"))?;
        Ok(limit)
    }

    /// The limit as it was given, valid or not (an operation the ledger refused is logged too).
    pub(crate) fn into_unchecked_limit(self) -> Result<Limit, Invalid> {
        let amount = self.amount.into_amount()?;
        let limit = if self.soft {
            Limit::soft(amount)
        } else {
            Limit::hard(amount)
        };
        let overage = match self.overage {
            OverageW::Reject => OveragePolicy::Reject,
            OverageW::AllowIfAvailable => OveragePolicy::AllowIfAvailable,
            OverageW::AllowWithOverdraft(limit) => OveragePolicy::AllowWithOverdraft {
                limit: limit.into_amount()?,
            },
        };
        if self.levels.len() > MAX_LEVELS {
            return Err("more threshold levels than a limit can carry".into());
        }
        let basis = if self.early_warning {
            ThresholdBasis::SpentAndHeld
        } else {
            ThresholdBasis::Spent
        };
        let mut limit = limit
            .with_overage(overage)
            .with_thresholds(self.levels.iter().copied())
            .with_threshold_basis(basis);
        if let Some(period) = self.period {
            limit = limit.per(period.into_period()?);
        }
        let rollover = match self.rollover {
            RolloverW::None => Rollover::None,
            RolloverW::CarryForward(cap) => Rollover::CarryForward {
                cap: cap.into_amount()?,
            },
            RolloverW::CapAtAllocation => Rollover::CapAtAllocation,
        };
        Ok(limit.with_rollover(rollover))
    }
}

/// A rate limit: requests per window (nanoseconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RateLimitW(u32, u64);

impl From<&RateLimit> for RateLimitW {
    fn from(limit: &RateLimit) -> Self {
        RateLimitW(limit.requests(), limit.window_nanos().unsigned_abs())
    }
}

impl RateLimitW {
    pub(crate) fn into_rate_limit(self) -> Result<RateLimit, Invalid> {
        RateLimit::new(self.0, Duration::from_nanos(self.1)).map_err(|e| e.to_string())
    }
}

/// A burn window: buckets and window (nanoseconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BurnWindowW(u16, u64);

impl From<&BurnWindow> for BurnWindowW {
    fn from(window: &BurnWindow) -> Self {
        BurnWindowW(window.buckets(), window.window_nanos().unsigned_abs())
    }
}

impl BurnWindowW {
    pub(crate) fn into_window(self) -> Result<BurnWindow, Invalid> {
        BurnWindow::with_buckets(Duration::from_nanos(self.1), self.0).map_err(|e| e.to_string())
    }
}

/// A top-up rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TopUpW {
    below: AmountW,
    add: i64,
    max_count: Option<u32>,
    max_total: Option<i64>,
    period: Option<u64>,
    calendar: Option<PeriodW>,
    horizon: Option<u64>,
}

impl From<&TopUp> for TopUpW {
    fn from(rule: &TopUp) -> Self {
        TopUpW {
            below: rule.threshold().into(),
            add: rule.amount().minor_units(),
            max_count: rule.max_count(),
            max_total: rule.max_total().map(|total| total.minor_units()),
            period: match rule.calendar_period() {
                Some(_) => None,
                None => rule.period_nanos().map(i64::unsigned_abs),
            },
            calendar: rule.calendar_period().as_ref().map(PeriodW::from),
            horizon: rule.horizon_nanos().map(i64::unsigned_abs),
        }
    }
}

impl TopUpW {
    /// The rule, checked as setting it would check it.
    pub(crate) fn into_rule(self) -> Result<TopUp, Invalid> {
        let rule = self.into_unchecked_rule()?;
        rule.validate()
            .map_err(|e| format!("invalid top-up rule: {e}"))?;
        Ok(rule)
    }

    /// The rule as it was given, valid or not (an operation the ledger refused is logged too).
    pub(crate) fn into_unchecked_rule(self) -> Result<TopUp, Invalid> {
        let below = self.below.into_amount()?;
        let unit = below.unit();
        let mut rule = TopUp::when_below(below).adding(amount(self.add, unit)?);
        if let Some(count) = self.max_count {
            rule = rule.at_most(count);
        }
        if let Some(total) = self.max_total {
            rule = rule.at_most_total(amount(total, unit)?);
        }
        match (self.calendar, self.period) {
            (Some(period), None) => rule = rule.per_period(period.into_period()?),
            (None, Some(nanos)) => rule = rule.per(Duration::from_nanos(nanos)),
            (None, None) => {}
            (Some(_), Some(_)) => return Err("a top-up rule with two windows".into()),
        }
        if let Some(horizon) = self.horizon {
            rule = rule.predictive(Duration::from_nanos(horizon));
        }
        Ok(rule)
    }
}

/// A top-up rule with its counters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TopUpStateW {
    rule: TopUpW,
    count: u32,
    total: i64,
    window: i64,
    armed: bool,
}

impl From<&TopUpSnapshot> for TopUpStateW {
    fn from(state: &TopUpSnapshot) -> Self {
        TopUpStateW {
            rule: (&state.rule).into(),
            count: state.count,
            total: state.total.minor_units(),
            window: state.window,
            armed: state.armed,
        }
    }
}

impl TopUpStateW {
    pub(crate) fn into_state(self) -> Result<TopUpSnapshot, Invalid> {
        let rule = self.rule.into_rule()?;
        let mut state = TopUpSnapshot::new(rule);
        state.count = self.count;
        state.total = amount(self.total, rule.amount().unit())?;
        state.window = self.window;
        state.armed = self.armed;
        Ok(state)
    }
}

/// A hold reclaimed by expiry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ExpiredHoldW {
    hold: u64,
    node: String,
    held: CostW,
    recorded: CostW,
    expired_at: i64,
}

impl From<&ExpiredHold> for ExpiredHoldW {
    fn from(expired: &ExpiredHold) -> Self {
        ExpiredHoldW {
            hold: expired.hold.into_raw(),
            node: expired.node.to_string(),
            held: (&expired.held).into(),
            recorded: (&expired.recorded).into(),
            expired_at: time(expired.expired_at),
        }
    }
}

impl ExpiredHoldW {
    pub(crate) fn into_expired(self) -> Result<ExpiredHold, Invalid> {
        Ok(ExpiredHold {
            hold: HoldId::from_raw(self.hold),
            node: Arc::from(self.node),
            held: self.held.into_cost()?,
            recorded: self.recorded.into_cost()?,
            expired_at: at(self.expired_at),
        })
    }
}
