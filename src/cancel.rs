//! [`Cancellation`]: why work running under a [`Guard`](crate::Guard) should stop.

use std::fmt;
use std::sync::Arc;

use crate::amount::Unit;
use crate::clock::Timestamp;

/// Why a guard's work should stop ([`Guard::cancellation`](crate::Guard::cancellation)).
///
/// The hold itself may still be live: a frozen or closed path still accepts the guard's
/// `commit` and `release`, so the spend of the work that did run is recorded. Variants may be
/// added; match with a wildcard arm.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(tag = "reason", rename_all = "snake_case"))]
#[non_exhaustive]
pub enum Cancellation {
    /// A node on the hold's path (its node or an ancestor, the nearest one named) is frozen.
    Frozen {
        /// The frozen node.
        node: Arc<str>,
    },
    /// A node on the hold's path is closed.
    Closed {
        /// The closed node.
        node: Arc<str>,
    },
    /// The hold passed its deadline and the store reclaimed it (see [`crate::expiry`]).
    Expired {
        /// The deadline it passed.
        expired_at: Timestamp,
    },
    /// A node on the path has a *hard* limit in one of the hold's units that real spend has used
    /// up (`spent + debt ≥ limit`), or it owes debt: nothing more can be spent there, not even
    /// by growing this hold.
    Exhausted {
        /// The exhausted node (the nearest to the hold's node).
        node: Arc<str>,
        /// The unit.
        unit: Unit,
    },
    /// The hold ended without this guard (its id was committed or released through the
    /// [`Store`](crate::Store) directly, or the store was restored from a snapshot without it),
    /// or the store failed and cannot answer.
    Ended,
}

impl fmt::Display for Cancellation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cancellation::Frozen { node } => write!(f, "{node} is frozen"),
            Cancellation::Closed { node } => write!(f, "{node} is closed"),
            Cancellation::Expired { expired_at } => {
                write!(f, "the hold expired at {expired_at} and was reclaimed")
            }
            Cancellation::Exhausted { node, unit } => {
                write!(f, "the hard {unit} limit of {node} is used up")
            }
            Cancellation::Ended => f.write_str("the hold has ended"),
        }
    }
}
