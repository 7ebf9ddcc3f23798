//! Runs `N` reserve + commit pairs (and `N` reserve + drop pairs) on the leaf of a depth-4 tree,
//! the workload of `benches/reserve.rs`, as a plain program: the harness for instruction counts
//! (BENCHMARKS.md, "Instructions per pair"), which are stable on a shared machine where times
//! are not.
//!
//! ```text
//! cargo build --release --example hot_path
//! valgrind --tool=callgrind target/release/examples/hot_path 10000   # and with 20000:
//! # instructions per pair = (Ir(20000) - Ir(10000)) / 10000 / 2 (a commit pair and a drop pair)
//! ```
//!
//! `cargo run --example hot_path -- [N] [commit|drop|both] [depth] [thresholds]` (default 1,000
//! of both at depth 4) prints what it did: a second argument runs only the commit pairs or only
//! the drop pairs, a third reserves on the leaf of a tree of that depth (1 to 4), and a fourth,
//! `thresholds`, gives every node's limit three threshold levels (50, 80, 95 %).
//!
//! `mutex` as the second argument runs the baseline instead: `N` pairs of `parking_lot::Mutex<i64>`
//! round trips, a check-and-add (the reserve) then a subtract and add (the commit), which is
//! what the issue-16 ratios divide by.

use std::hint::black_box;

use budget_guard::{Amount, Budget, Limit};
use parking_lot::Mutex;

fn main() -> budget_guard::Result<()> {
    let pairs: u64 = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(1_000);
    if std::env::args().nth(2).as_deref() == Some("mutex") {
        mutex_pairs(pairs);
        return Ok(());
    }
    let mut limit = Limit::hard(Amount::usd("1000000000")?);
    if std::env::args().nth(4).as_deref() == Some("thresholds") {
        limit = limit.with_thresholds([50, 80, 95]);
    }
    let depth: usize = std::env::args()
        .nth(3)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(4)
        .clamp(1, 4);
    let root = Budget::builder("org", limit)
        .child("team", limit)
        .child("team/agent", limit)
        .build()?;
    let task = match depth {
        1 => root,
        2 => root.at("team")?,
        3 => root.at("team/agent")?,
        _ => root.at("team/agent")?.add_child("task-0", limit)?,
    };
    let (hold, cost) = (Amount::usd("0.05")?, Amount::usd("0.031")?);
    let only = std::env::args().nth(2);
    let (commits, drops) = match only.as_deref() {
        Some("commit") => (pairs, 0),
        Some("drop") => (0, pairs),
        _ => (pairs, pairs),
    };
    for _ in 0..commits {
        let guard = task.reserve(black_box(hold))?;
        black_box(guard.commit(black_box(cost))?);
    }
    for _ in 0..drops {
        drop(black_box(task.reserve(black_box(hold))?));
    }
    println!(
        "{commits} reserve + commit and {drops} reserve + drop pairs at depth {depth}; spent {}",
        task.balance(budget_guard::Unit::Usd)?.spent
    );
    Ok(())
}

/// The baseline, as `baseline_pair` in `benches/reserve.rs`: `pairs` times, on one
/// `parking_lot::Mutex<i64>` (nano-dollars used under a cap), lock, check that the hold fits, add
/// it, unlock; then lock, give back the unused part of the hold, unlock.
fn mutex_pairs(pairs: u64) {
    let used = Mutex::new(0_i64);
    let (hold, cost, cap) = (50_000_000_i64, 31_000_000_i64, i64::MAX / 2);
    for _ in 0..pairs {
        let (hold, cost) = (black_box(hold), black_box(cost));
        let granted = {
            let mut value = black_box(&used).lock();
            let fits = *value + hold <= black_box(cap);
            if fits {
                *value += hold;
            }
            fits
        };
        if granted {
            *black_box(&used).lock() -= hold - cost;
        }
        black_box(granted);
    }
    println!("{pairs} mutex pairs; used {}", used.lock());
}
