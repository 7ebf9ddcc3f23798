//! Leased local budgets: serve reserves at in-process speed from a slice of a remote budget.
//!
//! A [`LeasedStore`] leases a slice of one node of a remote [`Store`] (say $1 of a team's
//! $100 kept in a [`RedisStore`](crate::RedisStore)) into a local in-memory budget, and is itself
//! a `Store`, so a normal [`Budget`](crate::Budget) runs on it unchanged. A reserve costs one
//! in-process lock; the remote store is called only to lease, renew and return slices.
//!
//! # How it works
//!
//! - **A slice is a hold on the remote node** (a reserve there with the lease TTL), so the
//!   remote budget counts it as used while the process lives: the global cap stays exact.
//! - **The local root's limit is the spend already reported plus the slices held.** The local
//!   ledger enforces `spent + reserved ≤ limit` atomically, so the spend not yet reported
//!   never exceeds what the remote node holds for this process.
//! - **Renewal.** A local reserve refused by the root for lack of room leases a new slice
//!   (at least the shortfall; near the remote cap, what is left if that covers it) and tries
//!   again, in the calling thread. A background thread (optional) tops the slice up when the
//!   room falls below the low-water mark, and extends remote holds before less than the renew
//!   margin is left of their TTL; without it the first reserve that finds an extension due
//!   does it.
//! - **Reporting spend.** Each new slice retires the older ones whose unused part the local
//!   room can give up: the old remote hold is committed with the spend it covers and the rest
//!   returns to the remote budget. If the remote store supports
//!   [`record`](Store::record), the background thread also reports spend into the live holds
//!   as it goes.
//! - **Return.** [`close`](LeasedStore::close), or dropping the store (the last `Budget`
//!   handle), closes the local root to new reserves and commits every slice with the spend it
//!   covers; the unused rest goes back at once. A process that dies (kill -9) returns
//!   nothing: its remote holds come back when their TTL runs out (at the remote store's next
//!   reserve that needs the room, or its next [`sweep`](Store::sweep)).
//!
//! # Bounds
//!
//! With `n` processes each holding slices `S_i` (at most one slice plus the shortfall of the
//! largest reserve in flight, normally; [`LeaseStats::outstanding`]):
//!
//! - **Stranded funds** (held remotely, not spent) at any moment: at most `Σ S_i`. Near the cap
//!   a process may be refused while another process's slice still has room.
//! - **A kill -9** strands its slices for at most the lease TTL, then they return in full. The
//!   spend the process made but had not reported yet (at most its outstanding slices,
//!   [`LeaseStats::unreported`]) returns with them, so the remote books under-count that spend
//!   (the money was really spent: the cap was exact while the process lived, the *record* of
//!   it is what is lost). With a remote store that supports `record` only the spend since the
//!   last heartbeat is at risk.
//! - **The trade-off.** A larger slice means fewer remote round trips (one lease per slice of
//!   spend, plus one extension per TTL) but more money stranded per process and more spend
//!   unreported after a crash; a shorter TTL returns a dead process's slices sooner but costs
//!   more extensions. For `n` processes, a slice of a few percent of the cap divided by `n`
//!   keeps the stranded total small while a slice covers many calls.
//!
//! ```
//! use std::sync::Arc;
//! use budget_guard::{Amount, Budget, LeaseOptions, LeasedStore, Limit, MemoryStore, Store, Unit};
//! # fn main() -> budget_guard::Result<()> {
//! // The shared budget (a RedisStore in a fleet).
//! let remote: Arc<dyn Store> = Arc::new(MemoryStore::new());
//! let team = Budget::builder("team", Limit::hard(Amount::usd("100")?)).build_shared(remote.clone())?;
//!
//! // In a worker: lease $1 at a time into a local budget.
//! let options = LeaseOptions::new(Amount::usd("1")?).background(false);
//! let lease = Arc::new(LeasedStore::new(remote, "team", options)?);
//! let local = Budget::open(lease.clone(), lease.root_path())?;
//! for _ in 0..25 {
//!     local.reserve(Amount::usd("0.10")?)?.commit(Amount::usd("0.10")?)?; // in-process
//! }
//! // Two slices were used up and reported; the third is held, half spent.
//! let books = team.balance(Unit::Usd)?;
//! assert_eq!((books.spent, books.reserved), (Amount::usd("2")?, Amount::usd("1")?));
//! lease.close()?; // or drop every handle: $2.50 spent, the unused $0.50 back
//! assert_eq!(team.balance(Unit::Usd)?.spent, Amount::usd("2.50")?);
//! assert_eq!(team.balance(Unit::Usd)?.reserved, Amount::zero(Unit::Usd));
//! # Ok(()) }
//! ```

mod book;
mod options;
mod renewer;

use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::clock::{Clock, Timestamp};
use crate::error::{Error, Result, StoreError};
use crate::op::{Answer, Applied, Op, OpKind, Query};
use crate::policy::{Limit, Limits};
use crate::store::Store;
use crate::store::memory::MemoryStore;

use self::book::{Book, Lease};
pub use self::options::{LeaseOptions, LeaseStats};
use self::renewer::Renewer;

/// What the lease shares with its background thread.
#[derive(Debug)]
struct Shared {
    lease: Lease,
    /// The lease lock: held across remote round trips of leasing, renewing and returning, never
    /// on the local hot path.
    book: Mutex<Book>,
}

impl Shared {
    fn heartbeat(&self) {
        let mut book = self.book.lock();
        self.lease.heartbeat(&mut book);
    }
}

/// A local in-memory budget serving a slice leased from a node of a remote [`Store`] (see the
/// [module docs](crate::lease) for the protocol and its bounds).
///
/// The local tree has one root, named like the remote node's last path segment
/// ([`root_path`](LeasedStore::root_path)); children can be added under it as usual. Its limit is
/// managed by the lease: credit, debit and limit changes on the root are refused.
pub struct LeasedStore {
    shared: Arc<Shared>,
    renewer: Option<Renewer>,
}

impl fmt::Debug for LeasedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeasedStore")
            .field("root", &self.shared.lease.root_path)
            .field("options", &self.shared.lease.options)
            .finish_non_exhaustive()
    }
}

/// The lease's clock handed to the local store.
#[derive(Debug)]
struct SharedClock(Arc<dyn Clock>);

impl Clock for SharedClock {
    fn now(&self) -> Timestamp {
        self.0.now()
    }
}

impl LeasedStore {
    /// The name this store reports in [`Error::Unsupported`].
    pub const NAME: &'static str = "LeasedStore";

    /// Leases a first slice of the node at `path` in `remote` (the configured slice, or what
    /// is left on the remote node if less) and returns the local store serving it (and, with
    /// [`LeaseOptions::background`], starts its renewer thread).
    ///
    /// # Errors
    /// As [`LeaseOptions::validate`]; [`Error::UnknownNode`] for an unknown path; the remote
    /// store's refusal of the first slice (for example [`Error::BudgetExceeded`] when nothing
    /// is left) or its failure. Nothing is held when it fails.
    pub fn new(remote: Arc<dyn Store>, path: &str, options: LeaseOptions) -> Result<Self> {
        options.validate()?;
        let remote_node = remote.resolve(path)?;
        let name = path.rsplit('/').next().unwrap_or(path);
        let local = MemoryStore::with_clock(SharedClock(options.clock.clone()));
        let zero = crate::amount::Amount::zero(options.slice.unit());
        let root = local.create_node(None, name, &Limits::from(Limit::hard(zero)))?;
        let lease = Lease::new(remote, remote_node, local, root, Arc::from(name), options);
        let shared = Arc::new(Shared {
            lease,
            book: Mutex::new(Book::default()),
        });
        shared.lease.lease(&mut shared.book.lock(), 0)?;
        let mut store = LeasedStore {
            shared,
            renewer: None,
        };
        if store.shared.lease.options.background {
            // On failure, dropping `store` returns the first slice.
            let renewer = Renewer::start(&store.shared).map_err(|error| {
                StoreError::transient(format!("lease: cannot start the renewer thread: {error}"))
            })?;
            store.renewer = Some(renewer);
        }
        Ok(store)
    }

    /// The path of the local root (`Budget::open(lease, lease.root_path())`).
    pub fn root_path(&self) -> &str {
        &self.shared.lease.root_path
    }

    /// What the lease has done and holds now.
    ///
    /// # Errors
    /// Never in practice (the local store answers).
    pub fn stats(&self) -> Result<LeaseStats> {
        let book = self.shared.book.lock();
        self.shared.lease.stats(&book)
    }

    /// Returns the lease: closes the local root to new reserves
    /// ([`Error::Closed`]), commits every remote slice with the spend it covers and releases
    /// the rest. Spend committed afterwards on guards still live is not reported (it is counted
    /// in [`LeaseStats::lost`]); close after the work is done. Closing twice does nothing.
    /// Dropping the store closes it too.
    ///
    /// # Errors
    /// A transient [`Error::Store`] if some slice could not be returned now (the remote store
    /// was unreachable): it comes back by expiry.
    pub fn close(&self) -> Result<LeaseStats> {
        let mut book = self.shared.book.lock();
        self.shared.lease.close(&mut book)?;
        self.shared.lease.stats(&book)
    }

    /// A reserve on the local store; on a refusal by the root for lack of room, one lease and
    /// one retry.
    fn reserve(&self, op: &Op) -> Result<Applied> {
        let lease = &self.shared.lease;
        if lease.renewal_due() {
            self.shared.heartbeat();
        }
        match lease.local.apply(op) {
            Err(Error::BudgetExceeded(exceeded)) if *exceeded.node == *lease.root_path => {
                let mut book = self.shared.book.lock();
                // Another thread may have leased while this one waited for the lock.
                match lease.local.apply(op) {
                    Err(Error::BudgetExceeded(again)) if *again.node == *lease.root_path => {
                        let need = again
                            .requested
                            .minor_units()
                            .saturating_sub(again.remaining().minor_units());
                        if book.closed {
                            return Err(Error::BudgetExceeded(again));
                        }
                        lease.lease(&mut book, need)?;
                        let retried = lease.local.apply(op);
                        lease.retire(&mut book, false);
                        retried
                    }
                    other => other,
                }
            }
            other => other,
        }
    }

    fn refuse_on_root(&self, node: crate::ids::NodeId, what: &str) -> Result<()> {
        if node == self.shared.lease.root {
            return Err(StoreError::permanent(format!(
                "{}: the local root's limit is the leased slice; {what} it on the remote node",
                Self::NAME
            ))
            .into());
        }
        Ok(())
    }
}

impl Store for LeasedStore {
    fn apply(&self, op: &Op) -> Result<Applied> {
        match op {
            Op::Reserve { .. } | Op::ReserveUpTo { .. } => self.reserve(op),
            Op::CreateNode { parent: None, .. } | Op::Restore { .. } => Err(Error::Unsupported {
                op: op.kind(),
                store: Self::NAME,
            }),
            Op::Credit { node, .. } => self.refuse_on_root(*node, "credit").and(self.local(op)),
            Op::Debit { node, .. } => self.refuse_on_root(*node, "debit").and(self.local(op)),
            Op::SetLimit { node, .. } | Op::RemoveLimit { node, .. } => self
                .refuse_on_root(*node, "change the limit of")
                .and(self.local(op)),
            _ => self.local(op),
        }
    }

    fn read(&self, query: &Query) -> Result<Answer> {
        self.shared.lease.local.read(query)
    }

    fn supports(&self, kind: OpKind) -> bool {
        !matches!(kind, OpKind::Restore)
    }

    fn now(&self) -> Timestamp {
        self.shared.lease.local.now()
    }

    fn cancel_epoch(&self) -> Option<u64> {
        self.shared.lease.local.cancel_epoch()
    }
}

impl LeasedStore {
    fn local(&self, op: &Op) -> Result<Applied> {
        self.shared.lease.local.apply(op)
    }
}

impl Drop for LeasedStore {
    fn drop(&mut self) {
        if let Some(renewer) = self.renewer.take() {
            renewer.stop();
        }
        if let Err(error) = self.close() {
            tracing::warn!(%error, "lease: not every slice was returned on drop");
        }
    }
}
