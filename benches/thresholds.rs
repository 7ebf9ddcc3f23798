//! The cost of threshold levels on the hot path (issue #4): `reserve` + `commit` on a depth-4
//! path with no levels, with three levels (50/80/95 %) on every node and none crossed, and the
//! same with an event callback registered, all in the same run.
//!
//! Run with `cargo bench --bench thresholds`; BENCHMARKS.md ("Thresholds") records the ratios
//! against `plain_reserve_commit_depth4` of the same run.

use std::hint::black_box;

use budget_guard::{Amount, Budget, Limit};
use criterion::Criterion;

/// Far above anything a run can spend, so no level is ever crossed and no reserve denied.
const LIMIT_USD: &str = "1000000000";
const HOLD_USD: &str = "0.05";
const COST_USD: &str = "0.031";

fn usd(text: &str) -> Amount {
    Amount::usd(text).expect("a valid dollar amount")
}

/// `org/team/agent/task`, every node with `limit`; returns the task.
fn depth4(limit: Limit) -> Budget {
    let root = Budget::builder("org", limit)
        .child("team", limit)
        .child("team/agent", limit)
        .child("team/agent/task", limit)
        .build()
        .expect("a valid tree");
    root.at("team/agent/task").expect("task exists")
}

fn bench_thresholds(c: &mut Criterion) {
    let (hold, cost) = (usd(HOLD_USD), usd(COST_USD));
    let plain = depth4(Limit::hard(usd(LIMIT_USD)));
    let levels = depth4(Limit::hard(usd(LIMIT_USD)).with_thresholds([50, 80, 95]));
    let watched = depth4(Limit::hard(usd(LIMIT_USD)).with_thresholds([50, 80, 95]));
    watched.on_event(|event| {
        black_box(event);
    });

    let mut group = c.benchmark_group("thresholds");
    for (name, task) in [
        ("plain_reserve_commit_depth4", &plain),
        ("levels3_reserve_commit_depth4", &levels),
        ("levels3_callback_reserve_commit_depth4", &watched),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let guard = task.reserve(black_box(hold)).expect("room");
                black_box(guard.commit(black_box(cost)).expect("commit"));
            });
        });
    }
    group.finish();
}

// What `criterion_group!` + `criterion_main!` expand to, written out so the bench has no
// undocumented public item.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench_thresholds(&mut criterion);
    criterion.final_summary();
}
