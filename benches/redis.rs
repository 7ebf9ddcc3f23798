//! `RedisStore` on loopback against its own `redis-server` (started here on a free port, no
//! persistence), next to a raw `EVALSHA` of a trivial script measured in the same run:
//!
//! - **latency, 1 client:** p50 and p99 of single reserve + commit pairs (and of single raw
//!   `EVALSHA` calls), timed one by one, printed; plus criterion's mean of each;
//! - **throughput, 50 clients:** 50 threads, each with its own connection, doing reserve +
//!   commit pairs (or raw `EVALSHA` calls) for a fixed count; operations per second printed (a
//!   pair counts as two operations);
//! - **server:** what the scripts of the 1-client reserve + commit run cost the server, from
//!   `INFO commandstats`: `EVALSHA` µs per script and inner commands per script, printed;
//! - **leased:** reserve + commit on a [`LeasedStore`] over the Redis node (slices large enough
//!   that no renewal falls in the measurement) next to the same pair on a `MemoryStore`, in one
//!   criterion group.
//!
//! `cargo bench --bench redis --features redis`; BENCHMARKS.md ("Redis") records the ratios.

#[path = "../tests/redis_support/mod.rs"]
mod redis_support;

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use budget_guard::{Amount, Budget, LeaseOptions, LeasedStore, Limit, Limits, RedisStore, Store};
use criterion::Criterion;
use redis_support::RedisServer;

const CLIENTS: usize = 50;
const PAIRS_PER_CLIENT: usize = 400;
const LATENCY_SAMPLES: usize = 5_000;

fn usd(text: &str) -> Amount {
    Amount::usd(text).expect("a valid dollar amount")
}

/// A trivial script: what one round trip through `EVALSHA` costs with nothing to do.
fn trivial() -> redis::Script {
    redis::Script::new("return 1")
}

fn percentile(sorted: &[Duration], percent: usize) -> Duration {
    sorted[(sorted.len() * percent / 100).min(sorted.len() - 1)]
}

/// Times `op` `LATENCY_SAMPLES` times, one call each, and prints p50/p99.
fn latency(name: &str, mut op: impl FnMut()) -> (Duration, Duration) {
    for _ in 0..200 {
        op();
    }
    let mut samples: Vec<Duration> = (0..LATENCY_SAMPLES)
        .map(|_| {
            let start = Instant::now();
            op();
            start.elapsed()
        })
        .collect();
    samples.sort();
    let (p50, p99) = (percentile(&samples, 50), percentile(&samples, 99));
    println!("redis latency {name}: p50 {p50:?}, p99 {p99:?} ({LATENCY_SAMPLES} calls)");
    (p50, p99)
}

/// Runs `op` `count` times on each of `CLIENTS` threads (each with its own state from `setup`)
/// and prints operations per second (`ops_per_call` operations per call).
fn throughput<S: Send + 'static>(
    name: &str,
    ops_per_call: usize,
    setup: impl Fn() -> S,
    op: impl Fn(&mut S) + Send + Sync + Copy + 'static,
) -> f64 {
    let barrier = Arc::new(Barrier::new(CLIENTS + 1));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let mut state = setup();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                op(&mut state); // connect before the clock starts
                barrier.wait();
                for _ in 0..PAIRS_PER_CLIENT {
                    op(&mut state);
                }
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for thread in threads {
        thread.join().expect("client");
    }
    let elapsed = start.elapsed();
    let ops = (CLIENTS * PAIRS_PER_CLIENT * ops_per_call) as f64 / elapsed.as_secs_f64();
    println!("redis throughput {name}: {ops:.0} operations/s ({CLIENTS} clients, {elapsed:?})");
    ops
}

/// `EVALSHA` calls, their server time in microseconds, and the inner commands the scripts ran
/// (`INFO commandstats` since the last `CONFIG RESETSTAT`).
fn server_stats(connection: &mut redis::Connection) -> (u64, u64, u64) {
    let stats = redis_support::commandstats(connection);
    let (evalsha, usec) = stats.get("evalsha").copied().unwrap_or_default();
    let inner = stats
        .iter()
        .filter(|(name, _)| redis_support::is_inner_command(name))
        .map(|(_, (calls, _))| calls)
        .sum();
    (evalsha, usec, inner)
}

fn bench(c: &mut Criterion) {
    let server = RedisServer::start();
    let url = server.url();
    // Exact in Redis up to 2^53 nano-dollars (about $9M).
    let big = Limit::hard(usd("5000000"));
    let tree = Budget::builder("team", big)
        .child("agent", Limits::none())
        .build_in(server.store("bench"))
        .expect("tree");
    drop(tree);
    let agent = |url: &str| {
        let store = RedisStore::connect(url, "bench").expect("store");
        Budget::open(Arc::new(store), "team/agent").expect("agent")
    };
    let (hold, cost) = (usd("0.05"), usd("0.031"));

    // Latency, one client.
    let mut raw = server.connection();
    let script = trivial();
    let raw_call = |connection: &mut redis::Connection| {
        let one: i64 = script.invoke(connection).expect("evalsha");
        black_box(one);
    };
    let one = agent(&url);
    let pair = |budget: &Budget| {
        let guard = budget.reserve(black_box(hold)).expect("fits");
        black_box(guard.commit(black_box(cost)).expect("commits"));
    };
    let (raw_p50, raw_p99) = latency("raw EVALSHA", || raw_call(&mut raw));
    redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .exec(&mut raw)
        .expect("reset stats");
    let (pair_p50, pair_p99) = latency("reserve+commit", || pair(&one));
    let (scripts, usec, inner) = server_stats(&mut raw);
    println!(
        "redis server, reserve+commit latency run: {:.1} usec per script (EVALSHA), {:.1} inner \
         commands per script ({scripts} scripts)",
        usec as f64 / scripts as f64,
        inner as f64 / scripts as f64
    );
    println!(
        "redis latency ratios: reserve+commit p50 = {:.2}x raw EVALSHA p50, p99 = {:.2}x",
        pair_p50.as_secs_f64() / raw_p50.as_secs_f64(),
        pair_p99.as_secs_f64() / raw_p99.as_secs_f64()
    );

    // Throughput, 50 clients with separate connections.
    let raw_url = url.clone();
    let raw_ops = throughput(
        "raw EVALSHA",
        1,
        move || {
            let client = redis::Client::open(raw_url.as_str()).expect("client");
            (client.get_connection().expect("connection"), trivial())
        },
        |(connection, script): &mut (redis::Connection, redis::Script)| {
            let one: i64 = script.invoke(connection).expect("evalsha");
            black_box(one);
        },
    );
    let pair_url = url.clone();
    let pair_ops = throughput(
        "reserve+commit",
        2,
        move || agent(&pair_url),
        move |budget: &mut Budget| {
            let guard = budget.reserve(hold).expect("fits");
            black_box(guard.commit(cost).expect("commits"));
        },
    );
    println!(
        "redis throughput ratio: reserve+commit operations/s = {:.2}x raw EVALSHA calls/s",
        pair_ops / raw_ops
    );

    // Criterion means, 1 client.
    let mut group = c.benchmark_group("redis");
    group.bench_function("raw_evalsha", |b| b.iter(|| raw_call(&mut raw)));
    group.bench_function("reserve_commit", |b| b.iter(|| pair(&one)));

    // Leased mode next to the MemoryStore.
    let memory = Budget::builder("team", big)
        .child("agent", Limits::none())
        .build()
        .expect("tree");
    let memory_agent = memory.at("agent").expect("agent");
    let remote: Arc<dyn Store> = Arc::new(RedisStore::connect(&url, "bench").expect("store"));
    let options = LeaseOptions::new(usd("1000000")).ttl(Duration::from_secs(60));
    let lease = Arc::new(LeasedStore::new(remote, "team/agent", options).expect("lease"));
    let leased = Budget::open(lease.clone(), lease.root_path()).expect("leased");
    group.bench_function("memory_reserve_commit", |b| b.iter(|| pair(&memory_agent)));
    group.bench_function("leased_reserve_commit", |b| b.iter(|| pair(&leased)));
    group.finish();
    let stats = lease.close().expect("close");
    println!(
        "lease: {} slice(s) opened, {} renewal(s) during the run",
        stats.opened, stats.renewed
    );
    drop(server);
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
