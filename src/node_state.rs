//! [`NodeState`]: the kill switch of a budget node.

use std::fmt;

/// Whether a node accepts work. A state applies to the node's whole subtree: a reserve checks
/// every node on its path, and the first one that is not [`Active`](NodeState::Active) refuses.
///
/// | state | new holds | `record` on live holds | commit / release of live holds |
/// |---|---|---|---|
/// | `Active` | yes | yes | yes |
/// | `Frozen` | no ([`Error::Frozen`](crate::Error::Frozen)) | yes | yes |
/// | `Closed` | no ([`Error::Closed`](crate::Error::Closed)) | no ([`Error::Closed`](crate::Error::Closed)) | yes |
///
/// Commits and releases always go through, also on a closed path: the money of a hold that was
/// live when the node closed was really spent (or must be returned), and the books must show it.
/// A node may move between the states in any order ([`Budget::set_state`](crate::Budget::set_state)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum NodeState {
    /// Accepts new holds.
    #[default]
    Active,
    /// No new holds on the node or below it; live holds may record, commit and release.
    Frozen,
    /// No new holds and no further recording on the node or below it; live holds may only
    /// commit or release.
    Closed,
}

impl fmt::Display for NodeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NodeState::Active => "active",
            NodeState::Frozen => "frozen",
            NodeState::Closed => "closed",
        })
    }
}
