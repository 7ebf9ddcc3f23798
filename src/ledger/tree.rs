//! The node tree: slots, paths, creation, removal and name rules.

use std::sync::Arc;

use super::account::accounts_from;
use super::accounts::Accounts;
use super::{Ledger, place, rate, top_up};
use crate::error::Error;
use crate::ids::NodeId;
use crate::node_state::NodeState;
use crate::policy::Limits;

/// Longest node name accepted.
pub(super) const MAX_NAME_LEN: usize = 128;

#[derive(Debug)]
pub(super) struct NodeSlot {
    pub(super) serial: u32,
    pub(super) node: Option<Node>,
}

/// A node of the tree.
///
/// Layout (issue 16): what the reserve and commit walks read (the parent link, the accounts'
/// figures) is inline; children and the rules few nodes have (rate limit, burn tracking,
/// top-up) live behind one optional box, so a leaf with one plain limit is one slab slot plus
/// its path.
#[derive(Debug)]
pub(super) struct Node {
    pub(super) path: Arc<str>,
    pub(super) parent: Option<u32>,
    pub(super) live_holds: u32,
    /// Active, frozen or closed (applies to the subtree).
    pub(super) state: NodeState,
    pub(super) accounts: Accounts,
    /// Children and rules; `None` for the usual leaf.
    pub(super) extras: Option<Box<NodeExtras>>,
}

/// What a node keeps behind its one optional box (see [`Node`]).
#[derive(Debug, Default)]
pub(super) struct NodeExtras {
    /// Child slot indices, in creation order.
    pub(super) children: Vec<u32>,
    /// The request rate limit and its recent requests, if any.
    pub(super) rate: Option<Box<rate::RateWindow>>,
    /// The burn-rate buckets, if the node tracks its burn rate.
    pub(super) burn: Option<Box<top_up::BurnTracker>>,
    /// The auto top-up rule and its counters, if any.
    pub(super) top_up: Option<Box<top_up::TopUpState>>,
}

/// What a node without extras reads as.
static NO_EXTRAS: NodeExtras = NodeExtras {
    children: Vec::new(),
    rate: None,
    burn: None,
    top_up: None,
};

impl Node {
    /// The node's children and rules (empty for the usual leaf).
    #[inline]
    pub(super) fn extras(&self) -> &NodeExtras {
        self.extras.as_deref().unwrap_or(&NO_EXTRAS)
    }

    /// The node's children and rules, boxed on first use.
    pub(super) fn extras_mut(&mut self) -> &mut NodeExtras {
        self.extras.get_or_insert_with(Box::default)
    }

    /// The node's children and rules if it has any (changing them creates nothing).
    pub(super) fn extras_if_any(&mut self) -> Option<&mut NodeExtras> {
        self.extras.as_deref_mut()
    }

    /// Child slot indices, in creation order.
    pub(super) fn children(&self) -> &[u32] {
        &self.extras().children
    }
}

impl Ledger {
    pub(super) fn node(&self, index: u32) -> &Node {
        self.nodes[index as usize]
            .node
            .as_ref()
            .expect("ledger invariant: a referenced node slot is occupied")
    }

    pub(super) fn node_mut(&mut self, index: u32) -> &mut Node {
        self.nodes[index as usize]
            .node
            .as_mut()
            .expect("ledger invariant: a referenced node slot is occupied")
    }

    /// The slot index of a live node id.
    #[inline]
    pub(super) fn live(&self, id: NodeId) -> Result<u32, Error> {
        match self.nodes.get(id.index() as usize) {
            Some(slot) if slot.serial == id.serial() && slot.node.is_some() => Ok(id.index()),
            _ => Err(unknown_node(id)),
        }
    }

    pub(crate) fn resolve(&self, path: &str) -> Result<NodeId, Error> {
        self.by_path
            .get(path.trim_matches('/'))
            .copied()
            .ok_or_else(|| Error::UnknownNode {
                path: path.to_owned(),
            })
    }

    pub(crate) fn create_node(
        &mut self,
        parent: Option<NodeId>,
        name: &str,
        limits: &Limits,
    ) -> Result<NodeId, Error> {
        validate_name(name)?;
        let parent_index = parent.map(|id| self.live(id)).transpose()?;
        let path: Arc<str> = match parent_index {
            Some(index) => format!("{}/{name}", self.node(index).path).into(),
            None => name.into(),
        };
        let accounts = Accounts::new(accounts_from(&path, limits)?);
        if self.by_path.contains_key(&path) {
            return Err(Error::DuplicateNode {
                path: path.to_string(),
            });
        }
        let node = Node {
            path: path.clone(),
            parent: parent_index,
            accounts,
            live_holds: 0,
            state: NodeState::Active,
            extras: None,
        };
        let serial = self.serial();
        let slot = NodeSlot {
            serial,
            node: Some(node),
        };
        let index = place(
            &mut self.nodes,
            &mut self.free_nodes,
            slot,
            "create more than 2^32 nodes",
        )?;
        if let Some(parent) = parent_index {
            self.node_mut(parent).extras_mut().children.push(index);
        }
        self.note_unstarted(index);
        let id = NodeId::new(index, serial);
        self.by_path.insert(path, id);
        Ok(id)
    }

    pub(crate) fn remove_node(&mut self, id: NodeId) -> Result<(), Error> {
        let index = self.live(id)?;
        let node = self.node(index);
        let Some(parent) = node.parent else {
            return Err(Error::RootRemoval {
                node: node.path.clone(),
            });
        };
        if !node.children().is_empty() || node.live_holds > 0 {
            return Err(Error::NodeInUse {
                node: node.path.clone(),
                children: node.children().len(),
                holds: node.live_holds as usize,
            });
        }
        let path = node.path.clone();
        let rate_limited = node.extras().rate.is_some();
        if node.state != NodeState::Active {
            self.restricted -= 1;
        }
        if rate_limited {
            self.rate_limited -= 1;
        }
        self.forget_timed(index);
        self.node_mut(parent)
            .extras_mut()
            .children
            .retain(|child| *child != index);
        self.by_path.remove(&path);
        self.nodes[index as usize].node = None;
        self.free_nodes.push(index);
        Ok(())
    }

    /// The slot indices from `leaf` up to its root.
    pub(super) fn path_indices(&self, leaf: u32) -> impl Iterator<Item = u32> + '_ {
        std::iter::successors(Some(leaf), |index| self.node(*index).parent)
    }

    /// Live node ids, parents before children (creation order within a parent).
    pub(crate) fn nodes_in_order(&self) -> Vec<u32> {
        let mut order: Vec<u32> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.node.as_ref().is_some_and(|node| node.parent.is_none()))
            .map(|(index, _)| index as u32)
            .collect();
        let mut next = 0;
        while next < order.len() {
            let children = self.node(order[next]).children().to_vec();
            order.extend(children);
            next += 1;
        }
        order
    }
}

/// The error for an id that names no live node (out of line: the hot path only tests).
#[cold]
fn unknown_node(id: NodeId) -> Error {
    Error::UnknownNode {
        path: id.to_string(),
    }
}

pub(crate) fn validate_name(name: &str) -> Result<(), Error> {
    let reason = if name.is_empty() {
        Some("names cannot be empty")
    } else if name.contains('/') {
        Some("names cannot contain '/' (it separates path segments)")
    } else if name == "." || name == ".." {
        Some("'.' and '..' are reserved")
    } else if name.len() > MAX_NAME_LEN {
        Some("names are at most 128 bytes")
    } else if name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        Some("names cannot contain whitespace or control characters")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}
