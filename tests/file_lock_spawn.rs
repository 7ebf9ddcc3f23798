//! A lock held for a moment by someone else delays an open; one held for longer refuses it.
//!
//! Between `fork` and `exec` a child process holds a copy of every open file of its parent, a
//! budget file's lock included, until its program starts and `O_CLOEXEC` closes them. A store
//! reopened by one thread while another thread was starting a process could fail with `Locked`
//! (seen as a rare failure of a file-mode test that ran beside a test spawning processes). The
//! store now retries a refused lock for up to 200 ms. The brief holder here is `flock(1)` on the
//! store's lock file, which holds it for 20 ms.
#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use budget_guard::{Amount, Durability, Error, FileStore, Limit, Store, Unit};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bg-lock-hold-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("team.bg")
}

fn open(path: &Path) -> budget_guard::Result<FileStore> {
    FileStore::options()
        .durability(Durability::Unsynced)
        .open(path)
}

/// `flock(1)` holding the store's lock file for `seconds`, returned once it holds it.
fn hold_lock(path: &Path, seconds: &str) -> Child {
    let mut lock = path.canonicalize().unwrap().into_os_string();
    lock.push(".lock");
    let mut child = Command::new("flock")
        .arg("--exclusive")
        .arg(&lock)
        .args(["sh", "-c", &format!("echo held; sleep {seconds}")])
        .stdout(Stdio::piped())
        .spawn()
        .expect("flock(1) from util-linux");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "held");
    child
}

fn created(path: &Path) {
    let store = open(path).unwrap();
    store
        .create_node(None, "team", &Limit::hard(Amount::usd("5").unwrap()).into())
        .unwrap();
}

#[test]
fn an_open_waits_out_a_lock_held_for_a_moment() {
    let path = scratch("moment");
    created(&path);
    let mut holder = hold_lock(&path, "0.02");
    let store = open(&path).expect("a lock held for 20 ms is waited out");
    let team = store.resolve("team").unwrap();
    assert_eq!(
        store
            .balance(team, Unit::Usd)
            .unwrap()
            .limit
            .unwrap()
            .amount(),
        Amount::usd("5").unwrap()
    );
    assert!(holder.wait().unwrap().success());
}

#[test]
fn an_open_is_refused_while_another_owner_keeps_the_lock() {
    let path = scratch("owner");
    created(&path);
    let mut holder = hold_lock(&path, "3");
    let error = open(&path).unwrap_err();
    assert!(matches!(error, Error::Locked { .. }), "{error:?}");
    holder.kill().unwrap();
    let _ = holder.wait();
}
