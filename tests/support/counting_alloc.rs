//! The counting global allocator and the measuring formulas of the memory tests
//! (`tests/footprint.rs`, `tests/idempotency_footprint.rs`, `tests/hostile_input.rs`; included with
//! `#[path = "support/counting_alloc.rs"] mod counting_alloc;` so a binary does not also compile
//! the model). Including it installs the allocator for the whole test binary.
//!
//! `stats_alloc` wraps `System` (the crate forbids `unsafe`, so no hand-written allocator). It
//! counts the whole process: a binary that measures should run one test, or serialize its tests,
//! so other tests' allocations stay out of a measured region.

// Each including binary uses some of the formulas.
#![allow(dead_code)]

use std::alloc::System;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Net bytes allocated while `f` runs: what it built and kept (allocated − freed), so the spare
/// capacity of tables it grew is included.
///
/// `stats_alloc` adds a growing `realloc`'s difference to `bytes_allocated` (and a shrinking
/// one's to `bytes_deallocated`) and *also* reports it in `bytes_reallocated`; adding that too
/// counts every grown table twice (issue 16: the figures first published from the footprint
/// tests, 1,527 B per node and 252 B per hold, carried that error).
pub(crate) fn net_bytes(f: impl FnOnce()) -> isize {
    let region = Region::new(GLOBAL);
    f();
    let change = region.change();
    change.bytes_allocated as isize - change.bytes_deallocated as isize
}

/// Gross bytes allocated while `f` runs, freed or not (a grown table counted at each size it
/// had): the bound for "never tries to allocate much", where [`net_bytes`] would hide a huge
/// buffer allocated and freed again.
pub(crate) fn gross_bytes<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let region = Region::new(GLOBAL);
    let value = f();
    (value, region.change().bytes_allocated)
}

/// Checks the formula itself, before a test relies on it: a vector of `u64`s grown from empty
/// to 1,000 elements keeps exactly its final capacity, 1,024 × 8 bytes, however many `realloc`s
/// it took (the old formula reported 16,352 bytes: the 8,192 plus every step's growth again).
/// Called at the start of each measuring test rather than as a test of its own, which would run
/// in parallel with the measurement and pollute both regions.
pub(crate) fn assert_growth_counts_once() {
    let mut kept = Vec::new();
    let bytes = net_bytes(|| {
        let mut numbers: Vec<u64> = Vec::new();
        for n in 0..1_000 {
            numbers.push(n);
        }
        kept = numbers;
    });
    assert_eq!(kept.capacity(), 1_024);
    assert_eq!(bytes, 1_024 * 8, "net bytes of a grown vector");
}
