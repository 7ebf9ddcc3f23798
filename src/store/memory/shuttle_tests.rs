//! Randomized-schedule concurrency checks of [`MemoryStore`] with
//! [shuttle](https://docs.rs/shuttle).
//!
//! Built only for `cargo test` with `RUSTFLAGS="--cfg shuttle"` (run `scripts/shuttle.sh`), which
//! swaps the store's `parking_lot` mutex for shuttle's through `src/sync.rs`. These are unit tests
//! of the library, not integration tests, because shuttle is a `cfg(shuttle)` *dev*-dependency: the
//! library sees it only in its own test build, and crates that depend on budget-guard never get
//! shuttle in their `Cargo.lock` (the way tokio keeps loom). Shuttle then runs each test body many
//! times, each time choosing which thread runs next at every lock acquisition, at random
//! (`check_random`) and with the PCT scheduler (`check_pct`, which finds every bug of depth ≤ 3
//! with a known probability per run).
//!
//! # Interleavings covered
//!
//! The store runs the whole ledger operation under one lock, so the only points where another
//! thread can run are between whole store operations: **every interleaving of whole operations**
//! (reserve, commit, release, record, credit, auto top-up, snapshot) of 2–3 threads plus an
//! observer is in the space explored, and shuttle samples it. Interleavings *inside* a ledger
//! operation do not exist (the ledger runs under the lock) and are not explored. Code outside the
//! store mutex (the event hub, the file store's writer) keeps its own primitives and is not covered
//! here.
//!
//! # Invariants asserted
//!
//! * at every observed instant (an observer thread snapshots between the workers' operations), on
//!   every node, `spent + reserved <= limit` for hard limits and no figure is negative;
//! * conservation at the end: `spent` equals the sum of what the workers committed, nothing is
//!   reserved, and the number of granted reserves is exactly what the limit allows;
//! * a threshold level is reported exactly once when usage only grows.
//! * an auto top-up rule fires exactly once per crossing (and is reported by exactly one
//!   operation) whichever worker's reserve or commit crosses it.
//!
//! # Replaying a failure
//!
//! Shuttle prints the failing seed or schedule. `SHUTTLE_RANDOM_SEED=<seed> scripts/shuttle.sh`
//! replays a `check_random` failure; `SHUTTLE_SCHEDULE=<schedule> scripts/shuttle.sh` replays any
//! printed schedule. `SHUTTLE_ITERATIONS` sets the runs per scheduler and test (default 10,000).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use crate::{Amount, Error, Limit, Limits, MemoryStore, NodeId, Snapshot, Store, Unit};

/// One cent in nano-dollars.
const CENT: i64 = 10_000_000;

fn cents(n: i64) -> Amount {
    Amount::try_from_minor(n * CENT, Unit::Usd).unwrap()
}

fn iterations() -> usize {
    std::env::var("SHUTTLE_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000)
}

/// Runs `test` under the random scheduler and the PCT scheduler (depth 3), or replays the
/// schedule in `SHUTTLE_SCHEDULE`.
fn check(test: fn()) {
    if let Ok(schedule) = std::env::var("SHUTTLE_SCHEDULE") {
        shuttle::replay(test, &schedule);
        return;
    }
    shuttle::check_random(test, iterations());
    shuttle::check_pct(test, iterations(), 3);
}

/// Every hard limit holds and every figure is non-negative.
fn assert_within_limits(snapshot: &Snapshot) {
    for node in &snapshot.nodes {
        for account in &node.accounts {
            let (spent, reserved) = (account.spent.minor_units(), account.reserved.minor_units());
            assert!(spent >= 0 && reserved >= 0 && account.debt.minor_units() >= 0);
            if let Some(limit) = account.limit
                && limit.kind() == crate::LimitKind::Hard
            {
                assert!(
                    spent + reserved <= limit.amount().minor_units(),
                    "hard limit passed at {}: {account:?}",
                    node.path
                );
            }
        }
    }
}

/// `root($1.00) → team($0.90) → leaf_i($0.50)`; returns the store and the leaves.
fn tree(leaves: usize) -> (Arc<MemoryStore>, Vec<NodeId>) {
    let store = Arc::new(MemoryStore::new());
    let root = store
        .create_node(None, "root", &Limit::hard(cents(100)).into())
        .unwrap();
    let team = store
        .create_node(Some(root), "team", &Limit::hard(cents(90)).into())
        .unwrap();
    let leaves = (0..leaves)
        .map(|i| {
            let limits: Limits = Limit::hard(cents(50)).with_thresholds([50, 80]).into();
            store
                .create_node(Some(team), &format!("leaf{i}"), &limits)
                .unwrap()
        })
        .collect();
    (store, leaves)
}

/// Each worker: reserve 20¢ three times on its node; commit 15¢, commit 20¢ and release.
/// Counts granted reserves and committed cents.
fn worker(store: &MemoryStore, node: NodeId, granted: &AtomicUsize, committed: &AtomicI64) {
    for round in 0..3 {
        match store.reserve(node, &cents(20).into()) {
            Ok(reservation) => {
                granted.fetch_add(1, Ordering::Relaxed);
                match round {
                    0 | 1 => {
                        let actual = 15 + 5 * round;
                        store
                            .commit(reservation.hold, &cents(actual).into())
                            .unwrap();
                        committed.fetch_add(actual, Ordering::Relaxed);
                    }
                    _ => assert!(store.release(reservation.hold).unwrap()),
                }
            }
            Err(Error::BudgetExceeded(_)) => {}
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
}

/// Two or three workers on `nodes` and an observer; checks the invariants.
fn race(nodes: &[NodeId], store: Arc<MemoryStore>) {
    let granted = Arc::new(AtomicUsize::new(0));
    let committed = Arc::new(AtomicI64::new(0));
    let mut threads = Vec::new();
    for &node in nodes {
        let (store, granted, committed) = (store.clone(), granted.clone(), committed.clone());
        threads.push(shuttle::thread::spawn(move || {
            worker(&store, node, &granted, &committed)
        }));
    }
    let observer = {
        let store = store.clone();
        shuttle::thread::spawn(move || {
            for _ in 0..4 {
                assert_within_limits(&store.snapshot().unwrap());
            }
        })
    };
    for thread in threads {
        thread.join().unwrap();
    }
    observer.join().unwrap();

    let snapshot = store.snapshot().unwrap();
    assert_within_limits(&snapshot);
    let root = &snapshot.nodes[0].accounts[0];
    assert_eq!(root.reserved.minor_units(), 0, "a hold leaked");
    assert_eq!(
        root.spent.minor_units(),
        committed.load(Ordering::Relaxed) * CENT,
        "spent differs from the sum of commits"
    );
    // The first reserve always finds room; what was granted later depends on the schedule, and
    // the limits bounded it at every instant (the observer and the final check above).
    assert!(granted.load(Ordering::Relaxed) >= 1);
}

/// Three threads on one leaf: the leaf's 50¢ fits two 20¢ holds at a time.
#[test]
fn same_leaf_reserve_commit_release() {
    check(|| {
        let (store, leaves) = tree(1);
        race(&[leaves[0]; 3], store);
    });
}

/// Three threads on three sibling leaves: the team's 90¢ is the binding limit.
#[test]
fn sibling_leaves_share_the_parent_limit() {
    check(|| {
        let (store, leaves) = tree(3);
        race(&leaves, store);
    });
}

/// Exactly as many reserves are granted as fit: two threads race for a leaf that fits five 10¢
/// holds, each trying four, holding everything; the losers are denied, none passes the limit.
#[test]
fn exactly_what_fits_is_granted() {
    check(|| {
        let (store, leaves) = tree(1);
        let leaf = leaves[0];
        let granted = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (store, granted) = (store.clone(), granted.clone());
                shuttle::thread::spawn(move || {
                    for _ in 0..4 {
                        if store.reserve(leaf, &cents(10).into()).is_ok() {
                            granted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(granted.load(Ordering::Relaxed), 5);
        let balance = store.balance(leaf, Unit::Usd).unwrap();
        assert_eq!(balance.reserved, cents(50));
    });
}

/// Thresholds under a race: usage only grows (commits of the whole hold), so the 50 % and 80 %
/// levels of the leaf are each reported exactly once, by whichever operation crossed them.
#[test]
fn each_threshold_level_is_reported_once() {
    check(|| {
        let (store, leaves) = tree(1);
        let leaf = leaves[0];
        let reported = Arc::new(shuttle::sync::Mutex::new(Vec::new()));
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let (store, reported) = (store.clone(), reported.clone());
                shuttle::thread::spawn(move || {
                    for _ in 0..2 {
                        let Ok(granted) = store.reserve(leaf, &cents(8).into()) else {
                            continue;
                        };
                        let committed = store.commit(granted.hold, &cents(8).into()).unwrap();
                        let mut reported = reported.lock().unwrap();
                        for crossing in granted.events.iter().chain(committed.events.iter()) {
                            if crossing.node().as_ref() == "root/team/leaf0" {
                                reported.push(crossing.level());
                            }
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        // 6 × 8¢ = 48¢ of 50¢: 96 %.
        let mut levels = reported.lock().unwrap().clone();
        levels.sort_unstable();
        assert_eq!(levels, [50, 80]);
    });
}

/// A top-up racing reserves: a credit of 30¢ on the leaf lands at any point; the number of
/// 20¢ holds granted is two before it and three after, never more.
#[test]
fn credit_races_reserves() {
    check(|| {
        let (store, leaves) = tree(1);
        let leaf = leaves[0];
        let granted = Arc::new(AtomicUsize::new(0));
        let mut threads: Vec<_> = (0..2)
            .map(|_| {
                let (store, granted) = (store.clone(), granted.clone());
                shuttle::thread::spawn(move || {
                    for _ in 0..2 {
                        if store.reserve(leaf, &cents(20).into()).is_ok() {
                            granted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        threads.push({
            let store = store.clone();
            shuttle::thread::spawn(move || {
                store.credit(leaf, cents(30)).unwrap();
                assert_within_limits(&store.snapshot().unwrap());
            })
        });
        for thread in threads {
            thread.join().unwrap();
        }
        let granted = granted.load(Ordering::Relaxed);
        assert!((2..=4).contains(&granted), "granted {granted}");
        let balance = store.balance(leaf, Unit::Usd).unwrap();
        assert_eq!(balance.reserved.minor_units(), granted as i64 * 20 * CENT);
        assert!(balance.reserved <= cents(80));
        assert_within_limits(&store.snapshot().unwrap());
    });
}

/// An auto top-up racing reserves and commits: three workers each reserve and commit 20¢ twice on
/// a 50¢ leaf whose rule adds 20¢ once remaining falls below 15¢, at most once a day. Whatever
/// the order, the rule fires exactly once (reported by exactly one operation), the limit ends at
/// 70¢, and exactly three reserves are granted (the fourth would need 80¢).
#[test]
fn auto_top_up_fires_exactly_once_under_races() {
    check(|| {
        let clock = crate::ManualClock::new(crate::Timestamp::EPOCH);
        let store = Arc::new(MemoryStore::with_clock(clock));
        let leaf = store
            .create_node(None, "leaf", &Limit::hard(cents(50)).into())
            .unwrap();
        let rule = crate::top_up::TopUp::when_below(cents(15))
            .adding(cents(20))
            .at_most(1)
            .per(std::time::Duration::from_secs(86_400));
        store.set_top_up(leaf, Some(rule)).unwrap();
        let granted = Arc::new(AtomicUsize::new(0));
        let reported = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let (store, granted, reported) = (store.clone(), granted.clone(), reported.clone());
                shuttle::thread::spawn(move || {
                    for _ in 0..2 {
                        if let Ok(reservation) = store.reserve(leaf, &cents(20).into()) {
                            granted.fetch_add(1, Ordering::Relaxed);
                            reported.fetch_add(reservation.top_ups.len(), Ordering::Relaxed);
                            let committed = store.commit(reservation.hold, &cents(20).into());
                            let committed = committed.unwrap();
                            reported.fetch_add(committed.top_ups.len(), Ordering::Relaxed);
                        }
                        assert_within_limits(&store.snapshot().unwrap());
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let balance = store.balance(leaf, Unit::Usd).unwrap();
        assert_eq!(granted.load(Ordering::Relaxed), 3);
        assert_eq!(
            reported.load(Ordering::Relaxed),
            1,
            "one top-up, reported once"
        );
        assert_eq!(balance.limit.unwrap().amount(), cents(70));
        assert_eq!(balance.spent, cents(60));
        assert_eq!(balance.reserved, cents(0));
    });
}
