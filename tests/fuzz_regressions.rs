//! Replays every committed fuzz input (`fuzz/corpus/<target>/`) through the same checks the
//! fuzz targets make, in a normal `cargo test` on the stable toolchain. A crash found by
//! `scripts/fuzz.sh` is copied from `fuzz/artifacts/<target>/` into `fuzz/corpus/<target>/`
//! (named `crash-<what>`), and so becomes a regression test here.
//!
//! The checks live in `fuzz/src/lib.rs` and are included as a module, so both sides run the same
//! code; ops inputs are decoded with `arbitrary` exactly as `libfuzzer-sys` does.

#[allow(unreachable_pub, dead_code, missing_docs)]
#[path = "../fuzz/src/lib.rs"]
mod checks;

use std::path::Path;

use arbitrary::{Arbitrary, Unstructured};

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "no inputs in {}", dir.display());
    inputs
}

#[test]
fn file_decode_corpus_opens_or_fails_typed() {
    for (name, bytes) in inputs("file_decode") {
        eprintln!("file_decode/{name}");
        checks::decode_file(&bytes);
    }
}

#[test]
fn the_seed_files_are_valid_budget_files() {
    for name in ["empty", "tree", "activity_log", "expired_log", "compacted"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus/file_decode")
            .join(name);
        let snapshot = budget_guard::FileStore::inspect(&path)
            .unwrap_or_else(|e| panic!("seed {name} no longer reads: {e}"));
        checks::check_invariants(&snapshot);
    }
}

#[test]
fn ops_corpus_keeps_the_invariants() {
    for (name, bytes) in inputs("ops") {
        eprintln!("ops/{name}");
        let ops = Vec::<checks::Op>::arbitrary_take_rest(Unstructured::new(&bytes))
            .expect("any bytes decode");
        checks::run_ops(&ops);
    }
}

#[test]
fn restore_corpus_refuses_typed_or_round_trips() {
    for (name, bytes) in inputs("restore") {
        eprintln!("restore/{name}");
        checks::hostile::restore_hostile(&bytes);
    }
}

#[test]
fn records_corpus_opens_or_fails_typed() {
    for (name, bytes) in inputs("records") {
        eprintln!("records/{name}");
        checks::hostile::records_hostile(&bytes);
    }
}
