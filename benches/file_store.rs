//! FileStore durability cost, next to a baseline measured in the same run: appending 64 bytes to
//! a file and `fdatasync`ing it, the least any durable commit can cost.
//!
//! * `file_store/1_thread`: one iteration = a durable reserve + a durable commit (2 records,
//!   2 syncs), against `baseline/append64_fdatasync_x2` (2 appends + 2 fdatasyncs).
//! * `file_store/8_threads`: 8 threads each doing reserve + commit on one tree; group commit
//!   shares each sync. The run prints the operations per sync it observed.
//!
//! `cargo bench --bench file_store`

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use budget_guard::{Amount, Cost, FileStore, Limit, NodeId, Store};
use criterion::{Criterion, Throughput};

fn bench_path(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("bg-bench-{name}-{}.bg", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

fn open_tree(name: &str) -> (Arc<FileStore>, NodeId, PathBuf) {
    let path = bench_path(name);
    let store = Arc::new(FileStore::open(&path).unwrap());
    let root = store
        .create_node(
            None,
            "acme",
            &Limit::hard(Amount::usd("1000000000").unwrap()).into(),
        )
        .unwrap();
    let team = store
        .create_node(
            Some(root),
            "team",
            &Limit::hard(Amount::usd("100000000").unwrap()).into(),
        )
        .unwrap();
    let agent = store
        .create_node(
            Some(team),
            "agent",
            &Limit::hard(Amount::usd("10000000").unwrap()).into(),
        )
        .unwrap();
    (store, agent, path)
}

fn pair(store: &FileStore, node: NodeId, estimate: &Cost, actual: &Cost) {
    let granted = store.reserve(node, estimate).unwrap();
    store.commit(granted.hold, actual).unwrap();
}

fn benches(c: &mut Criterion) {
    let estimate = Cost::from(Amount::usd("0.01").unwrap());
    let actual = Cost::from(Amount::usd("0.000000001").unwrap());

    let mut group = c.benchmark_group("durable");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(2));

    let baseline_path = bench_path("baseline");
    let mut baseline: File = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&baseline_path)
        .unwrap();
    let record = [0x5au8; 64];
    group.bench_function("baseline/append64_fdatasync_x2", |b| {
        b.iter(|| {
            for _ in 0..2 {
                baseline.write_all(&record).unwrap();
                baseline.sync_data().unwrap();
            }
        });
    });

    let (store, agent, path) = open_tree("one");
    group.bench_function("file_store/1_thread", |b| {
        b.iter(|| pair(&store, agent, &estimate, &actual));
    });
    drop(store);
    let _ = std::fs::remove_file(&path);

    let (store, agent, path) = open_tree("eight");
    let ops = AtomicU64::new(0);
    let syncs_before = store.syncs();
    group.bench_function("file_store/8_threads", |b| {
        b.iter_custom(|iters| {
            let next = AtomicU64::new(0);
            let start = Instant::now();
            std::thread::scope(|scope| {
                for _ in 0..8 {
                    scope.spawn(|| {
                        while next.fetch_add(1, Ordering::Relaxed) < iters {
                            pair(&store, agent, &estimate, &actual);
                        }
                    });
                }
            });
            ops.fetch_add(2 * iters, Ordering::Relaxed);
            start.elapsed()
        });
    });
    let syncs = store.syncs() - syncs_before;
    let ops = ops.load(Ordering::Relaxed);
    eprintln!(
        "file_store/8_threads: {ops} durable operations, {syncs} syncs, {:.2} operations per sync",
        ops as f64 / syncs.max(1) as f64
    );
    drop(store);
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(&baseline_path);
    group.finish();
}

// What `criterion_group!` + `criterion_main!` expand to, written out so the bench has no
// undocumented public item.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    benches(&mut criterion);
    criterion.final_summary();
}
