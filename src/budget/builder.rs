//! Building a budget tree: [`BudgetBuilder`].

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::hub::Shared;
use crate::ledger::validate_name;
use crate::policy::Limits;
use crate::store::Store;
use crate::store::memory::MemoryStore;

use super::Budget;

/// Builds a budget tree: a root and children addressed by paths relative to it.
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until build() or build_in()"]
pub struct BudgetBuilder {
    pub(super) root: String,
    pub(super) limits: Limits,
    pub(super) children: Vec<(String, Limits)>,
}

impl BudgetBuilder {
    /// Adds a node at `path` relative to the root (`"support"`, then `"support/agent-7"`).
    /// Parents must be added before their children.
    pub fn child(mut self, path: &str, limits: impl Into<Limits>) -> Self {
        self.children
            .push((path.trim_matches('/').to_owned(), limits.into()));
        self
    }

    /// Builds the tree in a new [`MemoryStore`] and returns the root.
    ///
    /// # Errors
    /// As [`build_in`](BudgetBuilder::build_in).
    pub fn build(self) -> Result<Budget> {
        self.build_in(MemoryStore::new())
    }

    /// Builds the tree in `store` and returns the root. Names, limits, the parent order and
    /// what the store itself refuses ([`Store::validate_limits`]: a limit a remote store cannot
    /// enforce exactly) are checked before anything is created, so a rejected builder leaves the
    /// store as it was. (A store that fails midway, a lost connection say, can leave the nodes
    /// created before the failure.)
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::DuplicateNode`] (also when the store already has a node
    /// at the root's path), [`Error::DuplicateLimit`], [`Error::UnitMismatch`] for an overdraft in
    /// another unit, [`Error::UnknownNode`] for a child listed before its parent; what
    /// [`Store::validate_limits`] returns (such as [`Error::Unsupported`]); a store's own errors.
    pub fn build_in(self, store: impl Store) -> Result<Budget> {
        self.build_shared(Arc::new(store))
    }

    /// As [`build_in`](BudgetBuilder::build_in) for a store that is already shared.
    ///
    /// # Errors
    /// As [`build_in`](BudgetBuilder::build_in).
    pub fn build_shared(self, store: Arc<dyn Store>) -> Result<Budget> {
        self.validate()?;
        // What the store itself would refuse, before anything is created.
        store.validate_limits(&self.limits)?;
        for (_, limits) in &self.children {
            store.validate_limits(limits)?;
        }
        let root = store.create_node(None, &self.root, &self.limits)?;
        let shared = Arc::new(Shared::new(store));
        let store = &shared.store;
        for (path, limits) in &self.children {
            let (parent, name) = match path.rsplit_once('/') {
                Some((parent, name)) => (format!("{}/{parent}", self.root), name),
                None => (self.root.clone(), path.as_str()),
            };
            let parent = store.resolve(&parent)?;
            store.create_node(Some(parent), name, limits)?;
        }
        Budget::from_id(shared, root)
    }

    /// Everything `build` could reject, checked without a store.
    fn validate(&self) -> Result<()> {
        validate_name(&self.root)?;
        self.limits.validate(&self.root)?;
        let mut seen: Vec<&str> = Vec::with_capacity(self.children.len());
        for (path, limits) in &self.children {
            let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
            validate_name(name)?;
            limits.validate(path)?;
            if !parent.is_empty() && !seen.contains(&parent) {
                return Err(Error::UnknownNode {
                    path: format!("{}/{parent}", self.root),
                });
            }
            if seen.contains(&path.as_str()) {
                return Err(Error::DuplicateNode {
                    path: format!("{}/{path}", self.root),
                });
            }
            seen.push(path);
        }
        Ok(())
    }
}
