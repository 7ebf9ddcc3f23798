//! [`MemoryStore`]: the ledger behind one `parking_lot` mutex.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
use crate::ids::{HoldId, NodeId};
use crate::ledger::{Lease, Ledger};
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
/// record and release never read it.
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
            ledger: Mutex::new(ledger),
            clock: Arc::new(clock),
        }
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
    fn create_node(&self, parent: Option<NodeId>, name: &str, limits: &Limits) -> Result<NodeId> {
        self.ledger.lock().create_node(parent, name, limits)
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
        Ok(self.ledger.lock().cancellation(hold))
    }

    fn reserve_with(
        &self,
        node: NodeId,
        cost: &Cost,
        options: &ReserveOptions,
    ) -> Result<Reservation> {
        let lease = self.lease(options)?;
        self.ledger.lock().reserve_at(node, cost, lease)
    }

    fn check(&self, node: NodeId, cost: &Cost) -> Result<Check> {
        let now = self.clock.now();
        self.ledger.lock().check_at(node, cost, Some(now))
    }

    fn reserve_up_to_with(
        &self,
        node: NodeId,
        min: Amount,
        max: Amount,
        options: &ReserveOptions,
    ) -> Result<Reservation> {
        let lease = self.lease(options)?;
        self.ledger.lock().reserve_up_to_at(node, min, max, lease)
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
        Ok(self.ledger.lock().sweep(now))
    }

    fn record(&self, hold: HoldId, partial: &Cost) -> Result<()> {
        self.ledger.lock().record(hold, partial)
    }

    fn commit(&self, hold: HoldId, actual: &Cost) -> Result<Committed> {
        self.ledger.lock().commit(hold, actual)
    }

    fn release(&self, hold: HoldId) -> Result<bool> {
        self.ledger.lock().release(hold)
    }

    fn set_limit(&self, node: NodeId, limit: Limit) -> Result<Balance> {
        self.ledger.lock().set_limit(node, limit)
    }

    fn set_rate_limit(
        &self,
        node: NodeId,
        limit: Option<crate::rate::RateLimit>,
    ) -> Result<Option<crate::rate::RateLimit>> {
        self.ledger.lock().set_rate_limit(node, limit)
    }

    fn remove_limit(&self, node: NodeId, unit: Unit) -> Result<Balance> {
        self.ledger.lock().remove_limit(node, unit)
    }

    fn credit(&self, node: NodeId, amount: Amount) -> Result<Balance> {
        self.ledger.lock().credit(node, amount)
    }

    fn debit(&self, node: NodeId, amount: Amount) -> Result<Balance> {
        self.ledger.lock().debit(node, amount)
    }

    fn balance(&self, node: NodeId, unit: Unit) -> Result<Balance> {
        self.ledger.lock().balance(node, unit)
    }

    fn node_info(&self, node: NodeId) -> Result<NodeInfo> {
        self.ledger.lock().node_info(node)
    }

    fn snapshot(&self) -> Result<Snapshot> {
        Ok(self.ledger.lock().snapshot())
    }

    fn restore(&self, snapshot: &Snapshot) -> Result<()> {
        // Build and check outside the lock; swap under it.
        let mut restored = Ledger::from_snapshot(snapshot)?;
        let mut ledger = self.ledger.lock();
        restored.adopt_epoch(&ledger);
        *ledger = restored;
        Ok(())
    }
}
