//! Unit tests of the file store internals: power-loss simulation at every sync, and fault
//! injection (failed write, short write, failed sync) through the log writer.

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::log::LogFile;
use super::recover::recover;
use super::*;
use crate::amount::{Amount, Unit};
use crate::policy::Limit;

fn temp_path(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("bg-unit-{name}-{}-{n}.bg", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

fn usd(text: &str) -> Amount {
    Amount::usd(text).unwrap()
}

/// What the store did to its log file, in order: the power-loss simulation replays it.
#[derive(Clone, Debug)]
enum Event {
    Write(u64, Vec<u8>),
    Sync,
    Truncate(u64),
}

/// A log file that only records what is done to it.
#[derive(Debug)]
struct MemLog(Arc<Mutex<Vec<Event>>>);

impl LogFile for MemLog {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.0.lock().push(Event::Write(offset, bytes.to_vec()));
        Ok(())
    }
    fn sync(&mut self) -> io::Result<()> {
        self.0.lock().push(Event::Sync);
        Ok(())
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.0.lock().push(Event::Truncate(len));
        Ok(())
    }
}

/// `image` after writing `bytes` at `offset` (growing it with zeros first if needed).
fn write_into(image: &mut Vec<u8>, offset: u64, bytes: &[u8]) {
    let offset = usize::try_from(offset).unwrap();
    if image.len() < offset + bytes.len() {
        image.resize(offset + bytes.len(), 0);
    }
    image[offset..offset + bytes.len()].copy_from_slice(bytes);
}

/// Replaces the store's log file, handing the old one to `wrap`.
fn swap_log(store: &FileStore, wrap: impl FnOnce(Box<dyn LogFile>) -> Box<dyn LogFile>) {
    let mut writer = store.shared.log.writer.lock();
    let old = std::mem::replace(&mut writer.file, Box::new(MemLog(Arc::default())));
    writer.file = wrap(old);
}

/// Power loss at every point, as redb's crash tests simulate it: what survives is the image at
/// the last sync plus any prefix of the writes since, in order, the last one possibly torn.
/// Between two acknowledgements, every such image must recover to the books of the first
/// (the second operation vanished) or of the second (it survived); at an acknowledgement, to
/// exactly its books. The prepared-space step is lowered to 256 bytes so the 60 operations
/// cross many chunk boundaries: power loss while zeros are written and synced, and while
/// records are written over them.
#[test]
fn every_acknowledged_op_is_in_the_durable_image_at_its_sync() {
    let path = temp_path("power-loss");
    let store = FileStore::options().prepare_ahead(256).open(&path).unwrap();
    let start = std::fs::read(&path).unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let recorder = Arc::clone(&events);
    swap_log(&store, |_| Box::new(MemLog(recorder)));

    let root = store
        .create_node(None, "acme", &Limit::hard(usd("10")).into())
        .unwrap();
    let team = store
        .create_node(Some(root), "team", &Limit::hard(usd("4")).into())
        .unwrap();
    let mut acks = vec![(events.lock().len(), store.snapshot().unwrap())];
    let mut live = Vec::new();
    for step in 0..60u32 {
        match step % 5 {
            0 | 1 => {
                if let Ok(granted) = store.reserve(team, &usd("0.3").into()) {
                    live.push(granted.hold);
                }
            }
            2 => {
                if let Some(hold) = live.pop() {
                    let _ = store.commit(hold, &usd("0.2").into());
                }
            }
            3 => {
                if let Some(hold) = live.first().copied() {
                    live.remove(0);
                    store.release(hold).unwrap();
                }
            }
            _ => {
                store.credit(team, usd("0.1")).unwrap();
            }
        }
        // acknowledged: the durable image alone must already hold this state
        acks.push((events.lock().len(), store.snapshot().unwrap()));
    }
    let events = events.lock().clone();

    // Everything from the store's open up to the first acknowledgement above is synced.
    let mut image = start;
    for event in &events[..acks[0].0] {
        if let Event::Write(offset, bytes) = event {
            write_into(&mut image, *offset, bytes);
        }
    }
    let (mut zero_writes, mut torn_checked) = (0, 0);
    for (index, pair) in acks.windows(2).enumerate() {
        let ((from, before), (to, after)) = (&pair[0], &pair[1]);
        let recovered = recover(&path, &image).unwrap().ledger.snapshot();
        assert_eq!(
            &recovered, before,
            "power loss after acknowledgement {index}"
        );
        for event in &events[*from..*to] {
            let (offset, bytes) = match event {
                Event::Write(offset, bytes) => (offset, bytes),
                // A sync makes `image` durable: the next prefixes start from it.
                Event::Sync => continue,
                Event::Truncate(len) => {
                    image.truncate(usize::try_from(*len).unwrap());
                    continue;
                }
            };
            if bytes.iter().all(|&byte| byte == 0) {
                zero_writes += 1;
            }
            for cut in 0..bytes.len() {
                let mut torn = image.clone();
                write_into(&mut torn, *offset, &bytes[..cut]);
                let recovered = recover(&path, &torn).unwrap().ledger.snapshot();
                assert!(
                    &recovered == before || &recovered == after,
                    "torn at byte {cut} of a write at {offset} after acknowledgement {index}"
                );
                torn_checked += 1;
            }
            write_into(&mut image, *offset, bytes);
        }
    }
    assert_eq!(
        &recover(&path, &image).unwrap().ledger.snapshot(),
        &acks.last().unwrap().1
    );
    assert!(
        zero_writes >= 5,
        "{zero_writes} extensions of prepared space"
    );
    assert!(torn_checked > 1_000, "{torn_checked} torn images");
}

/// Fails the `fail_write`th write (after writing half of it) or the `fail_sync`th sync.
#[derive(Debug)]
struct Faulty {
    inner: Box<dyn LogFile>,
    writes: usize,
    syncs: usize,
    fail_write: usize,
    fail_sync: usize,
}

impl LogFile for Faulty {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.writes += 1;
        if self.writes == self.fail_write {
            self.inner.write_at(offset, &bytes[..bytes.len() / 2])?;
            return Err(io::Error::other("injected short write"));
        }
        self.inner.write_at(offset, bytes)
    }
    fn sync(&mut self) -> io::Result<()> {
        self.syncs += 1;
        if self.syncs == self.fail_sync {
            return Err(io::Error::other("injected sync failure"));
        }
        self.inner.sync()
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.inner.truncate(len)
    }
}

fn fault_run(fail_write: usize, fail_sync: usize) {
    let path = temp_path("fault");
    let store = FileStore::open(&path).unwrap();
    let root = store
        .create_node(None, "acme", &Limit::hard(usd("100")).into())
        .unwrap();
    swap_log(&store, |file| {
        Box::new(Faulty {
            inner: file,
            writes: 0,
            syncs: 0,
            fail_write,
            fail_sync,
        })
    });
    let mut acknowledged = Amount::zero(Unit::Usd);
    let failure = loop {
        let step = store
            .reserve(root, &usd("1").into())
            .and_then(|granted| store.commit(granted.hold, &usd("1").into()));
        match step {
            Ok(_) => acknowledged = acknowledged.checked_add(usd("1")).unwrap(),
            Err(error) => break error,
        }
    };
    assert!(matches!(failure, Error::Store(_)), "{failure}");
    assert!(failure.to_string().contains(&path.display().to_string()));
    assert!(failure.to_string().contains("injected"), "{failure}");
    // the failed op may or may not be durable: retry it only with the same idempotency key
    assert!(failure.outcome_unknown(), "{failure:?}");
    // fail-stop: writes, reads, sync and compaction all refuse now
    let later = store.reserve(root, &usd("1").into()).unwrap_err();
    assert!(later.to_string().contains("reopen"), "{later}");
    // refused before it was applied: nothing happened, and retrying here will not help
    assert!(
        !later.outcome_unknown() && !later.is_transient(),
        "{later:?}"
    );
    assert!(matches!(
        store.balance(root, Unit::Usd),
        Err(Error::Store(_))
    ));
    assert!(store.sync().is_err());
    assert!(store.compact().is_err());
    drop(store);
    // reopening recovers exactly what was acknowledged, plus at most the failed op's records
    let store = FileStore::open(&path).unwrap();
    let balance = store
        .balance(store.resolve("acme").unwrap(), Unit::Usd)
        .unwrap();
    let recovered = balance.spent.checked_add(balance.reserved).unwrap();
    assert!(
        recovered == acknowledged || recovered == acknowledged.checked_add(usd("1")).unwrap(),
        "acknowledged {acknowledged}, recovered {balance:?}"
    );
    assert!(balance.spent >= acknowledged);
}

#[test]
fn a_failed_sync_stops_the_store_and_reopen_recovers() {
    for n in [1, 2, 5] {
        fault_run(usize::MAX, n);
    }
}

#[test]
fn a_short_write_stops_the_store_and_reopen_drops_the_torn_tail() {
    for n in [1, 2, 7] {
        fault_run(n, usize::MAX);
    }
}

#[test]
fn threads_waiting_on_a_failed_group_all_fail() {
    let path = temp_path("fault-group");
    let store = Arc::new(FileStore::open(&path).unwrap());
    let root = store
        .create_node(None, "acme", &Limit::hard(usd("1000")).into())
        .unwrap();
    swap_log(&store, |file| {
        Box::new(Faulty {
            inner: file,
            writes: 0,
            syncs: 0,
            fail_write: usize::MAX,
            fail_sync: 10,
        })
    });
    let errors = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..50 {
                    if store.reserve(root, &usd("0.01").into()).is_err() {
                        errors.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
            });
        }
    });
    assert_eq!(
        errors.load(Ordering::Relaxed),
        4,
        "every thread saw the failure"
    );
}

#[test]
fn the_real_file_log_writes_at_offsets_syncs_and_truncates() {
    let path = temp_path("file-log");
    let mut file: Box<dyn LogFile> = Box::new(File::create(&path).unwrap());
    file.write_at(0, b"abc\0\0\0").unwrap();
    file.write_at(3, b"de").unwrap();
    file.sync().unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"abcde\0");
    file.truncate(5).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"abcde");
}

/// The records of the file at `path` after its header, decoded.
fn records_at(path: &std::path::Path) -> (Vec<u8>, Vec<super::record::Record>) {
    let bytes = std::fs::read(path).unwrap();
    let mut offset = super::frame::HEADER_LEN;
    let mut records = Vec::new();
    while let super::frame::Frame::Valid { payload, next } =
        super::frame::read_frame(&bytes, offset)
    {
        records.push(super::record::Record::decode(payload).unwrap());
        offset = next;
    }
    (bytes[..super::frame::HEADER_LEN].to_vec(), records)
}

/// Writes `records` after `header` as the file at `path`.
fn write_records(path: &std::path::Path, header: &[u8], records: &[super::record::Record]) {
    let mut bytes = header.to_vec();
    for record in records {
        super::frame::push_frame(&mut bytes, super::frame::MAX_PAYLOAD, |out| {
            record.encode(out)
        })
        .unwrap();
    }
    std::fs::write(path, bytes).unwrap();
}

/// A file with a tree and one reserve logged after its image.
fn file_with_a_logged_reserve(name: &str) -> PathBuf {
    let path = temp_path(name);
    let store = FileStore::options()
        .durability(Durability::Unsynced)
        .open(&path)
        .unwrap();
    let root = store
        .create_node(None, "acme", &Limit::hard(usd("10")).into())
        .unwrap();
    store.reserve(root, &usd("4").into()).unwrap();
    drop(store);
    path
}

#[test]
fn a_command_that_replays_differently_is_refused_naming_both_interpreter_versions() {
    use super::record::{Logged, Record};
    let path = file_with_a_logged_reserve("interpreter");
    let (header, mut records) = records_at(&path);
    assert_eq!(records.len(), 3, "image, create_node, reserve");
    // As if an interpreter of another version had granted another hold.
    let Some(Record::Apply(Logged {
        interpreter,
        digest,
        ..
    })) = records.last_mut()
    else {
        panic!("the last record is an operation");
    };
    *interpreter = 7;
    digest[0] ^= 1;
    write_records(&path, &header, &records);
    let bytes = std::fs::read(&path).unwrap();
    let error = FileStore::open(&path).unwrap_err();
    let Error::Corrupted { offset, reason, .. } = &error else {
        panic!("expected Corrupted, got {error:?}");
    };
    assert!(
        reason.contains("interpreter version 7")
            && reason.contains(&format!(
                "runs version {}",
                crate::ledger::INTERPRETER_VERSION
            )),
        "{reason}"
    );
    // The offset is the reserve's: the last frame of the file.
    let last = bytes.len() as u64 - 8 - {
        let mut frame = Vec::new();
        records.last().unwrap().encode(&mut frame);
        frame.len() as u64
    };
    assert_eq!(*offset, last);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "a refused file changed"
    );
}

#[test]
fn a_command_whose_digest_does_not_match_under_the_same_interpreter_is_corruption() {
    use super::record::{Logged, Record};
    let path = file_with_a_logged_reserve("digest");
    let (header, mut records) = records_at(&path);
    let Some(Record::Apply(Logged { digest, .. })) = records.last_mut() else {
        panic!("the last record is an operation");
    };
    digest[3] ^= 0x80;
    write_records(&path, &header, &records);
    match FileStore::inspect(&path) {
        Err(Error::Corrupted { reason, .. }) => {
            let both = format!(
                "both interpreter version {}",
                crate::ledger::INTERPRETER_VERSION
            );
            assert!(reason.contains(&both), "{reason}");
        }
        other => panic!("expected Corrupted, got {other:?}"),
    }
}

#[test]
fn plain_reads_write_nothing_and_a_check_that_may_reclaim_is_logged() {
    let path = temp_path("reads");
    let clock = crate::clock::ManualClock::new(Timestamp::from_unix_nanos(1_000_000_000));
    let store = FileStore::options()
        .durability(Durability::Unsynced)
        .clock(clock.clone())
        .open(&path)
        .unwrap();
    let root = store
        .create_node(None, "acme", &Limit::hard(usd("10")).into())
        .unwrap();
    let short = crate::expiry::ReserveOptions::new().ttl(Duration::from_secs(1));
    store.reserve_with(root, &usd("6").into(), &short).unwrap();
    let len = || std::fs::metadata(&path).unwrap().len();
    let before = len();
    store.balance(root, Unit::Usd).unwrap();
    store.node_info(root).unwrap();
    store.snapshot().unwrap();
    store.resolve("acme").unwrap();
    // Nothing expired yet: the check cannot have changed the books.
    store.check(root, &usd("1").into()).unwrap();
    assert_eq!(len(), before, "reads that changed nothing were logged");
    clock.advance(Duration::from_secs(2));
    // The $6 hold has expired: the check reclaims it to fit $9, and replay must too.
    let check = store.check(root, &usd("9").into()).unwrap();
    assert_eq!(check.expired.len(), 1);
    assert!(
        len() > before,
        "a check that reclaimed a hold was not logged"
    );
    drop(store);
    let reopened = FileStore::open(&path).unwrap();
    let balance = reopened
        .balance(reopened.resolve("acme").unwrap(), Unit::Usd)
        .unwrap();
    assert_eq!((balance.spent, balance.reserved), (usd("0"), usd("0")));
}
