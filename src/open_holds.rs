//! [`OpenHolds`]: what is still held on a node and below it ([`Budget::open_holds`]), the check
//! an agent run ends with.

use std::sync::Arc;

use crate::balance::HoldSnapshot;
use crate::budget::Budget;
use crate::cost::Cost;
use crate::error::Result;

/// The live holds on a node and every node below it, with what they still hold.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct OpenHolds {
    /// The node asked about.
    pub node: Arc<str>,
    /// How many holds are live on the node and below it (`holds.len()`).
    pub count: usize,
    /// What they still hold, per unit: held minus what [`Guard::record`](crate::Guard::record)
    /// already moved to spent. Empty when nothing is held.
    pub held: Cost,
    /// The holds themselves (id, node, held, recorded, deadline), in hold-slot order; filter
    /// on [`HoldSnapshot::node`] for the node's own.
    pub holds: Vec<HoldSnapshot>,
}

impl OpenHolds {
    /// `true` when nothing is held on the node or below it.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

impl Budget {
    /// The holds still open on this node and every node below it: their count, what they hold
    /// per unit, and each hold. An agent run ends with this check (a leaked guard, a forgotten
    /// commit, a crashed worker whose hold has not expired yet).
    ///
    /// It reads a [`snapshot`](Budget::snapshot) of the store, so it costs a copy of the
    /// store's state: meant for the end of a run or a dashboard, not for every call. Holds past
    /// their deadline that no operation has reclaimed yet still count (see
    /// [`HoldSnapshot::expires_at`]).
    ///
    /// ```
    /// use budget_guard::{Amount, Budget, Limit, Unit};
    /// # fn main() -> budget_guard::Result<()> {
    /// let run = Budget::builder("run", Limit::hard(Amount::usd("10")?))
    ///     .child("step-1", Limit::hard(Amount::usd("2")?))
    ///     .build()?;
    /// let step = run.at("step-1")?;
    /// let first = step.reserve(Amount::usd("1.50")?)?;
    /// let second = run.reserve(Amount::usd("0.25")?)?;
    /// let open = run.open_holds()?;
    /// assert_eq!(open.count, 2);
    /// assert_eq!(open.held.get(Unit::Usd), Some(Amount::usd("1.75")?));
    /// assert_eq!(step.open_holds()?.count, 1);
    /// first.commit(Amount::usd("1")?)?;
    /// second.release()?;
    /// assert!(run.open_holds()?.is_empty());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// Only store failures.
    pub fn open_holds(&self) -> Result<OpenHolds> {
        let snapshot = self.snapshot()?;
        let path = self.path();
        let in_subtree = |node: &str| {
            node.strip_prefix(path)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        };
        let holds: Vec<HoldSnapshot> = snapshot
            .holds
            .into_iter()
            .filter(|hold| in_subtree(&hold.node))
            .collect();
        let mut held = Cost::new();
        for hold in &holds {
            for unit in hold.held.units() {
                let outstanding = hold.held.minor(unit) - hold.recorded.minor(unit);
                held.set(unit, held.minor(unit) + outstanding);
            }
        }
        Ok(OpenHolds {
            node: Arc::from(path),
            count: holds.len(),
            held,
            holds,
        })
    }
}
