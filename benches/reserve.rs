//! The cost of the hot path (issue #3): `reserve` + `commit` against a `parking_lot::Mutex<i64>`
//! check-and-add measured in the same run, single-threaded and under contention.
//!
//! Run with `cargo bench --bench reserve`; BENCHMARKS.md records the figures as ratios against
//! the `baseline_*` entries of the same run, and the bench prints the ratios issue 16 judges
//! (reserve + commit and reserve + drop against the mutex pair, 8 threads on one leaf against
//! 1 thread) after the group, read back from criterion's estimates.
//!
//! Every row is one reserve + commit (or one pair of lock round trips) per iteration, so
//! criterion's throughput line (`elem/s`) is operations per second; in the contended rows it is
//! the aggregate over all threads.

use std::hint::black_box;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use budget_guard::{Amount, Budget, CoarseClock, Limit, MemoryStore};
use criterion::{Criterion, Throughput};
use parking_lot::Mutex;

#[path = "support/ratios.rs"]
mod ratios;
use ratios::Ratio;

/// The criterion group every row belongs to (and the directory its estimates are read from).
const GROUP: &str = "reserve";

/// Far above anything a run can spend, so no reserve is ever denied.
const LIMIT_USD: &str = "1000000000";
/// Worst case held per operation.
const HOLD_USD: &str = "0.05";
/// Actual cost committed per operation (slightly less than held).
const COST_USD: &str = "0.031";

fn usd(text: &str) -> Amount {
    Amount::usd(text).expect("a valid dollar amount")
}

fn minor(text: &str) -> i64 {
    usd(text).minor_units()
}

/// A root-only tree: depth 1.
fn depth1() -> Budget {
    Budget::builder("org", Limit::hard(usd(LIMIT_USD)))
        .build()
        .expect("a valid tree")
}

/// `org/team/agent/task` with a hard limit on every node, plus `leaves - 1` more sibling tasks.
/// Returns the root and the task leaves.
fn depth4(leaves: usize) -> (Budget, Vec<Budget>) {
    depth4_in(leaves, MemoryStore::new())
}

/// [`depth4`] in `store`.
fn depth4_in(leaves: usize, store: MemoryStore) -> (Budget, Vec<Budget>) {
    let limit = Limit::hard(usd(LIMIT_USD));
    let root = Budget::builder("org", limit)
        .child("team", limit)
        .child("team/agent", limit)
        .build_in(store)
        .expect("a valid tree");
    let agent = root.at("team/agent").expect("agent exists");
    let tasks = (0..leaves)
        .map(|i| {
            agent
                .add_child(&format!("task-{i}"), limit)
                .expect("new task")
        })
        .collect();
    (root, tasks)
}

/// The baseline: lock, check `value + amount <= limit`, add, unlock.
#[inline]
fn check_and_add(cell: &Mutex<i64>, amount: i64, limit: i64) -> bool {
    let mut value = cell.lock();
    if *value + amount <= limit {
        *value += amount;
        true
    } else {
        false
    }
}

/// The baseline pair: a check-and-add of the hold, then a second lock round trip that gives back
/// the unused part (the same two lock round trips as reserve + commit).
#[inline]
fn baseline_pair(cell: &Mutex<i64>, hold: i64, cost: i64, limit: i64) -> bool {
    let granted = check_and_add(cell, hold, limit);
    if granted {
        *cell.lock() -= hold - cost;
    }
    granted
}

/// One reserve + commit of the bench amounts on `budget`.
#[inline]
fn reserve_commit(budget: &Budget, hold: Amount, cost: Amount) {
    let guard = budget.reserve(black_box(hold)).expect("never denied");
    black_box(
        guard
            .commit(black_box(cost))
            .expect("commit within the hold"),
    );
}

/// Runs `op` `iters` times in total, spread over `threads` threads (thread `i` gets its own
/// argument `i`), all released together by a barrier. Returns the wall time per operation times
/// `iters`, which is what criterion divides by: the figure is time per operation in aggregate.
fn contended<F>(iters: u64, threads: usize, op: F) -> Duration
where
    F: Fn(usize) + Sync,
{
    let per_thread = iters.div_ceil(threads as u64);
    let barrier = Barrier::new(threads + 1);
    let elapsed = thread::scope(|scope| {
        for index in 0..threads {
            let (barrier, op) = (&barrier, &op);
            scope.spawn(move || {
                barrier.wait();
                for _ in 0..per_thread {
                    op(index);
                }
            });
        }
        barrier.wait();
        let start = Instant::now();
        // Leaving the scope joins every thread.
        start
    })
    .elapsed();
    let total = per_thread * threads as u64;
    elapsed.mul_f64(iters as f64 / total as f64)
}

fn bench_reserve(c: &mut Criterion) {
    let mut group = c.benchmark_group(GROUP);
    group
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));

    let limit = minor(LIMIT_USD);
    let (hold_minor, cost_minor) = (minor(HOLD_USD), minor(COST_USD));
    let (hold, cost) = (usd(HOLD_USD), usd(COST_USD));

    // 1. The baselines.
    let cell = Mutex::new(0_i64);
    group.bench_function("baseline_check_and_add", |b| {
        b.iter(|| check_and_add(&cell, black_box(hold_minor), black_box(limit)));
    });
    let cell = Mutex::new(0_i64);
    group.bench_function("baseline_pair", |b| {
        b.iter(|| {
            baseline_pair(
                &cell,
                black_box(hold_minor),
                black_box(cost_minor),
                black_box(limit),
            )
        });
    });

    // 2. reserve + commit, one thread.
    let root = depth1();
    group.bench_function("reserve_commit_depth1", |b| {
        b.iter(|| reserve_commit(&root, hold, cost));
    });
    let (_root, tasks) = depth4(1);
    let task = &tasks[0];
    group.bench_function("reserve_commit_depth4", |b| {
        b.iter(|| reserve_commit(task, hold, cost));
    });

    // The same with the store reading `CoarseClock` (opt-in; the default is `SystemClock`).
    let (_root, tasks) = depth4_in(1, MemoryStore::with_clock(CoarseClock));
    let task = &tasks[0];
    group.bench_function("reserve_commit_depth4_coarse_clock", |b| {
        b.iter(|| reserve_commit(task, hold, cost));
    });

    // 3. reserve + drop (release), depth 4.
    let (_root, tasks) = depth4(1);
    let task = &tasks[0];
    group.bench_function("reserve_drop_depth4", |b| {
        b.iter(|| {
            drop(black_box(
                task.reserve(black_box(hold)).expect("never denied"),
            ))
        });
    });

    // 4. Contention (time per operation in aggregate over all threads). The 1-thread row runs
    //    through the same harness (a spawned thread released by a barrier) as the 2- and
    //    8-thread rows, so "8 threads on one leaf vs 1 thread" compares like with like.
    for threads in [2, 8] {
        let cell = Mutex::new(0_i64);
        group.bench_function(format!("baseline_pair_{threads}t"), |b| {
            b.iter_custom(|iters| {
                contended(iters, threads, |_| {
                    black_box(baseline_pair(
                        &cell,
                        black_box(hold_minor),
                        black_box(cost_minor),
                        black_box(limit),
                    ));
                })
            });
        });
    }
    for threads in [1, 2, 8] {
        let (_root, tasks) = depth4(1);
        let task = &tasks[0];
        group.bench_function(format!("reserve_commit_depth4_same_leaf_{threads}t"), |b| {
            b.iter_custom(|iters| contended(iters, threads, |_| reserve_commit(task, hold, cost)));
        });
    }
    let (_root, tasks) = depth4(8);
    group.bench_function("reserve_commit_depth4_8_sibling_leaves_8t", |b| {
        b.iter_custom(|iters| {
            contended(iters, 8, |index| reserve_commit(&tasks[index], hold, cost))
        });
    });

    group.finish();
}

/// Issue 16's targets for this bench: `(bench, baseline, how the ratio reads, target)`.
const ISSUE_16_RATIOS: &[(&str, &str, Ratio, &str)] = &[
    (
        "reserve_commit_depth4",
        "baseline_pair",
        Ratio::Time,
        "<= 2.5x",
    ),
    (
        "reserve_commit_depth1",
        "baseline_pair",
        Ratio::Time,
        "<= 2x",
    ),
    ("reserve_drop_depth4", "baseline_pair", Ratio::Time, "<= 2x"),
    (
        "reserve_commit_depth4_coarse_clock",
        "baseline_pair",
        Ratio::Time,
        "",
    ),
    (
        "reserve_commit_depth4_same_leaf_8t",
        "reserve_commit_depth4_same_leaf_1t",
        Ratio::Throughput,
        ">= 0.6x",
    ),
    ("baseline_pair_8t", "baseline_pair", Ratio::Throughput, ""),
];

// What `criterion_group!` + `criterion_main!` expand to, written out so the bench has no
// undocumented public item.
fn main() {
    let started = std::time::SystemTime::now();
    let mut criterion = Criterion::default().configure_from_args();
    bench_reserve(&mut criterion);
    criterion.final_summary();
    ratios::print(GROUP, started, ISSUE_16_RATIOS);
}
