//! [`FileStore`]: the ledger kept in memory and made durable by an append-only, checksummed log
//! with group commit, snapshots and compaction.
//!
//! The format, every fsync and the crash argument are in `docs/file-format.md`, rendered in the
//! [`FileStore`] docs.

#[path = "file/dispatch.rs"]
mod dispatch;
#[path = "file/format.rs"]
mod format;
#[path = "file/keyed.rs"]
mod keyed;
#[path = "file/lock.rs"]
mod lock;
#[path = "file/log.rs"]
mod log;
#[path = "file/recover.rs"]
mod recover;

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use self::log::{Log, replace_file, snapshot_file};
use crate::amount::{Amount, Unit};
use crate::balance::{Balance, NodeInfo, Snapshot};
use crate::cancel::Cancellation;
use crate::check::Check;
use crate::clock::{Clock, SystemClock, Timestamp};
use crate::cost::Cost;
use crate::error::{Error, Result, StoreError};
use crate::expiry::{ExpiredHold, ReserveOptions, validate_ttl};
use crate::idempotency::{KeyRetention, OpOptions};
use crate::ids::{HoldId, NodeId};
use crate::ledger::{Fate, Lease, Ledger, Request};
use crate::node_state::NodeState;
use crate::policy::{Limit, Limits};
#[cfg(doc)]
use crate::store::Store;
use crate::store::{Committed, Reservation};

/// When an operation of a [`FileStore`] counts as done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// Acknowledge after the record is on disk (`fdatasync`), sharing each sync among concurrent
    /// writers (group commit). A crash, kill -9 or power loss loses no acknowledged operation.
    #[default]
    Sync,
    /// Acknowledge at once; a background thread writes and syncs every `interval`.
    /// **Loss window:** a crash or power loss loses the operations of at most the last `interval`
    /// plus one sync. [`FileStore::sync`] closes the window on demand.
    Batched {
        /// Time between background syncs.
        interval: Duration,
    },
    /// Hand each record to the operating system before acknowledging, never `fsync` (except at
    /// compaction). Survives the process being killed, not an OS crash or power loss. For tests.
    Unsynced,
}

/// How to open a [`FileStore`].
///
/// ```
/// use budget_guard::{Durability, FileStore};
/// # fn main() -> budget_guard::Result<()> {
/// # let path = std::env::temp_dir().join(format!("bg-doc-options-{}.bg", std::process::id()));
/// let store = FileStore::options()
///     .durability(Durability::Unsynced)
///     .release_orphaned_holds(true)
///     .open(&path)?;
/// # drop(store); let _ = std::fs::remove_file(&path);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct FileStoreOptions {
    durability: Durability,
    release_orphaned_holds: bool,
    compact_after: u64,
    clock: Arc<dyn Clock>,
    key_retention: KeyRetention,
}

impl Default for FileStoreOptions {
    fn default() -> Self {
        FileStoreOptions {
            durability: Durability::Sync,
            release_orphaned_holds: false,
            compact_after: 16 << 20,
            clock: Arc::new(SystemClock),
            key_retention: KeyRetention::DEFAULT,
        }
    }
}

impl FileStoreOptions {
    /// The defaults: [`Durability::Sync`], holds kept, compaction past 16 MiB of log.
    pub fn new() -> Self {
        FileStoreOptions::default()
    }

    /// When operations are acknowledged (default [`Durability::Sync`]).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Release every live hold at open (default `false`: holds survive with their ids). Use it
    /// when the file has one owner process whose guards died with it.
    pub fn release_orphaned_holds(mut self, release: bool) -> Self {
        self.release_orphaned_holds = release;
        self
    }

    /// Read time (hold deadlines) from `clock` instead of the [`SystemClock`]. Deadlines are
    /// stored in the file as Unix nanoseconds, so a reopened store keeps them.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Rewrite the file as one snapshot once the log passes `bytes` (default 16 MiB).
    pub fn compact_after(mut self, bytes: u64) -> Self {
        self.compact_after = bytes;
        self
    }

    /// How long and how many idempotency keys are remembered (default
    /// [`KeyRetention::DEFAULT`]; see [`crate::idempotency`]). Keys are logged with their
    /// operations and survive reopening; a reopened store applies its own retention to them.
    pub fn key_retention(mut self, retention: KeyRetention) -> Self {
        self.key_retention = retention;
        self
    }

    /// Opens (or creates) the budget file at `path`, recovers its state and takes the exclusive
    /// locks (the file itself and `<path>.lock`, with symlinks resolved: see "One owner"
    /// below). The file is rewritten as one snapshot (dropping a torn tail) only after recovery
    /// succeeded; the rewrite keeps the file's mode and owner, and replaces the file a symlink
    /// points to, never the symlink.
    ///
    /// # Errors
    /// * [`Error::Locked`] if another store (in this or another process) has the file open,
    ///   through this name or any other (a symlink, a hard link);
    /// * [`Error::NotABudgetFile`] for an empty or foreign file,
    ///   [`Error::UnsupportedVersion`] for a newer format, [`Error::Corrupted`] for damage a
    ///   crash cannot explain (the file is left as it is in all three cases);
    /// * [`Error::Store`] for a file this process may not write or whose mode grants nobody
    ///   write permission (refused, never replaced), a file with more than one hard link, and
    ///   I/O failures (an unwritable directory, a path that is a directory).
    /// * [`Error::TooLarge`] if the recovered state no longer fits in one snapshot record, so
    ///   the file cannot be rewritten (it is left as it is; [`FileStore::inspect`] reads it).
    ///
    /// Every message names `path` (except `TooLarge`, which gives the sizes).
    pub fn open(&self, path: impl AsRef<Path>) -> Result<FileStore> {
        let shown = path.as_ref();
        let path = lock::canonical(shown).map_err(|e| io_error(shown, "cannot resolve", e))?;
        let sidecar = lock::lock_sidecar(&path, shown)?;
        // Held (and locked) until the new file has replaced it.
        let existing = lock::open_data_file(&path, shown)?;
        let mut ledger = match &existing {
            Some(file) => {
                let mut bytes = Vec::new();
                (&*file)
                    .read_to_end(&mut bytes)
                    .map_err(|e| io_error(shown, "cannot read", e))?;
                let recovered = recover::recover(shown, &bytes)?;
                if recovered.torn_bytes > 0 {
                    tracing::warn!(
                        path = %shown.display(),
                        torn_bytes = recovered.torn_bytes,
                        "dropping a torn tail (a write the last process did not finish)"
                    );
                }
                tracing::debug!(path = %shown.display(), records = recovered.records, "recovered");
                recovered.ledger
            }
            None => Ledger::new(),
        };
        if self.release_orphaned_holds {
            for hold in ledger.snapshot().holds {
                ledger.release(hold.id)?;
            }
        }
        let bytes = snapshot_file(&ledger)?;
        let file = replace_file(&path, &bytes).map_err(|e| io_error(shown, "cannot write", e))?;
        drop(existing);
        let epoch = ledger.epoch_cell();
        let timed = ledger.timed_cell();
        let periodic = AtomicBool::new(ledger.has_periods());
        let log = Arc::new(Log::new(
            path,
            ledger,
            Box::new(file),
            bytes.len() as u64,
            self.compact_after,
        ));
        let flusher = match self.durability {
            Durability::Batched { interval } => Some(Flusher::start(&log, interval)),
            Durability::Sync | Durability::Unsynced => None,
        };
        Ok(FileStore {
            log,
            durability: self.durability,
            flusher,
            clock: Arc::clone(&self.clock),
            epoch,
            periodic,
            timed,
            retention: self.key_retention,
            _lock: sidecar,
        })
    }
}

fn io_error(path: &Path, what: &str, error: io::Error) -> Error {
    Error::Store(StoreError::with_source(
        format!("{}: {what}: {error}", path.display()),
        error,
    ))
}

/// The background writer of [`Durability::Batched`].
#[derive(Debug)]
struct Flusher {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl Flusher {
    fn start(log: &Arc<Log>, interval: Duration) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        let log = Arc::clone(log);
        let thread = std::thread::Builder::new()
            .name("budget-guard-flush".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    let appended = log.books.lock().appended;
                    if log.wait(appended, true).is_err() {
                        return; // fail-stop: every operation now reports the failure
                    }
                }
            })
            .expect("spawn the budget-guard flush thread");
        Flusher { stop, thread }
    }
}

/// A [`Store`] whose books survive restarts, crashes and `kill -9`: the ledger in memory, every
/// change appended to a checksummed log file and synced before it is acknowledged.
///
/// The sections below draw the file format byte by byte, list every fsync and argue what a crash
/// at each step leaves behind (`docs/file-format.md`).
///
/// ```
/// use budget_guard::{Amount, Budget, FileStore, Limit, Store, Unit};
/// # fn main() -> budget_guard::Result<()> {
/// # let path = std::env::temp_dir().join(format!("bg-doc-filestore-{}.bg", std::process::id()));
/// # let _ = std::fs::remove_file(&path);
/// let store = std::sync::Arc::new(FileStore::open(&path)?);
/// let org = Budget::builder("acme", Limit::hard(Amount::usd("10")?)).build_shared(store.clone())?;
/// org.reserve(Amount::usd("2")?)?.commit(Amount::usd("1.5")?)?; // on disk before this returns
/// drop(org);
/// drop(store);
///
/// let reopened = FileStore::open(&path)?;
/// let acme = reopened.resolve("acme")?;
/// assert_eq!(reopened.balance(acme, Unit::Usd)?.spent, Amount::usd("1.5")?);
/// # drop(reopened); let _ = std::fs::remove_file(&path);
/// # Ok(()) }
/// ```
///
#[doc = include_str!("../../docs/file-format.md")]
pub struct FileStore {
    log: Arc<Log>,
    durability: Durability,
    flusher: Option<Flusher>,
    clock: Arc<dyn Clock>,
    /// The ledger's cancellation counter, read without the lock.
    epoch: Arc<AtomicU64>,
    /// Set once any limit has had a period (see `MemoryStore`): operations then read the clock
    /// and roll ended periods, logging each roll with its time.
    periodic: AtomicBool,
    /// How long and how many idempotency keys are remembered.
    retention: KeyRetention,
    /// How many nodes track a burn rate or have a top-up rule (the ledger's counter): while
    /// zero, commit and record never read the clock.
    timed: Arc<AtomicU32>,
    /// Held for the store's lifetime; closing it releases the lock.
    _lock: File,
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore")
            .field("path", &self.log.path)
            .field("durability", &self.durability)
            .finish_non_exhaustive()
    }
}

impl FileStore {
    /// Opens (or creates) the budget file at `path` with the default options.
    ///
    /// # Errors
    /// As [`FileStoreOptions::open`].
    pub fn open(path: impl AsRef<Path>) -> Result<FileStore> {
        FileStoreOptions::new().open(path)
    }

    /// Options for [`FileStoreOptions::open`].
    pub fn options() -> FileStoreOptions {
        FileStoreOptions::new()
    }

    /// Reads the state of the file at `path` without locking or writing it (it may be open in
    /// another process): the read-only inspection open. A torn tail is ignored, as at open.
    ///
    /// # Errors
    /// As [`FileStoreOptions::open`], except `Locked`.
    pub fn inspect(path: impl AsRef<Path>) -> Result<Snapshot> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| io_error(path, "cannot read", e))?;
        Ok(recover::recover(path, &bytes)?.ledger.snapshot())
    }

    /// The file's canonical path (symlinks resolved): the file the store reads and rewrites.
    pub fn path(&self) -> &Path {
        &self.log.path
    }

    /// Makes every operation applied so far durable (for [`Durability::Batched`] and
    /// [`Durability::Unsynced`]; a no-op under `Sync`).
    ///
    /// # Errors
    /// [`Error::Store`] if the write or sync fails; the store then stops (fail-stop).
    pub fn sync(&self) -> Result<()> {
        self.log.check_alive()?;
        let appended = self.log.books.lock().appended;
        self.log.wait(appended, true)
    }

    /// Rewrites the file as one snapshot of the current state now (it also happens at open and
    /// once the log passes [`FileStoreOptions::compact_after`]).
    ///
    /// # Errors
    /// * [`Error::TooLarge`] if the state no longer fits in one snapshot record (the reader's
    ///   limit, 2^30 bytes): nothing is written, the file keeps its log and the store goes on;
    /// * [`Error::Store`] if writing the new file fails; the store then stops (fail-stop).
    pub fn compact(&self) -> Result<()> {
        self.log.check_alive()?;
        self.log.compact_now()
    }

    /// How many times the store has synced the file since it was opened (group commit makes
    /// this smaller than the number of operations; the benchmarks report the ratio).
    pub fn syncs(&self) -> u64 {
        self.log.writer.lock().syncs
    }

    /// Applies a change to the ledger and logs it (when `change` appended a record), then waits
    /// as the durability mode says.
    fn change<T>(&self, change: impl FnOnce(&mut Ledger, &mut Vec<u8>) -> Result<T>) -> Result<T> {
        self.log.check_alive()?;
        let (result, seq) = {
            let mut books = self.log.books.lock();
            let books = &mut *books;
            let before = books.pending.len();
            let result = change(&mut books.ledger, &mut books.pending);
            if books.pending.len() == before {
                return result;
            }
            books.appended += 1;
            (result, books.appended)
        };
        match self.durability {
            Durability::Sync => self.log.wait(seq, true)?,
            Durability::Unsynced => self.log.wait(seq, false)?,
            Durability::Batched { .. } => {}
        }
        result
    }

    fn read_books<T>(&self, read: impl FnOnce(&Ledger) -> Result<T>) -> Result<T> {
        self.log.check_alive()?;
        read(&self.log.books.lock().ledger)
    }
}

impl Drop for FileStore {
    fn drop(&mut self) {
        if let Some(flusher) = self.flusher.take() {
            drop(flusher.stop);
            let _ = flusher.thread.join();
        }
        // Best effort: Batched and Unsynced records reach the disk on a clean close. Errors
        // cannot be reported from drop; nothing acknowledged under `Sync` depends on this.
        if self.log.check_alive().is_ok() {
            let _ = self.sync();
        }
    }
}

fn push(pending: &mut Vec<u8>, write: impl FnOnce(&mut format::Enc<'_>)) {
    format::push_record(pending, write);
}

/// Rolls the periods that ended at `now` and logs the roll (with `now`, so replay rolls
/// identically) if it changed anything.
fn roll_logged(ledger: &mut Ledger, pending: &mut Vec<u8>, now: Option<Timestamp>) {
    if let Some(now) = now
        && ledger.roll_periods(now)
    {
        push(pending, |e| e.roll(now, None));
    }
}

/// Starts node `node`'s new periods at `now` (after its limits were set) and logs it.
fn start_logged(ledger: &mut Ledger, pending: &mut Vec<u8>, node: NodeId, now: Option<Timestamp>) {
    if let Some(now) = now
        && ledger.start_periods(node, now)
    {
        push(pending, |e| e.roll(now, Some(node)));
    }
}

/// Logs the top-up log entries of an operation (tags 20 and 21), in order.
fn push_top_ups(pending: &mut Vec<u8>, entries: &[crate::ledger::TopUpLog]) {
    for entry in entries {
        push(pending, |e| e.top_up_log(entry));
    }
}

/// Logs one expire record per hold an operation reclaimed, before the operation's own record,
/// so replay reclaims them at the same point.
fn push_expired(pending: &mut Vec<u8>, reclaimed: &[ExpiredHold]) {
    for expired in reclaimed {
        push(pending, |e| e.expire(expired.hold));
    }
}

impl FileStore {
    /// The time for burn rates and top-up rules, read outside the lock; `None` (no clock
    /// read) while no node tracks a burn rate or has a rule.
    fn timed_now(&self) -> Option<Timestamp> {
        (self.timed.load(Ordering::Relaxed) > 0).then(|| self.clock.now())
    }

    /// The time to roll periods at, read outside the lock; `None` (no clock read) while no
    /// limit has ever had a period.
    fn period_now(&self) -> Option<Timestamp> {
        self.periodic
            .load(Ordering::Acquire)
            .then(|| self.clock.now())
    }

    /// [`change`](Self::change) after rolling (and logging) the periods that ended.
    fn rolled<T>(&self, op: impl FnOnce(&mut Ledger, &mut Vec<u8>) -> Result<T>) -> Result<T> {
        let now = self.period_now();
        self.change(|ledger, pending| {
            roll_logged(ledger, pending, now);
            op(ledger, pending)
        })
    }

    fn lease(&self, options: &ReserveOptions) -> Result<Lease> {
        options.validate()?;
        let now = self.clock.now();
        Ok(Lease {
            now: Some(now),
            expires: now.saturating_add(options.ttl),
        })
    }

    /// Applies a reserve (once per idempotency key, if `options` has one), logging the holds
    /// it reclaimed (also when it was denied) and the new hold with its deadline (and its key).
    fn reserve_logged(
        &self,
        node: NodeId,
        lease: Lease,
        options: &ReserveOptions,
        request: impl FnOnce(&Ledger) -> Result<Request>,
        reserve: impl FnOnce(&mut Ledger) -> Result<Reservation>,
    ) -> Result<Reservation> {
        let keyed = options.idempotency_key.as_ref().zip(lease.now);
        let keyed = keyed.map(|(key, now)| self.keyed(key, now));
        self.change(|ledger, pending| {
            roll_logged(ledger, pending, lease.now);
            let before = ledger.reclaimed().len();
            let (outcome, fate) = ledger.once(keyed, request, reserve);
            // Top-ups happen before the reserve (pre) or after its hold (post).
            let (pre, post) = ledger.take_top_up_log().unwrap_or_default();
            push_top_ups(pending, &pre);
            let Fate::Ran { remembered } = fate else {
                return outcome; // answered from the remembered keys: nothing changed
            };
            match &outcome {
                Ok(granted) => {
                    push_expired(pending, granted.expired.get(before..).unwrap_or_default());
                    let key = keyed.filter(|_| remembered).map(|keyed| keyed.key);
                    keyed::push_op(pending, ledger, key, |e| {
                        e.reserve(node, &granted.held, granted.hold, lease.expires);
                    });
                }
                Err(_) => push_expired(pending, &ledger.reclaimed()[before..]),
            }
            push_top_ups(pending, &post);
            outcome
        })
    }
}

/// The per-operation code of the file store: each applies one operation to the ledger and logs
/// its own record (see `format.rs`). [`Store::apply`] dispatches to these; a later step of the
/// architecture issue replaces them with the one interpreter plus a log of generic effects.
impl FileStore {
    fn create_node_op(
        &self,
        parent: Option<NodeId>,
        name: &str,
        limits: &Limits,
    ) -> Result<NodeId> {
        if limits.iter().any(|limit| limit.period().is_some()) {
            self.periodic.store(true, Ordering::Release);
        }
        let now = self.period_now();
        self.change(|ledger, pending| {
            roll_logged(ledger, pending, now);
            let id = ledger.create_node(parent, name, limits)?;
            push(pending, |e| e.create_node(parent, name, limits, id));
            start_logged(ledger, pending, id, now);
            Ok(id)
        })
    }

    fn remove_node_op(&self, node: NodeId) -> Result<()> {
        self.change(|ledger, pending| {
            ledger.remove_node(node)?;
            push(pending, |e| e.remove_node(node));
            Ok(())
        })
    }

    fn resolve_op(&self, path: &str) -> Result<NodeId> {
        self.read_books(|ledger| ledger.resolve(path))
    }

    fn cancellation_op(&self, hold: HoldId) -> Result<Option<Cancellation>> {
        self.rolled(|ledger, _| Ok(ledger.cancellation(hold)))
    }

    fn reserve_with_op(
        &self,
        node: NodeId,
        cost: &Cost,
        options: &ReserveOptions,
    ) -> Result<Reservation> {
        let lease = self.lease(options)?;
        let request = |ledger: &Ledger| Request::reserve(ledger, node, cost, options.ttl);
        self.reserve_logged(node, lease, options, request, |ledger| {
            ledger.reserve_at(node, cost, lease)
        })
    }

    fn check_op(&self, node: NodeId, cost: &Cost) -> Result<Check> {
        let now = self.clock.now();
        // Holds nothing; only the expired holds it reclaims are logged.
        self.change(|ledger, pending| {
            roll_logged(ledger, pending, Some(now));
            let before = ledger.reclaimed().len();
            let check = ledger.check_at(node, cost, Some(now));
            match &check {
                Ok(check) => push_expired(pending, check.expired.get(before..).unwrap_or_default()),
                Err(_) => push_expired(pending, &ledger.reclaimed()[before..]),
            }
            check
        })
    }

    fn reserve_up_to_with_op(
        &self,
        node: NodeId,
        min: Amount,
        max: Amount,
        options: &ReserveOptions,
    ) -> Result<Reservation> {
        let lease = self.lease(options)?;
        let request = |ledger: &Ledger| Request::reserve_up_to(ledger, node, min, max, options.ttl);
        self.reserve_logged(node, lease, options, request, |ledger| {
            ledger.reserve_up_to_at(node, min, max, lease)
        })
    }

    fn set_state_op(&self, node: NodeId, state: NodeState) -> Result<NodeState> {
        self.change(|ledger, pending| {
            let previous = ledger.set_state(node, state)?;
            push(pending, |e| e.set_state(node, state));
            Ok(previous)
        })
    }

    fn extend_op(&self, hold: HoldId, ttl: Duration) -> Result<Timestamp> {
        validate_ttl(ttl, "a heartbeat's ttl")?;
        let expires = self.clock.now().saturating_add(ttl);
        self.change(|ledger, pending| {
            let expires = ledger.extend(hold, expires)?;
            push(pending, |e| e.extend(hold, expires));
            Ok(expires)
        })
    }

    fn sweep_op(&self) -> Result<Vec<ExpiredHold>> {
        let now = self.clock.now();
        self.change(|ledger, pending| {
            roll_logged(ledger, pending, Some(now));
            let before = ledger.reclaimed().len();
            let expired = ledger.sweep(now);
            push_expired(pending, &expired[before..]);
            Ok(expired)
        })
    }

    fn record_op(&self, hold: HoldId, partial: &Cost) -> Result<()> {
        let now = self.timed_now();
        self.rolled(|ledger, pending| {
            let outcome = ledger.record_at(hold, partial, now);
            let (pre, post) = ledger.take_top_up_log().unwrap_or_default();
            push_top_ups(pending, &pre);
            if outcome.is_ok() {
                push(pending, |e| e.record(hold, partial));
            }
            push_top_ups(pending, &post);
            outcome
        })
    }

    fn commit_op(&self, hold: HoldId, actual: &Cost) -> Result<Committed> {
        let now = self.timed_now();
        self.rolled(|ledger, pending| {
            let outcome = ledger.commit_at(hold, actual, now);
            let (pre, post) = ledger.take_top_up_log().unwrap_or_default();
            push_top_ups(pending, &pre);
            // An overage rejection ended the hold and recorded the spend: log it too.
            if matches!(outcome, Ok(_) | Err(Error::OverageRejected { .. })) {
                push(pending, |e| e.commit(hold, actual));
            }
            push_top_ups(pending, &post);
            outcome
        })
    }

    fn release_op(&self, hold: HoldId) -> Result<bool> {
        self.rolled(|ledger, pending| {
            let released = ledger.release(hold)?;
            if released {
                push(pending, |e| e.release(hold));
            }
            Ok(released)
        })
    }

    fn commit_with_op(
        &self,
        hold: HoldId,
        actual: &Cost,
        options: &OpOptions,
    ) -> Result<Committed> {
        match &options.idempotency_key {
            None => self.commit_op(hold, actual),
            Some(key) => self.commit_keyed(key, hold, actual),
        }
    }

    fn release_with_op(&self, hold: HoldId, options: &OpOptions) -> Result<bool> {
        match &options.idempotency_key {
            None => self.release_op(hold),
            Some(key) => self.release_keyed(key, hold),
        }
    }

    fn credit_with_op(&self, node: NodeId, amount: Amount, options: &OpOptions) -> Result<Balance> {
        match &options.idempotency_key {
            None => self.credit_op(node, amount),
            Some(key) => self.fund_keyed(key, node, amount, true),
        }
    }

    fn debit_with_op(&self, node: NodeId, amount: Amount, options: &OpOptions) -> Result<Balance> {
        match &options.idempotency_key {
            None => self.debit_op(node, amount),
            Some(key) => self.fund_keyed(key, node, amount, false),
        }
    }

    fn set_limit_op(&self, node: NodeId, limit: Limit) -> Result<Balance> {
        if limit.period().is_some() {
            self.periodic.store(true, Ordering::Release);
        }
        let now = self.period_now();
        self.change(|ledger, pending| {
            roll_logged(ledger, pending, now);
            let balance = ledger.set_limit(node, limit)?;
            push(pending, |e| e.set_limit(node, &limit));
            start_logged(ledger, pending, node, now);
            // The balance before the start has no `resets_at` yet: read it again.
            ledger.balance(node, limit.unit()).or(Ok(balance))
        })
    }

    fn set_rate_limit_op(
        &self,
        node: NodeId,
        limit: Option<crate::rate::RateLimit>,
    ) -> Result<Option<crate::rate::RateLimit>> {
        self.change(|ledger, pending| {
            let previous = ledger.set_rate_limit(node, limit)?;
            push(pending, |e| e.set_rate_limit(node, limit.as_ref()));
            Ok(previous)
        })
    }

    fn remove_limit_op(&self, node: NodeId, unit: Unit) -> Result<Balance> {
        self.rolled(|ledger, pending| {
            let balance = ledger.remove_limit(node, unit)?;
            push(pending, |e| e.remove_limit(node, unit));
            Ok(balance)
        })
    }

    fn credit_op(&self, node: NodeId, amount: Amount) -> Result<Balance> {
        self.rolled(|ledger, pending| {
            let balance = ledger.credit(node, amount)?;
            push(pending, |e| e.credit(node, amount));
            Ok(balance)
        })
    }

    fn debit_op(&self, node: NodeId, amount: Amount) -> Result<Balance> {
        self.rolled(|ledger, pending| {
            let balance = ledger.debit(node, amount)?;
            push(pending, |e| e.debit(node, amount));
            Ok(balance)
        })
    }

    fn balance_op(&self, node: NodeId, unit: Unit) -> Result<Balance> {
        let now = self.timed_now();
        self.rolled(|ledger, _| ledger.balance_now(node, unit, now))
    }

    fn node_info_op(&self, node: NodeId) -> Result<NodeInfo> {
        let now = self.timed_now();
        self.rolled(|ledger, _| ledger.node_info_now(node, now))
    }

    fn set_burn_window_op(
        &self,
        node: NodeId,
        window: Option<crate::burn::BurnWindow>,
    ) -> Result<Option<crate::burn::BurnWindow>> {
        self.change(|ledger, pending| {
            let previous = ledger.set_burn_window(node, window)?;
            push(pending, |e| e.set_burn_window(node, window.as_ref()));
            Ok(previous)
        })
    }

    fn set_top_up_op(
        &self,
        node: NodeId,
        rule: Option<crate::top_up::TopUp>,
    ) -> Result<Option<crate::top_up::TopUp>> {
        self.rolled(|ledger, pending| {
            let previous = ledger.set_top_up(node, rule)?;
            let state = rule.map(crate::top_up::TopUpSnapshot::new);
            push(pending, |e| e.set_top_up_state(node, state.as_ref()));
            Ok(previous)
        })
    }

    fn snapshot_op(&self) -> Result<Snapshot> {
        self.rolled(|ledger, _| Ok(ledger.snapshot()))
    }

    fn restore_op(&self, snapshot: &Snapshot) -> Result<()> {
        // Check and build outside the lock; swap and log under it. The record is a snapshot of
        // the *restored* ledger, so replay rebuilds exactly what callers now see.
        let mut restored = Ledger::from_snapshot(snapshot)?;
        if restored.has_periods() {
            self.periodic.store(true, Ordering::Release);
        }
        self.change(|ledger, pending| {
            // Encoded first: a state too large to write is refused before anything is shared.
            log::snapshot_record(pending, &restored)?;
            restored.adopt_epoch(ledger);
            *ledger = restored;
            Ok(())
        })
    }
}

#[cfg(test)]
#[path = "file/tests.rs"]
mod tests;
