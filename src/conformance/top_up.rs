//! Conformance checks of burn rates and auto top-ups (see [`crate::burn`], [`crate::top_up`]).

use std::sync::{Arc, Barrier};
use std::time::Duration;

use super::{supports_all, usd};
use crate::amount::{Amount, Unit};
use crate::budget::Budget;
use crate::burn::BurnWindow;
use crate::clock::{Clock, ManualClock};
use crate::error::Error;
use crate::op::OpKind;
use crate::policy::Limit;
use crate::store::Store;
use crate::threshold::ThresholdCrossing;
use crate::top_up::{TopUp, TopUpApplied, TopUpReason};

fn root(store: Arc<dyn Store>, limit: &str) -> Budget {
    Budget::builder("wallet", Limit::hard(usd(limit)))
        .build_shared(store)
        .expect("a fresh store builds a tree")
}

fn limit_of(budget: &Budget) -> Amount {
    budget
        .balance(Unit::Usd)
        .expect("balance")
        .limit
        .expect("limited")
        .amount()
}

/// What one reserve + commit of `amount` reported.
struct Spent {
    top_ups: Vec<TopUpApplied>,
    crossings: Vec<ThresholdCrossing>,
}

fn spend(budget: &Budget, amount: &str) -> Spent {
    let guard = budget.reserve(usd(amount)).expect("fits");
    let mut top_ups = guard.top_ups().to_vec();
    let mut crossings: Vec<ThresholdCrossing> = guard.crossings().iter().cloned().collect();
    let committed = guard.commit(usd(amount)).expect("commits");
    top_ups.extend(committed.top_ups);
    crossings.extend(committed.events.iter().cloned());
    Spent { top_ups, crossings }
}

/// A rule tops up once per crossing of its threshold, as a credit of its amount, within its
/// caps per window; a capped crossing fires in the next window; a top-up that leaves the node
/// below the threshold does not fire again until the node was back above it.
pub fn top_ups_fire_once_per_crossing(store: Arc<dyn Store>, clock: &ManualClock) {
    if !supports_all(&*store, &[OpKind::SetTopUp, OpKind::Credit]) {
        return;
    }
    let wallet = root(store, "10");
    let rule = TopUp::when_below(usd("3"))
        .adding(usd("5"))
        .at_most(2)
        .per(Duration::from_secs(3600));
    assert_eq!(wallet.set_top_up(rule).expect("valid rule"), None);
    let first = spend(&wallet, "8"); // remaining 2 < 3 once held: +5
    assert_eq!(first.top_ups.len(), 1, "the crossing tops up once");
    assert_eq!(first.top_ups[0].added, usd("5"));
    assert_eq!(first.top_ups[0].limit, usd("15"));
    assert_eq!(first.top_ups[0].remaining, usd("7"));
    assert_eq!(first.top_ups[0].reason, TopUpReason::Below);
    assert_eq!(first.top_ups[0].applied_at, clock.now());
    assert!(
        spend(&wallet, "1").top_ups.is_empty(),
        "remaining 6: no crossing"
    );
    assert_eq!(spend(&wallet, "4").top_ups.len(), 1, "second crossing");
    assert_eq!(limit_of(&wallet), usd("20"));
    assert!(
        spend(&wallet, "5").top_ups.is_empty(),
        "the third crossing in the window is capped"
    );
    assert_eq!(limit_of(&wallet), usd("20"));
    clock.advance(Duration::from_secs(3600));
    let guard = wallet.reserve(usd("0.5")).expect("fits");
    assert_eq!(
        guard.top_ups().len(),
        1,
        "a capped crossing fires in the next window"
    );
    guard.commit(usd("0.5")).expect("commits");
    assert_eq!(limit_of(&wallet), usd("25"), "a top-up is a credit");
    let state = wallet.store().snapshot().expect("snapshot").nodes[0]
        .top_up
        .expect("the rule is in the snapshot");
    assert_eq!((state.count, state.total), (1, usd("5")));

    // A small top-up leaves the node below the threshold: the rule disarms.
    let small = root_small(wallet.store().clone());
    assert_eq!(
        spend(&small, "8").top_ups.len(),
        1,
        "2 left: +1 = 3, still below 5"
    );
    assert!(
        spend(&small, "1").top_ups.is_empty(),
        "the same crossing never tops up twice"
    );
    small.credit(usd("10")).expect("credit"); // back above the threshold
    assert_eq!(
        spend(&small, "9").top_ups.len(),
        1,
        "a new crossing after the node was back above it tops up again"
    );
    assert_eq!(limit_of(&small), usd("22"));
}

fn root_small(store: Arc<dyn Store>) -> Budget {
    let small = Budget::builder("small", Limit::hard(usd("10")))
        .build_shared(store)
        .expect("a second tree");
    small
        .set_top_up(TopUp::when_below(usd("5")).adding(usd("1")))
        .expect("valid rule");
    small
}

/// Burn rates are measured over the window, projected exactly, carried in balances and
/// threshold crossings, and drive predictive top-ups.
pub fn burn_rates_project_depletion(store: Arc<dyn Store>, clock: &ManualClock) {
    if !supports_all(&*store, &[OpKind::SetBurnWindow, OpKind::SetTopUp]) {
        return;
    }
    let start = clock.now();
    let org = Budget::builder("org", Limit::hard(usd("100")))
        .child("agent", Limit::hard(usd("10")).with_thresholds([50]))
        .build_shared(store)
        .expect("tree");
    let agent = org.at("agent").expect("agent");
    let hour = Duration::from_secs(3600);
    agent
        .set_burn_window(Some(BurnWindow::new(hour).expect("valid")))
        .expect("tracks");
    org.set_burn_window(Some(BurnWindow::new(hour).expect("valid")))
        .expect("tracks");
    let idle = agent.balance(Unit::Usd).expect("balance");
    assert_eq!(idle.burn_rate.map(|rate| rate.spent()), Some(usd("0")));
    assert_eq!(idle.depletes_at, None, "nothing spent: no projection");
    let mut crossing = None;
    for _ in 0..4 {
        clock.advance(Duration::from_secs(900));
        crossing = crossing.or(spend(&agent, "1.5").crossings.into_iter().next());
    }
    let balance = agent.balance(Unit::Usd).expect("balance");
    let rate = balance.burn_rate.expect("tracked");
    assert_eq!((rate.spent(), rate.over()), (usd("6"), hour));
    // $4 left at $6 an hour: 40 minutes from now.
    assert_eq!(
        balance.depletes_at,
        Some(clock.now().saturating_add(Duration::from_secs(2400)))
    );
    let parent = org.balance(Unit::Usd).expect("balance");
    assert_eq!(
        parent.burn_rate.map(|rate| rate.spent()),
        Some(usd("6")),
        "spend below a tracking node counts on it"
    );
    let crossing = crossing.expect("the 50 % level was crossed");
    assert_eq!(crossing.level(), 50);
    assert_eq!(
        crossing.burn_rate().map(|rate| rate.spent()),
        Some(usd("6"))
    );
    // Levels fire on committed spend: the commit at t = 60 min took spend to $6 of $10 (50 %
    // passed); $4 left at $6 an hour: 2,400 s.
    let at = start.saturating_add(Duration::from_secs(3600 + 2400));
    assert_eq!(crossing.depletes_at(), Some(at));
    // Old spend leaves the window.
    clock.advance(Duration::from_secs(3600));
    let later = agent.balance(Unit::Usd).expect("balance");
    assert_eq!(later.burn_rate.map(|rate| rate.spent()), Some(usd("0")));

    // Predictive: top up when depletion is within two hours.
    agent
        .set_top_up(
            TopUp::when_below(usd("0.01"))
                .adding(usd("5"))
                .predictive(Duration::from_secs(5400))
                .at_most(1),
        )
        .expect("a predictive rule on a tracking node");
    clock.advance(Duration::from_secs(60));
    let spent = spend(&agent, "1"); // $3 left at $1 per hour: 3 hours away
    assert!(spent.top_ups.is_empty(), "depletion is beyond the horizon");
    clock.advance(Duration::from_secs(60));
    let spent = spend(&agent, "1"); // $2 left at $2 per hour: 1 hour away
    assert_eq!(spent.top_ups.len(), 1, "depletion within the horizon");
    assert_eq!(spent.top_ups[0].reason, TopUpReason::Projected);
    assert_eq!(limit_of(&agent), usd("15"));
    clock.advance(Duration::from_secs(60));
    // Holding $5 leaves $2 at $2 an hour: it would fire again, but at_most(1) caps it.
    assert!(spend(&agent, "5").top_ups.is_empty(), "at_most(1) caps it");
    assert_eq!(limit_of(&agent), usd("15"));
}

/// Bad windows and rules are typed errors that change nothing.
pub fn bad_top_up_input_changes_nothing(store: Arc<dyn Store>, _clock: &ManualClock) {
    if !supports_all(&*store, &[OpKind::SetTopUp]) {
        return;
    }
    let wallet = root(store.clone(), "10");
    let before = store.snapshot().expect("snapshot");
    assert!(matches!(
        BurnWindow::new(Duration::ZERO),
        Err(Error::InvalidBurnWindow { .. })
    ));
    let rules = [
        (TopUp::when_below(usd("1")), "no amount"),
        (
            TopUp::when_below(usd("0")).adding(usd("1")),
            "zero threshold",
        ),
        (
            TopUp::when_below(usd("1")).adding(usd("1")).at_most(0),
            "zero count",
        ),
        (
            TopUp::when_below(usd("1"))
                .adding(usd("2"))
                .at_most_total(usd("1")),
            "total below one top-up",
        ),
        (
            TopUp::when_below(usd("1"))
                .adding(usd("1"))
                .per(Duration::ZERO),
            "zero window",
        ),
        (
            TopUp::when_below(usd("1"))
                .adding(usd("1"))
                .predictive(Duration::from_secs(60)),
            "predictive without a burn window",
        ),
    ];
    for (rule, why) in rules {
        let error = wallet.set_top_up(rule).expect_err(why);
        assert!(
            matches!(
                error,
                Error::InvalidTopUp { .. } | Error::InvalidDuration { .. }
            ),
            "{why}: {error}"
        );
    }
    assert!(matches!(
        wallet.set_top_up(TopUp::when_below(usd("1")).adding(Amount::tokens(5))),
        Err(Error::UnitMismatch { .. })
    ));
    assert!(matches!(
        wallet.set_top_up(TopUp::when_below(Amount::tokens(5)).adding(Amount::tokens(5))),
        Err(Error::UnitNotBudgeted { .. })
    ));
    assert_eq!(
        store.snapshot().expect("snapshot"),
        before,
        "refused rules change nothing"
    );
}

/// Many threads spending on one node: every crossing tops up exactly once, the caps hold, the
/// hard limit is never passed and the money adds up.
pub fn concurrent_top_ups_fire_exactly_once(store: Arc<dyn Store>, _clock: &ManualClock) {
    if !supports_all(&*store, &[OpKind::SetTopUp]) {
        return;
    }
    let wallet = root(store, "10");
    wallet
        .set_top_up(TopUp::when_below(usd("5")).adding(usd("10")).at_most(3))
        .expect("valid rule");
    let threads = 8;
    let barrier = Arc::new(Barrier::new(threads));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let wallet = wallet.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let (mut spent, mut top_ups) = (0i64, 0usize);
                loop {
                    match wallet.reserve(usd("0.01")) {
                        Ok(guard) => {
                            top_ups += guard.top_ups().len();
                            let committed = guard.commit(usd("0.01")).expect("commits");
                            top_ups += committed.top_ups.len();
                            spent += 1;
                        }
                        Err(error) if error.is_denial() => return (spent, top_ups),
                        Err(error) => panic!("unexpected error {error}"),
                    }
                }
            })
        })
        .collect();
    let (mut spent, mut top_ups) = (0, 0);
    for worker in workers {
        let (s, t) = worker.join().expect("no panic");
        spent += s;
        top_ups += t;
    }
    assert_eq!(top_ups, 3, "exactly one top-up per crossing, at most 3");
    let balance = wallet.balance(Unit::Usd).expect("balance");
    assert_eq!(limit_of(&wallet), usd("40"), "10 + 3 × 10");
    assert_eq!(spent, 4_000, "every cent of the topped-up limit was spent");
    assert_eq!(balance.spent, usd("40"));
    assert_eq!(balance.reserved, usd("0"));
}
