//! Scratch files for tests that open budget files (included with
//! `#[path = "support/scratch.rs"] mod scratch;` so a binary does not also compile the model).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use budget_guard::{FileStore, ManualClock};

/// A path no other test of this run (nor a leftover of an earlier run) uses, in a folder named
/// after the test binary under cargo's scratch directory for integration tests.
pub(crate) fn fresh_path(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(env!("CARGO_CRATE_NAME"));
    std::fs::create_dir_all(&dir).unwrap();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = dir.join(format!("{name}-{}-{n}.bg", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// Opens the budget file at `path` on `clock` each time it is called: the first call creates
/// it, later ones reopen it (after the previous store was dropped) as a restarted process would.
#[allow(dead_code)] // Only the binaries that reopen files use it.
pub(crate) fn reopener<'a>(
    path: &'a Path,
    clock: &'a ManualClock,
) -> impl Fn() -> Arc<FileStore> + 'a {
    move || {
        Arc::new(
            FileStore::options()
                .clock(clock.clone())
                .open(path)
                .unwrap(),
        )
    }
}
