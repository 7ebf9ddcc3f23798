//! Fail-open: the explicit, reported exception to failing closed.
//!
//! With [`RedisOptions::fail_open`](super::RedisOptions::fail_open), a reserve, commit,
//! release or extend that the server could not answer (a [`Transient`] or [`OutcomeUnknown`]
//! store error) succeeds anyway, and each such operation is counted and handed to the
//! policy's callback. Everything else (reads, limits, credits, node changes, refusals by the
//! budget itself) still fails closed.
//!
//! [`Transient`]: crate::StoreErrorKind::Transient
//! [`OutcomeUnknown`]: crate::StoreErrorKind::OutcomeUnknown

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::amount::Amount;
use crate::clock::{Clock, SystemClock, Timestamp};
use crate::cost::Cost;
use crate::error::{Error, Result, StoreErrorKind};
use crate::ids::{HoldId, NodeId};
use crate::op::{Applied, Op, OpKind};
use crate::store::{Committed, Reservation};

/// Hold ids a fail-open store hands out without a server: the top bit set, which the server's
/// counter never reaches.
const OPEN_HOLD_BIT: u64 = 1 << 63;

/// One operation a fail-open [`RedisStore`](crate::RedisStore) let through while the server
/// could not answer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LetThrough {
    /// What was let through: `Reserve`, `Commit`, `Release` or `Extend`.
    pub op: OpKind,
    /// The node of a reserve.
    pub node: Option<NodeId>,
    /// The hold: the one granted without the server (a reserve), or the one ended or extended.
    pub hold: HoldId,
    /// The amount: granted by a reserve, or the actual cost of a commit that the server did
    /// not record (charge it when the server is back).
    pub amount: Option<Cost>,
    /// The failure that was overridden; `None` for an operation on a hold granted without the
    /// server (it never reached the server).
    pub failure: Option<String>,
    /// When (the system clock).
    pub at: Timestamp,
}

/// The fail-open policy of a [`RedisStore`](crate::RedisStore) (see
/// [`RedisOptions::fail_open`](super::RedisOptions::fail_open)). A cheap handle: keep a clone to
/// read [`count`](FailOpen::count).
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
/// use budget_guard::{FailOpen, RedisOptions};
///
/// let seen = Arc::new(AtomicU64::new(0));
/// let counter = seen.clone();
/// let policy = FailOpen::new().on_let_through(move |op| {
///     eprintln!("budget not enforced: {op:?}");
///     counter.fetch_add(1, Ordering::Relaxed);
/// });
/// let options = RedisOptions::new().fail_open(policy.clone());
/// assert_eq!(policy.count(), 0);
/// # let _ = options;
/// ```
#[derive(Clone, Default)]
pub struct FailOpen {
    inner: Arc<Inner>,
}

/// The callback that hears of every operation let through.
type Callback = Box<dyn Fn(&LetThrough) + Send + Sync>;

#[derive(Default)]
struct Inner {
    callback: Option<Callback>,
    count: AtomicU64,
    next_hold: AtomicU64,
}

impl fmt::Debug for FailOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailOpen")
            .field("count", &self.count())
            .field("callback", &self.inner.callback.is_some())
            .finish()
    }
}

impl FailOpen {
    /// A policy that lets operations through and counts them, with no callback.
    pub fn new() -> Self {
        FailOpen::default()
    }

    /// Calls `callback` for every operation let through, after the failed call, holding no
    /// lock. A panicking callback propagates to the caller of the operation.
    #[must_use]
    pub fn on_let_through(self, callback: impl Fn(&LetThrough) + Send + Sync + 'static) -> Self {
        FailOpen {
            inner: Arc::new(Inner {
                callback: Some(Box::new(callback)),
                count: AtomicU64::new(self.count()),
                next_hold: AtomicU64::new(self.inner.next_hold.load(Ordering::Relaxed)),
            }),
        }
    }

    /// How many operations were let through so far.
    pub fn count(&self) -> u64 {
        self.inner.count.load(Ordering::Relaxed)
    }

    /// Whether `hold` was granted without the server.
    pub fn is_open_hold(hold: HoldId) -> bool {
        hold.into_raw() & OPEN_HOLD_BIT != 0
    }

    fn report(&self, let_through: LetThrough) {
        self.inner.count.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(?let_through, "redis: fail-open let an operation through");
        if let Some(callback) = &self.inner.callback {
            callback(&let_through);
        }
    }

    /// Runs `op` with `run` (the store's fail-closed path) and lets it through if the server
    /// could not answer and the operation is one fail-open covers.
    pub(super) fn apply(
        &self,
        op: &Op,
        run: impl FnOnce(&Op) -> Result<Applied>,
    ) -> Result<Applied> {
        if let Some(hold) = op_hold(op)
            && FailOpen::is_open_hold(hold)
        {
            // Never sent: the server does not know this hold.
            return Ok(self.let_through(op, None));
        }
        match run(op) {
            Err(Error::Store(error))
                if covered(op) && error.kind() != StoreErrorKind::Permanent =>
            {
                Ok(self.let_through(op, Some(error.to_string())))
            }
            other => other,
        }
    }

    /// The result the operation gets without the server, reported.
    fn let_through(&self, op: &Op, failure: Option<String>) -> Applied {
        let at = SystemClock.now();
        let report = |node, hold, amount| LetThrough {
            op: op.kind(),
            node,
            hold,
            amount,
            failure: failure.clone(),
            at,
        };
        let (applied, let_through) = match op {
            Op::Reserve {
                node, cost, ttl, ..
            } => {
                let serial = self.inner.next_hold.fetch_add(1, Ordering::Relaxed);
                let hold = HoldId::from_raw(OPEN_HOLD_BIT | serial);
                let reservation = Reservation::new(hold, *cost, at.saturating_add(*ttl));
                (
                    Applied::Reserved(reservation),
                    report(Some(*node), hold, Some(*cost)),
                )
            }
            Op::Commit { hold, actual, .. } => {
                let zero = zero_like(actual);
                let committed = Committed::new(*actual, zero, zero);
                (
                    Applied::Committed(committed),
                    report(None, *hold, Some(*actual)),
                )
            }
            Op::Extend { hold, ttl } => (
                Applied::Extended(at.saturating_add(*ttl)),
                report(None, *hold, None),
            ),
            Op::Release { hold, .. } => (Applied::Released(true), report(None, *hold, None)),
            _ => unreachable!("only covered operations are let through"),
        };
        self.report(let_through);
        applied
    }
}

impl super::RedisStore {
    /// [`Store::apply`](crate::Store::apply) failing closed.
    pub(super) fn apply_closed(&self, op: &Op) -> Result<Applied> {
        if !crate::store::Store::supports(self, op.kind()) {
            return Err(Error::Unsupported {
                op: op.kind(),
                store: super::codec::STORE,
            });
        }
        self.apply_supported(op)
    }
}

/// The operations fail-open covers.
fn covered(op: &Op) -> bool {
    matches!(
        op.kind(),
        OpKind::Reserve | OpKind::Commit | OpKind::Release | OpKind::Extend
    )
}

fn op_hold(op: &Op) -> Option<HoldId> {
    match op {
        Op::Commit { hold, .. } | Op::Release { hold, .. } | Op::Extend { hold, .. } => Some(*hold),
        _ => None,
    }
}

/// A zero cost in the units of `cost`.
fn zero_like(cost: &Cost) -> Cost {
    cost.iter().fold(Cost::new(), |zero, amount| {
        zero.with(Amount::zero(amount.unit())).unwrap_or(zero)
    })
}
