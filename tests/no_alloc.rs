//! Nothing is allocated on the reserve/commit path once the hold table has grown (issue #3).
//!
//! The crate forbids `unsafe`, so the counting `#[global_allocator]` is `stats_alloc`'s wrapper
//! around `System` (a dev-dependency): it counts every allocation of the *process* in atomics.
//!
//! That is why this binary has no libtest harness (`harness = false` in Cargo.toml): under
//! libtest the test body runs on a spawned thread while the harness's main thread goes on
//! allocating for its own bookkeeping (the running-test map, the timeout queue, the channel it
//! waits on). On a loaded machine those four allocations landed inside a measured region about one
//! run in forty, in whichever call happened to be measured (reserve, commit or drop alike). With
//! `main` as the only thread, every allocation counted is one the measured call made.

use std::alloc::System;
use std::hint::black_box;

use budget_guard::{Amount, Budget, Cost, Limit, Unit};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const PAIRS: usize = 1_000;

/// Allocations (including reallocations) made while `f` runs.
fn allocations<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let region = Region::new(GLOBAL);
    let value = f();
    let change = region.change();
    (value, change.allocations + change.reallocations)
}

fn main() {
    reserve_commit_and_release_at_depth_4_allocate_nothing();
    println!("no_alloc: reserve, commit and release at depth 4 allocated nothing");
    three_unit_reserve_commit_and_release_allocate_nothing();
    println!(
        "no_alloc: a three-unit (USD, tokens, requests) reserve, commit and release allocated nothing"
    );
}

fn reserve_commit_and_release_at_depth_4_allocate_nothing() {
    let limit = Limit::hard(Amount::usd("1000").expect("valid"));
    let org = Budget::builder("org", limit)
        .child("team", limit)
        .child("team/agent", limit)
        .child("team/agent/task", limit)
        .build()
        .expect("valid tree");
    let task = org.at("team/agent/task").expect("task exists");
    let hold = Amount::usd("0.05").expect("valid");
    let cost = Amount::usd("0.031").expect("valid");

    // The counter sees allocations (so a zero below means something).
    let (buffer, count) = allocations(|| Vec::<u8>::with_capacity(black_box(64)));
    assert_eq!(count, 1, "the counting allocator missed an allocation");
    drop(buffer);

    // Warm up: grow the hold table to its working size and register the tracing call sites.
    warm_up(&task, hold, cost);

    // Each call measured on its own, so a failure names the call that allocates.
    let (in_reserve, in_commit, in_release) = allocations_per_call(&task, hold, cost);
    assert_eq!(
        (in_reserve, in_commit, in_release),
        (0, 0, 0),
        "allocations in (Budget::reserve, Guard::commit, Guard drop) over {PAIRS} rounds at depth 4"
    );

    // And the whole loop at once, as a caller runs it.
    let ((), count) = allocations(|| {
        for _ in 0..PAIRS {
            let guard = task.reserve(black_box(hold)).expect("fits");
            black_box(guard.commit(black_box(cost)).expect("within the hold"));
        }
    });
    assert_eq!(
        count, 0,
        "{PAIRS} reserve+commit pairs at depth 4 allocated"
    );

    // The books add up: nothing was lost while measuring.
    let spent = org.balance(Unit::Usd).expect("balance").spent;
    let pairs = i64::try_from(16 + 2 * PAIRS).expect("small");
    assert_eq!(spent.minor_units(), pairs * cost.minor_units());
}

/// A priced call holds three units (USD, tokens, requests; issue 16): its hold's two costs live
/// in a box the ledger recycles, so once warm, reserve, commit and release allocate nothing.
fn three_unit_reserve_commit_and_release_allocate_nothing() {
    let usd = |text: &str| Amount::usd(text).expect("valid");
    let org = Budget::builder("org", Limit::hard(usd("1000")))
        .child("team", Limit::hard(usd("1000")))
        .child("team/agent", Limit::hard(Amount::tokens(1_000_000_000)))
        .child("team/agent/task", Limit::hard(usd("1000")))
        .build()
        .expect("valid tree");
    let task = org.at("team/agent/task").expect("task exists");
    let three = |dollars: &str, tokens: u32| {
        Cost::from(usd(dollars))
            .with(Amount::tokens(tokens))
            .and_then(|cost| cost.with(Amount::requests(1)))
            .expect("three units")
    };
    let (hold, cost) = (three("0.05", 3_000), three("0.031", 1_850));

    // Warm up: the hold table and the ledger's spare boxes reach their working size.
    warm_up(&task, hold, cost);

    let (in_reserve, in_commit, in_release) = allocations_per_call(&task, hold, cost);
    assert_eq!(
        (in_reserve, in_commit, in_release),
        (0, 0, 0),
        "allocations in a three-unit (reserve, commit, release) over {PAIRS} rounds at depth 4"
    );

    // Every unit was booked on every node: 1,016 commits of $0.031, 1,850 tokens, 1 request.
    let pairs = u32::try_from(16 + PAIRS).expect("small");
    for node in [&org, &task] {
        let spent = |unit| node.balance(unit).expect("balance").spent;
        assert_eq!(spent(Unit::Usd), usd("31.496")); // 1,016 × $0.031
        assert_eq!(spent(Unit::Tokens), Amount::tokens(1_850 * pairs));
        assert_eq!(spent(Unit::Requests), Amount::requests(pairs));
        assert_eq!(node.balance(Unit::Usd).expect("balance").reserved, usd("0"));
    }
}

/// Warms `task` up: the hold table (and the ledger's spare boxes) reach their working size and
/// the tracing call sites are registered, so what is measured next is the steady state.
fn warm_up<C: Into<Cost> + Copy>(task: &Budget, hold: C, cost: C) {
    for _ in 0..16 {
        let first = task.reserve(hold).expect("fits");
        let second = task.reserve(hold).expect("fits");
        first.commit(cost).expect("within the hold");
        drop(second);
    }
}

/// Allocations in `Budget::reserve`, `Guard::commit` and a guard's drop over `PAIRS` rounds of
/// reserve + commit and reserve + drop, each call measured on its own so a failure names the
/// call that allocates.
fn allocations_per_call<C: Into<Cost> + Copy>(
    task: &Budget,
    hold: C,
    cost: C,
) -> (usize, usize, usize) {
    let (mut in_reserve, mut in_commit, mut in_release) = (0, 0, 0);
    for _ in 0..PAIRS {
        let (guard, count) = allocations(|| task.reserve(black_box(hold)).expect("fits"));
        in_reserve += count;
        let (committed, count) = allocations(|| guard.commit(black_box(cost)));
        in_commit += count;
        black_box(committed.expect("within the hold"));

        let (guard, count) = allocations(|| task.reserve(black_box(hold)).expect("fits"));
        in_reserve += count;
        let ((), count) = allocations(|| drop(guard));
        in_release += count;
    }
    (in_reserve, in_commit, in_release)
}
