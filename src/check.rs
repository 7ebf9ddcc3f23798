//! [`Check`]: the dry run of a reserve ([`Budget::check`](crate::Budget::check)).

use std::sync::Arc;

use crate::amount::Amount;
use crate::approval::ApprovalRequest;
use crate::balance::Balance;
use crate::cost::Cost;
use crate::error::{Error, Exceeded};
use crate::expiry::ExpiredHold;

/// What a reserve of the same cost on the same node would do right now, computed by the same
/// path walk the reserve uses, without holding anything.
///
/// A check is a snapshot: another caller may reserve between the check and your reserve, so a
/// reserve can still be denied after a check that [`fits`](Check::fits). Reserve directly when
/// you mean to do the work; check when you only want to know (a planner, a UI, a ladder preview).
///
/// ```
/// use budget_guard::{Amount, Budget, Limit, Verdict};
/// # fn main() -> budget_guard::Result<()> {
/// let org = Budget::builder("org", Limit::hard(Amount::usd("10")?))
///     .child("team", Limit::hard(Amount::usd("2")?))
///     .build()?;
/// let team = org.at("team")?;
/// let _busy = team.reserve(Amount::usd("1.50")?)?;
///
/// let check = team.check(Amount::usd("1")?)?;
/// assert!(!check.fits());
/// let Verdict::Exceeded(details) = &check.verdict else { panic!("{check:?}") };
/// assert_eq!(&*details.node, "org/team");
/// assert_eq!(details.remaining(), Amount::usd("0.50")?);
///
/// let check = team.check(Amount::usd("0.25")?)?;
/// assert!(check.fits());
/// // The tightest node on the path, with its numbers:
/// assert_eq!(check.limiting[0].remaining(), Amount::usd("0.50")?);
/// assert_eq!(team.balance(budget_guard::Unit::Usd)?.reserved, Amount::usd("1.50")?); // nothing held
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Check {
    /// The node checked.
    pub node: Arc<str>,
    /// The cost checked.
    pub requested: Cost,
    /// Whether the reserve would be granted, and if not, why.
    pub verdict: Verdict,
    /// Per unit of the request that some node on the path limits with a *hard* limit, the node
    /// with the least room left, with its figures (`requested` is the request in that unit, and
    /// [`Exceeded::remaining`] the room). When the verdict is [`Verdict::Exceeded`] its node is
    /// among these.
    pub limiting: Vec<Exceeded>,
    /// A node whose *soft* limit the reserve would pass (the one with the least room), if any.
    pub over_soft_limit: Option<Arc<str>>,
    /// Holds the check reclaimed because they were past their deadline (a reserve that would be
    /// denied reclaims them first, so the check does too), and reclaimed holds no earlier
    /// operation reported. Delivered as [`Event::HoldExpired`](crate::Event::HoldExpired) by
    /// [`Budget::check`](crate::Budget::check).
    pub expired: Vec<ExpiredHold>,
    /// The approval requests a reserve of this cost would make, in the order it would make them
    /// (leaf to root; see [`crate::approval`]). Nobody was asked: the verdict is about money
    /// and node states only, so a check that [`fits`](Check::fits) may still need approval.
    #[cfg_attr(feature = "serde", serde(default))]
    pub approvals: Vec<ApprovalRequest>,
    /// Where the request stands on every limit of the path, in one answer: for each node from
    /// the checked one up to the root, one entry per limit it has (every unit, every period;
    /// see [`Limits`](crate::Limits)), with the limit's figures and whether this request
    /// would be refused there; a unit of the request that a node tracks without a limit gets
    /// one entry with `limit: None`.
    ///
    /// ```
    /// use budget_guard::period::Period;
    /// use budget_guard::{Amount, Budget, Limit, Limits, Unit};
    /// # fn main() -> budget_guard::Result<()> {
    /// let agent = Budget::builder(
    ///     "agent",
    ///     Limits::from([
    ///         Limit::hard(Amount::usd("25")?).per(Period::daily()),
    ///         Limit::hard(Amount::usd("150")?).per(Period::weekly()),
    ///     ]),
    /// )
    /// .child("task", Limit::hard(Amount::usd("2")?))
    /// .build()?;
    /// let task = agent.at("task")?;
    /// task.reserve(Amount::usd("1.50")?)?.commit(Amount::usd("1.50")?)?;
    ///
    /// let check = task.check(Amount::usd("1")?)?;
    /// let rows: Vec<(String, Option<String>, String, String, bool)> = check
    ///     .limits
    ///     .iter()
    ///     .map(|row| {
    ///         let b = &row.balance;
    ///         let period = b.limit.and_then(|l| l.period()).map(|p| p.to_string());
    ///         let remaining = b.remaining.unwrap().to_string();
    ///         (b.node.to_string(), period, b.spent.to_string(), remaining, row.refuses)
    ///     })
    ///     .collect();
    /// assert_eq!(rows, [
    ///     ("agent/task".into(), None, "$1.50".into(), "$0.50".into(), true),
    ///     ("agent".into(), Some("daily (UTC)".into()), "$1.50".into(), "$23.50".into(), false),
    ///     ("agent".into(), Some("weekly (UTC)".into()), "$1.50".into(), "$148.50".into(), false),
    /// ]);
    /// assert!(!check.fits());
    /// # Ok(()) }
    /// ```
    #[cfg_attr(feature = "serde", serde(default))]
    pub limits: Vec<LimitStatus>,
}

/// One limit of one node in a [`Check`]: its figures and what the checked request does to it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct LimitStatus {
    /// The node and the limit's figures: `limit` (with its period, `None` for a unit the node
    /// only tracks), `allowance`, `spent` (in the limit's current period), `reserved`,
    /// `remaining` and `resets_at`. `debt` is the unit's debt on the node, shown with the unit's
    /// first limit (zero on its further limits).
    pub balance: Balance,
    /// The request in this unit (zero when the request has none of it).
    pub requested: Amount,
    /// `true` if this hard limit alone would refuse the request (`requested` is more than
    /// `allowance - spent - reserved`). Soft limits and tracked units never refuse; a node in
    /// debt refuses through [`Check::verdict`] whatever its room.
    pub refuses: bool,
}

impl Check {
    /// `true` if a reserve of this cost would be granted now (as far as money and node states
    /// go; see [`needs_approval`](Check::needs_approval)).
    pub fn fits(&self) -> bool {
        matches!(self.verdict, Verdict::Fits)
    }

    /// `true` if a reserve of this cost would first ask an approver ([`Check::approvals`]).
    ///
    /// ```
    /// use budget_guard::approval::{Approval, ApprovalRequest};
    /// use budget_guard::{Amount, Budget, Limit};
    /// # fn main() -> budget_guard::Result<()> {
    /// let org = Budget::builder("org", Limit::hard(Amount::usd("100")?))
    ///     .child("agent", Limit::hard(Amount::usd("10")?))
    ///     .build()?;
    /// org.require_approval(Amount::usd("5")?, |_: &ApprovalRequest| Approval::Approved)?;
    /// let check = org.at("agent")?.check(Amount::usd("6")?)?;
    /// assert!(check.fits() && check.needs_approval());
    /// assert_eq!(&*check.approvals[0].rule_node, "org");
    /// assert!(!org.at("agent")?.check(Amount::usd("5")?)?.needs_approval());
    /// # Ok(()) }
    /// ```
    pub fn needs_approval(&self) -> bool {
        !self.approvals.is_empty()
    }

    /// The node that would refuse the reserve, if one would.
    pub fn denied_by(&self) -> Option<&str> {
        match &self.verdict {
            Verdict::Fits => None,
            Verdict::Exceeded(details) => Some(&details.node),
            Verdict::InDebt { node, .. }
            | Verdict::Frozen { node }
            | Verdict::Closed { node }
            | Verdict::RateLimited { node, .. } => Some(node),
        }
    }
}

/// The outcome of a [`Check`]. Each refusal is the error the reserve would return, as data.
/// Variants may be added; match with a wildcard arm.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(tag = "verdict", rename_all = "snake_case"))]
#[non_exhaustive]
pub enum Verdict {
    /// The reserve would be granted.
    Fits,
    /// A hard limit would be passed ([`Error::BudgetExceeded`]).
    Exceeded(Exceeded),
    /// A node on the path owes money ([`Error::InDebt`]).
    InDebt {
        /// The indebted node.
        node: Arc<str>,
        /// What it owes.
        debt: Amount,
    },
    /// A node on the path is frozen ([`Error::Frozen`]).
    Frozen {
        /// The frozen node.
        node: Arc<str>,
    },
    /// A node on the path is closed ([`Error::Closed`]).
    Closed {
        /// The closed node.
        node: Arc<str>,
    },
    /// A node on the path has used its request rate ([`Error::RateLimited`]).
    RateLimited {
        /// The node whose rate limit refuses (the one with the longest wait).
        node: Arc<str>,
        /// Requests allowed per window.
        limit: u32,
        /// The window.
        window: std::time::Duration,
        /// How long until a reserve would pass this rate limit.
        retry_after: std::time::Duration,
    },
}

impl Verdict {
    /// The verdict for a reserve's refusal; other errors (bad input, unknown node, a unit no
    /// node limits) are not verdicts and come back as `Err`.
    pub(crate) fn from_refusal(error: Error) -> Result<Verdict, Error> {
        match error {
            Error::BudgetExceeded(details) => Ok(Verdict::Exceeded(*details)),
            Error::InDebt { node, debt } => Ok(Verdict::InDebt { node, debt }),
            Error::Frozen { node } => Ok(Verdict::Frozen { node }),
            Error::Closed { node } => Ok(Verdict::Closed { node }),
            Error::RateLimited {
                node,
                limit,
                window,
                retry_after,
            } => Ok(Verdict::RateLimited {
                node,
                limit,
                window,
                retry_after,
            }),
            other => Err(other),
        }
    }
}
