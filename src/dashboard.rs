//! [`Dashboard`]: a subtree's status at a glance (id / status / spent / limit), like a batch
//! dashboard, read from one consistent [`Snapshot`](crate::Snapshot).

use std::fmt;
use std::sync::Arc;

use crate::amount::{Amount, Unit};
use crate::budget::Budget;
use crate::error::Result;
use crate::node_state::NodeState;
use crate::policy::{Limit, LimitKind};

/// How a node stands in the dashboard's unit, worst first when several apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum Status {
    /// Closed by its owner (or an ancestor's state; only the node's own state is shown).
    Closed,
    /// Frozen by its owner.
    Frozen,
    /// Owes an overage.
    InDebt,
    /// A hard limit with nothing left.
    Exhausted,
    /// Past a soft limit.
    OverSoftLimit,
    /// At least 80 % of the limit spent or held.
    Warning,
    /// Room left (or no limit in this unit).
    Ok,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Closed => "closed",
            Status::Frozen => "frozen",
            Status::InDebt => "in debt",
            Status::Exhausted => "exhausted",
            Status::OverSoftLimit => "over soft",
            Status::Warning => "warning",
            Status::Ok => "ok",
        })
    }
}

/// One node's line.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct DashboardRow {
    /// Full path.
    pub node: Arc<str>,
    /// How it stands.
    pub status: Status,
    /// Spent (including debt: money spent beyond the limit).
    pub spent: Amount,
    /// Held by live holds.
    pub reserved: Amount,
    /// The limit in the dashboard's unit, if any.
    pub limit: Option<Limit>,
}

/// Every node of a subtree in one unit, parents first; `Display` prints a table.
///
/// ```
/// use budget_guard::{Amount, Budget, Limit, Unit};
/// # fn main() -> budget_guard::Result<()> {
/// let org = Budget::builder("org", Limit::hard(Amount::usd("10")?))
///     .child("batch-1", Limit::hard(Amount::usd("1")?))
///     .child("batch-2", Limit::hard(Amount::usd("1")?))
///     .build()?;
/// org.at("batch-1")?.reserve(Amount::usd("1")?)?.commit(Amount::usd("1")?)?;
/// let board = org.dashboard(Unit::Usd)?;
/// assert_eq!(board.rows[1].status, budget_guard::Status::Exhausted);
/// println!("{board}");
/// // node         status            spent       reserved  limit
/// // org          ok                   $1             $0  $10 hard
/// // org/batch-1  exhausted            $1             $0  $1 hard
/// // org/batch-2  ok                   $0             $0  $1 hard
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Dashboard {
    /// The unit shown.
    pub unit: Unit,
    /// One row per node.
    pub rows: Vec<DashboardRow>,
}

impl Budget {
    /// This node and every node below it in `unit`, from one consistent snapshot.
    ///
    /// # Errors
    /// Only store failures.
    pub fn dashboard(&self, unit: Unit) -> Result<Dashboard> {
        let snapshot = self.snapshot()?;
        let scope = self.path();
        let rows = snapshot
            .nodes
            .into_iter()
            .filter(|node| {
                node.path.starts_with(scope)
                    && (node.path.len() == scope.len() || node.path.as_bytes()[scope.len()] == b'/')
            })
            .map(|node| {
                let account = node.accounts.iter().find(|account| account.unit == unit);
                let zero = Amount::zero(unit);
                let (spent, reserved, debt, limit) = account
                    .map_or((zero, zero, zero, None), |a| {
                        (a.spent, a.reserved, a.debt, a.limit)
                    });
                // A periodic limit allows its period's allowance (carry and credits included).
                let allowance = account.and_then(|a| a.allowance);
                let used = spent.minor_units().saturating_add(reserved.minor_units());
                let status = match (node.state, limit) {
                    (NodeState::Closed, _) => Status::Closed,
                    (NodeState::Frozen, _) => Status::Frozen,
                    _ if !debt.is_zero() => Status::InDebt,
                    (_, Some(limit)) => {
                        let cap = allowance.unwrap_or(limit.amount()).minor_units();
                        match limit.kind() {
                            LimitKind::Hard if used >= cap => Status::Exhausted,
                            LimitKind::Soft if used > cap => Status::OverSoftLimit,
                            _ if i128::from(used) * 5 >= i128::from(cap) * 4 => Status::Warning,
                            _ => Status::Ok,
                        }
                    }
                    _ => Status::Ok,
                };
                let spent = Amount::from_minor(
                    spent.minor_units().saturating_add(debt.minor_units()),
                    unit,
                );
                DashboardRow {
                    node: node.path,
                    status,
                    spent,
                    reserved,
                    limit,
                }
            })
            .collect();
        Ok(Dashboard { unit, rows })
    }
}

impl fmt::Display for Dashboard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .rows
            .iter()
            .map(|row| row.node.chars().count())
            .max()
            .unwrap_or(4)
            .max(4);
        writeln!(
            f,
            "{:<width$}  {:<10}  {:>14}  {:>14}  limit",
            "node", "status", "spent", "reserved"
        )?;
        for row in &self.rows {
            let limit = row.limit.map_or_else(
                || "-".to_owned(),
                |limit| {
                    let kind = match limit.kind() {
                        LimitKind::Hard => "hard",
                        LimitKind::Soft => "soft",
                    };
                    format!("{} {kind}", limit.amount())
                },
            );
            writeln!(
                f,
                "{:<width$}  {:<10}  {:>14}  {:>14}  {limit}",
                row.node,
                row.status.to_string(),
                row.spent.to_string(),
                row.reserved.to_string(),
            )?;
        }
        Ok(())
    }
}
