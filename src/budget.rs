//! [`Budget`]: a cheap handle to one node of a budget tree, and the builder that makes a tree.

use std::fmt;
use std::sync::Arc;

use crate::amount::{Amount, Unit};
use crate::balance::{Balance, NodeInfo, Snapshot};
use crate::check::Check;
use crate::cost::Cost;
use crate::error::{Error, Result};
use crate::event::{DenialReason, DeniedEvent, Event, ExpiredEvent, ThresholdEvent};
use crate::expiry::{ExpiredHold, ReserveOptions};
use crate::guard::Guard;
use crate::hub::{Shared, SubscriptionId};
use crate::idempotency::OpOptions;
use crate::ids::NodeId;
use crate::ledger::validate_name;
use crate::node_state::NodeState;
use crate::policy::{Limit, Limits};
use crate::store::memory::MemoryStore;
use crate::store::{Reservation, Store};
use crate::threshold::Crossings;

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
        result.map_err(|error| match error {
            Error::UnknownNode { path } if path == self.node.to_string() => Error::UnknownNode {
                path: self.path.to_string(),
            },
            other => other,
        })
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

    /// Holds `cost` on this node and every ancestor, atomically, and returns the guard that ends
    /// the hold: [`Guard::commit`] with the actual cost, [`Guard::release`], or drop.
    ///
    /// ```
    /// use budget_guard::{Amount, Budget, Error, Limit};
    /// # fn main() -> budget_guard::Result<()> {
    /// let task = Budget::builder("task", Limit::hard(Amount::usd("1")?)).build()?;
    /// let first = task.reserve(Amount::usd("0.75")?)?;
    /// let denied = task.reserve(Amount::usd("0.50")?).unwrap_err();
    /// let details = denied.exceeded().expect("a BudgetExceeded error");
    /// assert_eq!(details.node.as_ref(), "task");
    /// assert_eq!(details.remaining(), Amount::usd("0.25")?);
    /// drop(first); // releases the 0.75
    /// assert!(task.reserve(Amount::usd("0.50")?).is_ok());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::BudgetExceeded`] naming the node (and [period](crate::Exceeded::period)) whose
    /// hard limit would be passed (nothing is held anywhere), [`Error::InDebt`],
    /// [`Error::InvalidAmount`] for a zero or empty cost, [`Error::UnknownNode`]; a unit no node
    /// on the path limits is held and recorded, never refused;
    /// [`Error::ApprovalDenied`] when an approval rule on this node or an ancestor applies and
    /// its approver says no, [`Error::AsyncApprovalRequired`] when that approver is async (see
    /// [`crate::approval`]).
    pub fn reserve(&self, cost: impl Into<Cost>) -> Result<Guard<'_>> {
        let cost = cost.into();
        self.approve(&cost)?;
        self.reserve_approved(&cost)
    }

    /// [`reserve`](Budget::reserve) after its approval ([`crate::approval`]).
    #[inline]
    pub(crate) fn reserve_approved(&self, cost: &Cost) -> Result<Guard<'_>> {
        let reservation = self.named(self.shared.store.reserve(self.node, cost));
        self.granted(reservation, cost)
    }

    /// As [`reserve`](Budget::reserve), with [`ReserveOptions`]: how long the hold lives
    /// without a heartbeat ([`Guard::extend`]). Past its deadline a hold may be reclaimed (see
    /// [`crate::expiry`] for what a later commit records).
    ///
    /// ```
    /// use std::time::Duration;
    /// use budget_guard::expiry::ReserveOptions;
    /// use budget_guard::{Amount, Budget, Limit, ManualClock, MemoryStore, Timestamp};
    /// # fn main() -> budget_guard::Result<()> {
    /// let clock = ManualClock::new(Timestamp::EPOCH);
    /// let run = Budget::builder("run", Limit::hard(Amount::usd("1")?))
    ///     .build_in(MemoryStore::with_clock(clock.clone()))?;
    /// let short = ReserveOptions::new().ttl(Duration::from_secs(5));
    /// let stuck = run.reserve_with(Amount::usd("0.80")?, &short)?; // a caller that hangs
    /// clock.advance(Duration::from_secs(6));
    /// // The next reserve that would be denied reclaims the expired hold first:
    /// let fresh = run.reserve(Amount::usd("0.50")?)?;
    /// fresh.commit(Amount::usd("0.40")?)?;
    /// # drop(stuck);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`reserve`](Budget::reserve); [`Error::InvalidDuration`] for a zero TTL.
    pub fn reserve_with(
        &self,
        cost: impl Into<Cost>,
        options: &ReserveOptions,
    ) -> Result<Guard<'_>> {
        let cost = cost.into();
        self.approve(&cost)?;
        let reservation = self.named(self.shared.store.reserve_with(self.node, &cost, options));
        self.granted(reservation, &cost)
    }

    /// The dry run: whether [`reserve`](Budget::reserve) of `cost` would be granted now and, if
    /// not, which node would refuse it with its numbers ([`Check`]). Nothing is held, no
    /// [`Event::ReserveDenied`] is delivered for a refusal, and a later reserve may still be
    /// denied (others reserve in between). Holds past their deadline that the check reclaimed
    /// are delivered as [`Event::HoldExpired`].
    ///
    /// ```
    /// use budget_guard::{Amount, Budget, Limit, NodeState, Verdict};
    /// # fn main() -> budget_guard::Result<()> {
    /// let org = Budget::builder("org", Limit::hard(Amount::usd("10")?))
    ///     .child("agent", Limit::hard(Amount::usd("1")?))
    ///     .build()?;
    /// let agent = org.at("agent")?;
    /// assert!(agent.check(Amount::usd("0.80")?)?.fits());
    /// org.set_state(NodeState::Frozen)?;
    /// let check = agent.check(Amount::usd("0.80")?)?;
    /// assert!(matches!(&check.verdict, Verdict::Frozen { node } if &**node == "org"));
    /// assert_eq!(check.denied_by(), Some("org"));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidAmount`] for a zero or empty cost, [`Error::UnknownNode`]. A unit no node
    /// on the path limits always fits (it is tracked). Refusals (exceeded, in debt,
    /// frozen, closed) are [`Check::verdict`]s, not errors. Approval rules that a reserve would
    /// ask are listed in [`Check::approvals`] (nobody is asked).
    pub fn check(&self, cost: impl Into<Cost>) -> Result<Check> {
        let cost = cost.into();
        let mut check = self.named(self.shared.store.check(self.node, &cost))?;
        self.deliver_expired(&check.expired);
        check.approvals = self.approvals_needed(&cost);
        Ok(check)
    }

    /// As [`reserve_with`](Budget::reserve_with), returning a `Guard<'static>` as
    /// [`reserve_owned`](Budget::reserve_owned) does.
    ///
    /// # Errors
    /// As [`reserve_with`](Budget::reserve_with).
    pub fn reserve_owned_with(
        &self,
        cost: impl Into<Cost>,
        options: &ReserveOptions,
    ) -> Result<Guard<'static>> {
        self.reserve_with(cost, options).map(Guard::into_owned)
    }

    /// Reclaims every hold of this store past its deadline, delivers an
    /// [`Event::HoldExpired`] for each reclaimed hold not reported before, and returns them.
    /// Reserves reclaim lazily when they would be denied; call this (or run
    /// [`spawn_sweeper`](Budget::spawn_sweeper)) to return crashed callers' holds sooner.
    ///
    /// # Errors
    /// Only store failures.
    pub fn sweep(&self) -> Result<Vec<ExpiredHold>> {
        let expired = self.shared.store.sweep()?;
        self.deliver_expired(&expired);
        Ok(expired)
    }

    /// Runs [`sweep`](Budget::sweep) every `every` on the current tokio runtime until the
    /// returned task is aborted (feature `tokio`). The task owns a clone of this handle, so
    /// expiry events reach this tree's subscribers; a failing sweep is logged and retried at the
    /// next tick.
    ///
    /// ```
    /// use std::time::Duration;
    /// use budget_guard::{Amount, Budget, Limit};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> budget_guard::Result<()> {
    /// let org = Budget::builder("org", Limit::hard(Amount::usd("10")?)).build()?;
    /// let sweeper = org.spawn_sweeper(Duration::from_secs(5))?;
    /// // ... holds of callers that died come back within their TTL plus 5 s ...
    /// sweeper.abort();
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidDuration`] for a zero interval.
    ///
    /// # Panics
    /// Outside a tokio runtime (as `tokio::spawn`).
    #[cfg(feature = "tokio")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub fn spawn_sweeper(&self, every: std::time::Duration) -> Result<tokio::task::JoinHandle<()>> {
        crate::expiry::validate_ttl(every, "a sweep interval")?;
        let budget = self.clone();
        Ok(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await; // the first tick is immediate
            loop {
                ticks.tick().await;
                if let Err(error) = budget.sweep() {
                    tracing::warn!(target: "budget_guard", %error, "background sweep failed");
                }
            }
        }))
    }

    /// Delivers the expiries a store operation reported.
    #[inline]
    pub(crate) fn deliver_expired(&self, expired: &[ExpiredHold]) {
        if expired.is_empty() {
            return;
        }
        self.deliver_expired_slow(expired);
    }

    #[cold]
    fn deliver_expired_slow(&self, expired: &[ExpiredHold]) {
        self.shared.wake_cancelled();
        let at = self.shared.event_time();
        for hold in expired {
            tracing::info!(
                target: "budget_guard",
                node = %hold.node,
                hold = %hold.hold,
                held = %hold.held,
                expired_at = %hold.expired_at,
                "hold expired and was reclaimed"
            );
            if self.shared.listening() {
                self.shared
                    .deliver(&Event::HoldExpired(ExpiredEvent::new(hold, at)));
            }
        }
    }

    /// As [`reserve`](Budget::reserve), but the guard owns a clone of this handle, so it can be
    /// stored or moved to another thread or task (`Guard<'static>`).
    ///
    /// # Errors
    /// As [`reserve`](Budget::reserve).
    pub fn reserve_owned(&self, cost: impl Into<Cost>) -> Result<Guard<'static>> {
        self.reserve(cost).map(Guard::into_owned)
    }

    /// Holds as much of one unit as the whole path has room for, at least `min` and at most
    /// `max`: for streaming callers that can stop early.
    ///
    /// ```
    /// use budget_guard::{Amount, Budget, Limit};
    /// # fn main() -> budget_guard::Result<()> {
    /// let run = Budget::builder("run", Limit::hard(Amount::tokens(1_000))).build()?;
    /// let _busy = run.reserve(Amount::tokens(700))?;
    /// let stream = run.reserve_up_to(Amount::tokens(100), Amount::tokens(500))?;
    /// assert_eq!(stream.held().get(budget_guard::Unit::Tokens), Some(Amount::tokens(300)));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`reserve`](Budget::reserve) when not even `min` fits; [`Error::InvalidAmount`] when
    /// `min > max` or `min` is zero; [`Error::UnitMismatch`] when they differ in unit.
    pub fn reserve_up_to(&self, min: Amount, max: Amount) -> Result<Guard<'_>> {
        self.approve_up_to(min, max)?;
        let reservation = self.named(self.shared.store.reserve_up_to(self.node, min, max));
        self.granted(reservation, &Cost::from(max))
    }

    fn granted(&self, reservation: Result<Reservation>, asked: &Cost) -> Result<Guard<'_>> {
        match reservation {
            Ok(reservation) => {
                self.deliver_expired(&reservation.expired);
                self.deliver_top_ups(&reservation.top_ups);
                self.deliver_top_up_caps(&reservation.top_up_caps);
                self.deliver_crossings(&reservation.events);
                tracing::debug!(
                    target: "budget_guard",
                    node = %self.path,
                    held = %reservation.held,
                    hold = %reservation.hold,
                    "reserve granted"
                );
                if let Some(node) = &reservation.over_soft_limit {
                    tracing::warn!(
                        target: "budget_guard",
                        node = %self.path,
                        soft_limit_at = %node,
                        held = %reservation.held,
                        "reserve passes a soft limit"
                    );
                }
                Ok(Guard::new(self, reservation))
            }
            Err(error) => {
                tracing::debug!(
                    target: "budget_guard",
                    node = %self.path,
                    requested = %asked,
                    %error,
                    "reserve denied"
                );
                self.deliver_denial(&error, asked);
                Err(error)
            }
        }
    }

    /// This node's balance in `unit`.
    ///
    /// # Errors
    /// [`Error::UnknownNode`] if this node was removed.
    pub fn balance(&self, unit: Unit) -> Result<Balance> {
        self.named(self.shared.store.balance(self.node, unit))
    }

    /// Path, parent, children and every active balance of this node.
    ///
    /// # Errors
    /// [`Error::UnknownNode`] if this node was removed.
    pub fn info(&self) -> Result<NodeInfo> {
        self.named(self.shared.store.node_info(self.node))
    }

    /// Sets or replaces this node's limit in `limit.unit()` (raise, lower, switch hard/soft or
    /// policy). Raising repays debt first.
    ///
    /// With several limits of the unit on the node (one per period, see [`Limits`]), the limit
    /// of the same period is replaced; a limit of a period the node does not have replaces the
    /// unit's first limit (give the node all its periods when you create it).
    ///
    /// # Errors
    /// [`Error::LimitBelowUsage`] for a hard limit below what is spent and reserved (in its
    /// period); [`Error::InvalidThreshold`] for threshold levels on a limit that is not the
    /// unit's first.
    pub fn set_limit(&self, limit: Limit) -> Result<Balance> {
        let balance = self.named(self.shared.store.set_limit(self.node, limit))?;
        self.shared.wake_cancelled();
        Ok(balance)
    }

    /// Sets this node's [`NodeState`] (the kill switch) and returns the previous one. Frozen and
    /// closed apply to the whole subtree; see [`NodeState`] for what each still allows.
    ///
    /// ```
    /// use budget_guard::{Amount, Budget, Error, Limit, NodeState};
    /// # fn main() -> budget_guard::Result<()> {
    /// let org = Budget::builder("org", Limit::hard(Amount::usd("10")?))
    ///     .child("team", Limit::hard(Amount::usd("5")?))
    ///     .child("team/agent", Limit::hard(Amount::usd("1")?))
    ///     .build()?;
    /// let agent = org.at("team/agent")?;
    /// let running = agent.reserve(Amount::usd("0.50")?)?;
    /// org.at("team")?.set_state(NodeState::Frozen)?;
    /// assert!(matches!(
    ///     agent.reserve(Amount::usd("0.10")?),
    ///     Err(Error::Frozen { node }) if &*node == "org/team"
    /// ));
    /// running.commit(Amount::usd("0.40")?)?; // work in flight may still commit
    /// org.at("team")?.set_state(NodeState::Active)?;
    /// assert!(agent.reserve(Amount::usd("0.10")?).is_ok());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::UnknownNode`] if this node was removed.
    pub fn set_state(&self, state: NodeState) -> Result<NodeState> {
        let previous = self.named(self.shared.store.set_state(self.node, state))?;
        self.shared.wake_cancelled();
        Ok(previous)
    }

    /// Removes this node's limit in `unit` (it keeps tracking spend).
    ///
    /// # Errors
    /// [`Error::UnknownNode`] if this node was removed.
    pub fn remove_limit(&self, unit: Unit) -> Result<Balance> {
        self.named(self.shared.store.remove_limit(self.node, unit))
    }

    /// Adds funds: raises the limit in `amount.unit()` by `amount`, repaying debt first.
    ///
    /// ```
    /// use budget_guard::{Amount, Budget, Limit, Unit};
    /// # fn main() -> budget_guard::Result<()> {
    /// let wallet = Budget::builder("wallet", Limit::hard(Amount::usd("5")?)).build()?;
    /// let after = wallet.credit(Amount::usd("2.50")?)?;
    /// assert_eq!(after.remaining, Some(Amount::usd("7.50")?));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::UnitNotBudgeted`] without a limit in that unit; [`Error::InvalidAmount`] for zero.
    pub fn credit(&self, amount: Amount) -> Result<Balance> {
        self.named(self.shared.store.credit(self.node, amount))
    }

    /// Takes funds: lowers the limit in `amount.unit()` by `amount`.
    ///
    /// # Errors
    /// [`Error::LimitBelowUsage`] if less would remain than is spent and reserved.
    pub fn debit(&self, amount: Amount) -> Result<Balance> {
        self.debit_with(amount, &OpOptions::DEFAULT)
    }

    /// As [`credit`](Budget::credit), with [`OpOptions`]: with an idempotency key, a retry
    /// (same key, node and amount) credits nothing and answers with the node's balance now
    /// (see [`crate::idempotency`]).
    ///
    /// ```
    /// use budget_guard::idempotency::{IdempotencyKey, OpOptions};
    /// use budget_guard::{Amount, Budget, Error, Limit, Unit};
    /// # fn main() -> budget_guard::Result<()> {
    /// let wallet = Budget::builder("wallet", Limit::hard(Amount::usd("5")?)).build()?;
    /// let payment = OpOptions::new().idempotency_key(IdempotencyKey::new("pay_81f3")?);
    /// wallet.credit_with(Amount::usd("20")?, &payment)?;
    /// wallet.credit_with(Amount::usd("20")?, &payment)?; // the webhook fired twice
    /// assert_eq!(wallet.balance(Unit::Usd)?.remaining, Some(Amount::usd("25")?));
    /// let reused = wallet.credit_with(Amount::usd("30")?, &payment).unwrap_err();
    /// assert!(matches!(reused, Error::IdempotencyMismatch { .. }));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`credit`](Budget::credit); [`Error::IdempotencyMismatch`] if the key was used for
    /// another request.
    pub fn credit_with(&self, amount: Amount, options: &OpOptions) -> Result<Balance> {
        self.named(self.shared.store.credit_with(self.node, amount, options))
    }

    /// As [`debit`](Budget::debit), with [`OpOptions`]: with an idempotency key, a retry (same
    /// key, node and amount) debits nothing and answers with the node's balance now (see
    /// [`crate::idempotency`]).
    ///
    /// ```
    /// use budget_guard::idempotency::{IdempotencyKey, OpOptions};
    /// use budget_guard::{Amount, Budget, Limit, Unit};
    /// # fn main() -> budget_guard::Result<()> {
    /// let wallet = Budget::builder("wallet", Limit::hard(Amount::usd("5")?)).build()?;
    /// let refund = OpOptions::new().idempotency_key(IdempotencyKey::new("refund-12")?);
    /// wallet.debit_with(Amount::usd("2")?, &refund)?;
    /// wallet.debit_with(Amount::usd("2")?, &refund)?;
    /// assert_eq!(wallet.balance(Unit::Usd)?.remaining, Some(Amount::usd("3")?));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`debit`](Budget::debit); [`Error::IdempotencyMismatch`] if the key was used for
    /// another request.
    pub fn debit_with(&self, amount: Amount, options: &OpOptions) -> Result<Balance> {
        let balance = self.named(self.shared.store.debit_with(self.node, amount, options))?;
        self.shared.wake_cancelled();
        Ok(balance)
    }

    /// The whole store's state (every tree in it), serializable with the `serde` feature.
    ///
    /// # Errors
    /// Only store failures.
    pub fn snapshot(&self) -> Result<Snapshot> {
        self.shared.store.snapshot()
    }
}

/// Events: subscriptions and delivery.
impl Budget {
    /// Calls `callback` for every [`Event`] of this node **and every node below it**, in the
    /// thread that caused the event, after the store operation has finished. Callbacks run in
    /// subscription order. A callback may use the budget (reserve, commit, subscribe) without
    /// deadlock; a panicking callback is caught, reported through `tracing` at error level, and
    /// changes nothing. Keep callbacks short: they run inside the reserve or commit that caused
    /// the event.
    ///
    /// The subscription lasts until [`unsubscribe`](Budget::unsubscribe) and is shared by every
    /// handle of this tree derived from the same root (clones, [`at`](Budget::at), ...).
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use budget_guard::{Amount, Budget, Event, Limit};
    /// # fn main() -> budget_guard::Result<()> {
    /// let org = Budget::builder("org", Limit::hard(Amount::usd("10")?).with_thresholds([50, 80]))
    ///     .build()?;
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = seen.clone();
    /// org.on_event(move |event| {
    ///     if let Event::ThresholdCrossed(crossed) = event {
    ///         log.lock().unwrap().push(crossed.level);
    ///     }
    /// });
    /// org.reserve(Amount::usd("6")?)?.commit(Amount::usd("6")?)?;  // 60 %: level 50
    /// org.reserve(Amount::usd("1")?)?.commit(Amount::usd("1")?)?;  // 70 %: nothing new
    /// org.reserve(Amount::usd("2")?)?.commit(Amount::usd("2")?)?;  // 90 %: level 80
    /// assert_eq!(*seen.lock().unwrap(), [50, 80]);
    /// # Ok(()) }
    /// ```
    pub fn on_event(&self, callback: impl Fn(&Event) + Send + Sync + 'static) -> SubscriptionId {
        self.shared.on_event(self.node, self.path.clone(), callback)
    }

    /// Calls `callback` whenever this node or a node below it is **refused**: a reserve, or a
    /// [`Guard::record`](crate::Guard::record) that would grow its hold, is denied by a hard
    /// limit, by debt, or by a frozen or closed node ([`Event::ReserveDenied`]), or the overage
    /// policy rejects a commit above its hold ([`Event::OverageRejected`]). An overage the policy
    /// allowed ([`Event::OverageAllowed`]) is not a kill and does not call it. Delivered like
    /// every event (after the store operation, in the caller's thread, panics caught); it is
    /// [`on_event`](Budget::on_event) with that filter, so [`unsubscribe`](Budget::unsubscribe)
    /// ends it.
    ///
    /// The "kill the sandbox and keep its log" pattern:
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use budget_guard::{Amount, Budget, Event, Limit, NodeState};
    /// # fn main() -> budget_guard::Result<()> {
    /// let org = Budget::builder("org", Limit::hard(Amount::usd("10")?))
    ///     .child("sandbox-1", Limit::hard(Amount::usd("0.05")?))
    ///     .build()?;
    /// let killed = Arc::new(Mutex::new(Vec::new()));
    /// let (log, control) = (killed.clone(), org.clone());
    /// org.on_exceeded(move |event| {
    ///     // Stop the sandbox (freeze its budget: running guards see `is_cancelled()`), keep
    ///     // its log for the post-mortem.
    ///     let _ = control.store().resolve(event.node())
    ///         .and_then(|id| control.store().set_state(id, NodeState::Frozen));
    ///     log.lock().unwrap().push(event.node().to_owned());
    /// });
    /// let sandbox = org.at("sandbox-1")?;
    /// let meter = sandbox.reserve(Amount::usd("0.01")?)?;
    /// meter.record(Amount::usd("0.03")?)?; // seconds of sandbox time
    /// assert!(meter.record(Amount::usd("0.03")?).is_err()); // would pass $0.05: cut off
    /// assert_eq!(*killed.lock().unwrap(), ["org/sandbox-1"]);
    /// assert!(meter.is_cancelled());
    /// meter.commit(Amount::usd("0.03")?)?; // what ran is still booked
    /// # Ok(()) }
    /// ```
    pub fn on_exceeded(&self, callback: impl Fn(&Event) + Send + Sync + 'static) -> SubscriptionId {
        self.on_event(move |event| {
            if matches!(event, Event::ReserveDenied(_) | Event::OverageRejected(_)) {
                callback(event);
            }
        })
    }

    /// Like [`on_event`](Budget::on_event), for threshold crossings only.
    pub fn on_threshold(
        &self,
        callback: impl Fn(&ThresholdEvent) + Send + Sync + 'static,
    ) -> SubscriptionId {
        self.on_event(move |event| {
            if let Event::ThresholdCrossed(crossed) = event {
                callback(crossed);
            }
        })
    }

    /// A channel receiving every [`Event`] of this node and the nodes below it, for consumers that
    /// prefer a stream to a callback. The channel is unbounded; the subscription ends when the
    /// receiver is dropped (noticed at the next event) or on
    /// [`unsubscribe`](Budget::unsubscribe).
    ///
    /// ```
    /// use budget_guard::{Amount, Budget, Event, Limit};
    /// # fn main() -> budget_guard::Result<()> {
    /// let org = Budget::builder("org", Limit::hard(Amount::usd("1")?)).build()?;
    /// let (_id, events) = org.subscribe();
    /// assert!(org.reserve(Amount::usd("2")?).is_err());
    /// assert!(matches!(events.try_recv(), Ok(Event::ReserveDenied(_))));
    /// # Ok(()) }
    /// ```
    pub fn subscribe(&self) -> (SubscriptionId, std::sync::mpsc::Receiver<Event>) {
        self.shared.channel(self.node, self.path.clone())
    }

    /// Ends a subscription; `false` if it had already ended.
    pub fn unsubscribe(&self, id: SubscriptionId) -> bool {
        self.shared.unsubscribe(id)
    }

    /// Delivers the threshold crossings a store operation returned.
    #[inline]
    pub(crate) fn deliver_crossings(&self, crossings: &Crossings) {
        if crossings.is_empty() {
            return;
        }
        self.deliver_crossings_slow(crossings);
    }

    #[cold]
    fn deliver_crossings_slow(&self, crossings: &Crossings) {
        let at = self.shared.event_time();
        for crossing in crossings {
            tracing::info!(
                target: "budget_guard",
                node = %crossing.node(),
                unit = %crossing.unit(),
                level = crossing.level(),
                spent = %crossing.spent(),
                reserved = %crossing.reserved(),
                limit = %crossing.limit(),
                "threshold crossed"
            );
            if self.shared.listening() {
                let mut event = ThresholdEvent::from_crossing(crossing, at);
                event.top_drivers = self.top_drivers(crossing.node(), crossing.unit());
                self.shared.deliver(&Event::ThresholdCrossed(event));
            }
        }
    }

    /// Delivers a refusal ([`Event::ReserveDenied`]) with the refusing node's figures. Errors
    /// that are not refusals of the budget (bad input, approvals, rate limits) deliver nothing.
    pub(crate) fn deliver_denial(&self, error: &Error, asked: &Cost) {
        let reason = match error {
            Error::BudgetExceeded(_) => DenialReason::Exceeded,
            Error::InDebt { .. } => DenialReason::InDebt,
            Error::Frozen { .. } => DenialReason::Frozen,
            Error::Closed { .. } => DenialReason::Closed,
            _ => return,
        };
        self.shared.wake_cancelled();
        if !self.shared.listening() {
            return;
        }
        let mut event = DeniedEvent {
            node: self.path.clone(),
            limiting_node: self.path.clone(),
            reason,
            requested: *asked,
            unit: None,
            asked: None,
            limit: None,
            spent: None,
            held: None,
            remaining: None,
            debt: None,
            at: self.shared.event_time(),
        };
        match error {
            // The figures the store decided on, inside its operation.
            Error::BudgetExceeded(details) => {
                let unit = details.requested.unit();
                event.limiting_node = details.node.clone();
                event.unit = Some(unit);
                event.asked = Some(details.requested);
                event.limit = Some(details.limit);
                event.spent = Some(details.spent);
                event.held = Some(details.reserved);
                // No debt: a node in debt refuses with `InDebt` before any room is checked.
                event.remaining = Some(details.remaining());
            }
            Error::InDebt { node, debt } => self.fill_denial(&mut event, node, debt.unit()),
            Error::Frozen { node } | Error::Closed { node } => {
                if let Some(unit) = asked.units().next() {
                    self.fill_denial(&mut event, node, unit);
                }
            }
            _ => {}
        }
        self.shared.deliver(&Event::ReserveDenied(event));
    }

    /// Reads the refusing node's balance in `unit` right after a refusal the error carries no
    /// figures for (cold path, only with subscribers).
    #[cold]
    fn fill_denial(&self, event: &mut DeniedEvent, node: &Arc<str>, unit: Unit) {
        event.limiting_node = node.clone();
        event.unit = Some(unit);
        event.asked = event.requested.get(unit);
        let store = &self.shared.store;
        let Ok(balance) = store.resolve(node).and_then(|id| store.balance(id, unit)) else {
            return;
        };
        event.limit = balance.allowance;
        event.spent = Some(balance.spent);
        event.held = Some(balance.reserved);
        event.remaining = balance.remaining;
        event.debt = (!balance.debt.is_zero()).then_some(balance.debt);
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

/// Builds a budget tree: a root and children addressed by paths relative to it.
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until build() or build_in()"]
pub struct BudgetBuilder {
    root: String,
    limits: Limits,
    children: Vec<(String, Limits)>,
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

    /// Builds the tree in `store` and returns the root. Names, limits and the parent order are
    /// checked before anything is created, so a rejected builder leaves the store as it was.
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::DuplicateNode`] (also when the store already has a node
    /// at the root's path), [`Error::DuplicateLimit`], [`Error::UnitMismatch`] for an overdraft in
    /// another unit, [`Error::UnknownNode`] for a child listed before its parent.
    pub fn build_in(self, store: impl Store) -> Result<Budget> {
        self.build_shared(Arc::new(store))
    }

    /// As [`build_in`](BudgetBuilder::build_in) for a store that is already shared.
    ///
    /// # Errors
    /// As [`build_in`](BudgetBuilder::build_in).
    pub fn build_shared(self, store: Arc<dyn Store>) -> Result<Budget> {
        self.validate()?;
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
