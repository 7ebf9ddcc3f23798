//! The log writer: group commit, fail-stop, prepared space, and atomic file replacement
//! (compaction).
//!
//! **Prepared space.** A write that grows the file makes its `fdatasync` commit the new file
//! size too (a journal commit); a write into bytes that were written and synced before commits
//! data only: 0.61–0.74× the appending cost on the issue-16 machine, 0.71× for the store's
//! reserve + commit on a quiet disk (BENCHMARKS.md, "FileStore single writer (wave 6)"). So under
//! the durabilities that sync, the writer keeps zeros ahead of the data: when a flush would pass
//! the end of the prepared space, it first extends the file with zeros up to the next
//! [`PREPARE_CHUNK`] boundary and syncs them, then writes the records over the zeros. Real
//! zeros, not `fallocate`: an unwritten extent needs a metadata change on its first write, the
//! very cost avoided. Recovery reads zeros after the last record as the end of the log
//! (`frame::read_frame`); a clean close cuts them off. Preparation is lazy: a new file (open,
//! compaction) is prepared by its first flush.

use std::fmt;
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::{Condvar, Mutex};

use super::frame::{self, MAX_PAYLOAD};
use super::record::Record;
use super::replace::replace_file;
use crate::error::{Error, StoreError, StoreErrorKind};
use crate::idempotency::KeyRetention;
use crate::ledger::Ledger;

/// How far the writer prepares the file ahead of its data: 1 MiB, about 14,000 reserve +
/// commit pairs of log (72 bytes each), so the extra sync of an extension is one in 28,000
/// operations, and a file never carries more than 1 MiB of zeros.
pub(super) const PREPARE_CHUNK: u64 = 1 << 20;

/// Zeros written at a time when extending the file.
static ZEROS: [u8; 64 << 10] = [0; 64 << 10];

/// Where log bytes go. A real file in production; tests wrap it to fail the Nth write or sync.
pub(super) trait LogFile: Send + fmt::Debug {
    /// Writes all of `bytes` at `offset` (the file grows if they pass its end).
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()>;
    /// Makes every written byte durable (`fdatasync`).
    fn sync(&mut self) -> io::Result<()>;
    /// Cuts the file to `len` bytes (a clean close drops the prepared space).
    fn truncate(&mut self, len: u64) -> io::Result<()>;
}

impl LogFile for File {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        #[cfg(unix)]
        {
            std::os::unix::fs::FileExt::write_all_at(self, bytes, offset)
        }
        #[cfg(not(unix))]
        {
            use std::io::{Seek, SeekFrom};
            self.seek(SeekFrom::Start(offset))?;
            self.write_all(bytes)
        }
    }
    fn sync(&mut self) -> io::Result<()> {
        self.sync_data()
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.set_len(len)
    }
}

/// The records the ledger ran but not yet handed to the file. Appended to under the store's
/// lock (so in applied order), swapped out by the flushing leader.
#[derive(Debug)]
pub(super) struct Queue {
    /// Framed records, in the order their commands were applied.
    pub(super) pending: Vec<u8>,
    /// Sequence number of the last record appended to `pending`.
    pub(super) appended: u64,
}

/// Writes the file's new contents for a compaction: called with the writer's lock held, it
/// takes the store's lock, encodes the books and empties the queue at that one instant, and
/// returns the bytes with the sequence number they cover.
pub(super) type Compactor<'a> = &'a dyn Fn(usize) -> Result<(Vec<u8>, u64), Error>;

/// The file side, touched only by the current leader.
#[derive(Debug)]
pub(super) struct Writer {
    pub(super) file: Box<dyn LogFile>,
    /// Where the data of the current file ends: the next record is written here.
    pub(super) len: u64,
    /// Where the current file ends: `len` plus the zeros prepared after the data.
    pub(super) prepared: u64,
    /// The extension step ([`PREPARE_CHUNK`] by default); 0 when no space is prepared.
    chunk: u64,
    /// The buffer swapped with `Queue::pending` (keeps its capacity between flushes).
    spare: Vec<u8>,
    /// Bytes written since the last sync.
    dirty: bool,
    /// Syncs issued (for the benchmarks' "operations per sync").
    pub(super) syncs: u64,
    /// Log length past which the next compaction runs: `compact_after`, or further on after a
    /// compaction was refused as too large (so the state is not encoded again on every flush).
    compact_from: u64,
    /// Longest image payload a compaction writes: [`MAX_PAYLOAD`], the reader's
    /// limit (tests lower it to reach the refusal with a small state).
    pub(super) image_limit: usize,
}

/// What a flush covered.
struct Flushed {
    /// The sequence number now written (and synced, if asked).
    target: u64,
    /// Why a compaction did not happen: the state no longer fits in one image record. The log
    /// goes on (the file stays readable); nothing is stopped.
    refused: Option<Error>,
}

#[derive(Debug, Default)]
struct Progress {
    /// Last sequence number handed to the OS.
    written: u64,
    /// Last sequence number known durable.
    synced: u64,
    /// A leader is flushing.
    leading: bool,
    /// The first failure; set once, never cleared (fail-stop).
    failed: Option<String>,
}

/// Everything one open budget file shares between threads.
#[derive(Debug)]
pub(super) struct Log {
    pub(super) path: PathBuf,
    pub(super) queue: Mutex<Queue>,
    pub(super) writer: Mutex<Writer>,
    progress: Mutex<Progress>,
    turn: Condvar,
    /// Mirrors `Progress::failed.is_some()` for the lock-free check on every operation.
    failed: AtomicBool,
    /// Compact once the log grows past this many bytes.
    pub(super) compact_after: u64,
    /// The log passed its compaction size; the store compacts after the operation at hand.
    compact_due: AtomicBool,
}

impl Log {
    /// A log whose file holds `len` bytes of data and nothing after them, prepared `chunk`
    /// bytes at a time (0: never; see the module docs).
    pub(super) fn new(
        path: PathBuf,
        file: Box<dyn LogFile>,
        len: u64,
        compact_after: u64,
        chunk: u64,
    ) -> Self {
        Log {
            path,
            queue: Mutex::new(Queue {
                pending: Vec::with_capacity(4096),
                appended: 0,
            }),
            writer: Mutex::new(Writer {
                file,
                len,
                prepared: len,
                chunk,
                spare: Vec::with_capacity(4096),
                dirty: false,
                syncs: 0,
                compact_from: compact_after,
                image_limit: MAX_PAYLOAD,
            }),
            progress: Mutex::new(Progress::default()),
            turn: Condvar::new(),
            failed: AtomicBool::new(false),
            compact_after,
            compact_due: AtomicBool::new(false),
        }
    }

    /// Frames `record` into the queue and returns its sequence number. Called under the
    /// store's lock; encodes into memory only.
    ///
    /// A record longer than the reader accepts (only a restore's image can be) cannot be
    /// written: the store stops (fail-stop), as after a failed write.
    pub(super) fn push(&self, record: &Record) -> u64 {
        let mut queue = self.queue.lock();
        let framed = frame::push_frame(&mut queue.pending, MAX_PAYLOAD, |out| record.encode(out));
        if let Err(too_large) = framed {
            let mut progress = self.progress.lock();
            if progress.failed.is_none() {
                progress.failed = Some(format!(
                    "a record of {} bytes is longer than the {} a budget file record may be",
                    too_large.written, too_large.limit
                ));
            }
            self.failed.store(true, Ordering::Release);
        }
        queue.appended += 1;
        queue.appended
    }

    /// The sequence number of the last record queued.
    pub(super) fn appended(&self) -> u64 {
        self.queue.lock().appended
    }

    /// Whether the log passed its compaction size (and clears the flag).
    pub(super) fn take_compact_due(&self) -> bool {
        self.compact_due.load(Ordering::Relaxed) && self.compact_due.swap(false, Ordering::AcqRel)
    }

    /// `Err` once any write or sync has failed (fail-stop).
    pub(super) fn check_alive(&self) -> Result<(), Error> {
        if self.failed.load(Ordering::Acquire) {
            let progress = self.progress.lock();
            return Err(self.failed_error(progress.failed.as_deref().unwrap_or("unknown")));
        }
        Ok(())
    }

    /// The error of an operation refused because the store stopped: it did not happen, and it
    /// cannot happen on this instance (reopen), so it is permanent.
    fn failed_error(&self, first: &str) -> Error {
        Error::Store(StoreError::new(format!(
            "{}: the store stopped after a failed write or sync ({first}); reopen it to recover \
             what is durable",
            self.path.display()
        )))
    }

    /// Waits until record `seq` is written (and synced, if `sync`), leading the flush if no one
    /// else is: the leader writes *everything* pending, so concurrent writers share one sync.
    ///
    /// Its errors are [`OutcomeUnknown`](StoreErrorKind::OutcomeUnknown): the operation is
    /// applied in memory, and its record may or may not have reached the disk (a short write is
    /// dropped on reopen, a failed sync may still have persisted), so whether it happened is
    /// known only after reopening.
    pub(super) fn wait(&self, seq: u64, sync: bool) -> Result<(), Error> {
        let unknown =
            |error: StoreError| Error::Store(error.with_kind(StoreErrorKind::OutcomeUnknown));
        let mut progress = self.progress.lock();
        loop {
            if let Some(first) = &progress.failed {
                return Err(match self.failed_error(first) {
                    Error::Store(error) => unknown(error),
                    other => other,
                });
            }
            let done = if sync {
                progress.synced
            } else {
                progress.written
            };
            if done >= seq {
                return Ok(());
            }
            if progress.leading {
                self.turn.wait(&mut progress);
                continue;
            }
            progress.leading = true;
            drop(progress);
            let outcome = self.flush(sync, None);
            progress = self.progress.lock();
            progress.leading = false;
            match outcome {
                Ok(Flushed { target, .. }) => {
                    progress.written = progress.written.max(target);
                    if sync {
                        progress.synced = progress.synced.max(target);
                    }
                }
                Err(error) => {
                    let message = format!("{}: {error}", self.path.display());
                    progress.failed = Some(message.clone());
                    self.failed.store(true, Ordering::Release);
                    self.turn.notify_all();
                    return Err(unknown(StoreError::with_source(message, error)));
                }
            }
            self.turn.notify_all();
        }
    }

    /// Runs `compact` as the leader: waits for the current leader, then writes an image file.
    pub(super) fn compact_now(&self, compactor: Compactor<'_>) -> Result<(), Error> {
        let mut progress = self.progress.lock();
        while progress.leading {
            self.turn.wait(&mut progress);
        }
        if let Some(first) = &progress.failed {
            return Err(self.failed_error(first));
        }
        progress.leading = true;
        drop(progress);
        let outcome = self.flush(true, Some(compactor));
        let mut progress = self.progress.lock();
        progress.leading = false;
        let result = match outcome {
            Ok(Flushed { target, refused }) => {
                progress.written = progress.written.max(target);
                progress.synced = progress.synced.max(target);
                refused.map_or(Ok(()), Err)
            }
            Err(error) => {
                let message = format!("{}: {error}", self.path.display());
                progress.failed = Some(message.clone());
                self.failed.store(true, Ordering::Release);
                Err(Error::Store(StoreError::with_source(message, error)))
            }
        };
        self.turn.notify_all();
        result
    }

    /// The leader's work: hand every pending record to the file, sync if asked, and compact
    /// when the log has grown. Returns the sequence number now covered.
    fn flush(&self, sync: bool, compactor: Option<Compactor<'_>>) -> io::Result<Flushed> {
        let mut writer = self.writer.lock();
        let writer = &mut *writer;
        let target = {
            let mut queue = self.queue.lock();
            std::mem::swap(&mut queue.pending, &mut writer.spare);
            queue.appended
        };
        if !writer.spare.is_empty() {
            let end = writer.len + writer.spare.len() as u64;
            writer.prepare(end, sync)?;
            let written = writer.file.write_at(writer.len, &writer.spare);
            writer.len = end;
            writer.prepared = writer.prepared.max(end);
            writer.spare.clear();
            writer.dirty = true;
            written?;
        }
        if sync && writer.dirty {
            writer.file.sync()?;
            writer.syncs += 1;
            writer.dirty = false;
        }
        if let Some(compactor) = compactor {
            return self.compact(writer, target, compactor);
        }
        if writer.len > writer.compact_from {
            self.compact_due.store(true, Ordering::Release);
        }
        Ok(Flushed {
            target,
            refused: None,
        })
    }

    /// Replaces the file with one image of the current books (every record pending so far is
    /// in it) and continues the log there; `flushed` is the sequence number the flush before it
    /// covered.
    ///
    /// A state too large for one image record is not written: the file keeps its log, and
    /// the refusal is returned for [`Log::compact_now`] to report.
    fn compact(
        &self,
        writer: &mut Writer,
        flushed: u64,
        compactor: Compactor<'_>,
    ) -> io::Result<Flushed> {
        let (bytes, target) = {
            match compactor(writer.image_limit) {
                Ok(done) => done,
                Err(refused) => {
                    tracing::warn!(path = %self.path.display(), %refused, "not compacting");
                    writer.compact_from = writer.len.saturating_add(self.compact_after);
                    return Ok(Flushed {
                        target: flushed,
                        refused: Some(refused),
                    });
                }
            }
        };
        let file = replace_file(&self.path, &bytes)?;
        writer.file = Box::new(file);
        writer.len = bytes.len() as u64;
        writer.prepared = writer.len; // prepared by its first flush
        writer.compact_from = self.compact_after;
        writer.dirty = false;
        writer.syncs += 1;
        Ok(Flushed {
            target,
            refused: None,
        })
    }
}

// What a clean close does.
impl Log {
    /// Cuts the prepared zeros off the file, so a cleanly closed file ends with its last record
    /// (and takes no more disk than its data). Called on close, after the final sync; not
    /// synced itself: a crash before the cut reaches the disk leaves zeros, which read as the
    /// end of the log anyway.
    pub(super) fn trim(&self) -> io::Result<()> {
        let mut writer = self.writer.lock();
        if writer.prepared > writer.len {
            let len = writer.len;
            writer.file.truncate(len)?;
            writer.prepared = len;
        }
        Ok(())
    }
}

impl Writer {
    /// Makes sure the file is prepared (zeros written and, if `sync`, synced) up to `end`, the
    /// end of the records about to be written, extending it to the next chunk boundary when
    /// they would pass the prepared space. Never prepares past the compaction size: the log is
    /// rewritten there, so zeros beyond it would never be used (a flush that crosses it
    /// appends, as every write did before prepared space).
    fn prepare(&mut self, end: u64, sync: bool) -> io::Result<()> {
        if self.chunk == 0 || end <= self.prepared {
            return Ok(());
        }
        let target = end.div_ceil(self.chunk).saturating_mul(self.chunk);
        let target = target.min(self.compact_from);
        if target <= end {
            return Ok(());
        }
        let mut offset = self.prepared;
        while offset < target {
            let len = (target - offset).min(ZEROS.len() as u64);
            self.file.write_at(offset, &ZEROS[..len as usize])?;
            offset += len;
        }
        self.prepared = target;
        if sync {
            // Before the records: their own sync then has no file size to commit.
            self.file.sync()?;
            self.syncs += 1;
        } else {
            self.dirty = true;
        }
        Ok(())
    }
}

/// Header plus one image record of `ledger` (with the key retention replay uses): the
/// complete contents of a fresh file.
///
/// # Errors
/// [`Error::TooLarge`] if the image record would be longer than the reader accepts
/// (`limit`, [`MAX_PAYLOAD`] outside tests).
pub(super) fn image_file(
    ledger: &Ledger,
    retention: &KeyRetention,
    limit: usize,
) -> Result<Vec<u8>, Error> {
    let mut bytes = frame::header().to_vec();
    image_record(&mut bytes, ledger, retention, limit)?;
    Ok(bytes)
}

/// Appends one framed image record of `ledger` to `buf`.
///
/// # Errors
/// As [`image_file`]; `buf` is then unchanged.
pub(super) fn image_record(
    buf: &mut Vec<u8>,
    ledger: &Ledger,
    retention: &KeyRetention,
    limit: usize,
) -> Result<(), Error> {
    let record = Record::image(ledger, retention);
    frame::push_frame(buf, limit, |out| record.encode(out)).map_err(|too_large| Error::TooLarge {
        what: "budget file image record (bytes)",
        size: too_large.written as u64,
        limit: too_large.limit as u64,
    })
}

#[cfg(test)]
mod limit_tests {
    //! The writer's side of "what the writer writes, the reader reads", reached with a small
    //! payload limit instead of a gigabyte of state (`tests/hostile_input.rs` has the full-size
    //! run, ignored by default).

    use std::path::PathBuf;

    use super::*;
    use crate::amount::{Amount, Unit};
    use crate::store::Store;
    use crate::store::file::{Durability, FileStore};

    fn temp_path(name: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("bg-limit-{name}-{}.bg", std::process::id()));
        let _ = std::fs::remove_file(&path);
        path
    }

    fn usd(text: &str) -> Amount {
        Amount::usd(text).unwrap()
    }

    #[test]
    fn an_image_record_past_the_limit_is_refused_and_leaves_the_buffer_as_it_was() {
        let mut ledger = Ledger::new();
        let root = ledger
            .create_node(None, "root", &crate::Limit::hard(usd("100")).into())
            .unwrap();
        for _ in 0..40 {
            ledger.reserve(root, &usd("1").into()).unwrap();
        }
        let retention = KeyRetention::DEFAULT;
        let mut exact = Vec::new();
        image_record(&mut exact, &ledger, &retention, MAX_PAYLOAD).unwrap();
        let payload = usize::try_from(u32::from_le_bytes(exact[..4].try_into().unwrap())).unwrap();

        let mut buf = b"earlier records".to_vec();
        match image_record(&mut buf, &ledger, &retention, payload - 1) {
            Err(Error::TooLarge { size, limit, .. }) => {
                assert_eq!(limit, payload as u64 - 1);
                assert_eq!(size, payload as u64);
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
        assert_eq!(
            buf, b"earlier records",
            "a refused record left bytes behind"
        );
        // A payload exactly at the limit is written, and the reader takes it.
        image_record(&mut buf, &ledger, &retention, payload).unwrap();
        assert_eq!(&buf[15..], &exact[..]);
        assert!(matches!(
            frame::read_frame(&buf, 15),
            frame::Frame::Valid { .. }
        ));
    }

    #[test]
    fn a_refused_compaction_keeps_the_store_running_and_the_file_readable() {
        let path = temp_path("refused");
        let store = FileStore::options()
            .durability(Durability::Unsynced)
            .compact_after(2_000)
            .open(&path)
            .unwrap();
        store.shared.log.writer.lock().image_limit = 600;
        let root = store
            .create_node(None, "root", &crate::Limit::hard(usd("1000")).into())
            .unwrap();
        let mut holds = Vec::new();
        // About 20 bytes of image per hold: past the 600-byte limit after a few dozen, and the
        // log passes `compact_after` (2,000 bytes) on the way, so automatic compactions are
        // refused too.
        for _ in 0..100 {
            holds.push(store.reserve(root, &usd("1").into()).unwrap().hold);
        }
        match store.compact() {
            Err(Error::TooLarge { limit: 600, .. }) => {}
            other => panic!("expected TooLarge, got {other:?}"),
        }
        // Not a fail-stop: the store goes on, and the file holds everything acknowledged.
        store.commit(holds[0], &usd("0.5").into()).unwrap();
        let snapshot = store.snapshot().unwrap();
        assert_eq!(snapshot.holds.len(), 99);
        assert_eq!(FileStore::inspect(&path).unwrap(), snapshot);
        // Once the state fits again, compaction works again.
        for hold in &holds[1..] {
            store.release(*hold).unwrap();
        }
        store.compact().unwrap();
        let balance = store.balance(root, Unit::Usd).unwrap();
        assert_eq!((balance.spent, balance.reserved), (usd("0.5"), usd("0")));
        drop(store);
        let reopened = FileStore::open(&path).unwrap();
        let root = reopened.resolve("root").unwrap();
        assert_eq!(reopened.balance(root, Unit::Usd).unwrap().spent, usd("0.5"));
        drop(reopened);
        let _ = std::fs::remove_file(&path);
        let mut sidecar = path.clone().into_os_string();
        sidecar.push(".lock");
        let _ = std::fs::remove_file(sidecar);
    }
}
