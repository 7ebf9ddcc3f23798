//! [`MemoryStore`]: the ledger behind one `parking_lot` mutex.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use crate::sync::Mutex;

use crate::clock::{Clock, SystemClock, Timestamp};
use crate::error::Result;
use crate::idempotency::KeyRetention;
use crate::ledger::Ledger;
use crate::op::{Answer, Applied, Op, Query};
use crate::store::Store;

/// The in-process store: every operation takes one short `parking_lot` lock around the pure
/// ledger, so a reserve + commit pair on a depth-4 path costs a few hundred nanoseconds (see
/// `BENCHMARKS.md`) and nothing is allocated on that path once the hold table has grown to its
/// working size.
///
/// All state is lost when the process ends; use a durable store for budgets that must survive
/// restarts.
///
/// Time (hold deadlines) comes from a [`Clock`]: the [`SystemClock`] unless built
/// [`with_clock`](MemoryStore::with_clock). A reserve reads it once, outside the lock; commit,
/// record and release read it only once some limit has had a [`Period`](crate::Period), to roll
/// ended periods (see [`crate::period`]).
///
/// ```
/// use budget_guard::{Amount, Budget, Limit, MemoryStore};
/// # fn main() -> budget_guard::Result<()> {
/// let root = Budget::builder("acme", Limit::hard(Amount::usd("10")?))
///     .build_in(MemoryStore::new())?;
/// assert_eq!(root.path(), "acme");
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MemoryStore {
    ledger: Mutex<Ledger>,
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

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::with_clock(SystemClock)
    }
}

impl MemoryStore {
    /// An empty store on the [`SystemClock`].
    pub fn new() -> Self {
        MemoryStore::default()
    }

    /// An empty store that reads time from `clock` (a [`ManualClock`](crate::ManualClock) in
    /// tests).
    ///
    /// ```
    /// use std::time::Duration;
    /// use budget_guard::{Amount, Budget, Limit, ManualClock, MemoryStore, Timestamp, Unit};
    /// # fn main() -> budget_guard::Result<()> {
    /// let clock = ManualClock::new(Timestamp::EPOCH);
    /// let run = Budget::builder("run", Limit::hard(Amount::usd("1")?))
    ///     .build_in(MemoryStore::with_clock(clock.clone()))?;
    /// let guard = run.reserve(Amount::usd("1")?)?; // expires 60 s from now
    /// clock.advance(Duration::from_secs(61));
    /// let expired = run.sweep()?; // the crashed-caller case: the hold comes back
    /// assert_eq!(expired.len(), 1);
    /// assert_eq!(run.balance(Unit::Usd)?.reserved, Amount::zero(Unit::Usd));
    /// drop(guard); // releasing an already reclaimed hold changes nothing
    /// # Ok(()) }
    /// ```
    pub fn with_clock(clock: impl Clock) -> Self {
        let ledger = Ledger::new();
        MemoryStore {
            epoch: ledger.epoch_cell(),
            timed: ledger.timed_cell(),
            ledger: Mutex::new(ledger),
            clock: Arc::new(clock),
            periodic: AtomicBool::new(false),
            retention: KeyRetention::DEFAULT,
        }
    }

    /// This store, remembering idempotency keys as `retention` says (default
    /// [`KeyRetention::DEFAULT`]: 24 hours, 65,536 keys; see [`crate::idempotency`]).
    ///
    /// ```
    /// use std::num::NonZeroUsize;
    /// use std::time::Duration;
    /// use budget_guard::{Amount, Budget, IdempotencyKey, KeyRetention, Limit, ManualClock};
    /// use budget_guard::{MemoryStore, OpOptions, Timestamp, Unit};
    /// # fn main() -> budget_guard::Result<()> {
    /// let clock = ManualClock::new(Timestamp::EPOCH);
    /// let hour = KeyRetention::new(Duration::from_secs(3_600), NonZeroUsize::new(1_000).unwrap())?;
    /// let wallet = Budget::builder("wallet", Limit::hard(Amount::usd("5")?))
    ///     .build_in(MemoryStore::with_clock(clock.clone()).with_key_retention(hour))?;
    /// let once = OpOptions::new().idempotency_key(IdempotencyKey::new("top-up-1")?);
    /// wallet.credit_with(Amount::usd("1")?, &once)?;
    /// wallet.credit_with(Amount::usd("1")?, &once)?; // remembered: no second credit
    /// clock.advance(Duration::from_secs(3_600));
    /// wallet.credit_with(Amount::usd("1")?, &once)?; // forgotten after an hour: credited again
    /// assert_eq!(wallet.balance(Unit::Usd)?.remaining, Some(Amount::usd("7")?));
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn with_key_retention(mut self, retention: KeyRetention) -> Self {
        self.retention = retention;
        self
    }

    /// The store's time for `needs` (an operation that cannot run without it), else for an
    /// operation that `uses` it only to roll periods and feed burn rates and top-up rules: read
    /// outside the lock, and not at all while no limit has had a period and no node tracks a
    /// burn rate or has a top-up rule (the ledger would not use it).
    #[inline]
    fn time_for(&self, needs: bool, uses: bool) -> Option<Timestamp> {
        let wanted = needs
            || (uses
                && (self.periodic.load(Ordering::Acquire)
                    || self.timed.load(Ordering::Relaxed) > 0));
        wanted.then(|| self.clock.now())
    }
}

impl Store for MemoryStore {
    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn cancel_epoch(&self) -> Option<u64> {
        Some(self.epoch.load(Ordering::Acquire))
    }

    #[inline]
    fn apply(&self, op: &Op) -> Result<Applied> {
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
        let mut ledger = self.ledger.lock();
        // Returned as it comes (no `?` and re-wrap): the result is a few hundred bytes, and
        // every rebuild of it is a copy on the hot path (issue 16).
        let applied = ledger.apply(op, now, &self.retention);
        if matches!(op, Op::Restore { .. }) && ledger.has_periods() {
            self.periodic.store(true, Ordering::Release);
        }
        applied
    }

    fn read(&self, query: &Query) -> Result<Answer> {
        let now = self.time_for(query.needs_clock(), query.uses_clock());
        self.ledger.lock().read(query, now)
    }
}

// Randomized-schedule checks of this store (`scripts/shuttle.sh`); see the module's docs.
#[cfg(all(test, shuttle))]
mod shuttle_tests;
