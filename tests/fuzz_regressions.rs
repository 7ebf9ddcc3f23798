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

/// Writes the `file_decode` seed files (also the starting points of the `records` target) in
/// this build's format. Run by hand when the file format changes:
///
/// ```text
/// BG_SEEDS=1 cargo test --all-features --test fuzz_regressions -- --ignored write_the_seed_files
/// ```
#[test]
#[ignore = "rewrites fuzz/corpus/file_decode; run by hand when the file format changes"]
fn write_the_seed_files() {
    use std::time::Duration;

    use budget_guard::expiry::ReserveOptions;
    use budget_guard::{Amount, Durability, FileStore, Limit, ManualClock, Store, Timestamp};

    assert!(std::env::var_os("BG_SEEDS").is_some(), "set BG_SEEDS=1");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/file_decode");
    let usd = |cents: i64| Amount::try_from_minor(cents * 10_000_000, budget_guard::Unit::Usd);
    let write = |name: &str, run: &dyn Fn(&FileStore, &ManualClock)| {
        let scratch = std::env::temp_dir().join(format!("bg-seed-{name}-{}", std::process::id()));
        let _ = std::fs::remove_file(&scratch);
        let clock = ManualClock::new(Timestamp::from_unix_nanos(1_768_478_400_000_000_000));
        let store = FileStore::options()
            .durability(Durability::Unsynced)
            .clock(clock.clone())
            .open(&scratch)
            .unwrap();
        run(&store, &clock);
        drop(store);
        std::fs::copy(&scratch, dir.join(name)).unwrap();
        let _ = std::fs::remove_file(&scratch);
    };
    let tree = |store: &FileStore| {
        let org = store
            .create_node(None, "org", &Limit::hard(usd(10_000).unwrap()).into())
            .unwrap();
        let team = store
            .create_node(Some(org), "team", &Limit::hard(usd(4_000).unwrap()).into())
            .unwrap();
        let a = store
            .create_node(Some(team), "a", &Limit::hard(usd(1_000).unwrap()).into())
            .unwrap();
        let b = store
            .create_node(Some(team), "b", &Limit::soft(usd(500).unwrap()).into())
            .unwrap();
        (org, team, a, b)
    };
    let activity = |store: &FileStore| {
        let (org, team, a, b) = tree(store);
        let first = store.reserve(a, &usd(300).unwrap().into()).unwrap().hold;
        store.commit(first, &usd(250).unwrap().into()).unwrap();
        let second = store.reserve(b, &usd(100).unwrap().into()).unwrap().hold;
        store.record(second, &usd(40).unwrap().into()).unwrap();
        store.reserve(team, &usd(200).unwrap().into()).unwrap();
        let third = store.reserve(a, &usd(50).unwrap().into()).unwrap().hold;
        store.release(third).unwrap();
        store.credit(org, usd(1_000).unwrap()).unwrap();
    };
    write("empty", &|_, _| {});
    write("tree", &|store, _| {
        tree(store);
    });
    write("activity_log", &|store, _| activity(store));
    write("expired_log", &|store, clock| {
        let (_, team, a, _) = tree(store);
        let short = ReserveOptions::new().ttl(Duration::from_secs(5));
        store
            .reserve_with(a, &usd(900).unwrap().into(), &short)
            .unwrap();
        store
            .reserve_with(team, &usd(100).unwrap().into(), &short)
            .unwrap();
        clock.advance(Duration::from_secs(10));
        // Denied until the expired holds are reclaimed: the reserve reclaims them first.
        store.reserve(a, &usd(950).unwrap().into()).unwrap();
        store.sweep().unwrap();
    });
    write("compacted", &|store, _| {
        activity(store);
        store.compact().unwrap();
    });
}
