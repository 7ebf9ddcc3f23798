//! Eight threads race for a cap that fits exactly 50 calls of $0.02: how many get through?
//! budget-guard must let exactly 50 through, in every round. `llm-budget` 0.2 (the closest
//! embeddable peer, a dev-dependency) is measured the same way for BENCHMARKS.md; its count is
//! printed, not asserted (`cargo test --test peer_contention -- --nocapture`).

use std::sync::Barrier;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use budget_guard::{Amount, Budget, Limit, Unit};
use llm_budget::{AgentBudget, ModelTier};

const THREADS: usize = 8;
/// Each thread tries this many calls: 160 attempts for 50 places.
const ATTEMPTS: usize = 20;
const ROUNDS: usize = 20;

thread_local! {
    /// llm-budget's agent API is async: one current-thread runtime per racing thread.
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
}

/// Runs `call` from eight threads released together; returns how many calls succeeded.
fn race(call: &(dyn Fn() -> bool + Sync)) -> usize {
    let start = Barrier::new(THREADS);
    let passed = AtomicUsize::new(0);
    thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                start.wait();
                for _ in 0..ATTEMPTS {
                    if call() {
                        passed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    passed.into_inner()
}

#[test]
fn budget_guard_lets_exactly_50_through() {
    let mut counts = Vec::new();
    for _ in 0..ROUNDS {
        let agent = Budget::builder("org", Limit::hard(Amount::usd("100").unwrap()))
            .child("agent", Limit::hard(Amount::usd("1.00").unwrap()))
            .build()
            .unwrap()
            .at("agent")
            .unwrap();
        let call = Amount::usd("0.02").unwrap();
        let passed = race(&|| match agent.reserve(call) {
            Ok(guard) => guard.commit(call).is_ok(),
            Err(error) => {
                assert!(error.is_denial(), "{error}");
                false
            }
        });
        assert_eq!(passed, 50);
        assert_eq!(
            agent.balance(Unit::Usd).unwrap().spent,
            Amount::usd("1.00").unwrap()
        );
        counts.push(passed);
    }
    eprintln!("budget-guard: {counts:?} calls through a cap of 50 ({ROUNDS} rounds)");
}

#[test]
fn llm_budget_under_the_same_race() {
    let mut counts = Vec::new();
    for _ in 0..ROUNDS {
        let agent = AgentBudget::new("agent", 1.00, ModelTier::Standard, 0.2).unwrap();
        let passed = race(&|| {
            RUNTIME.with(|runtime| runtime.block_on(agent.charge_usd(0.02, None, None)).is_ok())
        });
        counts.push(passed);
    }
    let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
    eprintln!("llm-budget: {min}..={max} calls through a cap of 50 ({ROUNDS} rounds): {counts:?}");
    // At most every attempt; the figure itself goes to BENCHMARKS.md.
    assert!(*max <= THREADS * ATTEMPTS);
}
