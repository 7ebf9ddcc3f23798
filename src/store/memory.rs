//! [`MemoryStore`]: the ledger behind one `parking_lot` mutex.

use std::sync::Arc;

use crate::clock::{Clock, SystemClock, Timestamp};
use crate::cost::Cost;
use crate::error::Result;
use crate::expiry::ReserveOptions;
use crate::idempotency::KeyRetention;
use crate::idempotency::OpOptions;
use crate::ids::{HoldId, NodeId};
use crate::ledger::Ledger;
use crate::op::{Answer, Applied, Op, Query};
use crate::store::ledger_store::{LedgerStore, NoPersist};
use crate::store::{Committed, Reservation, Store};

/// The in-process store: the crate's one generic ledger store, persisting nothing. Every
/// operation takes one short `parking_lot` lock around the pure ledger, so a reserve + commit
/// pair on a depth-4 path costs a few hundred nanoseconds (see `BENCHMARKS.md`) and nothing is
/// allocated on that path once the hold table has grown to its working size.
///
/// All state is lost when the process ends; use a durable store for budgets that must survive
/// restarts.
///
/// Time (hold deadlines) comes from a [`Clock`]: the [`SystemClock`] unless built
/// [`with_clock`](MemoryStore::with_clock). A reserve reads it once, outside the lock; commit,
/// record and release read it only once some limit has had a [`Period`](crate::period::Period), to
/// roll ended periods (see [`crate::period`]).
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
pub struct MemoryStore(LedgerStore<NoPersist>);

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
        MemoryStore(LedgerStore::new(
            Ledger::new(),
            (),
            NoPersist,
            Arc::new(clock),
        ))
    }

    /// This store, remembering idempotency keys as `retention` says (default
    /// [`KeyRetention::DEFAULT`]: 24 hours, 65,536 keys; see [`crate::idempotency`]).
    ///
    /// ```
    /// use std::num::NonZeroUsize;
    /// use std::time::Duration;
    /// use budget_guard::idempotency::{IdempotencyKey, KeyRetention};
    /// use budget_guard::{Amount, Budget, Limit, ManualClock};
    /// use budget_guard::idempotency::OpOptions;
    /// use budget_guard::{MemoryStore, Timestamp, Unit};
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
        self.0.set_key_retention(retention);
        self
    }
}

impl Store for MemoryStore {
    fn now(&self) -> Timestamp {
        self.0.now()
    }

    fn cancel_epoch(&self) -> Option<u64> {
        Some(self.0.cancel_epoch())
    }

    #[inline]
    fn apply(&self, op: &Op) -> Result<Applied> {
        self.0.apply(op)
    }

    fn read(&self, query: &Query) -> Result<Answer> {
        self.0.read(query)
    }

    // The hot operations skip the `Op` and the `Applied` (the same ledger code runs; see
    // `LedgerStore<NoPersist>`): `apply` with the same operation gives the same result.

    #[inline]
    fn reserve(&self, node: NodeId, cost: &Cost) -> Result<Reservation> {
        self.0.reserve(node, cost, &ReserveOptions::DEFAULT)
    }

    #[inline]
    fn reserve_with(
        &self,
        node: NodeId,
        cost: &Cost,
        options: &ReserveOptions,
    ) -> Result<Reservation> {
        self.0.reserve(node, cost, options)
    }

    #[inline]
    fn commit(&self, hold: HoldId, actual: &Cost) -> Result<Committed> {
        self.0.commit(hold, actual, &OpOptions::DEFAULT)
    }

    #[inline]
    fn commit_with(&self, hold: HoldId, actual: &Cost, options: &OpOptions) -> Result<Committed> {
        self.0.commit(hold, actual, options)
    }

    #[inline]
    fn release(&self, hold: HoldId) -> Result<bool> {
        self.0.release(hold, &OpOptions::DEFAULT)
    }

    #[inline]
    fn release_with(&self, hold: HoldId, options: &OpOptions) -> Result<bool> {
        self.0.release(hold, options)
    }
}

// Randomized-schedule checks of this store (`scripts/shuttle.sh`); see the module's docs.
#[cfg(all(test, shuttle))]
mod shuttle_tests;
