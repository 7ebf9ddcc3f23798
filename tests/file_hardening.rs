//! FileStore file handling (issue 12, items 2, 3, 6 and 7): one owner whatever name reaches the
//! file, a header-only file is corruption, the file keeps its mode and owner, a file this process
//! may not write is refused, and a crafted garbage tail is recovered from in linear time.
#![cfg(unix)]

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use budget_guard::{Amount, Error, FileStore, Limit, Store, Unit};

/// A fresh directory under cargo's per-target temp dir (kept after the run for inspection).
fn fresh_dir(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("file_hardening")
        .join(format!("{name}-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn usd(text: &str) -> Amount {
    Amount::usd(text).unwrap()
}

/// A budget file at `dir/team.bg` holding team "team" with a hard $300 limit and $`spent`
/// spent, closed again.
fn team_file(dir: &Path, spent: &str) -> PathBuf {
    let path = dir.join("team.bg");
    let store = FileStore::open(&path).unwrap();
    let team = store
        .create_node(None, "team", &Limit::hard(usd("300")).into())
        .unwrap();
    if spent != "0" {
        let hold = store.reserve(team, &usd(spent).into()).unwrap();
        store.commit(hold.hold, &usd(spent).into()).unwrap();
    }
    path
}

fn spent(store: &FileStore) -> Amount {
    let team = store.resolve("team").unwrap();
    store.balance(team, Unit::Usd).unwrap().spent
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Whether this process runs as root, where the kernel lets it write any file. Read from the
/// owner of a file it just created, so the test needs no libc.
fn running_as_root(dir: &Path) -> bool {
    let probe = dir.join("whoami");
    fs::write(&probe, b"").unwrap();
    fs::metadata(&probe).unwrap().uid() == 0
}

fn assert_locked(result: budget_guard::Result<FileStore>, name: &Path) {
    match result {
        Err(Error::Locked { path }) => assert_eq!(path, name),
        Err(other) => panic!("expected Locked for {}, got {other}", name.display()),
        Ok(_) => panic!("a second store opened {}", name.display()),
    }
}

// ---- item 2: one budget file, one owner, whatever its name --------------------------------

#[test]
fn a_second_open_through_a_symlink_is_locked_and_the_money_is_spent_once() {
    let dir = fresh_dir("symlink-lock");
    let path = team_file(&dir, "0");
    let link = dir.join("alias.bg");
    symlink(&path, &link).unwrap();

    let first = FileStore::open(&path).unwrap();
    let team = first.resolve("team").unwrap();
    let hold = first.reserve(team, &usd("300").into()).unwrap();
    first.commit(hold.hold, &usd("300").into()).unwrap();
    assert_locked(FileStore::open(&link), &link);
    first.compact().unwrap();
    assert_locked(FileStore::open(&link), &link);
    drop(first);

    // The last owner closed: the link opens the same books, fully spent.
    let second = FileStore::open(&link).unwrap();
    assert_eq!(spent(&second), usd("300"));
    let team = second.resolve("team").unwrap();
    let error = second.reserve(team, &usd("0.01").into()).unwrap_err();
    assert!(matches!(error, Error::BudgetExceeded { .. }), "{error}");
}

#[test]
fn a_second_open_through_a_hard_link_is_locked_also_after_compaction() {
    let dir = fresh_dir("hardlink-lock");
    let path = team_file(&dir, "0");
    let first = FileStore::open(&path).unwrap();
    let team = first.resolve("team").unwrap();
    let hold = first.reserve(team, &usd("300").into()).unwrap();
    first.commit(hold.hold, &usd("300").into()).unwrap();

    // A hard link made while the store is open names the same inode, which the store locks.
    let link = dir.join("copy.bg");
    fs::hard_link(&path, &link).unwrap();
    assert_locked(FileStore::open(&link), &link);

    // Compaction replaces the file under `path`; the other name would keep a stale copy with
    // the $300 unspent, so it is cut to its header: refused, never a second $300.
    first.compact().unwrap();
    let error = FileStore::open(&link).unwrap_err();
    assert!(
        matches!(error, Error::Corrupted { offset: 16, .. }),
        "{error}"
    );
    assert_eq!(fs::metadata(&link).unwrap().len(), 16);
    assert_locked(FileStore::open(&path), &path);
    drop(first);
    let error = FileStore::open(&link).unwrap_err();
    assert!(matches!(error, Error::Corrupted { .. }), "{error}");
    assert_eq!(spent(&FileStore::open(&path).unwrap()), usd("300"));
}

#[test]
fn a_file_that_already_has_two_names_is_refused_and_left_as_it_is() {
    let dir = fresh_dir("hardlink-refused");
    let path = team_file(&dir, "12.5");
    let link = dir.join("copy.bg");
    fs::hard_link(&path, &link).unwrap();
    let before = fs::read(&path).unwrap();
    let inode = fs::metadata(&path).unwrap().ino();

    for name in [&path, &link] {
        let error = FileStore::open(name).unwrap_err();
        assert!(matches!(error, Error::Store(_)), "{error}");
        let message = error.to_string();
        assert!(message.contains("2 names"), "{message}");
        assert!(message.contains(&name.display().to_string()), "{message}");
    }
    assert_eq!(fs::read(&path).unwrap(), before);
    assert_eq!(fs::metadata(&path).unwrap().ino(), inode);
    assert_eq!(fs::metadata(&link).unwrap().ino(), inode);

    fs::remove_file(&link).unwrap();
    assert_eq!(spent(&FileStore::open(&path).unwrap()), usd("12.5"));
}

#[test]
fn opening_through_a_symlink_rewrites_the_target_and_keeps_the_link() {
    let dir = fresh_dir("symlink-keep");
    let target = dir.join("real").join("team.bg");
    fs::create_dir_all(target.parent().unwrap()).unwrap();
    let link = dir.join("team.bg");
    symlink("real/team.bg", &link).unwrap(); // relative and dangling: the file is created

    let store = FileStore::open(&link).unwrap();
    let team = store
        .create_node(None, "team", &Limit::hard(usd("300")).into())
        .unwrap();
    let hold = store.reserve(team, &usd("7").into()).unwrap();
    store.commit(hold.hold, &usd("7").into()).unwrap();
    store.compact().unwrap();
    assert_eq!(store.path(), fs::canonicalize(&target).unwrap());
    drop(store);

    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read_link(&link).unwrap(), Path::new("real/team.bg"));
    assert_eq!(spent(&FileStore::open(&target).unwrap()), usd("7"));
    // no stray lock or temp file next to the link: the sidecar lives beside the target
    assert!(!dir.join("team.bg.lock").exists());
    assert!(target.with_extension("bg.lock").exists());
    assert_eq!(spent(&FileStore::open(&link).unwrap()), usd("7"));
}

// ---- item 3: a header-only file ------------------------------------------------------------

#[test]
fn a_header_only_file_is_corruption_and_stays_untouched() {
    let dir = fresh_dir("header-only");
    let path = team_file(&dir, "3");
    let header = fs::read(&path).unwrap()[..16].to_vec();
    fs::write(&path, &header).unwrap();

    let error = FileStore::open(&path).unwrap_err();
    match &error {
        Error::Corrupted {
            path: named,
            offset,
            ..
        } => {
            assert_eq!(named, &path);
            assert_eq!(*offset, 16);
        }
        other => panic!("expected Corrupted, got {other}"),
    }
    assert!(FileStore::inspect(&path).is_err());
    assert_eq!(fs::read(&path).unwrap(), header);
}

#[test]
fn a_temp_file_left_by_a_killed_creation_does_not_matter() {
    let dir = fresh_dir("leftover-temp");
    let path = dir.join("team.bg");
    // What a kill between creating and filling the temporary file leaves: a header, no name.
    let header = {
        let probe = team_file(&fresh_dir("leftover-probe"), "0");
        fs::read(probe).unwrap()[..16].to_vec()
    };
    fs::write(dir.join("team.bg.tmp"), &header).unwrap();
    set_mode(&dir.join("team.bg.tmp"), 0o666);

    let store = FileStore::open(&path).unwrap();
    store
        .create_node(None, "team", &Limit::hard(usd("300")).into())
        .unwrap();
    drop(store);
    assert_eq!(spent(&FileStore::open(&path).unwrap()), usd("0"));
}

/// Run by `creation_killed_at_random_moments_leaves_no_unopenable_file` in a child process:
/// creates stores in `BG_HARDENING_CHILD` one after another, reporting each, until killed.
#[test]
fn creation_child_process() {
    let Ok(dir) = std::env::var("BG_HARDENING_CHILD") else {
        return; // a normal test run: nothing to do
    };
    for n in 0.. {
        let path = Path::new(&dir).join(format!("{n}.bg"));
        let store = FileStore::open(&path).unwrap();
        drop(store);
        println!("{n}");
    }
}

#[test]
fn creation_killed_at_random_moments_leaves_no_unopenable_file() {
    let dir = fresh_dir("creation-kill");
    for round in 0..12usize {
        let round_dir = dir.join(round.to_string());
        fs::create_dir_all(&round_dir).unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["creation_child_process", "--exact", "--nocapture", "-q"])
            .env("BG_HARDENING_CHILD", &round_dir)
            .env("RUST_BACKTRACE", "0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Let it create a varying number of stores, then kill it wherever it is.
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let created = round * 3;
        let reported = lines
            .map(|line| line.unwrap())
            .find(|line| *line == created.to_string());
        assert!(reported.is_some(), "round {round}: the child stopped early");
        child.kill().unwrap();
        child.wait().unwrap();

        let mut budget_files = 0;
        for entry in fs::read_dir(&round_dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|ext| ext == "bg") {
                budget_files += 1;
                let store = FileStore::open(&path).unwrap_or_else(|e| {
                    panic!("round {round}: {} left unopenable: {e}", path.display())
                });
                assert_eq!(store.snapshot().unwrap().nodes.len(), 0);
            }
        }
        assert!(
            budget_files > created,
            "round {round}: {budget_files} files"
        );
    }
}

// ---- item 6: permissions -------------------------------------------------------------------

#[test]
fn open_and_compaction_keep_the_files_mode() {
    let dir = fresh_dir("modes");
    for wanted in [0o600, 0o640, 0o660, 0o604] {
        let path = dir.join(format!("{wanted:o}.bg"));
        let store = FileStore::open(&path).unwrap();
        store
            .create_node(None, "team", &Limit::hard(usd("300")).into())
            .unwrap();
        drop(store);
        set_mode(&path, wanted);

        let store = FileStore::open(&path).unwrap();
        assert_eq!(mode(&path), wanted, "after open");
        let team = store.resolve("team").unwrap();
        let hold = store.reserve(team, &usd("1").into()).unwrap();
        store.commit(hold.hold, &usd("1").into()).unwrap();
        store.compact().unwrap();
        assert_eq!(mode(&path), wanted, "after compact");
        drop(store);
        assert_eq!(spent(&FileStore::open(&path).unwrap()), usd("1"));
        assert_eq!(mode(&path), wanted, "after a second open");
    }
}

#[test]
fn a_symlinked_files_mode_is_kept_on_its_target() {
    let dir = fresh_dir("symlink-mode");
    let path = team_file(&dir, "2");
    set_mode(&path, 0o600);
    let link = dir.join("alias.bg");
    symlink(&path, &link).unwrap();
    let store = FileStore::open(&link).unwrap();
    store.compact().unwrap();
    drop(store);
    assert_eq!(mode(&path), 0o600);
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn the_owner_is_kept_across_rewrites_where_this_process_may_give_it() {
    let dir = fresh_dir("owner");
    let path = team_file(&dir, "4");
    if !running_as_root(&dir) {
        // An unprivileged process cannot give a file away; its rewrite keeps it as the owner,
        // which it already is for any file it may write. Only the mode can be checked here.
        set_mode(&path, 0o640);
        FileStore::open(&path).unwrap().compact().unwrap();
        assert_eq!(mode(&path), 0o640);
        return;
    }
    std::os::unix::fs::chown(&path, Some(4321), Some(4322)).unwrap();
    set_mode(&path, 0o660);
    let store = FileStore::open(&path).unwrap();
    let metadata = fs::metadata(&path).unwrap();
    assert_eq!((metadata.uid(), metadata.gid()), (4321, 4322), "after open");
    store.compact().unwrap();
    let metadata = fs::metadata(&path).unwrap();
    assert_eq!(
        (metadata.uid(), metadata.gid()),
        (4321, 4322),
        "after compact"
    );
    assert_eq!(mode(&path), 0o660);
    drop(store);
    assert_eq!(spent(&FileStore::open(&path).unwrap()), usd("4"));
}

#[test]
fn a_read_only_file_is_refused_and_left_as_it_is() {
    let dir = fresh_dir("read-only");
    let path = team_file(&dir, "5");
    set_mode(&path, 0o444);
    let before = fs::read(&path).unwrap();
    let inode = fs::metadata(&path).unwrap().ino();

    // Refused for root too: the mode says nobody writes this file.
    let error = FileStore::open(&path).unwrap_err();
    assert!(matches!(error, Error::Store(_)), "{error}");
    let message = error.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("read-only (mode 0444)"), "{message}");
    assert_eq!(fs::read(&path).unwrap(), before);
    assert_eq!(fs::metadata(&path).unwrap().ino(), inode, "not replaced");
    assert_eq!(mode(&path), 0o444);
    // Reading it is still possible.
    assert_eq!(FileStore::inspect(&path).unwrap().nodes.len(), 1);
}

#[test]
fn a_file_only_others_may_write_is_refused_unless_the_kernel_lets_this_process_write_it() {
    let dir = fresh_dir("not-mine-to-write");
    let path = team_file(&dir, "6");
    // Owner read-only, group may write: the mode has a write bit, so the refusal (for the
    // owner) comes from opening the file for writing.
    set_mode(&path, 0o464);
    let before = fs::read(&path).unwrap();
    let inode = fs::metadata(&path).unwrap().ino();
    let opened = FileStore::open(&path);
    if running_as_root(&dir) {
        // Root may write it; the rewrite keeps the mode.
        let store = opened.unwrap();
        store.compact().unwrap();
        assert_eq!(mode(&path), 0o464);
        assert_eq!(spent(&store), usd("6"));
        return;
    }
    let error = opened.unwrap_err();
    assert!(matches!(error, Error::Store(_)), "{error}");
    assert!(error.to_string().contains("for writing"), "{error}");
    assert_eq!(fs::read(&path).unwrap(), before);
    assert_eq!(fs::metadata(&path).unwrap().ino(), inode, "not replaced");
    assert_eq!(mode(&path), 0o464);
}

// ---- item 7: linear recovery -------------------------------------------------------------

/// Garbage in which every fourth offset announces a payload reaching almost to the end of the
/// file: checksumming each candidate from scratch costs about len²/8 bytes.
fn crafted_tail(len: usize) -> Vec<u8> {
    let mut tail = vec![0u8; len];
    for start in (0..len.saturating_sub(8)).step_by(4) {
        let payload = (len - start - 8) as u32;
        tail[start..start + 4].copy_from_slice(&payload.to_le_bytes());
    }
    tail
}

/// The offsets of the records of a budget file.
fn record_starts(bytes: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut offset = 16;
    while offset < bytes.len() {
        starts.push(offset);
        let len = u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap()) as usize;
        offset += 8 + len;
    }
    starts
}

#[test]
fn a_crafted_garbage_tail_is_dropped_as_a_torn_tail() {
    let dir = fresh_dir("garbage-tail");
    let path = team_file(&dir, "9");
    let clean = fs::read(&path).unwrap();
    let mut damaged = clean.clone();
    damaged.extend_from_slice(&crafted_tail(1 << 20));
    fs::write(&path, &damaged).unwrap();

    // 1 MiB of candidates whose announced payloads reach the end: ~137 GB of checksumming for
    // the search this replaced; now one pass.
    let store = FileStore::open(&path).unwrap();
    assert_eq!(spent(&store), usd("9"));
    drop(store);
    // The 1 MiB tail is gone. (The rewrite is one image of the books, which may be a few
    // hundred bytes longer than the image and records it replaces.)
    assert!(fs::metadata(&path).unwrap().len() < clean.len() as u64 + 1024);
}

#[test]
fn damage_followed_far_away_by_a_valid_record_is_still_corruption() {
    let dir = fresh_dir("garbage-then-record");
    let path = team_file(&dir, "9");
    let clean = fs::read(&path).unwrap();
    let starts = record_starts(&clean);
    let last = *starts.last().unwrap();
    // the last record's length field damaged, 256 KiB of crafted garbage, then a valid record
    let mut damaged = clean.clone();
    damaged[last] ^= 0x55;
    damaged.extend_from_slice(&crafted_tail(256 << 10));
    let copy_at = damaged.len();
    damaged.extend_from_slice(&clean[last..]);
    fs::write(&path, &damaged).unwrap();

    let error = FileStore::open(&path).unwrap_err();
    match &error {
        Error::Corrupted { offset, reason, .. } => {
            assert_eq!(*offset, last as u64);
            assert!(
                reason.contains(&format!("a valid record follows at byte {copy_at}")),
                "{reason}"
            );
        }
        other => panic!("expected Corrupted, got {other}"),
    }
    assert_eq!(fs::read(&path).unwrap(), damaged);
}
