//! Approval: per node, a reserve whose estimate is above a threshold asks a user-provided
//! [`Approver`] (a human in the loop, a policy service) **before** anything is held.
//!
//! ```
//! use budget_guard::approval::{Approval, ApprovalRequest};
//! use budget_guard::{Amount, Budget, Error, Limit, Unit};
//! # fn main() -> budget_guard::Result<()> {
//! let org = Budget::builder("acme", Limit::hard(Amount::usd("100")?))
//!     .child("support", Limit::hard(Amount::usd("40")?))
//!     .child("support/agent-7", Limit::hard(Amount::usd("20")?))
//!     .build()?;
//! // Org-wide: anything over $5 needs a human. The rule covers every node below `acme`.
//! org.require_approval(Amount::usd("5")?, |request: &ApprovalRequest| {
//!     if request.estimate <= Amount::usd("8").unwrap() {
//!         Approval::Approved
//!     } else {
//!         Approval::deny(format!("{} is too much for {}", request.estimate, request.node))
//!     }
//! })?;
//! let agent = org.at("support/agent-7")?;
//!
//! agent.reserve(Amount::usd("5")?)?.commit(Amount::usd("4")?)?; // exactly $5: not asked
//! agent.reserve(Amount::usd("7")?)?.commit(Amount::usd("6")?)?; // asked, approved
//!
//! let denied = agent.reserve(Amount::usd("12")?).unwrap_err(); // asked, denied
//! let Error::ApprovalDenied { node, estimate, threshold, reason } = &denied else {
//!     panic!("{denied}")
//! };
//! assert_eq!((&**node, *estimate, *threshold), ("acme", Amount::usd("12")?, Amount::usd("5")?));
//! assert_eq!(reason, "$12.00 is too much for acme/support/agent-7");
//! assert!(denied.is_denial()); // a ladder moves on to a cheaper tier
//! assert_eq!(org.balance(Unit::Usd)?.reserved, Amount::zero(Unit::Usd)); // nothing was held
//! # Ok(()) }
//! ```
//!
//! # Which rules apply
//!
//! A rule set with [`Budget::require_approval`] on a node applies to reserves on that node
//! **and on every node below it**, so an org-level rule covers reserves deep in the tree. A
//! node has at most one rule per [`Unit`]; the rule's unit is its threshold's unit, and it asks
//! only when the request has an amount of that unit *strictly above* the threshold (a request
//! of exactly the threshold is not asked about). Several applicable rules are asked one after
//! the other, from the reserving node up to the root (within a node, in unit order), and the
//! first denial stops the walk: the rules above it are not asked. Every applicable rule must
//! approve; an approval by a lower node does not excuse a higher one.
//!
//! # What asks
//!
//! [`Budget::reserve`], [`reserve_with`](Budget::reserve_with),
//! [`reserve_owned`](Budget::reserve_owned), [`reserve_up_to`](Budget::reserve_up_to) (asked
//! about its `max`), [`reserve_labeled`](Budget::reserve_labeled), [`Budget::run`],
//! [`Budget::reserve_for`], and the [`Ladder`](crate::Ladder)
//! and fallback chains (they reserve through the budget; a denied approval is a
//! [denial](Error::is_denial), so they move on to the next tier). Under the `tokio` feature,
//! [`Budget::reserve_async`], `run_async` and `fallback_async` await async approvers.
//! [`Guard::record`](crate::Guard::record) growing a live hold is not asked again: approval is
//! about the estimate a hold starts with. [`Budget::check`] asks nobody; it lists the requests
//! a reserve would make in [`Check::approvals`](crate::Check::approvals).
//!
//! # Order, locks and panics
//!
//! Approvers run in the caller's thread (or task), before the store is touched and outside
//! every lock: an approver may read balances, reserve on other nodes, or change rules without
//! deadlock. The approval and the hold are two steps: an approved reserve can still be denied
//! by a limit, and rule changes made while an approver runs apply from the next reserve. A
//! panicking approver propagates its panic to the caller of `reserve`; since nothing was held
//! yet and no lock is held, the books are unchanged and every later operation works.
//!
//! Rules belong to the handle family they were set on, like event subscriptions: every handle
//! derived from the same [`Budget::builder`] or [`Budget::open`] shares them, while another
//! `open` on the same store starts without rules. They live in memory only (an approver is code,
//! not data) and are dropped with their node by [`Budget::remove`]. Without any rule, a reserve
//! pays one relaxed atomic load for this feature.

use std::fmt;
#[cfg(feature = "tokio")]
use std::future::Future;
#[cfg(feature = "tokio")]
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::RwLock;

use crate::amount::{Amount, Unit};
use crate::budget::Budget;
use crate::cost::Cost;
use crate::error::{Error, Result};
use crate::hub::covers;
use crate::ids::NodeId;

/// What an [`Approver`] is asked: one rule's view of one reserve.
///
/// ```
/// use budget_guard::approval::{Approval, ApprovalRequest};
/// use budget_guard::{Amount, Budget, Limit};
/// # fn main() -> budget_guard::Result<()> {
/// let org = Budget::builder("org", Limit::hard(Amount::usd("100")?))
///     .child("agent", Limit::hard(Amount::usd("50")?))
///     .build()?;
/// org.require_approval(Amount::usd("1")?, |request: &ApprovalRequest| {
///     assert_eq!(&*request.node, "org/agent"); // who reserves
///     assert_eq!(&*request.rule_node, "org"); // whose rule asks
///     assert_eq!(request.estimate, Amount::usd("2").unwrap());
///     assert_eq!(request.threshold, Amount::usd("1").unwrap());
///     Approval::Approved
/// })?;
/// org.at("agent")?.reserve(Amount::usd("2")?)?.release()?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct ApprovalRequest {
    /// Full path of the node the reserve is made on.
    pub node: Arc<str>,
    /// Full path of the node whose rule asks (the reserving node or an ancestor).
    pub rule_node: Arc<str>,
    /// The request's amount in the rule's unit (for `reserve_up_to`, its maximum).
    pub estimate: Amount,
    /// The rule's threshold: requests strictly above it are asked about.
    pub threshold: Amount,
    /// The whole request, every unit of it.
    pub requested: Cost,
}

/// An [`Approver`]'s answer.
///
/// ```
/// use budget_guard::approval::Approval;
/// assert!(Approval::Approved.is_approved());
/// assert_eq!(Approval::deny("over the weekly plan"), Approval::Denied {
///     reason: "over the weekly plan".to_owned(),
/// });
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Approval {
    /// Go ahead: the reserve continues (to the next rule, then to the store).
    Approved,
    /// No: the reserve fails with [`Error::ApprovalDenied`] carrying `reason`.
    Denied {
        /// Why, in the approver's words.
        reason: String,
    },
}

impl Approval {
    /// A denial with `reason`.
    pub fn deny(reason: impl Into<String>) -> Self {
        Approval::Denied {
            reason: reason.into(),
        }
    }

    /// `true` for [`Approval::Approved`].
    pub fn is_approved(&self) -> bool {
        matches!(self, Approval::Approved)
    }
}

/// Decides whether a reserve above a rule's threshold may go ahead (see [`crate::approval`]).
/// Implemented for every `Fn(&ApprovalRequest) -> Approval + Send + Sync + 'static`, so a
/// closure is an approver (annotate its parameter: `|request: &ApprovalRequest| ..`).
///
/// An approver runs outside every lock and may block (wait for a human, call a service); the
/// reserve waits for it. It may use the budget itself.
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use budget_guard::approval::{Approval, ApprovalRequest, Approver};
/// use budget_guard::{Amount, Budget, Limit};
///
/// /// Approves the first `n` large requests, then says no.
/// #[derive(Debug)]
/// struct Quota(AtomicU32);
///
/// impl Approver for Quota {
///     fn approve(&self, _request: &ApprovalRequest) -> Approval {
///         match self.0.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)) {
///             Ok(_) => Approval::Approved,
///             Err(_) => Approval::deny("quota of large requests used up"),
///         }
///     }
/// }
///
/// # fn main() -> budget_guard::Result<()> {
/// let org = Budget::builder("org", Limit::hard(Amount::usd("100")?)).build()?;
/// org.require_approval(Amount::usd("10")?, Quota(AtomicU32::new(1)))?;
/// org.reserve(Amount::usd("20")?)?.commit(Amount::usd("15")?)?;
/// assert!(org.reserve(Amount::usd("20")?).is_err());
/// assert!(org.reserve(Amount::usd("10")?).is_ok()); // not above the threshold
/// # Ok(()) }
/// ```
pub trait Approver: Send + Sync + 'static {
    /// The answer for `request`.
    fn approve(&self, request: &ApprovalRequest) -> Approval;
}

impl<F> Approver for F
where
    F: Fn(&ApprovalRequest) -> Approval + Send + Sync + 'static,
{
    fn approve(&self, request: &ApprovalRequest) -> Approval {
        self(request)
    }
}

/// The future an [`AsyncApprover`] returns.
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub type ApprovalFuture<'a> = Pin<Box<dyn Future<Output = Approval> + Send + 'a>>;

/// The async form of [`Approver`] (feature `tokio`), awaited by [`Budget::reserve_async`],
/// `run_async` and `fallback_async`. Implemented for every
/// `Fn(ApprovalRequest) -> impl Future<Output = Approval>` closure (the request is passed by
/// value, so the future may keep it).
///
/// A blocking reserve ([`Budget::reserve`] and the other sync paths) that meets a rule with an
/// async approver does not block on it: it fails with [`Error::AsyncApprovalRequired`].
///
/// ```
/// use budget_guard::approval::{Approval, ApprovalRequest};
/// use budget_guard::{Amount, Budget, Error, Limit};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> budget_guard::Result<()> {
/// let org = Budget::builder("org", Limit::hard(Amount::usd("100")?)).build()?;
/// let (ask, mut inbox) = tokio::sync::mpsc::unbounded_channel();
/// org.require_approval_async(Amount::usd("5")?, move |request: ApprovalRequest| {
///     let (answer, reply) = tokio::sync::oneshot::channel();
///     let sent = ask.send((request, answer));
///     async move {
///         match (sent, reply.await) {
///             (Ok(()), Ok(approval)) => approval,
///             _ => Approval::deny("no reviewer"),
///         }
///     }
/// })?;
/// // A reviewer task (a chat bot, a dashboard) answers:
/// tokio::spawn(async move {
///     while let Some((request, answer)) = inbox.recv().await {
///         let ok = request.estimate <= Amount::usd("10").unwrap();
///         let _ = answer.send(if ok { Approval::Approved } else { Approval::deny("too big") });
///     }
/// });
/// org.reserve_async(Amount::usd("8")?).await?.commit(Amount::usd("7")?)?;
/// let denied = org.reserve_async(Amount::usd("20")?).await.unwrap_err();
/// assert!(matches!(denied, Error::ApprovalDenied { ref reason, .. } if reason == "too big"));
/// // The blocking reserve does not wait for an async approver:
/// assert!(matches!(org.reserve(Amount::usd("8")?), Err(Error::AsyncApprovalRequired { .. })));
/// # Ok(()) }
/// ```
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub trait AsyncApprover: Send + Sync + 'static {
    /// The answer for `request`, once it is known.
    fn approve<'a>(&'a self, request: &'a ApprovalRequest) -> ApprovalFuture<'a>;
}

#[cfg(feature = "tokio")]
impl<F, Fut> AsyncApprover for F
where
    F: Fn(ApprovalRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Approval> + Send + 'static,
{
    fn approve<'a>(&'a self, request: &'a ApprovalRequest) -> ApprovalFuture<'a> {
        Box::pin(self(request.clone()))
    }
}

/// The approver of one rule.
#[derive(Clone)]
enum Gate {
    Blocking(Arc<dyn Approver>),
    #[cfg(feature = "tokio")]
    Async(Arc<dyn AsyncApprover>),
}

struct Rule {
    /// The node the rule is set on; it covers that node and its descendants.
    node: NodeId,
    /// That node's path when the rule was set: finds the candidate rules of a reserving node
    /// ([`Approvals::questions`] then checks that the path still names `node`).
    scope: Arc<str>,
    threshold: Amount,
    gate: Gate,
}

/// The approval rules of one handle family (kept in [`Shared`](crate::hub::Shared)).
pub(crate) struct Approvals {
    /// `true` while any rule exists: the reserve path's only cost without rules.
    active: AtomicBool,
    rules: RwLock<Vec<Rule>>,
}

impl fmt::Debug for Approvals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Approvals")
            .field("rules", &self.rules.read().len())
            .finish()
    }
}

impl Approvals {
    pub(crate) fn new() -> Self {
        Approvals {
            active: AtomicBool::new(false),
            rules: RwLock::new(Vec::new()),
        }
    }

    /// `true` if any rule exists (one relaxed load).
    #[inline]
    pub(crate) fn active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// Sets the rule of `node` (at path `scope`) in the threshold's unit, replacing one in the
    /// same unit.
    fn set(&self, node: NodeId, scope: Arc<str>, threshold: Amount, gate: Gate) {
        let mut rules = self.rules.write();
        rules.retain(|rule| !(rule.node == node && rule.threshold.unit() == threshold.unit()));
        rules.push(Rule {
            node,
            scope,
            threshold,
            gate,
        });
        self.active.store(true, Ordering::Relaxed);
    }

    /// Removes the rules of exactly `node` (in `unit`, or all units); `true` if one was there.
    pub(crate) fn remove(&self, node: NodeId, unit: Option<Unit>) -> bool {
        if !self.active() {
            return false;
        }
        let mut rules = self.rules.write();
        let before = rules.len();
        rules.retain(|rule| {
            !(rule.node == node && unit.is_none_or(|unit| rule.threshold.unit() == unit))
        });
        self.active.store(!rules.is_empty(), Ordering::Relaxed);
        rules.len() != before
    }

    /// The questions a reserve of `cost` on `budget`'s node asks, leaf to root (within a node in
    /// unit order), with their approvers. The rules' lock is released before the store is asked
    /// whether a candidate rule's path still names the node the rule was set on.
    fn questions(&self, budget: &Budget, cost: &Cost) -> Vec<(ApprovalRequest, Gate)> {
        let node = budget.path_arc();
        let candidates: Vec<(NodeId, Arc<str>, Amount, Gate)> = self
            .rules
            .read()
            .iter()
            .filter(|rule| covers(&rule.scope, node))
            .map(|rule| {
                (
                    rule.node,
                    rule.scope.clone(),
                    rule.threshold,
                    rule.gate.clone(),
                )
            })
            .collect();
        let mut questions: Vec<(ApprovalRequest, Gate)> = candidates
            .into_iter()
            .filter_map(|(rule_node, scope, threshold, gate)| {
                let estimate = cost.get(threshold.unit())?;
                let asks = estimate.minor_units() > threshold.minor_units()
                    && (rule_node == budget.id()
                        || budget.store().resolve(&scope).ok() == Some(rule_node));
                asks.then(|| {
                    let request = ApprovalRequest {
                        node: node.clone(),
                        rule_node: scope,
                        estimate,
                        threshold,
                        requested: *cost,
                    };
                    (request, gate)
                })
            })
            .collect();
        questions.sort_by_key(|(request, _)| {
            (
                std::cmp::Reverse(request.rule_node.len()),
                request.threshold.unit(),
            )
        });
        questions
    }
}

/// The error for a denial by `request`'s rule.
fn denied(request: ApprovalRequest, reason: String) -> Error {
    tracing::info!(
        target: "budget_guard",
        node = %request.node,
        rule_node = %request.rule_node,
        estimate = %request.estimate,
        threshold = %request.threshold,
        %reason,
        "approval denied"
    );
    Error::ApprovalDenied {
        node: request.rule_node,
        estimate: request.estimate,
        threshold: request.threshold,
        reason,
    }
}

impl Budget {
    /// Requires approval for reserves on this node **and every node below it** whose amount in
    /// `threshold.unit()` is strictly above `threshold`: `approver` is asked before anything is
    /// held, and a denial fails the reserve with [`Error::ApprovalDenied`]. Replaces this node's
    /// rule in the same unit, if any. See [`crate::approval`] for the order of several rules,
    /// which operations ask, and the guarantees (outside every lock; panics propagate).
    ///
    /// ```
    /// use budget_guard::approval::{Approval, ApprovalRequest};
    /// use budget_guard::{Amount, Budget, Error, Limit};
    /// # fn main() -> budget_guard::Result<()> {
    /// let task = Budget::builder("task", Limit::hard(Amount::usd("10")?)).build()?;
    /// task.require_approval(Amount::usd("2")?, |_: &ApprovalRequest| Approval::deny("ask Bob"))?;
    /// assert!(task.reserve(Amount::usd("2")?).is_ok()); // at the threshold: not asked
    /// assert!(matches!(
    ///     task.reserve(Amount::usd("2.01")?),
    ///     Err(Error::ApprovalDenied { reason, .. }) if reason == "ask Bob"
    /// ));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::UnknownNode`] if this node was removed.
    pub fn require_approval(&self, threshold: Amount, approver: impl Approver) -> Result<()> {
        self.set_rule(threshold, Gate::Blocking(Arc::new(approver)))
    }

    /// As [`require_approval`](Budget::require_approval), with an [`AsyncApprover`] (feature
    /// `tokio`). Async reserves ([`reserve_async`](Budget::reserve_async), `run_async`,
    /// `fallback_async`) await it; blocking reserves that need it fail with
    /// [`Error::AsyncApprovalRequired`].
    ///
    /// ```
    /// use budget_guard::approval::{Approval, ApprovalRequest};
    /// use budget_guard::{Amount, Budget, Limit};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> budget_guard::Result<()> {
    /// let task = Budget::builder("task", Limit::hard(Amount::usd("10")?)).build()?;
    /// task.require_approval_async(Amount::usd("1")?, async |request: ApprovalRequest| {
    ///     tokio::task::yield_now().await; // ask a service
    ///     if request.estimate < Amount::usd("3").unwrap() {
    ///         Approval::Approved
    ///     } else {
    ///         Approval::deny("too expensive")
    ///     }
    /// })?;
    /// assert!(task.reserve_async(Amount::usd("2")?).await.is_ok());
    /// assert!(task.reserve_async(Amount::usd("4")?).await.is_err());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::UnknownNode`] if this node was removed.
    #[cfg(feature = "tokio")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub fn require_approval_async(
        &self,
        threshold: Amount,
        approver: impl AsyncApprover,
    ) -> Result<()> {
        self.set_rule(threshold, Gate::Async(Arc::new(approver)))
    }

    fn set_rule(&self, threshold: Amount, gate: Gate) -> Result<()> {
        self.info()?; // the node exists
        self.shared()
            .approvals
            .set(self.id(), self.path_arc().clone(), threshold, gate);
        Ok(())
    }

    /// Removes this node's approval rule in `unit` (rules of other nodes stay); `false` if it had
    /// none.
    ///
    /// ```
    /// use budget_guard::approval::{Approval, ApprovalRequest};
    /// use budget_guard::{Amount, Budget, Limit, Unit};
    /// # fn main() -> budget_guard::Result<()> {
    /// let task = Budget::builder("task", Limit::hard(Amount::usd("10")?)).build()?;
    /// task.require_approval(Amount::usd("1")?, |_: &ApprovalRequest| Approval::deny("no"))?;
    /// assert!(task.reserve(Amount::usd("5")?).is_err());
    /// assert!(task.remove_approval(Unit::Usd));
    /// assert!(task.reserve(Amount::usd("5")?).is_ok());
    /// # Ok(()) }
    /// ```
    pub fn remove_approval(&self, unit: Unit) -> bool {
        self.shared().approvals.remove(self.id(), Some(unit))
    }

    /// The approval requests a reserve of `cost` on this node would make, leaf to root (empty
    /// without applicable rules). Asks nobody.
    pub(crate) fn approvals_needed(&self, cost: &Cost) -> Vec<ApprovalRequest> {
        if !self.shared().approvals.active() {
            return Vec::new();
        }
        let questions = self.shared().approvals.questions(self, cost);
        questions.into_iter().map(|(request, _)| request).collect()
    }

    /// Asks every applicable rule about a reserve of `cost`, leaf to root, stopping at the first
    /// denial. Without rules: one relaxed load.
    ///
    /// # Errors
    /// [`Error::ApprovalDenied`]; [`Error::AsyncApprovalRequired`] for a rule whose approver is
    /// async.
    #[inline]
    pub(crate) fn approve(&self, cost: &Cost) -> Result<()> {
        if !self.shared().approvals.active() {
            return Ok(());
        }
        self.approve_slow(cost)
    }

    /// As [`approve`](Budget::approve) for `reserve_up_to(min, max)`: asked about `max`, and not
    /// at all for bounds the store will reject anyway (it reports them).
    #[inline]
    pub(crate) fn approve_up_to(&self, min: Amount, max: Amount) -> Result<()> {
        if !self.shared().approvals.active() || min.unit() != max.unit() || min > max {
            return Ok(());
        }
        self.approve_slow(&Cost::from(max))
    }

    #[cold]
    fn approve_slow(&self, cost: &Cost) -> Result<()> {
        for (request, gate) in self.shared().approvals.questions(self, cost) {
            let approval = match gate {
                Gate::Blocking(approver) => approver.approve(&request),
                #[cfg(feature = "tokio")]
                Gate::Async(_) => {
                    return Err(Error::AsyncApprovalRequired {
                        node: request.rule_node,
                        threshold: request.threshold,
                    });
                }
            };
            if let Approval::Denied { reason } = approval {
                return Err(denied(request, reason));
            }
        }
        Ok(())
    }

    /// The async form of [`approve`](Budget::approve): awaits async approvers, calls blocking
    /// ones in place.
    #[cfg(feature = "tokio")]
    pub(crate) async fn approve_async(&self, cost: &Cost) -> Result<()> {
        if !self.shared().approvals.active() {
            return Ok(());
        }
        for (request, gate) in self.shared().approvals.questions(self, cost) {
            let approval = match &gate {
                Gate::Blocking(approver) => approver.approve(&request),
                Gate::Async(approver) => approver.approve(&request).await,
            };
            if let Approval::Denied { reason } = approval {
                return Err(denied(request, reason));
            }
        }
        Ok(())
    }

    /// As [`reserve`](Budget::reserve), awaiting [`AsyncApprover`]s (feature `tokio`; blocking
    /// approvers are called in place, on the task's thread). Without approval rules it is
    /// `reserve`. Dropping the future while an approver is pending holds nothing.
    ///
    /// ```
    /// use budget_guard::{Amount, Budget, Limit, Unit};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> budget_guard::Result<()> {
    /// let task = Budget::builder("task", Limit::hard(Amount::usd("1")?)).build()?;
    /// let guard = task.reserve_async(Amount::usd("0.50")?).await?;
    /// guard.commit(Amount::usd("0.20")?)?;
    /// assert_eq!(task.balance(Unit::Usd)?.spent, Amount::usd("0.20")?);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`reserve`](Budget::reserve), and [`Error::ApprovalDenied`] from any approver.
    #[cfg(feature = "tokio")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub async fn reserve_async(&self, cost: impl Into<Cost>) -> Result<crate::guard::Guard<'_>> {
        let cost = cost.into();
        self.approve_async(&cost).await?;
        self.reserve_approved(&cost)
    }
}
