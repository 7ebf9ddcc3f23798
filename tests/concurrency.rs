//! Many threads hammering one budget: a hard limit is never passed at any observed moment, every
//! granted hold is accounted, and the final books balance to the nano-dollar.

use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};

use budget_guard::{Amount, Budget, Limit, Unit};

const WORKERS: usize = 8;
const ROUNDS: usize = 4_000;

fn usd(text: &str) -> Amount {
    Amount::usd(text).unwrap()
}

/// Checks `spent + reserved <= limit` on every node of the store's snapshot.
fn assert_within_limits(root: &Budget) {
    let snapshot = root.snapshot().unwrap();
    for node in &snapshot.nodes {
        for account in &node.accounts {
            if let Some(limit) = account.limit {
                let used = account.spent.minor_units() + account.reserved.minor_units();
                assert!(
                    used <= limit.amount().minor_units(),
                    "{}: spent {} + reserved {} passed the hard limit {}",
                    node.path,
                    account.spent,
                    account.reserved,
                    limit.amount()
                );
            }
        }
    }
}

/// Workers reserve, commit, release and drop on leaves while an observer snapshots the books
/// continuously; at the end the spend equals the sum of what the workers committed.
fn hammer(root: &Budget, leaves: &[Budget]) {
    let committed_nanos = AtomicI64::new(0);
    let granted = AtomicUsize::new(0);
    let denied = AtomicUsize::new(0);
    let done = AtomicBool::new(false);
    let barrier = Barrier::new(WORKERS + 1);
    let observations = std::thread::scope(|scope| {
        let observer = scope.spawn(|| {
            barrier.wait();
            let mut seen = 0usize;
            while !done.load(Ordering::Acquire) {
                assert_within_limits(root);
                seen += 1;
            }
            seen
        });
        let workers: Vec<_> = (0..WORKERS)
            .map(|worker| {
                let leaf = &leaves[worker % leaves.len()];
                let (barrier, committed_nanos, granted, denied) =
                    (&barrier, &committed_nanos, &granted, &denied);
                scope.spawn(move || {
                    barrier.wait();
                    for round in 0..ROUNDS {
                        // Estimates between $0.01 and $0.08; actual cost a fraction of it.
                        let estimate = 10_000_000 * (1 + (worker + round) as i64 % 8);
                        let hold = Amount::try_from_minor(estimate, Unit::Usd).unwrap();
                        match leaf.reserve(hold) {
                            Ok(guard) => {
                                granted.fetch_add(1, Ordering::Relaxed);
                                match round % 4 {
                                    0 => guard.release().unwrap(),
                                    1 => drop(guard),
                                    _ => {
                                        let actual = estimate / 2 + round as i64;
                                        let cost =
                                            Amount::try_from_minor(actual, Unit::Usd).unwrap();
                                        guard.commit(cost).unwrap();
                                        committed_nanos.fetch_add(actual, Ordering::Relaxed);
                                    }
                                }
                            }
                            Err(error) => {
                                assert!(error.is_denial(), "unexpected error: {error}");
                                denied.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
        done.store(true, Ordering::Release);
        observer.join().unwrap()
    });
    assert!(observations > 0, "the observer never looked");
    assert!(granted.load(Ordering::Relaxed) > 0);
    assert!(
        denied.load(Ordering::Relaxed) > 0,
        "the limit was never reached: test too weak"
    );
    let balance = root.balance(Unit::Usd).unwrap();
    assert_eq!(balance.reserved, Amount::zero(Unit::Usd), "a hold leaked");
    assert_eq!(
        balance.spent.minor_units() + balance.debt.minor_units(),
        committed_nanos.load(Ordering::Relaxed),
        "spend on the root differs from what the workers committed"
    );
    let leaf_total: i64 = leaves
        .iter()
        .map(|leaf| leaf.balance(Unit::Usd).unwrap().spent.minor_units())
        .sum();
    assert_eq!(leaf_total, committed_nanos.load(Ordering::Relaxed));
    assert_within_limits(root);
}

#[test]
fn eight_threads_on_one_leaf_never_pass_its_limit() {
    let root = Budget::builder("org", Limit::hard(usd("1000")))
        .child("team", Limit::hard(usd("500")))
        .child("team/agent", Limit::hard(usd("300")))
        .child("team/agent/task", Limit::hard(usd("250")))
        .build()
        .unwrap();
    let leaf = root.at("team/agent/task").unwrap();
    hammer(&root, &[leaf]);
}

#[test]
fn eight_threads_on_siblings_never_pass_the_shared_parent() {
    let mut builder =
        Budget::builder("org", Limit::hard(usd("1000"))).child("team", Limit::hard(usd("200")));
    for sibling in 0..4 {
        builder = builder.child(&format!("team/agent-{sibling}"), Limit::hard(usd("120")));
    }
    let root = builder.build().unwrap();
    let leaves: Vec<Budget> = (0..4)
        .map(|sibling| root.at(&format!("team/agent-{sibling}")).unwrap())
        .collect();
    hammer(&root, &leaves);
}

#[test]
fn exactly_as_many_holds_as_fit_are_granted_under_contention() {
    // Seed 004's promise: two operations cannot race past the cap. 16 threads each try to hold
    // $1 ten times on a $50 cap, and keep what they get: exactly 50 succeed.
    let root = Budget::builder("task", Limit::hard(usd("50")))
        .build()
        .unwrap();
    let barrier = Barrier::new(16);
    let granted: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..16)
            .map(|_| {
                let (root, barrier) = (&root, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    (0..10)
                        .filter_map(|_| root.reserve_owned(usd("1")).ok())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let guards: Vec<_> = handles
            .into_iter()
            .flat_map(|handle| handle.join().unwrap())
            .collect();
        let count = guards.len();
        for guard in guards {
            guard.commit(usd("1")).unwrap();
        }
        count
    });
    assert_eq!(granted, 50);
    assert_eq!(root.balance(Unit::Usd).unwrap().spent, usd("50"));
}

#[test]
fn handles_and_owned_guards_are_send_and_sync() {
    fn require_send_sync<T: Send + Sync>() {}
    fn require_send<T: Send>() {}
    require_send_sync::<Budget>();
    require_send_sync::<budget_guard::MemoryStore>();
    require_send::<budget_guard::Guard<'static>>();
    require_send_sync::<budget_guard::Guard<'static>>();
    require_send_sync::<budget_guard::Error>();
}
