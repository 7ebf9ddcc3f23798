//! Node states (active, frozen, closed) inside the ledger. The reserve path pays for them only
//! while some node is not active: one integer compare otherwise.

use super::Ledger;
use crate::error::Error;
use crate::ids::NodeId;
use crate::node_state::NodeState;

impl Ledger {
    /// Sets a node's state; returns the previous one.
    pub(crate) fn set_state(&mut self, id: NodeId, state: NodeState) -> Result<NodeState, Error> {
        let index = self.live(id)?;
        let node = self.node_mut(index);
        let previous = std::mem::replace(&mut node.state, state);
        if previous != state {
            self.bump_epoch();
        }
        match (previous == NodeState::Active, state == NodeState::Active) {
            (true, false) => self.restricted += 1,
            (false, true) => self.restricted -= 1,
            _ => {}
        }
        Ok(previous)
    }

    /// Refuses new holds when a node on the path of `leaf` is frozen or closed.
    #[inline]
    pub(super) fn check_open(&self, leaf: u32) -> Result<(), Error> {
        if self.restricted == 0 {
            return Ok(());
        }
        self.check_states(leaf, false)
    }

    /// Refuses recording when a node on the path of `leaf` is closed.
    #[inline]
    pub(super) fn check_not_closed(&self, leaf: u32) -> Result<(), Error> {
        if self.restricted == 0 {
            return Ok(());
        }
        self.check_states(leaf, true)
    }

    #[cold]
    fn check_states(&self, leaf: u32, closed_only: bool) -> Result<(), Error> {
        for index in self.path_indices(leaf) {
            let node = self.node(index);
            match node.state {
                NodeState::Closed => {
                    return Err(Error::Closed {
                        node: node.path.clone(),
                    });
                }
                NodeState::Frozen if !closed_only => {
                    return Err(Error::Frozen {
                        node: node.path.clone(),
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }
}
