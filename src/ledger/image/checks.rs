//! The checks an image passes before the ledger uses it: a damaged or hostile file must give
//! an error, never books that break the ledger's own invariants.

use super::super::{HoldSlot, Ledger, NodeSlot};
use super::values::Invalid;
use crate::amount::Unit;

/// What the holds reserve on each node and unit (every hold reserves its outstanding part on
/// its node and every ancestor) must be what the accounts say, on every cap; and each account's
/// figures must pass the checks a restore makes.
pub(super) fn check_figures(ledger: &Ledger) -> Result<(), Invalid> {
    let mut expected = vec![[0i64; Unit::COUNT]; ledger.nodes.len()];
    for hold in ledger.holds.iter().filter_map(HoldSlot::hold) {
        for unit in hold.held.units() {
            let (held, recorded) = (hold.held.minor(unit), hold.recorded.minor(unit));
            if recorded < 0 || recorded > held || !hold.recorded.units().all(|u| hold.held.has(u)) {
                return Err(format!("a hold records {recorded} of {held} {unit}"));
            }
            let mut at = Some(hold.node);
            while let Some(index) = at {
                let sum = &mut expected[index as usize][unit.index()];
                *sum = sum
                    .checked_add(held - recorded)
                    .ok_or("holds reserve more than an i64")?;
                at = ledger.nodes[index as usize]
                    .node
                    .as_ref()
                    .and_then(|node| node.parent);
            }
        }
    }
    for (slot, expected) in ledger.nodes.iter().zip(&expected) {
        let Some(node) = &slot.node else { continue };
        for unit in Unit::ALL {
            let account = &node.accounts[unit.index()];
            let reserved = expected[unit.index()];
            if account.caps().any(|cap| cap.reserved != reserved) {
                return Err(format!(
                    "{} reserves {} {unit} but its holds add up to {reserved}",
                    node.path, account.reserved
                ));
            }
            super::super::snapshot::check_account(&node.path, unit, account)
                .map_err(|e| e.to_string())?;
            if account
                .extras()
                .iter()
                .any(|cap| cap.spent < 0 || cap.limit().is_none())
            {
                return Err(format!("{}: a bad further {unit} cap", node.path));
            }
        }
    }
    Ok(())
}

/// Every parent and child index names a live node, each child names its parent back, and
/// following parents always ends at a root.
pub(super) fn check_tree(nodes: &[NodeSlot]) -> Result<(), Invalid> {
    let live = |index: u32| {
        nodes
            .get(index as usize)
            .and_then(|slot| slot.node.as_ref())
    };
    // Every child names its parent back (below), so equal totals leave no room for a child
    // listed twice.
    let live_nodes = nodes.iter().filter_map(|slot| slot.node.as_ref());
    let children: usize = live_nodes.clone().map(|node| node.children().len()).sum();
    if children != live_nodes.filter(|node| node.parent.is_some()).count() {
        return Err("a child is listed twice, or a node is missing from its parent".into());
    }
    for (index, slot) in nodes.iter().enumerate() {
        let Some(node) = &slot.node else { continue };
        // A path is its parent's path, a slash and one name: resolving a path must find the
        // node the tree has there.
        let name = match node.parent.and_then(live) {
            Some(parent) => node
                .path
                .strip_prefix(&*parent.path)
                .and_then(|rest| rest.strip_prefix('/')),
            None => Some(&*node.path),
        };
        if name.is_none_or(|name| name.is_empty() || name.contains('/')) {
            return Err(format!(
                "{:?} is not a name under its parent's path",
                node.path
            ));
        }
        if let Some(parent) = node.parent {
            let parent =
                live(parent).ok_or_else(|| format!("{:?} has a dead parent", node.path))?;
            if !parent.children().contains(&(index as u32)) {
                return Err(format!(
                    "{:?} is not among its parent's children",
                    node.path
                ));
            }
        }
        for child in node.children() {
            let child = live(*child).ok_or_else(|| format!("{:?} has a dead child", node.path))?;
            if child.parent != Some(index as u32) {
                return Err(format!("a child of {:?} names another parent", node.path));
            }
        }
        // A cycle never reaches a root: give up after as many steps as there are slots.
        let mut at = node.parent;
        let mut steps = 0;
        while let Some(parent) = at {
            steps += 1;
            if steps > nodes.len() {
                return Err(format!("{:?} is its own ancestor", node.path));
            }
            at = live(parent).and_then(|parent| parent.parent);
        }
    }
    Ok(())
}

/// A free list names distinct free slots within `len`.
pub(super) fn check_free(
    free: &[u32],
    len: usize,
    is_free: impl Fn(usize) -> bool,
) -> Result<(), Invalid> {
    let mut seen = vec![false; len];
    for index in free {
        let index = *index as usize;
        if index >= len || !is_free(index) || std::mem::replace(&mut seen[index], true) {
            return Err(format!("bad free-list entry {index}"));
        }
    }
    Ok(())
}
