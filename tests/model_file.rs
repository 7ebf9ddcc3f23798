//! The reference model of `tests/model.rs` run on a [`FileStore`] (unsynced, on tmpfs when there
//! is one), with one more operation: `Reopen` drops the store and opens the file again, after
//! which the books, the live holds and their ids must be exactly as before.
//!
//! Holds are driven by id through the [`Store`] API here (a guard keeps its store alive, so it
//! cannot live across a reopen). 10,000 cases by default (two tests of 5,000, side by side);
//! `PROPTEST_CASES=N` overrides the total, and the
//! `#[ignore]`d long run does 100,000: `cargo test --release --test model_file -- --ignored`.

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use budget_guard::{Durability, FileStore, Store};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use support::model::{Backend, Op, cases, half_of_cases, ops, run};

/// One budget file per case, removed when the case ends.
struct File {
    path: PathBuf,
}

impl File {
    fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = PathBuf::from("/dev/shm");
        let dir = if dir.is_dir() {
            dir
        } else {
            std::env::temp_dir()
        };
        let path = dir.join(format!(
            "budget-guard-model-{}-{}.bg",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&path);
        File { path }
    }
}

impl Backend for File {
    fn open(&mut self) -> Arc<dyn Store> {
        self.reopen()
    }
    fn reopen(&mut self) -> Arc<dyn Store> {
        Arc::new(
            FileStore::options()
                .durability(Durability::Unsynced)
                .open(&self.path)
                .expect("open the budget file"),
        )
    }
    fn reopens(&self) -> bool {
        true
    }
}

impl Drop for File {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let mut lock = self.path.clone().into_os_string();
        lock.push(".lock");
        let _ = std::fs::remove_file(lock);
    }
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/model_file.proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(half_of_cases(10_000)))]

    #[test]
    fn file_store_agrees_with_the_reference_model(ops in ops(true)) {
        run(&mut File::new(), &ops);
    }

    /// The other half of the cases, beside the first.
    #[test]
    fn file_store_agrees_with_the_reference_model_too(ops in ops(true)) {
        run(&mut File::new(), &ops);
    }
}

proptest! {
    #![proptest_config(config(cases(100_000)))]

    /// The long run: `cargo test --release --test model_file -- --ignored`.
    #[test]
    #[ignore = "long run: 100,000 cases"]
    fn file_store_agrees_with_the_reference_model_long_run(ops in ops(true)) {
        run(&mut File::new(), &ops);
    }
}

#[test]
fn reopen_keeps_live_holds_recorded_spend_and_debt() {
    run(
        &mut File::new(),
        &[
            Op::Reserve { node: 2, cents: 5 },
            Op::Record { hold: 0, cents: 2 },
            Op::Reserve { node: 6, cents: 8 },
            Op::Commit { hold: 1, cents: 11 }, // b2: overdraft, debt
            Op::Reopen,
            Op::Commit { hold: 0, cents: 4 },
            Op::Reserve { node: 5, cents: 3 },
            Op::Reopen,
            Op::Drop { hold: 0 },
            Op::Credit { node: 6, cents: 3 },
            Op::SnapshotRestore,
            Op::Reopen,
        ],
    );
}
