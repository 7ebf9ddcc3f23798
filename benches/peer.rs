//! Side by side in one run: the closest embeddable peer, `llm-budget` 0.2, doing its
//! check-and-record (an agent's `charge_usd`, and its lock-free `AtomicBudget::charge` core),
//! budget-guard's reserve + commit at depth 1 and depth 4, and a `parking_lot::Mutex<i64>`
//! check-and-add baseline.
//!
//! Issue 16's row: a priced LLM call, `llm-budget`'s `FleetAllocator::charge_agent_usage`
//! (look up the agent in the fleet, price the usage with its built-in table, check the agent's
//! cap, add the spend to the agent and the fleet, append an audit record) against
//! budget-guard's `reserve_for` + `commit_usage` on `fleet/agent` (price the worst case, hold
//! dollars, tokens and one request on both nodes, then price the reported usage and commit it).
//! Same model, same prices (`gpt-4o-mini`, $0.15 / $0.60 per million tokens), same usage.
//!
//! Run with `cargo bench --bench peer`; BENCHMARKS.md records the ratios, and the bench prints
//! budget-guard's speed-up over `llm-budget` after the group. The contention
//! counterpart (how many calls pass a cap that fits 50 when 8 threads race) is
//! `tests/peer_contention.rs`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use budget_guard::{Amount, Budget, Limit, ModelPrice, PriceTable, Usage};
use criterion::Criterion;
use llm_budget::budget::AtomicBudget;
use llm_budget::{AgentBudget, FleetAllocator, ModelTier};
use parking_lot::Mutex;

#[path = "support/ratios.rs"]
mod ratios;
use ratios::Ratio;

/// The criterion group every row belongs to (and the directory its estimates are read from).
const GROUP: &str = "peer";
/// The priced model; `llm-budget`'s built-in table has it at $0.15 / $0.60 per million tokens.
const MODEL: &str = "gpt-4o-mini";
/// The call's prompt and completion bound (what budget-guard holds in advance).
const PROMPT_TOKENS: u64 = 2_000;
const MAX_TOKENS: u64 = 1_000;
/// What the provider reports afterwards (what both libraries charge).
const USED_INPUT: u64 = 1_800;
const USED_OUTPUT: u64 = 250;

const LIMIT_USD: f64 = 1e9;
const COST_USD: f64 = 0.031;

fn usd(text: &str) -> Amount {
    Amount::usd(text).expect("a valid dollar amount")
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group(GROUP);

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

    // Issue 16: a priced call through each library's fleet API.
    let prices = PriceTable::new().with(
        MODEL,
        ModelPrice::per_million(
            "0.15".parse().expect("price"),
            "0.6".parse().expect("price"),
        )
        .expect("a valid price"),
    );
    let price = prices.get(MODEL).expect("priced");
    let usage = Usage::new(USED_INPUT, USED_OUTPUT);
    let fleet = Budget::builder("fleet", big)
        .child("agent", big)
        .build()
        .expect("tree");
    let agent = fleet.at("agent").expect("agent");
    group.bench_function("budget_guard_reserve_for_commit_usage_depth2", |b| {
        b.iter(|| {
            let guard = agent
                .reserve_for(&prices, black_box(MODEL), PROMPT_TOKENS, MAX_TOKENS)
                .expect("fits");
            black_box(
                guard
                    .commit_usage(price, black_box(&usage))
                    .expect("commits"),
            );
        })
    });

    // A fresh agent per sample (registered outside the timed loop, removed after it) keeps the
    // agent's audit log, one record per charge, from growing across samples.
    let allocator =
        FleetAllocator::new(LIMIT_USD * 1e3, ModelTier::Standard, 0.2).expect("allocator");
    let peer_usage = llm_budget::Usage::new(USED_INPUT, USED_OUTPUT);
    let mut sample = 0_u64;
    group.bench_function("llm_budget_fleet_charge_agent_usage", |b| {
        b.iter_custom(|iters| {
            sample += 1;
            let id = format!("agent-{sample}");
            allocator.register_agent(&id, LIMIT_USD).expect("agent");
            let elapsed = runtime.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(
                        allocator
                            .charge_agent_usage(
                                black_box(&id),
                                black_box(MODEL),
                                black_box(&peer_usage),
                                None,
                                None,
                            )
                            .await
                            .expect("fits"),
                    );
                }
                start.elapsed()
            });
            allocator.remove_agent(&id).expect("registered");
            elapsed
        })
    });
    group.finish();
}

/// `(bench, baseline, how the ratio reads, target)`: budget-guard's throughput over the peer's.
const PEER_RATIOS: &[(&str, &str, Ratio, &str)] = &[
    (
        "budget_guard_reserve_for_commit_usage_depth2",
        "llm_budget_fleet_charge_agent_usage",
        Ratio::Throughput,
        ">= 10x (issue 16)",
    ),
    (
        "budget_guard_reserve_commit_depth4",
        "llm_budget_agent_charge_usd",
        Ratio::Throughput,
        "",
    ),
    (
        "budget_guard_reserve_commit_depth1",
        "llm_budget_agent_charge_usd",
        Ratio::Throughput,
        "",
    ),
];

fn main() {
    let started = std::time::SystemTime::now();
    let mut criterion = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
    ratios::print(GROUP, started, PEER_RATIOS);
}
