//! Side by side in one run: the closest embeddable peer, `llm-budget` 0.2, doing its
//! check-and-record (an agent's `charge_usd`, and its lock-free `AtomicBudget::charge` core),
//! budget-guard's reserve + commit at depth 1 and depth 4, and a `parking_lot::Mutex<i64>`
//! check-and-add baseline.
//!
//! Run with `cargo bench --bench peer`; BENCHMARKS.md records the ratios. The contention
//! counterpart (how many calls pass a cap that fits 50 when 8 threads race) is
//! `tests/peer_contention.rs`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use budget_guard::{Amount, Budget, Limit};
use criterion::Criterion;
use llm_budget::budget::AtomicBudget;
use llm_budget::{AgentBudget, ModelTier};
use parking_lot::Mutex;

const LIMIT_USD: f64 = 1e9;
const COST_USD: f64 = 0.031;

fn usd(text: &str) -> Amount {
    Amount::usd(text).expect("a valid dollar amount")
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("peer");

    let cell = Mutex::new(0i64);
    let limit = usd("1000000000").minor_units();
    group.bench_function("baseline_check_and_add", |b| {
        b.iter(|| {
            let mut value = cell.lock();
            let amount = black_box(31_000_000);
            if *value + amount <= limit {
                *value += amount;
            }
        })
    });

    let big = Limit::hard(usd("1000000000"));
    let depth1 = Budget::builder("org", big).build().expect("tree");
    let root = Budget::builder("org", big)
        .child("team", big)
        .child("team/agent", big)
        .child("team/agent/task", big)
        .build()
        .expect("tree");
    let depth4 = root.at("team/agent/task").expect("task");
    let (hold, cost) = (usd("0.05"), usd("0.031"));
    group.bench_function("budget_guard_reserve_commit_depth1", |b| {
        b.iter(|| {
            let guard = depth1.reserve(black_box(hold)).expect("fits");
            black_box(guard.commit(black_box(cost)).expect("commits"));
        })
    });
    group.bench_function("budget_guard_reserve_commit_depth4", |b| {
        b.iter(|| {
            let guard = depth4.reserve(black_box(hold)).expect("fits");
            black_box(guard.commit(black_box(cost)).expect("commits"));
        })
    });

    // llm-budget's agent API is async; every charge is awaited inside one current-thread
    // runtime so the runtime's own cost stays out of the figure. A fresh agent per sample keeps
    // its audit log (one record per charge) from growing without bound.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    group.bench_function("llm_budget_agent_charge_usd", |b| {
        b.iter_custom(|iters| {
            let agent =
                AgentBudget::new("agent", LIMIT_USD, ModelTier::Standard, 0.2).expect("agent");
            runtime.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(
                        agent
                            .charge_usd(black_box(COST_USD), None, None)
                            .await
                            .expect("fits"),
                    );
                }
                start.elapsed()
            })
        })
    });

    let atomic = AtomicBudget::new(LIMIT_USD).expect("budget");
    group.bench_function("llm_budget_atomic_charge", |b| {
        b.iter(|| black_box(atomic.charge(black_box(COST_USD)).expect("fits")))
    });
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
}
