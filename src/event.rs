//! What a budget reports as it is used: threshold crossings, denials, overages and unused holds.
//!
//! Events are built by the [`Budget`](crate::Budget) layer from what a store operation returned,
//! after the operation (and any lock inside the store) has finished, and handed to the callbacks
//! and channels registered with [`Budget::on_event`](crate::Budget::on_event) and
//! [`Budget::subscribe`](crate::Budget::subscribe).
//!
//! Every event stands alone: it carries the figures a callback needs (a denial names the
//! refusing node with its limit, spend, holds and what was asked), and its time is the
//! **store's** [`Clock`](crate::Clock) ([`Store::now`](crate::Store::now)), not the wall clock,
//! so a store on a [`ManualClock`](crate::ManualClock) stamps events with the manual time.

use std::sync::Arc;
use std::time::SystemTime;

use crate::amount::{Amount, Unit};
use crate::clock::Timestamp;
use crate::cost::Cost;
use crate::expiry::ExpiredHold;
use crate::ids::HoldId;
use crate::policy::LimitKind;
use crate::report::CostDriver;
use crate::threshold::{ThresholdBasis, ThresholdCrossing};

/// Something that happened to a budget. Variants may be added; match with a wildcard arm.
///
/// Every event has a subject node ([`Event::node`]); a subscription on a node receives the events
/// of that node and of every node below it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(tag = "type", rename_all = "snake_case"))]
#[non_exhaustive]
pub enum Event {
    /// A node's spend (or, with the early warning, spend plus holds) reached a threshold level:
    /// once, until spend falls back below it (see
    /// [`Limit::with_thresholds`](crate::Limit::with_thresholds)).
    ThresholdCrossed(ThresholdEvent),
    /// A reserve was refused (budget exceeded, a node in debt, frozen or closed), or
    /// [`Guard::record`](crate::Guard::record) could not grow its hold (the meter hit the cap).
    /// A kill: [`Budget::on_exceeded`](crate::Budget::on_exceeded) hears it.
    ReserveDenied(DeniedEvent),
    /// A commit cost more than its hold and the [`OveragePolicy`](crate::OveragePolicy)
    /// refused the overage: the commit returned
    /// [`Error::OverageRejected`](crate::Error::OverageRejected) and the node is in debt. A
    /// kill: [`Budget::on_exceeded`](crate::Budget::on_exceeded) hears it.
    OverageRejected(OverageEvent),
    /// A commit cost more than its hold and the policy allowed it (the ancestors had room, or
    /// within the overdraft). Not a kill: [`Budget::on_exceeded`](crate::Budget::on_exceeded)
    /// does not hear it.
    OverageAllowed(OverageEvent),
    /// A hold ended without being committed (released, or its guard dropped).
    HoldReleased(ReleasedEvent),
    /// A hold passed its deadline and the store reclaimed it (see [`crate::expiry`]).
    HoldExpired(ExpiredEvent),
    /// An auto top-up rule added funds to a node (see [`crate::top_up`]).
    ToppedUp(TopUpEvent),
    /// An auto top-up rule wanted to add funds and a cap refused: recharge cap reached (see
    /// [`crate::top_up`]).
    TopUpCapped(crate::top_up::TopUpCappedEvent),
}

impl Event {
    /// The subject node's full path: the node whose level was crossed, or the node the reserve,
    /// commit or release was made on.
    pub fn node(&self) -> &str {
        match self {
            Event::ThresholdCrossed(event) => &event.node,
            Event::ReserveDenied(event) => &event.node,
            Event::OverageRejected(event) | Event::OverageAllowed(event) => &event.node,
            Event::HoldReleased(event) => &event.node,
            Event::HoldExpired(event) => &event.node,
            Event::ToppedUp(event) => &event.node,
            Event::TopUpCapped(event) => &event.capped.node,
        }
    }

    /// When the event was delivered: the store's clock ([`Store::now`](crate::Store::now)),
    /// read after the store operation returned.
    pub fn at(&self) -> SystemTime {
        match self {
            Event::ThresholdCrossed(event) => event.at,
            Event::ReserveDenied(event) => event.at,
            Event::OverageRejected(event) | Event::OverageAllowed(event) => event.at,
            Event::HoldReleased(event) => event.at,
            Event::HoldExpired(event) => event.at,
            Event::ToppedUp(event) => event.at,
            Event::TopUpCapped(event) => event.at,
        }
    }

    /// The threshold payload, if this is a [`Event::ThresholdCrossed`].
    pub fn as_threshold(&self) -> Option<&ThresholdEvent> {
        match self {
            Event::ThresholdCrossed(event) => Some(event),
            _ => None,
        }
    }
}

/// A threshold level reached: the node's figures right after the operation that reached it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct ThresholdEvent {
    /// Full path of the node whose level was crossed.
    pub node: Arc<str>,
    /// The unit of the limit.
    pub unit: Unit,
    /// The level, in percent of the limit.
    pub level: u16,
    /// Whether the limit is hard or soft (a soft limit's level 100 means the limit is passed).
    pub limit_kind: LimitKind,
    /// The node's limit.
    pub limit: Amount,
    /// What the level was compared against: committed spend (the default) or spend plus holds
    /// (the early warning, [`Limit::with_threshold_basis`](crate::Limit::with_threshold_basis)).
    #[cfg_attr(feature = "serde", serde(default))]
    pub basis: ThresholdBasis,
    /// Committed spend on the node.
    pub spent: Amount,
    /// Held on the node by live reservations (not spent; listed apart).
    pub reserved: Amount,
    /// `limit - spent - reserved`, floored at zero.
    pub remaining: Amount,
    /// The watched value (spend, or spend plus holds for the early warning) in percent of the
    /// limit, rounded down.
    pub percent_used: u32,
    /// When the event was delivered (store clock).
    pub at: SystemTime,
    /// When the limit will be used up at the node's current burn rate (store clock), if the
    /// node tracks its burn rate ([`Budget::set_burn_window`](crate::Budget::set_burn_window))
    /// and spends at all.
    pub projected_depletion: Option<SystemTime>,
    /// The node's burn rate right after the operation, if it tracks one ([`crate::burn`]).
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub burn_rate: Option<crate::burn::BurnRate>,
    /// The biggest spenders below the node in the limit's unit (by model unless configured
    /// otherwise with [`ReportOptions::top_drivers`](crate::report::ReportOptions::top_drivers)),
    /// biggest first; empty unless reports are enabled
    /// ([`Budget::enable_reports`](crate::Budget::enable_reports)).
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Vec::is_empty")
    )]
    pub top_drivers: Vec<CostDriver>,
}

impl ThresholdEvent {
    pub(crate) fn from_crossing(crossing: &ThresholdCrossing, at: SystemTime) -> Self {
        ThresholdEvent {
            node: crossing.node().clone(),
            unit: crossing.unit(),
            level: crossing.level(),
            limit_kind: crossing.limit_kind(),
            limit: crossing.limit(),
            basis: crossing.basis(),
            spent: crossing.spent(),
            reserved: crossing.reserved(),
            remaining: crossing.remaining(),
            percent_used: crossing.percent_used(),
            at,
            projected_depletion: crossing.depletes_at().map(system_time),
            burn_rate: crossing.burn_rate(),
            top_drivers: Vec::new(),
        }
    }
}

/// Why a reserve (or a metered [`Guard::record`](crate::Guard::record)) was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum DenialReason {
    /// A hard limit had no room ([`Error::BudgetExceeded`](crate::Error::BudgetExceeded)).
    Exceeded,
    /// A node on the path owes debt ([`Error::InDebt`](crate::Error::InDebt)).
    InDebt,
    /// A node on the path is frozen ([`Error::Frozen`](crate::Error::Frozen)).
    Frozen,
    /// A node on the path is closed ([`Error::Closed`](crate::Error::Closed)).
    Closed,
}

/// A reserve the budget refused. Nothing was held.
///
/// It carries the refusing node's figures in the refused unit, so a callback can report
/// "killed at $3.00 of $3.00" without asking the store again. For
/// [`DenialReason::Exceeded`] they are the ones the store decided on, inside its operation;
/// for the other reasons the [`Budget`](crate::Budget) layer reads them right after (`None`
/// when the node has no limit in that unit or could not be read).
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use budget_guard::{Amount, Budget, DenialReason, Event, Limit};
/// # fn main() -> budget_guard::Result<()> {
/// let sandbox = Budget::builder("sandbox", Limit::hard(Amount::usd("3")?)).build()?;
/// let log = Arc::new(Mutex::new(String::new()));
/// let out = log.clone();
/// sandbox.on_exceeded(move |event| {
///     if let Event::ReserveDenied(denied) = event {
///         assert_eq!(denied.reason, DenialReason::Exceeded);
///         *out.lock().unwrap() = format!(
///             "killed at {} of {}",
///             denied.spent.unwrap(),
///             denied.limit.unwrap()
///         );
///     }
/// });
/// sandbox.reserve(Amount::usd("3")?)?.commit(Amount::usd("3")?)?;
/// assert!(sandbox.reserve(Amount::usd("0.10")?).is_err());
/// assert_eq!(*log.lock().unwrap(), "killed at $3.00 of $3.00");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct DeniedEvent {
    /// The node the reserve was made on.
    pub node: Arc<str>,
    /// The node that said no (the reserving node or an ancestor).
    pub limiting_node: Arc<str>,
    /// Why it said no.
    pub reason: DenialReason,
    /// What was asked for.
    pub requested: Cost,
    /// The refused unit (the debt's unit for [`DenialReason::InDebt`]; the first unit asked
    /// for a frozen or closed node).
    pub unit: Option<Unit>,
    /// What was asked in the refused unit.
    pub asked: Option<Amount>,
    /// The limiting node's limit in that unit (this period's allowance for a periodic limit).
    pub limit: Option<Amount>,
    /// Spent on the limiting node in that unit.
    pub spent: Option<Amount>,
    /// Held on the limiting node in that unit by live reservations.
    pub held: Option<Amount>,
    /// What the limiting node had left in that unit (`limit − spent − held − debt`, floored
    /// at zero).
    pub remaining: Option<Amount>,
    /// The limiting node's debt, when it owes any.
    pub debt: Option<Amount>,
    /// When the event was delivered (store clock).
    pub at: SystemTime,
}

/// A commit above its hold; the [`OveragePolicy`](crate::OveragePolicy) decided what happened.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct OverageEvent {
    /// The node the hold was reserved on.
    pub node: Arc<str>,
    /// What the hold held.
    pub held: Cost,
    /// The actual cost committed.
    pub actual: Cost,
    /// `true` if the policy refused the overage (the commit returned
    /// [`Error::OverageRejected`](crate::Error::OverageRejected); the spend is recorded, partly as
    /// debt): the event is then [`Event::OverageRejected`], else [`Event::OverageAllowed`].
    pub rejected: bool,
    /// For a rejected overage, the debt **this commit** recorded (the error's `debt`).
    #[cfg_attr(feature = "serde", serde(default))]
    pub debt: Option<Amount>,
    /// When the event was delivered (store clock).
    pub at: SystemTime,
}

/// A hold that ended without a commit: its outstanding part returned to the budget.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct ReleasedEvent {
    /// The node the hold was reserved on.
    pub node: Arc<str>,
    /// What the hold held when it was granted.
    pub held: Cost,
    /// What [`Guard::record`](crate::Guard::record) had already moved to spent (it stays spent).
    pub recorded: Cost,
    /// `true` when the guard was dropped rather than released explicitly (an early return, an
    /// error, a panic, a cancelled future).
    pub dropped: bool,
    /// When the event was delivered (store clock).
    pub at: SystemTime,
}

/// A hold the store reclaimed after its deadline: its outstanding part returned to the budget;
/// what was recorded on it stays spent. Its guard's commit may still record the spend (see
/// [`crate::expiry`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct ExpiredEvent {
    /// The node the hold was reserved on.
    pub node: Arc<str>,
    /// The hold.
    pub hold: HoldId,
    /// What it held.
    pub held: Cost,
    /// What had been recorded as spent on it.
    pub recorded: Cost,
    /// The deadline it passed (store clock).
    pub expired_at: Timestamp,
    /// When the event was delivered (store clock).
    pub at: SystemTime,
}

impl ExpiredEvent {
    pub(crate) fn new(expired: &ExpiredHold, at: SystemTime) -> Self {
        ExpiredEvent {
            node: expired.node.clone(),
            hold: expired.hold,
            held: expired.held,
            recorded: expired.recorded,
            expired_at: expired.expired_at,
            at,
        }
    }
}

/// A [`Timestamp`] as a [`SystemTime`] (saturating at the epoch for earlier instants).
pub(crate) fn system_time(at: Timestamp) -> SystemTime {
    let nanos = u64::try_from(at.as_unix_nanos()).unwrap_or(0);
    SystemTime::UNIX_EPOCH + std::time::Duration::from_nanos(nanos)
}

/// Funds an auto top-up rule added to a node: the node's figures right after it (see
/// [`crate::top_up`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct TopUpEvent {
    /// Full path of the node topped up.
    pub node: Arc<str>,
    /// What was added to its limit.
    pub added: Amount,
    /// The limit after the top-up.
    pub limit: Amount,
    /// `limit − spent − reserved` after the top-up, floored at zero.
    pub remaining: Amount,
    /// Why the rule fired.
    pub reason: crate::top_up::TopUpReason,
    /// How many top-ups the rule has made in the current window (or ever), this one included.
    pub count: u32,
    /// The store's time of the operation that made it.
    pub applied_at: Timestamp,
    /// When the event was delivered (store clock).
    pub at: SystemTime,
}

impl TopUpEvent {
    pub(crate) fn new(applied: &crate::top_up::TopUpApplied, at: SystemTime) -> Self {
        TopUpEvent {
            node: applied.node.clone(),
            added: applied.added,
            limit: applied.limit,
            remaining: applied.remaining,
            reason: applied.reason,
            count: applied.count,
            applied_at: applied.applied_at,
            at,
        }
    }
}
