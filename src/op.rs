//! Operations as data: [`Op`] (every change to the books), [`Query`] (every read), and what they
//! return ([`Applied`], [`Answer`]).
//!
//! This is the contract every [`Store`](crate::Store) meets. A store implements two methods,
//! [`Store::apply`](crate::Store::apply) and [`Store::read`](crate::Store::read); the typed
//! methods (`reserve`, `commit`, `balance`, ...) are provided on top of them and build the `Op`
//! or `Query` for you. Operations name nodes by [`NodeId`] and holds by [`HoldId`] and carry no
//! process-local data, so with the `serde` feature they can be sent to a remote store and their
//! results sent back (see `tests/wire_store.rs` and `docs/architecture.md`).
//!
//! ```
//! use budget_guard::expiry::DEFAULT_HOLD_TTL;
//! use budget_guard::{Amount, Cost, Limit, Limits, MemoryStore, Op, Store};
//! # fn main() -> budget_guard::Result<()> {
//! let store = MemoryStore::new();
//! let create = Op::CreateNode {
//!     parent: None,
//!     name: "acme".into(),
//!     limits: Limits::from(Limit::hard(Amount::usd("10")?)),
//! };
//! let acme = store.apply(&create)?.into_node()?;
//! let reserve = Op::Reserve {
//!     node: acme,
//!     cost: Cost::from(Amount::usd("4")?),
//!     ttl: DEFAULT_HOLD_TTL,
//!     idempotency_key: None,
//! };
//! let reservation = store.apply(&reserve)?.into_reservation()?;
//! assert_eq!(reservation.held, Cost::from(Amount::usd("4")?));
//! # Ok(()) }
//! ```

mod results;

use std::fmt;
use std::time::Duration;

use crate::amount::{Amount, Unit};
use crate::balance::{Balance, NodeInfo, Snapshot};
use crate::burn::BurnWindow;
use crate::cancel::Cancellation;
use crate::check::Check;
use crate::clock::Timestamp;
use crate::cost::Cost;
use crate::error::{Error, Result, StoreError};
use crate::expiry::ExpiredHold;
use crate::idempotency::IdempotencyKey;
use crate::ids::{HoldId, NodeId};
use crate::node_state::NodeState;
use crate::policy::{Limit, Limits};
use crate::rate::RateLimit;
use crate::store::{Committed, Reservation};
use crate::top_up::TopUp;

/// One change to the books: every mutating operation a [`Store`](crate::Store) has.
///
/// Each variant documents its result ([`Applied`] variant) and refers to the typed
/// [`Store`](crate::Store) method with the same meaning, where its rules and errors are written.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Op {
    /// [`Store::create_node`](crate::Store::create_node) → [`Applied::Node`].
    CreateNode {
        /// The parent; `None` creates a root.
        parent: Option<NodeId>,
        /// The node's name (one path segment).
        name: String,
        /// Its limits.
        limits: Limits,
    },
    /// [`Store::remove_node`](crate::Store::remove_node) → [`Applied::Removed`].
    RemoveNode {
        /// The node.
        node: NodeId,
    },
    /// [`Store::reserve_with`](crate::Store::reserve_with) → [`Applied::Reserved`].
    Reserve {
        /// The node to hold on (and on every ancestor).
        node: NodeId,
        /// What to hold.
        cost: Cost,
        /// The hold's time to live, from the store's time.
        ttl: Duration,
        /// Apply at most once per key (see [`crate::idempotency`]).
        idempotency_key: Option<IdempotencyKey>,
    },
    /// [`Store::reserve_up_to_with`](crate::Store::reserve_up_to_with) → [`Applied::Reserved`].
    ReserveUpTo {
        /// The node to hold on.
        node: NodeId,
        /// Hold at least this much...
        min: Amount,
        /// ...and at most this much.
        max: Amount,
        /// The hold's time to live.
        ttl: Duration,
        /// Apply at most once per key.
        idempotency_key: Option<IdempotencyKey>,
    },
    /// [`Store::extend`](crate::Store::extend) → [`Applied::Extended`].
    Extend {
        /// The hold.
        hold: HoldId,
        /// Its new time to live, from the store's time.
        ttl: Duration,
    },
    /// [`Store::sweep`](crate::Store::sweep) → [`Applied::Swept`].
    Sweep,
    /// [`Store::record`](crate::Store::record) → [`Applied::Recorded`].
    Record {
        /// The hold.
        hold: HoldId,
        /// The spend to move from held to spent.
        partial: Cost,
    },
    /// [`Store::commit_with`](crate::Store::commit_with) → [`Applied::Committed`].
    Commit {
        /// The hold.
        hold: HoldId,
        /// The total actual cost.
        actual: Cost,
        /// Apply at most once per key.
        idempotency_key: Option<IdempotencyKey>,
    },
    /// [`Store::release_with`](crate::Store::release_with) → [`Applied::Released`].
    Release {
        /// The hold.
        hold: HoldId,
        /// Apply at most once per key.
        idempotency_key: Option<IdempotencyKey>,
    },
    /// [`Store::credit_with`](crate::Store::credit_with) → [`Applied::Balance`].
    Credit {
        /// The node.
        node: NodeId,
        /// What to add to its limit.
        amount: Amount,
        /// Apply at most once per key.
        idempotency_key: Option<IdempotencyKey>,
    },
    /// [`Store::debit_with`](crate::Store::debit_with) → [`Applied::Balance`].
    Debit {
        /// The node.
        node: NodeId,
        /// What to take from its limit.
        amount: Amount,
        /// Apply at most once per key.
        idempotency_key: Option<IdempotencyKey>,
    },
    /// [`Store::set_state`](crate::Store::set_state) → [`Applied::State`] (the previous state).
    SetState {
        /// The node.
        node: NodeId,
        /// Its new state.
        state: NodeState,
    },
    /// [`Store::set_limit`](crate::Store::set_limit) → [`Applied::Balance`].
    SetLimit {
        /// The node.
        node: NodeId,
        /// The limit (replaces the one in its unit).
        limit: Limit,
    },
    /// [`Store::remove_limit`](crate::Store::remove_limit) → [`Applied::Balance`].
    RemoveLimit {
        /// The node.
        node: NodeId,
        /// The unit whose limit goes.
        unit: Unit,
    },
    /// [`Store::set_rate_limit`](crate::Store::set_rate_limit) → [`Applied::RateLimit`] (the
    /// previous one).
    SetRateLimit {
        /// The node.
        node: NodeId,
        /// The new rate limit, or `None` to remove it.
        limit: Option<RateLimit>,
    },
    /// [`Store::set_burn_window`](crate::Store::set_burn_window) → [`Applied::BurnWindow`] (the
    /// previous one).
    SetBurnWindow {
        /// The node.
        node: NodeId,
        /// The new window, or `None` to stop measuring.
        window: Option<BurnWindow>,
    },
    /// [`Store::set_top_up`](crate::Store::set_top_up) → [`Applied::TopUp`] (the previous rule).
    SetTopUp {
        /// The node.
        node: NodeId,
        /// The new rule, or `None` to remove it.
        rule: Option<TopUp>,
    },
    /// [`Store::restore`](crate::Store::restore) → [`Applied::Restored`].
    Restore {
        /// The complete state to restore (boxed: it is large and rare).
        snapshot: Box<Snapshot>,
    },
}

/// The kind of an [`Op`], without its data: what [`Store::supports`](crate::Store::supports)
/// and [`Error::Unsupported`] name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
#[allow(missing_docs)] // each variant mirrors the `Op` variant of the same name
pub enum OpKind {
    CreateNode,
    RemoveNode,
    Reserve,
    ReserveUpTo,
    Extend,
    Sweep,
    Record,
    Commit,
    Release,
    Credit,
    Debit,
    SetState,
    SetLimit,
    RemoveLimit,
    SetRateLimit,
    SetBurnWindow,
    SetTopUp,
    Restore,
}

impl OpKind {
    /// Every kind, in declaration order (for capability tables and tests).
    pub const ALL: [OpKind; 18] = [
        OpKind::CreateNode,
        OpKind::RemoveNode,
        OpKind::Reserve,
        OpKind::ReserveUpTo,
        OpKind::Extend,
        OpKind::Sweep,
        OpKind::Record,
        OpKind::Commit,
        OpKind::Release,
        OpKind::Credit,
        OpKind::Debit,
        OpKind::SetState,
        OpKind::SetLimit,
        OpKind::RemoveLimit,
        OpKind::SetRateLimit,
        OpKind::SetBurnWindow,
        OpKind::SetTopUp,
        OpKind::Restore,
    ];
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl Op {
    /// The operation's kind.
    pub fn kind(&self) -> OpKind {
        match self {
            Op::CreateNode { .. } => OpKind::CreateNode,
            Op::RemoveNode { .. } => OpKind::RemoveNode,
            Op::Reserve { .. } => OpKind::Reserve,
            Op::ReserveUpTo { .. } => OpKind::ReserveUpTo,
            Op::Extend { .. } => OpKind::Extend,
            Op::Sweep => OpKind::Sweep,
            Op::Record { .. } => OpKind::Record,
            Op::Commit { .. } => OpKind::Commit,
            Op::Release { .. } => OpKind::Release,
            Op::Credit { .. } => OpKind::Credit,
            Op::Debit { .. } => OpKind::Debit,
            Op::SetState { .. } => OpKind::SetState,
            Op::SetLimit { .. } => OpKind::SetLimit,
            Op::RemoveLimit { .. } => OpKind::RemoveLimit,
            Op::SetRateLimit { .. } => OpKind::SetRateLimit,
            Op::SetBurnWindow { .. } => OpKind::SetBurnWindow,
            Op::SetTopUp { .. } => OpKind::SetTopUp,
            Op::Restore { .. } => OpKind::Restore,
        }
    }

    /// `true` if the operation cannot be applied without the store's time: reserves, extend
    /// and sweep (deadlines) and every operation with an idempotency key (the key's
    /// retention). Other operations use the time only to roll periods and feed burn rates and
    /// top-up rules, and a store may leave it out while it has none of those.
    pub fn needs_clock(&self) -> bool {
        match self {
            Op::Reserve { .. } | Op::ReserveUpTo { .. } | Op::Extend { .. } | Op::Sweep => true,
            Op::Commit {
                idempotency_key, ..
            }
            | Op::Release {
                idempotency_key, ..
            }
            | Op::Credit {
                idempotency_key, ..
            }
            | Op::Debit {
                idempotency_key, ..
            } => idempotency_key.is_some(),
            _ => false,
        }
    }

    /// `true` if the operation gives a node a periodic limit (creates a node with one, or sets
    /// one). A store that leaves the time out while nothing uses it must pass the time to this
    /// operation (so the new period starts) and to every later one that
    /// [`uses_clock`](Op::uses_clock) (so ended periods roll).
    pub(crate) fn adds_period(&self) -> bool {
        match self {
            Op::CreateNode { limits, .. } => limits.iter().any(|limit| limit.period().is_some()),
            Op::SetLimit { limit, .. } => limit.period().is_some(),
            _ => false,
        }
    }

    /// `true` if the operation may use the store's time when it has periods, burn windows or
    /// top-up rules (it rolls ended periods first, or reads burn rates); `false` for
    /// operations that never look at the time unless [`needs_clock`](Op::needs_clock).
    pub fn uses_clock(&self) -> bool {
        !matches!(
            self,
            Op::RemoveNode { .. }
                | Op::SetState { .. }
                | Op::SetRateLimit { .. }
                | Op::SetBurnWindow { .. }
                | Op::Restore { .. }
        )
    }
}

/// The result of an applied [`Op`]: one variant per kind of result. Take the one you expect
/// with the `into_*` helpers, which return an error for any other variant (a store bug).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Applied {
    /// The new node ([`Op::CreateNode`]).
    Node(NodeId),
    /// The node was removed ([`Op::RemoveNode`]).
    Removed,
    /// The reservation ([`Op::Reserve`], [`Op::ReserveUpTo`]).
    Reserved(Reservation),
    /// The hold's new deadline ([`Op::Extend`]).
    Extended(Timestamp),
    /// The holds reclaimed and not reported before ([`Op::Sweep`]).
    Swept(Vec<ExpiredHold>),
    /// The partial spend was recorded ([`Op::Record`]).
    Recorded,
    /// What the commit recorded ([`Op::Commit`]).
    Committed(Committed),
    /// Whether the hold was live and is now released ([`Op::Release`]).
    Released(bool),
    /// The node's balance afterwards ([`Op::Credit`], [`Op::Debit`], [`Op::SetLimit`],
    /// [`Op::RemoveLimit`]). Boxed: a balance is the largest result (about 300 bytes), and every
    /// `Applied` is as large as its largest variant, so an unboxed one would make the hot
    /// reserve and commit results copy 130 bytes more at each layer they pass.
    Balance(Box<Balance>),
    /// The previous node state ([`Op::SetState`]).
    State(NodeState),
    /// The previous rate limit ([`Op::SetRateLimit`]).
    RateLimit(Option<RateLimit>),
    /// The previous burn window ([`Op::SetBurnWindow`]).
    BurnWindow(Option<BurnWindow>),
    /// The previous top-up rule ([`Op::SetTopUp`]).
    TopUp(Option<TopUp>),
    /// The snapshot was restored ([`Op::Restore`]).
    Restored,
}

/// The error for a result of the wrong variant: the store answered an operation with the result
/// of another (a bug in the store, never retried).
fn unexpected(expected: &'static str, got: &impl fmt::Debug) -> Error {
    let got = format!("{got:?}");
    let got = got
        .split(['(', ' ', '{'])
        .next()
        .unwrap_or_default()
        .to_owned();
    StoreError::permanent(format!(
        "the store returned {got} where {expected} was expected"
    ))
    .into()
}

macro_rules! into_variant {
    ($ty:ident, $( $(#[$doc:meta])* $name:ident => $variant:ident $( ( $inner:ty ) )? ;)*) => {
        impl $ty {
            $( into_variant!(@one $ty, [$(#[$doc])*] $name $variant $( ($inner) )?); )*
        }
    };
    (@one $ty:ident, [$(#[$doc:meta])*] $name:ident $variant:ident ($inner:ty)) => {
        $(#[$doc])*
        ///
        /// # Errors
        #[doc = concat!("[`Error::Store`] if this is not [`", stringify!($ty), "::", stringify!($variant), "`].")]
        #[inline]
        pub fn $name(self) -> Result<$inner> {
            match self {
                $ty::$variant(value) => Ok(value),
                other => Err(unexpected(stringify!($variant), &other)),
            }
        }
    };
    (@one $ty:ident, [$(#[$doc:meta])*] $name:ident $variant:ident) => {
        $(#[$doc])*
        ///
        /// # Errors
        #[doc = concat!("[`Error::Store`] if this is not [`", stringify!($ty), "::", stringify!($variant), "`].")]
        pub fn $name(self) -> Result<()> {
            match self {
                $ty::$variant => Ok(()),
                other => Err(unexpected(stringify!($variant), &other)),
            }
        }
    };
}

into_variant! { Applied,
    /// The node of [`Applied::Node`].
    into_node => Node(NodeId);
    /// Unit for [`Applied::Removed`].
    into_removed => Removed;
    /// The reservation of [`Applied::Reserved`].
    into_reservation => Reserved(Reservation);
    /// The deadline of [`Applied::Extended`].
    into_extended => Extended(Timestamp);
    /// The holds of [`Applied::Swept`].
    into_swept => Swept(Vec<ExpiredHold>);
    /// Unit for [`Applied::Recorded`].
    into_recorded => Recorded;
    /// The result of [`Applied::Committed`].
    into_committed => Committed(Committed);
    /// The flag of [`Applied::Released`].
    into_released => Released(bool);
    /// The balance of [`Applied::Balance`].
    into_boxed_balance => Balance(Box<Balance>);
    /// The previous state of [`Applied::State`].
    into_state => State(NodeState);
    /// The previous rate limit of [`Applied::RateLimit`].
    into_rate_limit => RateLimit(Option<RateLimit>);
    /// The previous window of [`Applied::BurnWindow`].
    into_burn_window => BurnWindow(Option<BurnWindow>);
    /// The previous rule of [`Applied::TopUp`].
    into_top_up => TopUp(Option<TopUp>);
    /// Unit for [`Applied::Restored`].
    into_restored => Restored;
}

impl Applied {
    /// The balance of [`Applied::Balance`], unboxed.
    ///
    /// # Errors
    /// [`Error::Store`] if this is not [`Applied::Balance`].
    #[inline]
    pub fn into_balance(self) -> Result<Balance> {
        self.into_boxed_balance().map(|balance| *balance)
    }
}

/// One read of the books: every query a [`Store`](crate::Store) answers. Reads change no
/// balances, but may roll ended periods and (for [`Query::Check`]) reclaim expired holds, as the
/// typed methods document.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Query {
    /// [`Store::resolve`](crate::Store::resolve) → [`Answer::Node`].
    Resolve {
        /// The node's path (`acme/support/agent-7`).
        path: String,
    },
    /// [`Store::check`](crate::Store::check) → [`Answer::Check`].
    Check {
        /// The node.
        node: NodeId,
        /// The cost a reserve would hold.
        cost: Cost,
    },
    /// [`Store::balance`](crate::Store::balance) → [`Answer::Balance`].
    Balance {
        /// The node.
        node: NodeId,
        /// The unit.
        unit: Unit,
    },
    /// [`Store::node_info`](crate::Store::node_info) → [`Answer::NodeInfo`].
    NodeInfo {
        /// The node.
        node: NodeId,
    },
    /// [`Store::snapshot`](crate::Store::snapshot) → [`Answer::Snapshot`].
    Snapshot,
    /// [`Store::cancellation`](crate::Store::cancellation) → [`Answer::Cancellation`].
    Cancellation {
        /// The hold.
        hold: HoldId,
    },
}

impl Query {
    /// `true` if the query cannot be answered without the store's time ([`Query::Check`]
    /// reclaims holds past their deadline).
    pub fn needs_clock(&self) -> bool {
        matches!(self, Query::Check { .. })
    }

    /// `true` if the query may use the store's time when it has periods, burn windows or
    /// top-up rules.
    pub fn uses_clock(&self) -> bool {
        !matches!(self, Query::Resolve { .. })
    }
}

/// The answer to a [`Query`]: one variant per kind.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Answer {
    /// The node at the path ([`Query::Resolve`]).
    Node(NodeId),
    /// The dry run ([`Query::Check`]).
    Check(Check),
    /// The balance ([`Query::Balance`]).
    Balance(Balance),
    /// The node's description ([`Query::NodeInfo`]).
    NodeInfo(NodeInfo),
    /// The complete state ([`Query::Snapshot`]).
    Snapshot(Box<Snapshot>),
    /// Why the hold's work should stop, if it should ([`Query::Cancellation`]).
    Cancellation(Option<Cancellation>),
}

into_variant! { Answer,
    /// The node of [`Answer::Node`].
    into_node => Node(NodeId);
    /// The check of [`Answer::Check`].
    into_check => Check(Check);
    /// The balance of [`Answer::Balance`].
    into_balance => Balance(Balance);
    /// The description of [`Answer::NodeInfo`].
    into_node_info => NodeInfo(NodeInfo);
    /// The snapshot of [`Answer::Snapshot`].
    into_snapshot => Snapshot(Box<Snapshot>);
    /// The answer of [`Answer::Cancellation`].
    into_cancellation => Cancellation(Option<Cancellation>);
}
