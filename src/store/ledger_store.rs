//! [`LedgerStore`]: the one in-process store, generic over what it persists.
//!
//! Every in-process store is the same orchestration around the ledger's one interpreter
//! ([`Ledger::apply`] / [`Ledger::read`]): decide whether the operation needs the store's time
//! (and read the clock outside the lock only then), take the lock, run the interpreter, hand
//! what happened to the [`Persist`] layer while still under the lock (so the persisted order is
//! the applied order), release the lock, and only then wait for durability (so concurrent
//! callers can share one sync). The store itself decides nothing about money, periods,
//! idempotency or top-ups: the ledger does.
//!
//! [`MemoryStore`](crate::MemoryStore) is `LedgerStore<NoPersist>`: nothing persisted, nothing
//! waited for, no cost over the bare ledger on the hot path (the persistence calls are inlined
//! no-ops).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use crate::clock::{Clock, Timestamp};
use crate::error::Result;
use crate::idempotency::KeyRetention;
use crate::ledger::Ledger;
use crate::op::{Answer, Applied, Op, Query};
use crate::sync::Mutex;

/// What the ledger just ran, as handed to [`Persist::record`].
#[derive(Clone, Copy, Debug)]
#[cfg_attr(
    not(test),
    expect(
        dead_code,
        reason = "read by persistence layers; the memory store's persists nothing"
    )
)]
pub(crate) enum Command<'c, 'r> {
    /// A mutating operation and its result.
    Apply(&'c Op, &'r Result<Applied>),
    /// A query and its answer (a query may still change the books: it rolls ended periods,
    /// and a check reclaims expired holds).
    Read(&'c Query, &'r Result<Answer>),
}

/// What a [`LedgerStore`] does with each command the ledger ran.
///
/// [`record`](Persist::record) runs under the store's lock, right after the ledger ran the
/// command, so its order is the ledger's; it must not block on I/O. [`settle`](Persist::settle)
/// runs after the lock is released with what `record` returned, and may wait (for a sync).
pub(crate) trait Persist: Send + Sync + fmt::Debug {
    /// What `record` keeps under the store's lock (for example records not yet written).
    type Pending: Send + fmt::Debug;
    /// What `settle` waits for (for example a record's sequence number).
    type Ticket;

    /// Notes `command`, which the ledger ran at `now` (the books are `ledger` afterwards).
    /// `None`: nothing to wait for.
    ///
    /// # Errors
    /// A failure to note the command (the store then reports it instead of the result).
    fn record(
        &self,
        pending: &mut Self::Pending,
        ledger: &Ledger,
        command: Command<'_, '_>,
        now: Option<Timestamp>,
    ) -> Result<Option<Self::Ticket>>;

    /// Waits until what `record` noted is as durable as the persistence promises.
    ///
    /// # Errors
    /// A failed write or sync.
    fn settle(&self, ticket: Self::Ticket) -> Result<()>;
}

/// Persists nothing: the [`MemoryStore`](crate::MemoryStore).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct NoPersist;

impl Persist for NoPersist {
    type Pending = ();
    type Ticket = std::convert::Infallible;

    #[inline]
    fn record(
        &self,
        _: &mut (),
        _: &Ledger,
        _: Command<'_, '_>,
        _: Option<Timestamp>,
    ) -> Result<Option<Self::Ticket>> {
        Ok(None)
    }

    #[inline]
    fn settle(&self, ticket: Self::Ticket) -> Result<()> {
        match ticket {}
    }
}

/// The ledger and the persistence layer's pending state, behind one lock.
#[derive(Debug)]
pub(crate) struct Books<P: Persist> {
    pub(crate) ledger: Ledger,
    pub(crate) pending: P::Pending,
}

/// The ledger behind one lock, run by its interpreter, persisted by `P`.
#[derive(Debug)]
pub(crate) struct LedgerStore<P: Persist> {
    books: Mutex<Books<P>>,
    persist: P,
    clock: Arc<dyn Clock>,
    /// The ledger's cancellation counter, read without the lock.
    epoch: Arc<AtomicU64>,
    /// Set once any limit has had a period: from then on every operation that reads or changes
    /// balances reads the clock (outside the lock) so the ledger can roll ended periods.
    periodic: AtomicBool,
    /// How long and how many idempotency keys are remembered.
    retention: KeyRetention,
    /// How many nodes track a burn rate or have a top-up rule (the ledger's counter): while
    /// zero, commit and record never read the clock (see [`crate::burn`]).
    timed: Arc<AtomicU32>,
}

impl<P: Persist> LedgerStore<P> {
    /// A store over `ledger` (empty, or recovered by the persistence layer) that reads time from
    /// `clock` and persists through `persist`.
    pub(crate) fn new(
        ledger: Ledger,
        pending: P::Pending,
        persist: P,
        clock: Arc<dyn Clock>,
    ) -> Self {
        LedgerStore {
            epoch: ledger.epoch_cell(),
            timed: ledger.timed_cell(),
            periodic: AtomicBool::new(ledger.has_periods()),
            books: Mutex::new(Books { ledger, pending }),
            persist,
            clock,
            retention: KeyRetention::DEFAULT,
        }
    }

    /// Remember idempotency keys as `retention` says.
    pub(crate) fn set_key_retention(&mut self, retention: KeyRetention) {
        self.retention = retention;
    }

    /// The store's clock.
    pub(crate) fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The ledger's cancellation counter.
    pub(crate) fn cancel_epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// The time for `needs` (an operation that cannot run without it), else for an operation
    /// that `uses` it only to roll periods and feed burn rates and top-up rules: read outside
    /// the lock, and not at all while no limit has had a period and no node tracks a burn rate
    /// or has a top-up rule (the ledger would not use it).
    #[inline]
    fn time_for(&self, needs: bool, uses: bool) -> Option<Timestamp> {
        let wanted = needs
            || (uses
                && (self.periodic.load(Ordering::Acquire)
                    || self.timed.load(Ordering::Relaxed) > 0));
        wanted.then(|| self.clock.now())
    }

    /// Runs `op` through the ledger, persists what happened, and waits as the persistence says.
    ///
    /// # Errors
    /// The ledger's error for `op`, or the persistence layer's.
    #[inline]
    pub(crate) fn apply(&self, op: &Op) -> Result<Applied> {
        // From the first periodic limit on, every operation reads the clock to roll periods.
        let periodic = match op {
            Op::CreateNode { limits, .. } => limits.iter().any(|limit| limit.period().is_some()),
            Op::SetLimit { limit, .. } => limit.period().is_some(),
            _ => false,
        };
        if periodic {
            self.periodic.store(true, Ordering::Release);
        }
        let now = self.time_for(op.needs_clock(), op.uses_clock());
        self.locked(
            now,
            |ledger| {
                let applied = ledger.apply(op, now, &self.retention);
                if matches!(op, Op::Restore { .. }) && ledger.has_periods() {
                    self.periodic.store(true, Ordering::Release);
                }
                applied
            },
            |applied| Command::Apply(op, applied),
        )
    }

    /// Answers `query` from the ledger, persisting what the read changed (rolled periods,
    /// reclaimed holds) as [`apply`](Self::apply) does.
    ///
    /// # Errors
    /// The ledger's error for `query`, or the persistence layer's.
    pub(crate) fn read(&self, query: &Query) -> Result<Answer> {
        let now = self.time_for(query.needs_clock(), query.uses_clock());
        self.locked(
            now,
            |ledger| ledger.read(query, now),
            |answer| Command::Read(query, answer),
        )
    }

    /// Runs `run` on the ledger under the lock, hands its result (as `command` describes it)
    /// to the persistence layer under the same lock, then settles outside it.
    #[inline]
    fn locked<'c, T>(
        &self,
        now: Option<Timestamp>,
        run: impl FnOnce(&mut Ledger) -> Result<T>,
        command: impl for<'r> FnOnce(&'r Result<T>) -> Command<'c, 'r>,
    ) -> Result<T> {
        let (result, ticket) = {
            let mut books = self.books.lock();
            let books = &mut *books;
            let result = run(&mut books.ledger);
            let ticket =
                self.persist
                    .record(&mut books.pending, &books.ledger, command(&result), now)?;
            (result, ticket)
        };
        if let Some(ticket) = ticket {
            self.persist.settle(ticket)?;
        }
        result
    }
}
