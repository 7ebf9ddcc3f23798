//! FileStore: the shared conformance suite, reopen equality, durability modes, locking, and
//! every kind of bad file (issue 6).

use std::path::PathBuf;
use std::sync::Arc;

use budget_guard::{
    Amount, Budget, Cost, Durability, Error, FileStore, Limit, OveragePolicy, Store, Unit,
};

#[path = "support/scratch.rs"]
mod scratch;
use scratch::fresh_path;

budget_guard::store_conformance_tests!(clock: fresh_store_with_clock);

fn fresh_store_with_clock(clock: budget_guard::ManualClock) -> FileStore {
    FileStore::options()
        .clock(clock)
        .open(fresh_path("conformance"))
        .expect("open a fresh file store")
}

fn usd(text: &str) -> Amount {
    Amount::usd(text).unwrap()
}

/// A tree with spend, debt, a soft limit, several units and live holds (one grown by record).
fn busy_tree(store: Arc<dyn Store>) -> Budget {
    let org = Budget::builder("acme", Limit::hard(usd("100")))
        .child("support", Limit::hard(usd("40")))
        .child(
            "support/agent-7",
            Limit::hard(usd("5"))
                .with_overage(OveragePolicy::AllowWithOverdraft { limit: usd("1") }),
        )
        .child("research", Limit::soft(Amount::tokens(10_000)))
        .build_shared(store.clone())
        .unwrap();
    let agent = org.at("support/agent-7").unwrap();
    agent
        .reserve(usd("2"))
        .unwrap()
        .commit(usd("1.25"))
        .unwrap();
    // an overage into the overdraft: spend plus debt
    let _ = agent.reserve(usd("1")).unwrap().commit(usd("4.5"));
    let research = org.at("research").unwrap();
    let kept = store
        .reserve(
            store.resolve("acme/research").unwrap(),
            &Cost::from(Amount::tokens(700)),
        )
        .unwrap();
    store
        .record(kept.hold, &Cost::from(Amount::tokens(900)))
        .unwrap();
    std::mem::forget(research.reserve(Amount::tokens(50)).unwrap()); // a live, orphaned hold
    let support = org.at("support").unwrap();
    support.credit(usd("2")).unwrap();
    let removed = support.add_child("tmp", Limit::hard(usd("1"))).unwrap();
    removed.remove().unwrap();
    org
}

#[test]
fn reopen_restores_the_exact_snapshot() {
    let path = fresh_path("reopen");
    let before = {
        let store: Arc<dyn Store> = Arc::new(FileStore::open(&path).unwrap());
        let _org = busy_tree(store.clone());
        store.snapshot().unwrap()
    };
    assert!(!before.holds.is_empty(), "the tree has live holds");
    let reopened = FileStore::open(&path).unwrap();
    assert_eq!(reopened.snapshot().unwrap(), before);
    drop(reopened);
    // and again, now from the compacted file
    assert_eq!(FileStore::open(&path).unwrap().snapshot().unwrap(), before);
    assert_eq!(FileStore::inspect(&path).unwrap(), before);
}

#[test]
fn a_hold_survives_reopen_with_its_id_and_can_be_committed() {
    let path = fresh_path("hold-survives");
    let hold = {
        let store = FileStore::open(&path).unwrap();
        let root = store
            .create_node(None, "acme", &Limit::hard(usd("10")).into())
            .unwrap();
        // churn hold slots so the kept hold does not sit in slot 0
        for _ in 0..3 {
            let h = store.reserve(root, &usd("1").into()).unwrap();
            store.release(h.hold).unwrap();
        }
        let kept = store.reserve(root, &usd("3").into()).unwrap();
        let other = store.reserve(root, &usd("1").into()).unwrap();
        store.commit(other.hold, &usd("1").into()).unwrap();
        kept.hold
    };
    let store = FileStore::open(&path).unwrap();
    let root = store.resolve("acme").unwrap();
    assert_eq!(store.balance(root, Unit::Usd).unwrap().reserved, usd("3"));
    store.commit(hold, &usd("2").into()).unwrap();
    let balance = store.balance(root, Unit::Usd).unwrap();
    assert_eq!((balance.spent, balance.reserved), (usd("3"), usd("0")));
    // a new hold after reopen never reuses the id of the ended one
    let fresh = store.reserve(root, &usd("1").into()).unwrap();
    assert_ne!(fresh.hold, hold);
}

#[test]
fn release_orphaned_holds_returns_the_money_at_open() {
    let path = fresh_path("orphans");
    {
        let store = FileStore::open(&path).unwrap();
        let root = store
            .create_node(None, "acme", &Limit::hard(usd("10")).into())
            .unwrap();
        store.reserve(root, &usd("4").into()).unwrap();
        let spent = store.reserve(root, &usd("1").into()).unwrap();
        store.commit(spent.hold, &usd("1").into()).unwrap();
    }
    let store = FileStore::options()
        .release_orphaned_holds(true)
        .open(&path)
        .unwrap();
    let root = store.resolve("acme").unwrap();
    let balance = store.balance(root, Unit::Usd).unwrap();
    assert_eq!((balance.spent, balance.reserved), (usd("1"), usd("0")));
    assert!(store.snapshot().unwrap().holds.is_empty());
}

#[test]
fn every_durability_mode_keeps_its_state_across_a_clean_close() {
    for durability in [
        Durability::Sync,
        Durability::Unsynced,
        Durability::Batched {
            interval: std::time::Duration::from_millis(5),
        },
    ] {
        let path = fresh_path("modes");
        let before = {
            let store: Arc<dyn Store> = Arc::new(
                FileStore::options()
                    .durability(durability)
                    .open(&path)
                    .unwrap(),
            );
            let _org = busy_tree(store.clone());
            store.snapshot().unwrap()
        };
        let after = FileStore::open(&path).unwrap().snapshot().unwrap();
        assert_eq!(after, before, "{durability:?}");
    }
}

#[test]
fn compaction_keeps_the_state_and_shrinks_the_file() {
    let path = fresh_path("compaction");
    let store = FileStore::options()
        .compact_after(4096)
        .open(&path)
        .unwrap();
    let root = store
        .create_node(None, "acme", &Limit::hard(usd("1000")).into())
        .unwrap();
    for _ in 0..500 {
        let hold = store.reserve(root, &usd("0.5").into()).unwrap();
        store.commit(hold.hold, &usd("0.25").into()).unwrap();
    }
    let kept = store.reserve(root, &usd("7").into()).unwrap();
    // 1000 records of ~35 bytes would be ~35 KB without compaction
    assert!(std::fs::metadata(&path).unwrap().len() < 8192);
    store.compact().unwrap();
    let before = store.snapshot().unwrap();
    drop(store);
    let store = FileStore::open(&path).unwrap();
    assert_eq!(store.snapshot().unwrap(), before);
    assert_eq!(
        store
            .balance(store.resolve("acme").unwrap(), Unit::Usd)
            .unwrap()
            .spent,
        usd("125")
    );
    store.commit(kept.hold, &usd("7").into()).unwrap();
}

#[test]
fn restore_is_durable() {
    let path = fresh_path("restore");
    let snapshot = {
        let other: Arc<dyn Store> = Arc::new(budget_guard::MemoryStore::new());
        let _org = busy_tree(other.clone());
        other.snapshot().unwrap()
    };
    {
        let store = FileStore::open(&path).unwrap();
        store
            .create_node(None, "old", &Limit::hard(usd("1")).into())
            .unwrap();
        store.restore(&snapshot).unwrap();
        // keep working after the restore: the log continues with ids of the restored ledger
        let agent = store.resolve("acme/support").unwrap();
        let hold = store.reserve(agent, &usd("3").into()).unwrap();
        store.commit(hold.hold, &usd("2").into()).unwrap();
    }
    let store = FileStore::open(&path).unwrap();
    assert!(store.resolve("old").is_err());
    let support = store.resolve("acme/support").unwrap();
    let expected = snapshot
        .nodes
        .iter()
        .find(|n| &*n.path == "acme/support")
        .unwrap()
        .accounts[0]
        .spent;
    assert_eq!(
        store.balance(support, Unit::Usd).unwrap().spent,
        expected.checked_add(usd("2")).unwrap()
    );
}

#[test]
fn eight_threads_share_syncs_and_lose_nothing() {
    let path = fresh_path("group-commit");
    let store = Arc::new(FileStore::open(&path).unwrap());
    let root = store
        .create_node(None, "acme", &Limit::hard(usd("1000")).into())
        .unwrap();
    let syncs_before = store.syncs();
    std::thread::scope(|scope| {
        for _ in 0..8 {
            let store = &store;
            scope.spawn(move || {
                for _ in 0..50 {
                    let hold = store.reserve(root, &usd("0.01").into()).unwrap();
                    store.commit(hold.hold, &usd("0.01").into()).unwrap();
                }
            });
        }
    });
    let syncs = store.syncs() - syncs_before;
    assert!(syncs <= 800, "{syncs} syncs for 800 operations");
    drop(store);
    let store = FileStore::open(&path).unwrap();
    let balance = store
        .balance(store.resolve("acme").unwrap(), Unit::Usd)
        .unwrap();
    assert_eq!(balance.spent, usd("4"));
}

// ---- bad input -----------------------------------------------------------------------------

fn assert_names(error: &Error, path: &std::path::Path) {
    let message = error.to_string();
    assert!(
        message.contains(&path.display().to_string()),
        "{message:?} does not name {}",
        path.display()
    );
}

/// A file with a snapshot, then many small records.
fn written_file(name: &str) -> (PathBuf, Vec<u8>) {
    let path = fresh_path(name);
    {
        let store = FileStore::open(&path).unwrap();
        let root = store
            .create_node(None, "acme", &Limit::hard(usd("100")).into())
            .unwrap();
        for _ in 0..20 {
            let hold = store.reserve(root, &usd("1").into()).unwrap();
            store.commit(hold.hold, &usd("0.5").into()).unwrap();
        }
        // closing compacts nothing; the records stay in the log
    }
    let bytes = std::fs::read(&path).unwrap();
    (path, bytes)
}

#[test]
fn a_second_open_is_locked() {
    let path = fresh_path("locked");
    let first = FileStore::open(&path).unwrap();
    let error = FileStore::open(&path).unwrap_err();
    assert!(matches!(error, Error::Locked { .. }), "{error}");
    assert_names(&error, &path);
    drop(first);
    FileStore::open(&path).expect("the lock is released on drop");
}

#[test]
fn an_empty_file_is_not_a_budget_file_and_stays_empty() {
    let path = fresh_path("empty");
    std::fs::write(&path, b"").unwrap();
    let error = FileStore::open(&path).unwrap_err();
    assert!(matches!(error, Error::NotABudgetFile { .. }), "{error}");
    assert_names(&error, &path);
    assert_eq!(std::fs::read(&path).unwrap(), b"");
}

#[test]
fn a_foreign_file_is_refused_and_not_overwritten() {
    let path = fresh_path("foreign");
    let sqlite = b"SQLite format 3\0 and then some pages of another database".to_vec();
    std::fs::write(&path, &sqlite).unwrap();
    let error = FileStore::open(&path).unwrap_err();
    assert!(matches!(error, Error::NotABudgetFile { .. }), "{error}");
    assert_names(&error, &path);
    assert_eq!(std::fs::read(&path).unwrap(), sqlite);
    assert!(FileStore::inspect(&path).is_err());
}

#[test]
fn a_newer_version_is_refused_and_not_overwritten() {
    let (path, mut bytes) = written_file("newer");
    bytes[8] = 3; // version 3
    let crc = crc32(&bytes[..12]);
    bytes[12..16].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let error = FileStore::open(&path).unwrap_err();
    assert!(
        matches!(
            error,
            Error::UnsupportedVersion {
                found: 3,
                supported: 2,
                ..
            }
        ),
        "{error}"
    );
    assert_names(&error, &path);
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn a_pre_release_version_1_file_is_refused_with_the_way_to_migrate_and_not_overwritten() {
    let (path, mut bytes) = written_file("obsolete");
    bytes[8] = 1; // the pre-release per-operation format
    let crc = crc32(&bytes[..12]);
    bytes[12..16].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let error = FileStore::open(&path).unwrap_err();
    assert!(
        matches!(
            error,
            Error::ObsoleteVersion {
                found: 1,
                supported: 2,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("export a snapshot"), "{error}");
    assert_names(&error, &path);
    assert!(matches!(
        FileStore::inspect(&path),
        Err(Error::ObsoleteVersion { found: 1, .. })
    ));
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

fn crc32(bytes: &[u8]) -> u32 {
    // the same crc32 (IEEE) the format uses, bit by bit, so the test does not share its code
    let mut crc = !0u32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn a_flipped_byte_in_the_middle_is_corruption_with_its_offset() {
    let (path, bytes) = written_file("flipped");
    // every single flipped byte between the header and the last record is detected
    let last_record_start = bytes.len() - 40;
    for position in [0, 5, 13, 20, 60, bytes.len() / 2, last_record_start - 10] {
        let mut damaged = bytes.clone();
        damaged[position] ^= 0x40;
        std::fs::write(&path, &damaged).unwrap();
        let error = FileStore::open(&path).unwrap_err();
        assert!(
            matches!(
                error,
                Error::Corrupted { .. } | Error::NotABudgetFile { .. }
            ),
            "flip at {position}: {error}"
        );
        if let Error::Corrupted { offset, .. } = error {
            assert!(offset <= position as u64, "flip at {position}: {error}");
        }
        assert_names(&error, &path);
        assert_eq!(std::fs::read(&path).unwrap(), damaged, "file untouched");
    }
}

#[test]
fn a_file_cut_inside_its_snapshot_is_corruption() {
    let (path, bytes) = written_file("cut-snapshot");
    for len in [4, 15, 17, 30] {
        std::fs::write(&path, &bytes[..len]).unwrap();
        let error = FileStore::open(&path).unwrap_err();
        assert!(
            matches!(error, Error::Corrupted { .. }),
            "cut at {len}: {error}"
        );
        assert_names(&error, &path);
        assert_eq!(std::fs::read(&path).unwrap(), &bytes[..len]);
    }
}

#[test]
fn a_torn_tail_is_dropped_and_the_prefix_recovered() {
    let (path, bytes) = written_file("torn");
    let full = FileStore::inspect(&path).unwrap();
    // cut the last record in half, and append zeros as a torn write would
    let mut torn = bytes[..bytes.len() - 7].to_vec();
    torn.extend_from_slice(&[0; 100]);
    std::fs::write(&path, &torn).unwrap();
    let store = FileStore::open(&path).unwrap();
    let acme = store.resolve("acme").unwrap();
    let balance = store.balance(acme, Unit::Usd).unwrap();
    // the last record was the 20th commit; its hold is live again, nothing counted twice
    assert_eq!(balance.spent, usd("9.5"));
    assert_eq!(balance.reserved, usd("1"));
    assert_ne!(store.snapshot().unwrap(), full);
    drop(store);
    // the file was rewritten without the tail
    assert!(std::fs::read(&path).unwrap().len() < torn.len());
}

#[test]
fn an_unwritable_location_is_a_typed_error_naming_the_path() {
    let dir = fresh_path("readonly-dir");
    std::fs::create_dir_all(&dir).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    }
    let mut path = dir.join("budget.bg");
    if std::fs::write(dir.join("probe"), b"").is_ok() {
        // running as root: permissions do not stop us, so use a path under a regular file
        let file = fresh_path("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        path = file.join("budget.bg");
    }
    let error = FileStore::open(&path).unwrap_err();
    assert!(matches!(error, Error::Store(_)), "{error}");
    assert_names(&error, &path);
    let directory = fresh_path("is-a-directory");
    std::fs::create_dir_all(&directory).unwrap();
    let error = FileStore::open(&directory).unwrap_err();
    assert!(matches!(error, Error::Store(_)), "{error}");
    assert_names(&error, &directory);
}

/// Threshold levels are part of a limit and must survive a reopen, both from the snapshot at the
/// head of the file and from a later `set_limit` record, with levels already passed staying quiet.
#[test]
fn threshold_levels_survive_reopen() {
    let path = fresh_path("thresholds");
    let hard = Limit::hard(usd("10")).with_thresholds([50, 80, 95]);
    let soft = Limit::soft(Amount::tokens(1_000)).with_thresholds([25]);
    {
        let store: Arc<dyn Store> = Arc::new(FileStore::open(&path).unwrap());
        let root = Budget::builder("org", [hard, soft])
            .child("team", Limit::hard(usd("5")))
            .build_shared(store)
            .unwrap();
        let team = root.at("team").unwrap();
        team.set_limit(Limit::hard(usd("6")).with_thresholds([10, 90]))
            .unwrap();
        // Levels fire on committed spend (semantics issue 13), so at the commit.
        let committed = team.reserve(usd("1")).unwrap().commit(usd("1")).unwrap();
        let levels: Vec<u16> = committed.events.iter().map(|c| c.level()).collect();
        assert_eq!(levels, [10], "team's spend crosses 10 % of $6");
    }
    let store: Arc<dyn Store> = Arc::new(FileStore::open(&path).unwrap());
    let root = Budget::open(store.clone(), "org").unwrap();
    let info = root.info().unwrap();
    let usd_limit = info.balance(Unit::Usd).unwrap().limit.unwrap();
    assert_eq!(usd_limit.thresholds().levels(), &[50, 80, 95]);
    let token_limit = info.balance(Unit::Tokens).unwrap().limit.unwrap();
    assert_eq!(token_limit.thresholds().levels(), &[25, 100]);
    let team = root.at("team").unwrap();
    let team_limit = team.balance(Unit::Usd).unwrap().limit.unwrap();
    assert_eq!(team_limit.thresholds().levels(), &[10, 90]);
    // Team: $1 of $6 was already past 10 %, so only 90 % fires ($5.50). Org: $5.50 of $10
    // crosses its 50 % (leaf first, then root).
    let committed = team
        .reserve(usd("4.5"))
        .unwrap()
        .commit(usd("4.5"))
        .unwrap();
    let levels: Vec<u16> = committed.events.iter().map(|c| c.level()).collect();
    assert_eq!(levels, [90, 50]);
}

// Prepared space (issue 16): under the durabilities that sync, the log keeps synced zeros ahead
// of its records and writes records over them; a zero tail is the end of the log.

/// The offsets where the records of a budget file start (the format is in the `FileStore`
/// docs: a 16-byte header, then frames of length (4), checksum (4) and payload), up to the
/// first zero length: the end of the log.
fn record_starts(bytes: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut offset = 16;
    while offset + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap()) as usize;
        if len == 0 {
            break;
        }
        starts.push(offset);
        offset += 8 + len;
    }
    starts
}

/// A store at `path` with `acme` ($100) and `pairs` reserve ($1) + commit ($0.25) pairs, then a
/// last reserve of $2 committed at $0.75. Returns the file as it is on disk while the store is
/// still open (what a kill -9 or a copy taken then would find), and as a clean close leaves it.
fn file_open_and_closed(name: &str, pairs: usize) -> (PathBuf, Vec<u8>, Vec<u8>) {
    let path = fresh_path(name);
    let store = FileStore::open(&path).unwrap();
    let root = store
        .create_node(None, "acme", &Limit::hard(usd("100")).into())
        .unwrap();
    for _ in 0..pairs {
        let hold = store.reserve(root, &usd("1").into()).unwrap().hold;
        store.commit(hold, &usd("0.25").into()).unwrap();
    }
    let last = store.reserve(root, &usd("2").into()).unwrap().hold;
    store.commit(last, &usd("0.75").into()).unwrap();
    let open = std::fs::read(&path).unwrap();
    drop(store);
    let closed = std::fs::read(&path).unwrap();
    (path, open, closed)
}

fn balance_of(path: &std::path::Path) -> (Amount, Amount) {
    let store = FileStore::open(path).unwrap();
    let balance = store
        .balance(store.resolve("acme").unwrap(), Unit::Usd)
        .unwrap();
    (balance.spent, balance.reserved)
}

#[test]
fn an_open_store_writes_into_prepared_zeros_and_a_clean_close_cuts_them_off() {
    let (path, open, closed) = file_open_and_closed("prepared", 100);
    // While open, the file is one prepared MiB: the records, then zeros.
    assert_eq!(open.len(), 1 << 20);
    assert!(closed.len() < 20_000, "{} bytes of log", closed.len());
    assert_eq!(
        &open[..closed.len()],
        &closed[..],
        "the records are the same bytes"
    );
    assert!(open[closed.len()..].iter().all(|&byte| byte == 0));
    // Both read as the same books: 100 × $0.25 + $0.75 spent, nothing held.
    assert_eq!(balance_of(&path), (usd("25.75"), usd("0")));
    std::fs::write(&path, &open).unwrap();
    assert_eq!(
        FileStore::inspect(&path).unwrap().nodes[0].accounts[0].spent,
        usd("25.75")
    );
    assert_eq!(balance_of(&path), (usd("25.75"), usd("0")));
}

#[test]
fn unsynced_stores_and_prepare_ahead_zero_append_without_zeros() {
    for options in [
        FileStore::options().durability(Durability::Unsynced),
        FileStore::options().prepare_ahead(0),
    ] {
        let path = fresh_path("no-prepare");
        let store = options.open(&path).unwrap();
        let root = store
            .create_node(None, "acme", &Limit::hard(usd("100")).into())
            .unwrap();
        let hold = store.reserve(root, &usd("1").into()).unwrap().hold;
        store.commit(hold, &usd("0.25").into()).unwrap();
        let open = std::fs::read(&path).unwrap();
        let starts = record_starts(&open);
        assert_eq!(starts.len(), 4, "image, create_node, reserve, commit");
        drop(store);
        assert_eq!(
            std::fs::read(&path).unwrap(),
            open,
            "nothing to cut at close"
        );
        assert_eq!(balance_of(&path), (usd("0.25"), usd("0")));
    }
}

#[test]
fn a_torn_record_inside_prepared_space_is_dropped_as_a_torn_tail() {
    let (path, open, closed) = file_open_and_closed("torn-prepared", 20);
    let last = *record_starts(&open).last().unwrap();
    // The last commit half written over the zeros: the rest of its bytes still zero.
    for written in [1, 5, 8, 9, (closed.len() - last) - 1] {
        let mut torn = open.clone();
        torn[last + written..closed.len()].fill(0);
        std::fs::write(&path, &torn).unwrap();
        // 20 × $0.25 spent; the last $2 hold is live again, nothing counted twice.
        assert_eq!(
            balance_of(&path),
            (usd("5"), usd("2")),
            "{written} bytes written"
        );
        // The open rewrote the file without the torn record.
        assert!(std::fs::read(&path).unwrap().len() < closed.len());
    }
}

#[test]
fn garbage_in_prepared_space_follows_the_torn_tail_rules() {
    let (path, open, closed) = file_open_and_closed("garbage-prepared", 20);
    let starts = record_starts(&open);
    let last = *starts.last().unwrap();

    // Non-zero bytes after the last record, no valid record among them: a torn tail, dropped.
    let mut garbage = open.clone();
    garbage[closed.len()..closed.len() + 300].fill(0xA5);
    std::fs::write(&path, &garbage).unwrap();
    assert_eq!(balance_of(&path), (usd("5.75"), usd("0")));

    // Garbage, then a copy of a valid record further into the prepared space: damage followed
    // by a valid record is corruption at the damage, and the file is left as it is.
    let mut copied = open.clone();
    copied[closed.len()..closed.len() + 300].fill(0xA5);
    let at = closed.len() + 4096;
    copied[at..at + (closed.len() - last)].copy_from_slice(&closed[last..]);
    std::fs::write(&path, &copied).unwrap();
    match FileStore::open(&path).unwrap_err() {
        Error::Corrupted { offset, reason, .. } => {
            assert_eq!(offset, closed.len() as u64);
            assert!(
                reason.contains(&format!("a valid record follows at byte {at}")),
                "{reason}"
            );
        }
        other => panic!("expected Corrupted, got {other}"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), copied, "file untouched");

    // A damaged record in the middle, with the zero tail after the log: corruption at it.
    let mut middle = open.clone();
    let victim = starts[starts.len() / 2];
    middle[victim + 9] ^= 0x40;
    std::fs::write(&path, &middle).unwrap();
    match FileStore::open(&path).unwrap_err() {
        Error::Corrupted { offset, .. } => assert_eq!(offset, victim as u64),
        other => panic!("expected Corrupted, got {other}"),
    }
}

#[test]
fn prepared_space_stops_at_compact_after_and_compaction_bounds_the_file() {
    let path = fresh_path("prepared-bound");
    let store = FileStore::options()
        .compact_after(100_000)
        .open(&path)
        .unwrap();
    let root = store
        .create_node(None, "acme", &Limit::hard(usd("100000")).into())
        .unwrap();
    let (mut largest, mut at_bound) = (0, 0);
    for _ in 0..3_000 {
        let hold = store.reserve(root, &usd("1").into()).unwrap().hold;
        store.commit(hold, &usd("0.5").into()).unwrap();
        let len = std::fs::metadata(&path).unwrap().len();
        largest = largest.max(len);
        at_bound += usize::from(len == 100_000);
    }
    // ~210 KB of log in all: prepared up to the compaction size, never a MiB, and compacted.
    assert!(
        at_bound > 100,
        "{at_bound} operations saw the file prepared to 100,000 bytes"
    );
    assert!(largest < 100_000 + 200, "the file reached {largest} bytes");
    drop(store);
    assert_eq!(balance_of(&path), (usd("1500"), usd("0")));
}
