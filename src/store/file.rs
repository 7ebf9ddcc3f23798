//! [`FileStore`]: the ledger kept in memory and made durable by an append-only, checksummed log
//! of the commands it ran (replayed through the same interpreter at open), with group commit,
//! ledger images and compaction.
//!
//! The store is a [`LedgerStore`] with the [`FileLog`] persistence: it knows nothing about
//! money rules, top-ups, idempotency or periods; it writes down what the ledger ran. The
//! format, every fsync and the crash argument are in `docs/file-format.md`, rendered in the
//! [`FileStore`] docs.

#[path = "file/frame.rs"]
mod frame;
#[path = "file/lock.rs"]
mod lock;
#[path = "file/log.rs"]
mod log;
#[path = "file/record.rs"]
mod record;
#[path = "file/recover.rs"]
mod recover;
#[path = "file/replace.rs"]
mod replace;

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use self::frame::MAX_PAYLOAD;
use self::log::{Log, image_file};
use self::record::{Logged, OpW, QueryW, Record, answer_digest, applied_digest, now_image};
use self::replace::replace_file;
use crate::balance::Snapshot;
use crate::clock::{Clock, SystemClock, Timestamp};
use crate::error::{Error, Result, StoreError};
use crate::idempotency::KeyRetention;
use crate::ledger::{INTERPRETER_VERSION, Ledger};
use crate::op::{Answer, Applied, Op, Query};
use crate::store::Store;
use crate::store::ledger_store::{Command, LedgerStore, Persist};

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
    prepare_ahead: u64,
    clock: Arc<dyn Clock>,
    key_retention: KeyRetention,
}

impl Default for FileStoreOptions {
    fn default() -> Self {
        FileStoreOptions {
            durability: Durability::Sync,
            release_orphaned_holds: false,
            compact_after: 16 << 20,
            prepare_ahead: log::PREPARE_CHUNK,
            clock: Arc::new(SystemClock),
            key_retention: KeyRetention::DEFAULT,
        }
    }
}

impl FileStoreOptions {
    /// The defaults: [`Durability::Sync`], holds kept, compaction past 16 MiB of log, 1 MiB
    /// of space prepared ahead.
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

    /// Rewrite the file as one image of the books once the log passes `bytes` (default 16 MiB).
    pub fn compact_after(mut self, bytes: u64) -> Self {
        self.compact_after = bytes;
        self
    }

    /// How far ahead of its records the file is prepared with zeros (default 1 MiB; `0` turns
    /// it off), under the durabilities that sync ([`Durability::Sync`] and
    /// [`Durability::Batched`]).
    ///
    /// An `fdatasync` after a write that grows the file also commits the new file size (a
    /// file-system journal commit); after a write into bytes written and synced before, it
    /// commits data only, which is cheaper (see BENCHMARKS.md, "File store"). So when the next
    /// records would pass the prepared space, the store first writes `bytes` more zeros and
    /// syncs them, then writes records over them; a clean close cuts the unused zeros off.
    /// Space is never prepared past [`compact_after`](Self::compact_after). On a copy-on-write
    /// file system (btrfs, ZFS), where an overwrite allocates new blocks anyway, this saves
    /// nothing: pass `0`.
    ///
    /// ```
    /// use budget_guard::FileStore;
    /// # fn main() -> budget_guard::Result<()> {
    /// # let path = std::env::temp_dir().join(format!("bg-doc-prepare-{}.bg", std::process::id()));
    /// let store = FileStore::options().prepare_ahead(4 << 20).open(&path)?;
    /// # drop(store); let _ = std::fs::remove_file(&path);
    /// # Ok(()) }
    /// ```
    pub fn prepare_ahead(mut self, bytes: u64) -> Self {
        self.prepare_ahead = bytes;
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
    /// below). The file is rewritten as one image (dropping a torn tail) only after recovery
    /// succeeded; the rewrite keeps the file's mode and owner, and replaces the file a symlink
    /// points to, never the symlink.
    ///
    /// # Errors
    /// * [`Error::Locked`] if another store (in this or another process) has the file open,
    ///   through this name or any other (a symlink, a hard link);
    /// * [`Error::NotABudgetFile`] for an empty or foreign file,
    ///   [`Error::UnsupportedVersion`] for a newer format, [`Error::ObsoleteVersion`] for the
    ///   pre-release format 1, [`Error::Corrupted`] for damage a crash cannot explain or a
    ///   logged command that replays to another result than the writer's (the file is left as
    ///   it is in all four cases);
    /// * [`Error::Store`] for a file this process may not write or whose mode grants nobody
    ///   write permission (refused, never replaced), a file with more than one hard link, and
    ///   I/O failures (an unwritable directory, a path that is a directory).
    /// * [`Error::TooLarge`] if the recovered state no longer fits in one image record, so
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
        // The new file starts with an image of these books; every later command is replayed
        // on it.
        let bytes = image_file(&ledger, &self.key_retention, MAX_PAYLOAD)?;
        let file = replace_file(&path, &bytes).map_err(|e| io_error(shown, "cannot write", e))?;
        drop(existing);
        let log = Arc::new(Log::new(
            path,
            Box::new(file),
            bytes.len() as u64,
            self.compact_after,
            // Zeros prepared without a sync save nothing: unsynced records always append.
            match self.durability {
                Durability::Sync | Durability::Batched { .. } => self.prepare_ahead,
                Durability::Unsynced => 0,
            },
        ));
        let persist = FileLog {
            log: Arc::clone(&log),
            durability: self.durability,
            retention: self.key_retention,
        };
        let mut store = LedgerStore::new(ledger, (), persist, Arc::clone(&self.clock));
        store.set_key_retention(self.key_retention);
        let shared = Arc::new(Shared { store, log });
        let flusher = match self.durability {
            Durability::Batched { interval } => Some(Flusher::start(&shared, interval)),
            Durability::Sync | Durability::Unsynced => None,
        };
        Ok(FileStore {
            shared,
            durability: self.durability,
            flusher,
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

/// The persistence of a [`FileStore`]: each command the ledger ran becomes one record of the
/// log, framed into memory under the store's lock and written (and synced) by `settle`.
#[derive(Debug)]
struct FileLog {
    log: Arc<Log>,
    durability: Durability,
    /// Written into images, so replay forgets keys exactly when the writer did.
    retention: KeyRetention,
}

impl Persist for FileLog {
    type Pending = ();
    type Ticket = u64;

    fn record(
        &self,
        _: &mut (),
        ledger: &Ledger,
        command: Command<'_, '_>,
        now: Option<Timestamp>,
    ) -> Option<u64> {
        let record = match command {
            Command::Apply(op, result) => match OpW::new(op) {
                // Every operation is logged, refused ones too: a refusal may still have changed
                // the books (a reserve that reclaimed expired holds first, an overage rejection
                // that booked the spend, a keyed operation that remembers its failure, a
                // rolled period), and replay reproduces exactly that.
                Some(command) => Record::Apply(Logged {
                    interpreter: INTERPRETER_VERSION,
                    command,
                    now: now_image(now),
                    digest: applied_digest(result),
                }),
                // A restore is logged as the books it produced (a refused one changed nothing).
                None if result.is_ok() => Record::image(ledger, &self.retention),
                None => return None,
            },
            // Reads are logged only when they may have changed the books.
            Command::Read(_, _, false) => return None,
            Command::Read(query, answer, true) => Record::Read(Logged {
                interpreter: INTERPRETER_VERSION,
                command: QueryW::new(query),
                now: now_image(now),
                digest: answer_digest(answer),
            }),
        };
        let seq = self.log.push(&record);
        match self.durability {
            Durability::Sync | Durability::Unsynced => Some(seq),
            Durability::Batched { .. } => None,
        }
    }

    fn settle(&self, seq: u64) -> Result<()> {
        self.log.wait(seq, self.durability == Durability::Sync)
    }
}

/// What a [`FileStore`] shares with its background flusher.
#[derive(Debug)]
struct Shared {
    store: LedgerStore<FileLog>,
    log: Arc<Log>,
}

impl Shared {
    /// Rewrites the file as one image of the books (see [`Log::compact_now`]).
    fn compact(&self) -> Result<()> {
        let retention = self.store.persist().retention;
        self.log.compact_now(&|limit| {
            self.store.with_ledger(|ledger| {
                let bytes = image_file(ledger, &retention, limit)?;
                let mut queue = self.log.queue.lock();
                queue.pending.clear(); // the image holds everything queued so far
                Ok((bytes, queue.appended))
            })
        })
    }

    /// Compacts if the log passed its size; a failure is the store's fail-stop (reported by
    /// the next operation), a refusal (too large) is logged and retried later.
    fn compact_if_due(&self) {
        if self.log.take_compact_due() {
            let _ = self.compact();
        }
    }

    /// Writes and syncs every record queued so far.
    fn sync(&self) -> Result<()> {
        self.log.check_alive()?;
        self.log.wait(self.log.appended(), true)
    }
}

/// The background writer of [`Durability::Batched`].
#[derive(Debug)]
struct Flusher {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl Flusher {
    fn start(shared: &Arc<Shared>, interval: Duration) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        let shared = Arc::clone(shared);
        let thread = std::thread::Builder::new()
            .name("budget-guard-flush".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    if shared.log.wait(shared.log.appended(), true).is_err() {
                        return; // fail-stop: every operation now reports the failure
                    }
                    shared.compact_if_due();
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
    shared: Arc<Shared>,
    durability: Durability,
    flusher: Option<Flusher>,
    /// Held for the store's lifetime; closing it releases the lock.
    _lock: File,
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore")
            .field("path", &self.shared.log.path)
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
        &self.shared.log.path
    }

    /// Makes every operation applied so far durable (for [`Durability::Batched`] and
    /// [`Durability::Unsynced`]; a no-op under `Sync`).
    ///
    /// # Errors
    /// [`Error::Store`] if the write or sync fails; the store then stops (fail-stop).
    pub fn sync(&self) -> Result<()> {
        self.shared.sync()
    }

    /// Rewrites the file as one image of the current books now (it also happens at open and
    /// once the log passes [`FileStoreOptions::compact_after`]).
    ///
    /// # Errors
    /// * [`Error::TooLarge`] if the state no longer fits in one image record (the reader's
    ///   limit, 2^30 bytes): nothing is written, the file keeps its log and the store goes on;
    /// * [`Error::Store`] if writing the new file fails; the store then stops (fail-stop).
    pub fn compact(&self) -> Result<()> {
        self.shared.log.check_alive()?;
        self.shared.compact()
    }

    /// How many times the store has synced the file since it was opened (group commit makes
    /// this smaller than the number of operations; the benchmarks report the ratio). It counts
    /// every `fdatasync`, including the one after each 1 MiB of prepared space (see "Every
    /// fsync" below).
    pub fn syncs(&self) -> u64 {
        self.shared.log.writer.lock().syncs
    }
}

impl Store for FileStore {
    fn now(&self) -> Timestamp {
        self.shared.store.now()
    }

    fn cancel_epoch(&self) -> Option<u64> {
        Some(self.shared.store.cancel_epoch())
    }

    fn apply(&self, op: &Op) -> Result<Applied> {
        self.shared.log.check_alive()?;
        if let Op::Restore { snapshot } = op {
            fits_in_a_record(snapshot, self.shared.store.persist().retention)?;
        }
        let applied = self.shared.store.apply(op);
        self.shared.compact_if_due();
        applied
    }

    fn read(&self, query: &Query) -> Result<Answer> {
        self.shared.log.check_alive()?;
        let answer = self.shared.store.read(query);
        self.shared.compact_if_due();
        answer
    }
}

/// Refuses a restore whose books would not fit in one image record (the reader's limit), before
/// anything changes: the log could not hold it.
fn fits_in_a_record(snapshot: &Snapshot, retention: KeyRetention) -> Result<()> {
    let restored = Ledger::from_snapshot(snapshot)?;
    log::image_record(&mut Vec::new(), &restored, &retention, MAX_PAYLOAD)
}

impl Drop for FileStore {
    fn drop(&mut self) {
        if let Some(flusher) = self.flusher.take() {
            drop(flusher.stop);
            let _ = flusher.thread.join();
        }
        // Best effort: Batched and Unsynced records reach the disk on a clean close. Errors
        // cannot be reported from drop; nothing acknowledged under `Sync` depends on this.
        // Then the prepared zeros go, so a closed file ends with its last record.
        if self.shared.log.check_alive().is_ok() && self.shared.sync().is_ok() {
            let _ = self.shared.log.trim();
        }
    }
}

#[cfg(test)]
#[path = "file/tests.rs"]
mod tests;
