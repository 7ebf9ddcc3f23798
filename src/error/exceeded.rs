//! [`Exceeded`]: the figures of a denied reserve.

use std::sync::Arc;

use crate::amount::Amount;

/// The numbers behind a [`Error::BudgetExceeded`](super::Error::BudgetExceeded): which node said
/// no, and by how much.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Exceeded {
    /// Full path of the node whose hard limit would be exceeded (the reserving node or an
    /// ancestor).
    pub node: Arc<str>,
    /// That node's limit.
    pub limit: Amount,
    /// Spent on that node so far.
    pub spent: Amount,
    /// Held on that node by live reservations.
    pub reserved: Amount,
    /// The amount that did not fit.
    pub requested: Amount,
    /// The period of the limit that refused (`None` for a limit over all time): with several
    /// limits of one unit on a node (daily, weekly, monthly), the one that said no.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub period: Option<crate::period::Period>,
}

impl Exceeded {
    /// What is still free on the limiting node: `limit - spent - reserved`.
    pub fn remaining(&self) -> Amount {
        // Saturating: the figures may come from a remote store or a deserialized event.
        let free = self
            .limit
            .minor_units()
            .saturating_sub(self.spent.minor_units())
            .saturating_sub(self.reserved.minor_units());
        Amount::from_minor(free.max(0), self.limit.unit())
    }

    /// `true` if the request is larger than the node's whole limit, so no amount of waiting for
    /// holds to end will make it fit; a cheaper tier or a raised limit is needed.
    pub fn never_fits(&self) -> bool {
        self.requested.minor_units() > self.limit.minor_units()
    }
}
