//! [`Budget`]: a cheap handle to one node of a budget tree, and the builder that makes a tree.

use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::hub::Shared;
use crate::ids::NodeId;
use crate::ledger::validate_name;
use crate::policy::Limits;
use crate::store::Store;

mod builder;
mod events;
mod limits;
mod reserve;

pub use self::builder::BudgetBuilder;

/// One node of a budget tree (`org → team → agent → task`, or any hierarchy).
///
/// A `Budget` is a cheap `Clone` (an `Arc` and an id), `Send + Sync`, and every clone addresses
/// the same books. Reserving on a node holds the amount on the node **and every ancestor**,
/// atomically; a hard limit anywhere on that path can refuse.
///
/// ```
/// use budget_guard::{Amount, Budget, Limit};
/// # fn main() -> budget_guard::Result<()> {
/// let org = Budget::builder("acme", Limit::hard(Amount::usd("100")?))
///     .child("support", Limit::hard(Amount::usd("40")?))
///     .child("support/agent-7", Limit::hard(Amount::usd("10")?))
///     .build()?;
/// let agent = org.at("support/agent-7")?;
/// // A per-request task budget, created on the fly and removed when done:
/// let task = agent.add_child("task-42", Limit::hard(Amount::usd("1")?))?;
/// let guard = task.reserve(Amount::usd("0.25")?)?;
/// guard.commit(Amount::usd("0.10")?)?;
/// assert_eq!(org.balance(budget_guard::Unit::Usd)?.spent, Amount::usd("0.10")?);
/// task.remove()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Budget {
    shared: Arc<Shared>,
    node: NodeId,
    path: Arc<str>,
}

impl Budget {
    /// Starts a tree whose root is `name` with `limits`, stored in memory unless built with
    /// [`BudgetBuilder::build_in`].
    pub fn builder(name: &str, limits: impl Into<Limits>) -> BudgetBuilder {
        BudgetBuilder {
            root: name.to_owned(),
            limits: limits.into(),
            children: Vec::new(),
        }
    }

    /// A handle to the existing node at `path` in `store` (for stores that already hold a tree,
    /// such as a reopened durable store).
    ///
    /// # Errors
    /// [`Error::UnknownNode`] if no node has that path.
    ///
    /// Event subscriptions belong to the handle family they were made on: every handle derived
    /// from this one ([`Clone`], [`at`](Budget::at), [`parent`](Budget::parent),
    /// [`children`](Budget::children), [`add_child`](Budget::add_child)) shares them, while a
    /// second `open` on the same store starts a new, empty set of subscriptions.
    pub fn open(store: Arc<dyn Store>, path: &str) -> Result<Budget> {
        let node = store.resolve(path)?;
        Budget::from_id(Arc::new(Shared::new(store)), node)
    }

    fn from_id(shared: Arc<Shared>, node: NodeId) -> Result<Budget> {
        let path = shared.store.node_info(node)?.path;
        Ok(Budget { shared, node, path })
    }

    /// Another node of the same tree, sharing this handle's subscriptions.
    fn sibling(&self, path: &str) -> Result<Budget> {
        let node = self.shared.store.resolve(path)?;
        Budget::from_id(self.shared.clone(), node)
    }

    /// The full path, e.g. `acme/support/agent-7`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The last path segment, e.g. `agent-7`.
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }

    /// The node's id in its store.
    pub fn id(&self) -> NodeId {
        self.node
    }

    /// The store that keeps this tree's books.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.shared.store
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    pub(crate) fn path_arc(&self) -> &Arc<str> {
        &self.path
    }

    /// Replaces a store's id-based `UnknownNode` message with this handle's path.
    fn named<T>(&self, result: Result<T>) -> Result<T> {
        result.map_err(|error| self.named_error(error))
    }

    /// [`named`](Budget::named) for an error alone (the reserve path matches its result in
    /// place instead of mapping it, see `Budget::granted`).
    fn named_error(&self, error: Error) -> Error {
        match error {
            Error::UnknownNode { path } if path == self.node.to_string() => Error::UnknownNode {
                path: self.path.to_string(),
            },
            other => other,
        }
    }

    /// The node at `relative` below this one (`"support/agent-7"`).
    ///
    /// One leading and one trailing `/` are ignored (`"/support"`, `"support/"`). The handle
    /// returned is the same whichever route reached the node: `org.at("support/agent-7")` and
    /// `org.at("support")?.at("agent-7")` have the same [`path`](Budget::path) and
    /// [`id`](Budget::id), and approval rules and subscriptions set through either apply to
    /// the node.
    ///
    /// ```
    /// use budget_guard::{Amount, Budget, Error, Limit};
    /// # fn main() -> budget_guard::Result<()> {
    /// let org = Budget::builder("org", Limit::hard(Amount::usd("10")?))
    ///     .child("team", Limit::hard(Amount::usd("5")?))
    ///     .build()?;
    /// assert_eq!(org.at("/team/")?.path(), "org/team");
    /// // A path that names no node below this one is refused, not read as `org` itself.
    /// assert!(matches!(org.at(""), Err(Error::InvalidName { .. })));
    /// assert!(matches!(org.at("team//x"), Err(Error::InvalidName { .. })));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidName`] if `relative` names no node below this one (empty, only `/`) or
    /// has an empty segment (`"a//b"`) or an invalid one (`".."`); [`Error::UnknownNode`] if
    /// there is no such node.
    pub fn at(&self, relative: &str) -> Result<Budget> {
        let path = format!("{}/{}", self.path, relative_path(relative)?);
        let node = self.shared.store.resolve(&path)?;
        Ok(Budget {
            shared: self.shared.clone(),
            node,
            path: path.into(),
        })
    }

    /// The parent node, or `None` for a root.
    ///
    /// # Errors
    /// [`Error::UnknownNode`] if this node was removed.
    pub fn parent(&self) -> Result<Option<Budget>> {
        let info = self.info()?;
        info.parent.map(|path| self.sibling(&path)).transpose()
    }

    /// The direct children, in creation order.
    ///
    /// # Errors
    /// [`Error::UnknownNode`] if this node was removed.
    pub fn children(&self) -> Result<Vec<Budget>> {
        let info = self.info()?;
        info.children
            .iter()
            .map(|path| self.sibling(path))
            .collect()
    }

    /// Creates a child node named `name` with `limits` ([`Limits::none`] to only track spend).
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::DuplicateNode`], [`Error::DuplicateLimit`],
    /// [`Error::UnknownNode`] if this node was removed.
    pub fn add_child(&self, name: &str, limits: impl Into<Limits>) -> Result<Budget> {
        let id = self.named(self.shared.store.create_node(
            Some(self.node),
            name,
            &limits.into(),
        ))?;
        Ok(Budget {
            shared: self.shared.clone(),
            node: id,
            path: format!("{}/{name}", self.path).into(),
        })
    }

    /// Removes this node. Its spend stays counted in its ancestors.
    ///
    /// # Errors
    /// [`Error::NodeInUse`] while it has children or live holds; [`Error::RootRemoval`] for a
    /// root.
    pub fn remove(self) -> Result<()> {
        self.named(self.shared.store.remove_node(self.node))?;
        self.shared.approvals.remove(self.node, None);
        Ok(())
    }
}

impl fmt::Debug for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Budget")
            .field("path", &self.path)
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

/// `relative` as canonical path segments below a node: one leading and one trailing `/`
/// dropped, every segment a valid node name. An empty path would name the node itself and
/// `a//b` no node at all; both are refused rather than guessed at, so a handle's path is always
/// the node's own path (the key its events carry).
fn relative_path(relative: &str) -> Result<&str> {
    let trimmed = relative.strip_prefix('/').unwrap_or(relative);
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    let refuse = |reason| {
        Err(Error::InvalidName {
            name: relative.to_owned(),
            reason,
        })
    };
    if trimmed.is_empty() {
        return refuse(
            "the path names no node below this one (use this handle for the node itself)",
        );
    }
    for segment in trimmed.split('/') {
        if segment.is_empty() {
            return refuse("the path has an empty segment ('//')");
        }
        if let Err(Error::InvalidName { reason, .. }) = validate_name(segment) {
            return refuse(reason);
        }
    }
    Ok(trimmed)
}
