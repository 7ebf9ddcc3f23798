//! Memory of remembered idempotency keys in the [`MemoryStore`], measured with a counting
//! global allocator (as `tests/footprint.rs`): bytes per remembered key at the default cap, and
//! proof that the table stops growing there. Printed for BENCHMARKS.md
//! (`cargo test --release --test idempotency_footprint -- --nocapture`) and bounded loosely.

use std::alloc::System;

use budget_guard::idempotency::DEFAULT_MAX_KEYS;
use budget_guard::idempotency::{IdempotencyKey, OpOptions};
use budget_guard::{Amount, Limit, MemoryStore, Store, Unit};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Net bytes allocated while `f` runs (what it built and kept).
fn net_bytes(f: impl FnOnce()) -> isize {
    let region = Region::new(GLOBAL);
    f();
    let change = region.change();
    change.bytes_allocated as isize + change.bytes_reallocated - change.bytes_deallocated as isize
}

#[test]
fn bytes_per_remembered_key_and_the_cap_holds() {
    let usd = |n: i64| Amount::try_from_minor(n, Unit::Usd).unwrap();
    let store = MemoryStore::new();
    let root = store
        .create_node(None, "root", &Limit::hard(usd(i64::MAX / 4)).into())
        .unwrap();
    // UUID-sized keys (36 bytes), made before measuring; each keyed credit is remembered.
    let keys = |round: usize| -> Vec<OpOptions> {
        (0..DEFAULT_MAX_KEYS)
            .map(|n| {
                let key = format!("{round:08x}-0000-4000-8000-{n:012x}");
                OpOptions::new().idempotency_key(IdempotencyKey::new(key).unwrap())
            })
            .collect()
    };
    let first = keys(0);
    let filled = net_bytes(|| {
        for options in &first {
            store.credit_with(root, usd(1), options).unwrap();
        }
    });
    let per_key = filled as f64 / DEFAULT_MAX_KEYS as f64;
    // Another cap's worth of new keys: each forgets the oldest, so the table does not grow.
    let second = keys(1);
    let grown = net_bytes(|| {
        for options in &second {
            store.credit_with(root, usd(1), options).unwrap();
        }
    });
    // The first round's keys were all forgotten (their key texts freed): net growth is the
    // second round's key texts minus the first's, about zero.
    eprintln!(
        "memory store: {per_key:.0} bytes per remembered key (36-byte keys, {DEFAULT_MAX_KEYS} \
         keys = {:.1} MiB); {grown} bytes net after another {DEFAULT_MAX_KEYS} keys",
        filled as f64 / (1 << 20) as f64
    );
    assert!(per_key < 512.0, "{per_key} bytes per remembered key");
    assert!(
        grown.unsigned_abs() < filled.unsigned_abs() / 8,
        "the table kept growing past its cap: {grown} bytes"
    );
    // The newest keys are remembered, the oldest forgotten.
    store
        .credit_with(root, usd(1), second.last().unwrap())
        .unwrap();
    store.credit_with(root, usd(1), &first[0]).unwrap();
    let limit = store.balance(root, Unit::Usd).unwrap().limit.unwrap();
    let credits = 2 * DEFAULT_MAX_KEYS as i64 + 1;
    assert_eq!(limit.amount(), usd(i64::MAX / 4 + credits));
}
