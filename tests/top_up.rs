//! Burn rates and auto top-ups through the public API: events, clock reads on the commit path,
//! and the FileStore keeping rules, counters and windows across reopen, compaction and restore.
//! The store-independent rules are in the conformance suite (`src/conformance/top_up.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use budget_guard::burn::BurnWindow;
use budget_guard::period::Period;
use budget_guard::top_up::{TopUp, TopUpApplied, TopUpCap, TopUpCapped, TopUpReason};
use budget_guard::{
    Amount, Budget, Clock, Event, FileStore, Limit, ManualClock, MemoryStore, Store, Timestamp,
    Unit,
};

#[path = "support/scratch.rs"]
mod scratch;
use scratch::fresh_path;

fn usd(text: &str) -> Amount {
    Amount::usd(text).unwrap()
}

const START: Timestamp = Timestamp::from_unix_nanos(1_700_000_000_000_000_000);

/// A manual clock that counts how often it is read.
#[derive(Debug, Clone)]
struct CountingClock {
    inner: ManualClock,
    reads: Arc<AtomicUsize>,
}

impl Clock for CountingClock {
    fn now(&self) -> Timestamp {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.inner.now()
    }
}

#[test]
fn commits_read_the_clock_only_while_a_node_tracks_or_tops_up() {
    let clock = CountingClock {
        inner: ManualClock::new(START),
        reads: Arc::default(),
    };
    let reads = clock.reads.clone();
    let run = Budget::builder("run", Limit::hard(usd("10")))
        .build_in(MemoryStore::with_clock(clock))
        .unwrap();
    let guard = run.reserve(usd("1")).unwrap(); // a reserve reads it once (its deadline)
    let before = reads.load(Ordering::Relaxed);
    guard.commit(usd("1")).unwrap();
    assert_eq!(
        reads.load(Ordering::Relaxed),
        before,
        "no clock read on commit"
    );

    run.set_top_up(TopUp::when_below(usd("1")).adding(usd("1")))
        .unwrap();
    let guard = run.reserve(usd("1")).unwrap();
    let before = reads.load(Ordering::Relaxed);
    guard.commit(usd("1")).unwrap();
    assert_eq!(
        reads.load(Ordering::Relaxed),
        before + 1,
        "one read, outside the lock, once a rule exists"
    );
    run.remove_top_up().unwrap();
    let guard = run.reserve(usd("1")).unwrap();
    let before = reads.load(Ordering::Relaxed);
    guard.commit(usd("1")).unwrap();
    assert_eq!(reads.load(Ordering::Relaxed), before, "off again");
}

#[test]
fn top_ups_and_projections_are_delivered_as_events() {
    let clock = ManualClock::new(START);
    let agent = Budget::builder("agent", Limit::hard(usd("10")).with_thresholds([50]))
        .build_in(MemoryStore::with_clock(clock.clone()))
        .unwrap();
    agent
        .set_burn_window(Some(BurnWindow::new(Duration::from_secs(600)).unwrap()))
        .unwrap();
    agent
        .set_top_up(TopUp::when_below(usd("2")).adding(usd("10")).at_most(1))
        .unwrap();
    let (_id, events) = agent.subscribe();
    clock.advance(Duration::from_secs(300));
    agent.reserve(usd("3")).unwrap().commit(usd("3")).unwrap();
    clock.advance(Duration::from_secs(300));
    agent.reserve(usd("3")).unwrap().commit(usd("3")).unwrap(); // 60 %: level 50
    let crossed = events
        .try_iter()
        .find_map(|event| match event {
            Event::ThresholdCrossed(crossed) => Some(crossed),
            _ => None,
        })
        .expect("a threshold event");
    // At the commit (levels fire on committed spend, semantics issue 13): $6 spent in the
    // 10-minute window, $4 left: 400 s to go.
    let rate = crossed.burn_rate.expect("the node tracks its burn rate");
    assert_eq!(rate.spent(), usd("6"));
    let expected = std::time::SystemTime::UNIX_EPOCH
        + Duration::from_nanos(
            (START.as_unix_nanos() + 600_000_000_000 + 400_000_000_000).unsigned_abs(),
        );
    assert_eq!(crossed.projected_depletion, Some(expected));

    agent
        .reserve(usd("2.5"))
        .unwrap()
        .commit(usd("2.5"))
        .unwrap(); // $1.5 left: +10
    let topped: Vec<_> = events
        .try_iter()
        .filter_map(|event| match event {
            Event::ToppedUp(topped) => Some(topped),
            _ => None,
        })
        .collect();
    assert_eq!(topped.len(), 1);
    assert_eq!(&*topped[0].node, "agent");
    assert_eq!(topped[0].added, usd("10"));
    assert_eq!(topped[0].limit, usd("20"));
    assert_eq!(topped[0].remaining, usd("11.5"));
    assert_eq!(topped[0].reason, TopUpReason::Below);
    assert_eq!(topped[0].count, 1);
    let info = agent.info().unwrap();
    assert_eq!(info.top_up.map(|rule| rule.amount()), Some(usd("10")));
    assert_eq!(
        info.burn_window.map(|window| window.window()),
        Some(Duration::from_secs(600))
    );
}

#[test]
fn a_reopened_file_store_keeps_rules_counters_and_windows() {
    let path = fresh_path("reopen");
    let clock = ManualClock::new(START);
    let open = scratch::reopener(&path, &clock);
    let store = open();
    let wallet = Budget::builder("wallet", Limit::hard(usd("20")))
        .child("agent", Limit::hard(usd("5")))
        .build_shared(store.clone())
        .unwrap();
    let agent = wallet.at("agent").unwrap();
    let rule = TopUp::when_below(usd("1"))
        .adding(usd("2"))
        .at_most(2)
        .per(Duration::from_secs(3600));
    agent.set_top_up(rule).unwrap();
    agent
        .set_burn_window(Some(BurnWindow::new(Duration::from_secs(60)).unwrap()))
        .unwrap();
    agent
        .reserve(usd("4.5"))
        .unwrap()
        .commit(usd("4.5"))
        .unwrap(); // +2: limit 7
    let small = TopUp::when_below(usd("14")).adding(usd("1"));
    wallet.set_top_up(small).unwrap();
    wallet.reserve(usd("5")).unwrap().commit(usd("5")).unwrap(); // 10.5 left: +1, still below
    let before = store.snapshot().unwrap();
    let top = &before.nodes[0];
    assert!(!top.top_up.unwrap().armed, "the wallet's rule is disarmed");
    assert_eq!(before.nodes[1].top_up.unwrap().count, 1);
    drop((wallet, agent));
    drop(store);

    // Replay of the log: the same books, no top-up applied twice.
    let store = open();
    assert_eq!(store.snapshot().unwrap(), before, "replay is deterministic");
    let agent = Budget::open(store.clone(), "wallet/agent").unwrap();
    assert_eq!(
        agent.balance(Unit::Usd).unwrap().limit.unwrap().amount(),
        usd("7")
    );
    // The counters survived: one more top-up in this window, then the cap.
    agent.reserve(usd("2")).unwrap().commit(usd("2")).unwrap(); // 0.5 left: +2 (count 2)
    agent.reserve(usd("2")).unwrap().commit(usd("2")).unwrap(); // 0.5 left: capped
    assert_eq!(
        agent.balance(Unit::Usd).unwrap().limit.unwrap().amount(),
        usd("9")
    );
    // The wallet's rule stayed disarmed across the reopen: the same crossing never fires.
    let wallet = Budget::open(store.clone(), "wallet").unwrap();
    assert_eq!(
        wallet.balance(Unit::Usd).unwrap().limit.unwrap().amount(),
        usd("21")
    );
    // Compaction writes the state into the snapshot section; a reopen reads it back.
    store.compact().unwrap();
    let compacted = store.snapshot().unwrap();
    drop((agent, wallet));
    drop(store);
    let store = open();
    assert_eq!(store.snapshot().unwrap(), compacted);
    assert_eq!(
        compacted.nodes[1].burn_window.map(|window| window.window()),
        Some(Duration::from_secs(60))
    );
    assert_eq!(compacted.nodes[1].top_up.unwrap().count, 2);

    // A snapshot restored into a memory store carries the rule and its counters.
    let memory = MemoryStore::with_clock(clock.clone());
    memory.restore(&compacted).unwrap();
    assert_eq!(memory.snapshot().unwrap(), compacted);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_file_store_logs_top_ups_made_before_a_reserve() {
    // A rule set while the node is already below its threshold fires before the next reserve,
    // which may need the money: replay must apply it before the reserve too.
    let path = fresh_path("pre");
    let clock = ManualClock::new(START);
    let store = Arc::new(
        FileStore::options()
            .clock(clock.clone())
            .open(&path)
            .unwrap(),
    );
    let run = Budget::builder("run", Limit::hard(usd("2")))
        .build_shared(store.clone())
        .unwrap();
    run.reserve(usd("1.5")).unwrap().commit(usd("1.5")).unwrap();
    run.set_top_up(TopUp::when_below(usd("1")).adding(usd("5")))
        .unwrap();
    let guard = run.reserve(usd("3")).unwrap(); // fits only after the top-up
    assert_eq!(guard.top_ups().len(), 1);
    guard.commit(usd("3")).unwrap();
    let before = store.snapshot().unwrap();
    drop(run);
    drop(store);
    let reopened = FileStore::options().clock(clock).open(&path).unwrap();
    assert_eq!(reopened.snapshot().unwrap(), before);
    drop(reopened);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn bad_windows_and_rules_are_typed_errors() {
    let run = Budget::builder("run", Limit::hard(usd("1")))
        .build()
        .unwrap();
    for (window, buckets) in [(Duration::ZERO, 60), (Duration::from_secs(1), 0)] {
        assert!(matches!(
            BurnWindow::with_buckets(window, buckets),
            Err(budget_guard::Error::InvalidBurnWindow { .. })
        ));
    }
    let before = run.snapshot().unwrap();
    let error = run
        .set_top_up(TopUp::when_below(usd("1")).adding(Amount::tokens(1)))
        .unwrap_err();
    assert!(error.to_string().contains("unit mismatch"), "{error}");
    assert_eq!(run.snapshot().unwrap(), before);
    assert!(run.info().unwrap().top_up.is_none());
}

// ---- semantics issue 13, item 8 -------------------------------------------------------------

const DAY: Duration = Duration::from_secs(86_400);

/// Reserves and commits `amount`; returns the top-ups and the refusals the reserve and the
/// commit reported.
fn spend(budget: &Budget, amount: &str) -> (Vec<TopUpApplied>, Vec<TopUpCapped>) {
    let guard = budget.reserve(usd(amount)).unwrap();
    let (mut top_ups, mut caps) = (guard.top_ups().to_vec(), guard.top_up_caps().to_vec());
    let committed = guard.commit(usd(amount)).unwrap();
    top_ups.extend(committed.top_ups);
    caps.extend(committed.top_up_caps);
    (top_ups, caps)
}

/// A wallet with a `limit` hard cap, a one-day burn window and a predictive rule: add $50 once
/// when the balance is projected below $10 within a day.
fn predictive_wallet(limit: &str) -> (ManualClock, Budget) {
    let clock = ManualClock::new(START);
    let wallet = Budget::builder("wallet", Limit::hard(usd(limit)))
        .build_in(MemoryStore::with_clock(clock.clone()))
        .unwrap();
    wallet
        .set_burn_window(Some(BurnWindow::new(DAY).unwrap()))
        .unwrap();
    wallet
        .set_top_up(
            TopUp::when_below(usd("10"))
                .adding(usd("50"))
                .at_most(1)
                .predictive(DAY),
        )
        .unwrap();
    (clock, wallet)
}

#[test]
fn predictive_mode_fires_when_the_balance_is_projected_below_the_threshold() {
    // Spending $15 a day with $20 left, a $10 threshold and a 24 h horizon: $10 is reached in
    // 16 h, inside the horizon, so the rule tops up now (zero would be reached only in 32 h).
    let (clock, wallet) = predictive_wallet("35");
    let (_id, events) = wallet.subscribe();
    clock.advance(Duration::from_secs(3_600));
    let guard = wallet.reserve(usd("15")).unwrap();
    assert!(
        guard.top_ups().is_empty(),
        "nothing spent yet: no burn rate"
    );
    let committed = guard.commit(usd("15")).unwrap();
    assert_eq!(committed.top_ups.len(), 1);
    assert_eq!(committed.top_ups[0].reason, TopUpReason::Projected);
    let topped = events
        .try_iter()
        .find_map(|event| match event {
            Event::ToppedUp(topped) => Some(topped),
            _ => None,
        })
        .expect("a ToppedUp event");
    assert_eq!(topped.reason, TopUpReason::Projected);
    assert_eq!(topped.limit, usd("85"));
    assert_eq!(topped.remaining, usd("70"));
}

#[test]
fn predictive_mode_waits_while_the_threshold_is_beyond_the_horizon() {
    // $15 a day with $30 left and a $10 threshold: $10 is 32 h away, past the 24 h horizon.
    let (clock, wallet) = predictive_wallet("45");
    clock.advance(Duration::from_secs(3_600));
    let committed = wallet
        .reserve(usd("15"))
        .unwrap()
        .commit(usd("15"))
        .unwrap();
    assert!(committed.top_ups.is_empty());
    assert_eq!(
        wallet.balance(Unit::Usd).unwrap().limit.unwrap().amount(),
        usd("45")
    );
}

#[test]
fn a_cap_that_refuses_a_top_up_emits_recharge_cap_reached_once_per_window() {
    let clock = ManualClock::new(START);
    let wallet = Budget::builder("wallet", Limit::hard(usd("10")))
        .build_in(MemoryStore::with_clock(clock.clone()))
        .unwrap();
    wallet
        .set_top_up(
            TopUp::when_below(usd("2"))
                .adding(usd("5"))
                .at_most(1)
                .per(DAY),
        )
        .unwrap();
    let (_id, events) = wallet.subscribe();
    wallet.reserve(usd("9")).unwrap().commit(usd("9")).unwrap(); // $1 left: +5, $6 left
    wallet.reserve(usd("5")).unwrap().commit(usd("5")).unwrap(); // $1 left: the cap says no
    wallet
        .reserve(usd("0.5"))
        .unwrap()
        .commit(usd("0.5"))
        .unwrap(); // still refused: not reported again
    let events: Vec<Event> = events.try_iter().collect();
    let capped: Vec<_> = events
        .iter()
        .filter_map(|event| match event {
            Event::TopUpCapped(capped) => Some(&capped.capped),
            _ => None,
        })
        .collect();
    assert_eq!(capped.len(), 1, "{events:#?}");
    let capped = capped[0];
    assert_eq!(&*capped.node, "wallet");
    assert_eq!(capped.cap, TopUpCap::Count { max: 1 });
    assert_eq!(capped.reason, TopUpReason::Below);
    assert_eq!(capped.wanted, usd("5"));
    assert_eq!(capped.count, 1);
    assert_eq!(capped.total, usd("5"));
    assert_eq!(capped.remaining, usd("1"));
    // START is 2023-11-14T22:13:20Z; the UTC day ends at 2023-11-15T00:00:00Z.
    assert_eq!(
        capped.window_ends_at,
        Some(Timestamp::from_unix_nanos(1_700_006_400_000_000_000))
    );
    assert_eq!(
        wallet.balance(Unit::Usd).unwrap().limit.unwrap().amount(),
        usd("15")
    );
    // The next day the cap allows it again: the top-up happens, no refusal.
    clock.set(Timestamp::from_unix_nanos(1_700_006_400_000_000_000));
    let (top_ups, caps) = spend(&wallet, "0.1");
    assert_eq!(top_ups.len(), 1);
    assert!(caps.is_empty());
}

#[test]
fn a_total_cap_names_itself() {
    let wallet = Budget::builder("wallet", Limit::hard(usd("10")))
        .build()
        .unwrap();
    wallet
        .set_top_up(
            TopUp::when_below(usd("2"))
                .adding(usd("5"))
                .at_most_total(usd("8")),
        )
        .unwrap();
    wallet.reserve(usd("9")).unwrap().commit(usd("9")).unwrap(); // +5 of 8
    let (top_ups, caps) = spend(&wallet, "5");
    assert!(top_ups.is_empty());
    assert_eq!(caps.len(), 1);
    assert_eq!(caps[0].cap, TopUpCap::Total { max: usd("8") });
    assert_eq!(caps[0].window_ends_at, None);
}

/// 2026-01-31T15:00:00Z, 10:00 in New York.
const JAN_31_NY_MORNING: i64 = 1_769_871_600;
/// 2026-02-01T03:00:00Z: already February in UTC, still January 31 (22:00) in New York.
const JAN_31_NY_NIGHT: i64 = 1_769_914_800;
/// 2026-02-01T05:00:00Z: February 1, 00:00 in New York.
const FEB_1_NY_MIDNIGHT: i64 = 1_769_922_000;

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_unix_nanos(seconds * 1_000_000_000)
}

#[test]
fn caps_can_count_per_calendar_month_in_a_time_zone() {
    let clock = ManualClock::new(at(JAN_31_NY_MORNING));
    let wallet = Budget::builder("wallet", Limit::hard(usd("10")))
        .build_in(MemoryStore::with_clock(clock.clone()))
        .unwrap();
    let monthly = Period::monthly().in_zone("America/New_York").unwrap();
    wallet
        .set_top_up(
            TopUp::when_below(usd("2"))
                .adding(usd("5"))
                .at_most(1)
                .per_period(monthly),
        )
        .unwrap();
    let limit = |wallet: &Budget| wallet.balance(Unit::Usd).unwrap().limit.unwrap().amount();
    wallet.reserve(usd("9")).unwrap().commit(usd("9")).unwrap(); // +5 in January
    assert_eq!(limit(&wallet), usd("15"));
    clock.set(at(JAN_31_NY_NIGHT));
    let (top_ups, caps) = spend(&wallet, "5");
    assert!(top_ups.is_empty(), "still January in New York");
    assert_eq!(caps[0].window_ends_at, Some(at(FEB_1_NY_MIDNIGHT)));
    clock.set(at(FEB_1_NY_MIDNIGHT));
    let (top_ups, _) = spend(&wallet, "0.5");
    assert_eq!(top_ups.len(), 1, "a new month in New York");
    assert_eq!(limit(&wallet), usd("20"));
}

#[test]
fn a_reopened_file_store_keeps_a_calendar_window() {
    let path = fresh_path("calendar");
    let clock = ManualClock::new(at(JAN_31_NY_MORNING));
    let open = scratch::reopener(&path, &clock);
    let store = open();
    let wallet = Budget::builder("wallet", Limit::hard(usd("10")))
        .build_shared(store.clone())
        .unwrap();
    let monthly = Period::monthly().in_zone("America/New_York").unwrap();
    let rule = TopUp::when_below(usd("2"))
        .adding(usd("5"))
        .at_most(1)
        .per_period(monthly);
    wallet.set_top_up(rule).unwrap();
    wallet.reserve(usd("9")).unwrap().commit(usd("9")).unwrap(); // +5 in January
    let before = store.snapshot().unwrap();
    drop(wallet);
    drop(store);
    let store = open();
    assert_eq!(store.snapshot().unwrap(), before);
    assert_eq!(
        before.nodes[0].top_up.unwrap().rule.calendar_period(),
        Some(monthly)
    );
    store.compact().unwrap();
    let compacted = store.snapshot().unwrap();
    drop(store);
    let store = open();
    assert_eq!(store.snapshot().unwrap(), compacted);
    // The January count survived: still capped until New York's February.
    let wallet = Budget::open(store.clone(), "wallet").unwrap();
    clock.set(at(JAN_31_NY_NIGHT));
    let (top_ups, caps) = spend(&wallet, "5");
    assert!(top_ups.is_empty());
    assert_eq!(caps.len(), 1);
    clock.set(at(FEB_1_NY_MIDNIGHT));
    let (top_ups, _) = spend(&wallet, "0.5");
    assert_eq!(top_ups.len(), 1);
    let _ = std::fs::remove_file(&path);
}
