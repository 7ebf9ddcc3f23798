//! Does the hot path stay flat as the books grow? `reserve` + `commit` on a depth-3 leaf of a
//! 10-node tree, of a 1,000,001-node tree (1,000 teams × 1,000 agents), and of the small tree
//! while 1,000,000 other holds are open, against a `parking_lot::Mutex<i64>` check-and-add
//! measured in the same run.
//!
//! Run with `cargo bench --bench scale` (building the big books takes a few seconds and about
//! 2 GB of memory); BENCHMARKS.md records the ratios. Memory per node and per hold is measured by
//! `tests/footprint.rs`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use budget_guard::expiry::ReserveOptions;
use budget_guard::{Amount, Limit, Limits, MemoryStore, NodeId, Store, Unit};
use criterion::Criterion;
use parking_lot::Mutex;

const HUGE: i64 = 1_000_000_000 * 1_000_000_000; // $1e9 in nano-dollars
const HOLD: i64 = 50_000_000; // $0.05
const COST: i64 = 31_000_000; // $0.031

fn usd(minor: i64) -> Amount {
    Amount::try_from_minor(minor, Unit::Usd).expect("a valid amount")
}

/// `root → teams × agents` with a hard limit on every node; returns the store and one leaf.
fn tree(teams: usize, agents: usize) -> (Arc<MemoryStore>, NodeId) {
    let store = Arc::new(MemoryStore::new());
    let limits: Limits = Limit::hard(usd(HUGE)).into();
    let root = store.create_node(None, "root", &limits).expect("root");
    let mut leaf = root;
    for t in 0..teams {
        let team = store
            .create_node(Some(root), &format!("t{t}"), &limits)
            .expect("team");
        for a in 0..agents {
            leaf = store
                .create_node(Some(team), &format!("a{a}"), &limits)
                .expect("agent");
        }
    }
    (store, leaf)
}

#[inline]
fn reserve_commit(store: &MemoryStore, leaf: NodeId) {
    let granted = store
        .reserve(leaf, &usd(black_box(HOLD)).into())
        .expect("fits");
    black_box(
        store
            .commit(granted.hold, &usd(black_box(COST)).into())
            .expect("commits"),
    );
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("scale");

    let cell = Mutex::new(0i64);
    group.bench_function("baseline_check_and_add", |b| {
        b.iter(|| {
            let mut value = cell.lock();
            let amount = black_box(HOLD);
            if *value + amount <= HUGE {
                *value += amount;
            }
        })
    });

    // 1 + 3 + 6 = 10 nodes, leaf at depth 3.
    let (small, small_leaf) = tree(3, 2);
    group.bench_function("reserve_commit_10_nodes", |b| {
        b.iter(|| reserve_commit(&small, small_leaf))
    });

    // 1 + 1,000 + 1,000,000 nodes, leaf at depth 3.
    let (big, big_leaf) = tree(1_000, 1_000);
    group.bench_function("reserve_commit_1m_nodes", |b| {
        b.iter(|| reserve_commit(&big, big_leaf))
    });
    drop(big);

    // The small tree with 1,000,000 open holds spread over its six leaves (one hour TTL, so none
    // expires during the run).
    let (held, held_leaf) = tree(3, 2);
    let leaves: Vec<NodeId> = held
        .snapshot()
        .expect("snapshot")
        .nodes
        .iter()
        .filter(|node| node.path.matches('/').count() == 2)
        .map(|node| held.resolve(&node.path).expect("leaf"))
        .collect();
    let options = ReserveOptions::new().ttl(Duration::from_secs(3_600));
    for i in 0..1_000_000 {
        let leaf = leaves[i % leaves.len()];
        // The reservation is only a receipt: the hold stays open in the store.
        held.reserve_with(leaf, &usd(1).into(), &options)
            .expect("fits");
    }
    group.bench_function("reserve_commit_1m_open_holds", |b| {
        b.iter(|| reserve_commit(&held, held_leaf))
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
