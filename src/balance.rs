//! What a node's books look like from outside: balances, node info and whole-tree snapshots.

use std::sync::Arc;

use crate::amount::{Amount, Unit};
use crate::clock::Timestamp;
use crate::cost::Cost;
use crate::ids::HoldId;
use crate::node_state::NodeState;
use crate::policy::Limit;

/// One node's account in one unit.
///
/// `remaining = limit - spent - reserved` (floored at zero, and zero while the node owes debt);
/// `debt` is spend recorded beyond the
/// limit by an overage (see [`OveragePolicy`](crate::OveragePolicy)) and is not part of `spent`.
/// Total money spent on the node is `spent + debt`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Balance {
    /// Full path of the node.
    pub node: Arc<str>,
    /// The unit of every amount here.
    pub unit: Unit,
    /// The limit in this unit (with its kind and overage policy), or `None` if the node only
    /// tracks this unit.
    pub limit: Option<Limit>,
    /// Spent within the limit.
    pub spent: Amount,
    /// Held by live reservations on this node and its descendants.
    pub reserved: Amount,
    /// Spent beyond the limit by overages; blocks new reserves until repaid.
    pub debt: Amount,
    /// What can still be reserved on this node alone (`allowance - spent - reserved`, floored
    /// at zero); zero while the node owes debt in any unit, since it then refuses every reserve
    /// ([`Error::InDebt`](crate::Error::InDebt)); `None` without a limit.
    pub remaining: Option<Amount>,
    /// What the limit allows in the current period: the limit's amount, plus for a periodic limit
    /// what a [`Rollover`](crate::period::Rollover) carried in and the credits minus debits of this
    /// period (see [`crate::period`]). `None` without a limit.
    #[cfg_attr(feature = "serde", serde(default))]
    pub allowance: Option<Amount>,
    /// When the current period of a periodic limit ends and `spent` resets (the reset happens at
    /// the first store operation at or after it). `None` without a periodic limit.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub resets_at: Option<Timestamp>,
    /// Spend on the node and below it over its burn window, if the node tracks a burn rate
    /// ([`Budget::set_burn_window`](crate::Budget::set_burn_window), [`crate::burn`]).
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub burn_rate: Option<crate::burn::BurnRate>,
    /// When `remaining` runs out at that burn rate (store clock; `None` without tracking,
    /// without a limit, or while nothing is spent).
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub depletes_at: Option<Timestamp>,
}

impl Balance {
    /// `spent + reserved` as a share of the period's [`allowance`](Balance::allowance) (the limit
    /// for a limit without period), in percent (rounded down), or `None` without a limit.
    /// Integer math on minor units; a zero limit counts as 100 % used.
    pub fn percent_used(&self) -> Option<u32> {
        let limit = self.allowance.unwrap_or(self.limit?.amount()).minor_units();
        let used = i128::from(self.spent.minor_units()) + i128::from(self.reserved.minor_units());
        if limit == 0 {
            return Some(100);
        }
        u32::try_from(used * 100 / i128::from(limit)).ok()
    }
}

/// A node, its place in the tree and its balances.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct NodeInfo {
    /// Full path, e.g. `acme/support/agent-7`.
    pub path: Arc<str>,
    /// The parent's path; `None` for a root.
    pub parent: Option<Arc<str>>,
    /// Paths of the direct children, in creation order.
    pub children: Vec<Arc<str>>,
    /// One balance per unit that has a limit or has seen any activity, in unit order.
    pub balances: Vec<Balance>,
    /// Live holds reserved directly on this node.
    pub live_holds: usize,
    /// The node's own state (a frozen or closed ancestor also blocks it).
    pub state: NodeState,
    /// The node's own request rate limit, if it has one (an ancestor's also applies).
    #[cfg_attr(feature = "serde", serde(default))]
    pub rate_limit: Option<crate::rate::RateLimit>,
    /// The window the node measures its burn rate over, if it does ([`crate::burn`]).
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub burn_window: Option<crate::burn::BurnWindow>,
    /// The node's auto top-up rule, if any ([`crate::top_up`]).
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub top_up: Option<crate::top_up::TopUp>,
}

impl NodeInfo {
    /// The balance in `unit`, if the node has a limit or activity in it.
    pub fn balance(&self, unit: Unit) -> Option<&Balance> {
        self.balances.iter().find(|balance| balance.unit == unit)
    }
}

/// The complete state of a store: enough to restore it exactly, and serializable with serde.
///
/// Nodes come parents first. `restore` checks the snapshot for consistency before using it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Snapshot {
    /// Every node, parents before children.
    pub nodes: Vec<NodeSnapshot>,
    /// Every live hold.
    pub holds: Vec<HoldSnapshot>,
    /// Holds reclaimed by expiry that a late commit may still record (oldest first; see
    /// [`crate::expiry`]). Their `expires_at` is the deadline they passed.
    #[cfg_attr(feature = "serde", serde(default))]
    pub expired_holds: Vec<HoldSnapshot>,
    /// The serial the store will give its next hold, so restored stores never reuse a hold id.
    pub next_serial: u32,
}

/// One node in a [`Snapshot`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct NodeSnapshot {
    /// Full path.
    pub path: Arc<str>,
    /// One account per unit with a limit or activity.
    pub accounts: Vec<AccountSnapshot>,
    /// The node's own state.
    #[cfg_attr(feature = "serde", serde(default))]
    pub state: NodeState,
    /// The node's request rate limit, if any (recent request times are not part of a
    /// snapshot: windows start empty after a restore).
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub rate_limit: Option<crate::rate::RateLimit>,
    /// The node's burn-rate window, if it tracks one (the measured spend is not part of a
    /// snapshot: measuring starts again after a restore; see [`crate::burn`]).
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub burn_window: Option<crate::burn::BurnWindow>,
    /// The node's auto top-up rule with its counters, if any ([`crate::top_up`]).
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub top_up: Option<crate::top_up::TopUpSnapshot>,
}

/// One node's account in one unit, in a [`Snapshot`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct AccountSnapshot {
    /// The unit.
    pub unit: Unit,
    /// The limit, if any.
    pub limit: Option<Limit>,
    /// Spent within the limit.
    pub spent: Amount,
    /// Held by live holds on the node and its subtree.
    pub reserved: Amount,
    /// Debt from overages.
    pub debt: Amount,
    /// For a periodic limit: what the current period allows (see [`Balance::allowance`]);
    /// `None` means the allocation alone.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub allowance: Option<Amount>,
    /// For a periodic limit: when the current period ends; `None` starts a new period at the
    /// first operation after a restore.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub resets_at: Option<Timestamp>,
    /// The unit's further limits (other periods than `limit`'s, see [`Limits`](crate::Limits)),
    /// each with its own period figures; they share `reserved` and `debt` above.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Vec::is_empty")
    )]
    pub further_limits: Vec<CapSnapshot>,
}

/// A unit's further limit (another period) in an [`AccountSnapshot`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct CapSnapshot {
    /// The limit.
    pub limit: Limit,
    /// Spent in its current period.
    pub spent: Amount,
    /// What its current period allows (see [`Balance::allowance`]); `None` means the
    /// allocation alone.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub allowance: Option<Amount>,
    /// When its current period ends; `None` starts a new period at the first operation after a
    /// restore.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub resets_at: Option<Timestamp>,
}

/// One live hold in a [`Snapshot`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct HoldSnapshot {
    /// The hold's id, kept across restore.
    pub id: HoldId,
    /// Path of the node it was reserved on.
    pub node: Arc<str>,
    /// What it holds (grown by `record` beyond the first reserve, if so).
    pub held: Cost,
    /// What `record` already moved to spent.
    pub recorded: Cost,
    /// The hold's deadline ([`Timestamp::MAX`] for never).
    #[cfg_attr(feature = "serde", serde(default = "never"))]
    pub expires_at: Timestamp,
}

#[cfg(feature = "serde")]
fn never() -> Timestamp {
    Timestamp::MAX
}
