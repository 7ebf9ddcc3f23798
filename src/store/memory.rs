//! [`MemoryStore`]: the ledger behind one `parking_lot` mutex.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use crate::sync::Mutex;

use crate::amount::{Amount, Unit};
use crate::balance::{Balance, NodeInfo, Snapshot};
use crate::cancel::Cancellation;
use crate::check::Check;
use crate::clock::{Clock, SystemClock, Timestamp};
use crate::cost::Cost;
use crate::error::Result;
use crate::expiry::{ExpiredHold, ReserveOptions, validate_ttl};
use crate::idempotency::{IdempotencyKey, KeyRetention, OpOptions};
use crate::ids::{HoldId, NodeId};
use crate::ledger::{Keyed, Lease, Ledger, Remember, Request};
use crate::node_state::NodeState;
use crate::policy::{Limit, Limits};
use crate::store::{Committed, Reservation, Store};

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

    /// The key of a keyed operation at `now`.
    fn keyed<'a>(&'a self, key: &'a IdempotencyKey, now: Timestamp) -> Keyed<'a> {
        Keyed {
            key,
            now,
            retention: &self.retention,
        }
    }

    /// Runs a keyed commit, release, credit or debit: reads the clock once, outside the lock,
    /// and hands that time to `op` as well.
    fn once<T: Remember>(
        &self,
        key: &IdempotencyKey,
        request: impl FnOnce(&Ledger) -> Result<Request>,
        op: impl FnOnce(&mut Ledger, Timestamp) -> Result<T>,
    ) -> Result<T> {
        let now = self.clock.now();
        let mut ledger = self.ledger.lock();
        ledger.roll_periods(now);
        let op = |ledger: &mut Ledger| op(ledger, now);
        ledger.once(Some(self.keyed(key, now)), request, op).0
    }

    /// The time to roll periods at, read outside the lock; `None` (no clock read) while no
    /// limit has ever had a period.
    #[inline]
    fn period_now(&self) -> Option<Timestamp> {
        self.periodic
            .load(Ordering::Acquire)
            .then(|| self.clock.now())
    }

    /// Runs `op` on the ledger after rolling the periods that ended (see [`crate::period`]).
    #[inline]
    fn books<T>(&self, op: impl FnOnce(&mut Ledger) -> T) -> T {
        let now = self.period_now();
        let mut ledger = self.ledger.lock();
        if let Some(now) = now {
            ledger.roll_periods(now);
        }
        op(&mut ledger)
    }

    /// Like [`books`](Self::books) for an operation that may give a node a new period (`op`
    /// returns the node): starts it at the same `now`, then answers with `answer`, all under
    /// one lock.
    fn books_periodic<T>(
        &self,
        periodic: bool,
        op: impl FnOnce(&mut Ledger) -> Result<NodeId>,
        answer: impl FnOnce(&Ledger, NodeId) -> Result<T>,
    ) -> Result<T> {
        if periodic {
            self.periodic.store(true, Ordering::Release);
        }
        let now = self.period_now();
        let mut ledger = self.ledger.lock();
        if let Some(now) = now {
            ledger.roll_periods(now);
        }
        let node = op(&mut ledger)?;
        if let Some(now) = now {
            ledger.start_periods(node, now);
        }
        answer(&ledger, node)
    }

    /// The time for burn rates and top-up rules, read outside the lock; `None` (no clock
    /// read) while no node tracks a burn rate or has a rule.
    #[inline]
    fn timed_now(&self) -> Option<Timestamp> {
        (self.timed.load(Ordering::Relaxed) > 0).then(|| self.clock.now())
    }

    /// The lease of a reserve made now with `options`.
    #[inline]
    fn lease(&self, options: &ReserveOptions) -> Result<Lease> {
        options.validate()?;
        let now = self.clock.now();
        Ok(Lease {
            now: Some(now),
            expires: now.saturating_add(options.ttl),
        })
    }
}

impl Store for MemoryStore {
    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn create_node(&self, parent: Option<NodeId>, name: &str, limits: &Limits) -> Result<NodeId> {
        let periodic = limits.iter().any(|limit| limit.period().is_some());
        self.books_periodic(
            periodic,
            |ledger| ledger.create_node(parent, name, limits),
            |_, id| Ok(id),
        )
    }

    fn remove_node(&self, node: NodeId) -> Result<()> {
        self.ledger.lock().remove_node(node)
    }

    fn resolve(&self, path: &str) -> Result<NodeId> {
        self.ledger.lock().resolve(path)
    }

    fn cancel_epoch(&self) -> Option<u64> {
        Some(self.epoch.load(Ordering::Acquire))
    }

    fn cancellation(&self, hold: HoldId) -> Result<Option<Cancellation>> {
        Ok(self.books(|ledger| ledger.cancellation(hold)))
    }

    fn reserve_with(
        &self,
        node: NodeId,
        cost: &Cost,
        options: &ReserveOptions,
    ) -> Result<Reservation> {
        let lease = self.lease(options)?;
        let mut ledger = self.ledger.lock();
        if let Some(now) = lease.now {
            ledger.roll_periods(now); // one compare while no period ended
        }
        let keyed = options.idempotency_key.as_ref().zip(lease.now);
        let keyed = keyed.map(|(key, now)| self.keyed(key, now));
        let request = |ledger: &Ledger| Request::reserve(ledger, node, cost, options.ttl);
        ledger
            .once(keyed, request, |ledger| {
                ledger.reserve_at(node, cost, lease)
            })
            .0
    }

    fn check(&self, node: NodeId, cost: &Cost) -> Result<Check> {
        let now = self.clock.now();
        let mut ledger = self.ledger.lock();
        ledger.roll_periods(now);
        ledger.check_at(node, cost, Some(now))
    }

    fn reserve_up_to_with(
        &self,
        node: NodeId,
        min: Amount,
        max: Amount,
        options: &ReserveOptions,
    ) -> Result<Reservation> {
        let lease = self.lease(options)?;
        let mut ledger = self.ledger.lock();
        if let Some(now) = lease.now {
            ledger.roll_periods(now);
        }
        let keyed = options.idempotency_key.as_ref().zip(lease.now);
        let keyed = keyed.map(|(key, now)| self.keyed(key, now));
        let request = |ledger: &Ledger| Request::reserve_up_to(ledger, node, min, max, options.ttl);
        let reserve = |ledger: &mut Ledger| ledger.reserve_up_to_at(node, min, max, lease);
        ledger.once(keyed, request, reserve).0
    }

    fn set_state(&self, node: NodeId, state: NodeState) -> Result<NodeState> {
        self.ledger.lock().set_state(node, state)
    }

    fn extend(&self, hold: HoldId, ttl: Duration) -> Result<Timestamp> {
        validate_ttl(ttl, "a heartbeat's ttl")?;
        let expires = self.clock.now().saturating_add(ttl);
        self.ledger.lock().extend(hold, expires)
    }

    fn sweep(&self) -> Result<Vec<ExpiredHold>> {
        let now = self.clock.now();
        let mut ledger = self.ledger.lock();
        ledger.roll_periods(now);
        Ok(ledger.sweep(now))
    }

    fn record(&self, hold: HoldId, partial: &Cost) -> Result<()> {
        let now = self.timed_now();
        self.books(|ledger| ledger.record_at(hold, partial, now))
    }

    fn commit(&self, hold: HoldId, actual: &Cost) -> Result<Committed> {
        let now = self.timed_now();
        self.books(|ledger| ledger.commit_at(hold, actual, now))
    }

    fn release(&self, hold: HoldId) -> Result<bool> {
        self.books(|ledger| ledger.release(hold))
    }

    fn commit_with(&self, hold: HoldId, actual: &Cost, options: &OpOptions) -> Result<Committed> {
        let Some(key) = &options.idempotency_key else {
            return self.commit(hold, actual);
        };
        let request = |_: &Ledger| {
            Ok(Request::Commit {
                hold,
                actual: *actual,
            })
        };
        self.once(key, request, |ledger, now| {
            ledger.commit_at(hold, actual, Some(now))
        })
    }

    fn release_with(&self, hold: HoldId, options: &OpOptions) -> Result<bool> {
        let Some(key) = &options.idempotency_key else {
            return self.release(hold);
        };
        let request = |_: &Ledger| Ok(Request::Release { hold });
        self.once(key, request, |ledger, _| ledger.release(hold))
    }

    fn credit_with(&self, node: NodeId, amount: Amount, options: &OpOptions) -> Result<Balance> {
        let Some(key) = &options.idempotency_key else {
            return self.credit(node, amount);
        };
        let request = |ledger: &Ledger| Request::credit(ledger, node, amount);
        self.once(key, request, |ledger, _| ledger.credit(node, amount))
    }

    fn debit_with(&self, node: NodeId, amount: Amount, options: &OpOptions) -> Result<Balance> {
        let Some(key) = &options.idempotency_key else {
            return self.debit(node, amount);
        };
        let request = |ledger: &Ledger| Request::debit(ledger, node, amount);
        self.once(key, request, |ledger, _| ledger.debit(node, amount))
    }

    fn set_limit(&self, node: NodeId, limit: Limit) -> Result<Balance> {
        self.books_periodic(
            limit.period().is_some(),
            |ledger| ledger.set_limit(node, limit).map(|_| node),
            |ledger, node| ledger.balance(node, limit.unit()),
        )
    }

    fn set_rate_limit(
        &self,
        node: NodeId,
        limit: Option<crate::rate::RateLimit>,
    ) -> Result<Option<crate::rate::RateLimit>> {
        self.ledger.lock().set_rate_limit(node, limit)
    }

    fn remove_limit(&self, node: NodeId, unit: Unit) -> Result<Balance> {
        self.books(|ledger| ledger.remove_limit(node, unit))
    }

    fn credit(&self, node: NodeId, amount: Amount) -> Result<Balance> {
        self.books(|ledger| ledger.credit(node, amount))
    }

    fn debit(&self, node: NodeId, amount: Amount) -> Result<Balance> {
        self.books(|ledger| ledger.debit(node, amount))
    }

    fn balance(&self, node: NodeId, unit: Unit) -> Result<Balance> {
        let now = self.timed_now();
        self.books(|ledger| ledger.balance_now(node, unit, now))
    }

    fn node_info(&self, node: NodeId) -> Result<NodeInfo> {
        let now = self.timed_now();
        self.books(|ledger| ledger.node_info_now(node, now))
    }

    fn set_burn_window(
        &self,
        node: NodeId,
        window: Option<crate::burn::BurnWindow>,
    ) -> Result<Option<crate::burn::BurnWindow>> {
        self.ledger.lock().set_burn_window(node, window)
    }

    fn set_top_up(
        &self,
        node: NodeId,
        rule: Option<crate::top_up::TopUp>,
    ) -> Result<Option<crate::top_up::TopUp>> {
        self.books(|ledger| ledger.set_top_up(node, rule))
    }

    fn snapshot(&self) -> Result<Snapshot> {
        Ok(self.books(|ledger| ledger.snapshot()))
    }

    fn restore(&self, snapshot: &Snapshot) -> Result<()> {
        // Build and check outside the lock; swap under it.
        let mut restored = Ledger::from_snapshot(snapshot)?;
        if restored.has_periods() {
            self.periodic.store(true, Ordering::Release);
        }
        let mut ledger = self.ledger.lock();
        restored.adopt_epoch(&ledger);
        *ledger = restored;
        Ok(())
    }
}

// Randomized-schedule checks of this store (`scripts/shuttle.sh`); see the module's docs.
#[cfg(all(test, shuttle))]
mod shuttle_tests;
