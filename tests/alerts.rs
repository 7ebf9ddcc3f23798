//! Semantics issue 13, items 1 and 7: threshold alerts fire once, on committed spend (or, opted
//! in, on spend plus holds), re-arm only when spend itself falls back, carry spend and holds
//! apart, survive a `FileStore` reopen, and are stamped with the store's clock.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use budget_guard::period::Period;
use budget_guard::{
    Amount, Budget, Event, FileStore, Limit, ManualClock, MemoryStore, Store, ThresholdBasis,
    ThresholdEvent, Timestamp, Unit,
};

#[path = "support/scratch.rs"]
mod scratch;
use scratch::fresh_path;

fn usd(text: &str) -> Amount {
    Amount::usd(text).expect("valid amount")
}

/// 2026-06-01T00:00:00Z: the start of a day, so a daily period holds the whole test.
const START: Timestamp = Timestamp::from_unix_nanos(1_780_272_000_000_000_000);

fn system_time(at: Timestamp) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_nanos(at.as_unix_nanos().unsigned_abs())
}

fn daily_25(basis: ThresholdBasis) -> (Budget, ManualClock) {
    let clock = ManualClock::new(START);
    let limit = Limit::hard(usd("25"))
        .per(Period::daily())
        .with_thresholds([50, 80, 95])
        .with_threshold_basis(basis);
    let budget = Budget::builder("agent", limit)
        .build_in(MemoryStore::with_clock(clock.clone()))
        .expect("build");
    (budget, clock)
}

fn threshold_log(budget: &Budget) -> Arc<Mutex<Vec<ThresholdEvent>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    budget.on_threshold(move |event| log.lock().unwrap().push(event.clone()));
    seen
}

/// The loop of the issue: reserve $1.00, commit $0.50, until the $25 day refuses.
fn overestimating_loop(budget: &Budget) -> usize {
    let mut calls = 0;
    while let Ok(guard) = budget.reserve(usd("1.00")) {
        guard.commit(usd("0.50")).expect("commit within the hold");
        calls += 1;
    }
    calls
}

fn levels(events: &[ThresholdEvent]) -> Vec<u16> {
    events.iter().map(|event| event.level).collect()
}

#[test]
fn an_overestimating_loop_fires_each_level_once_on_committed_spend() {
    let (budget, _clock) = daily_25(ThresholdBasis::Spent);
    let seen = threshold_log(&budget);
    // 48 calls take spend to $24.00; the 49th reserve ($24.00 + $1.00) still fits, the 50th
    // ($24.50 + $1.00) does not.
    assert_eq!(overestimating_loop(&budget), 49);
    let seen = seen.lock().unwrap();
    assert_eq!(
        levels(&seen),
        [50, 80, 95],
        "before the fix: [50, 50, 80, 80, 95, 95]"
    );
    let eighty = &seen[1];
    assert_eq!(eighty.basis, ThresholdBasis::Spent);
    assert_eq!(eighty.limit, usd("25"));
    assert_eq!(eighty.spent, usd("20.00"), "not $19.50 spent + $0.50 held");
    assert_eq!(eighty.reserved, usd("0"));
    assert_eq!(eighty.remaining, usd("5.00"));
    assert_eq!(eighty.percent_used, 80);
    assert_eq!(seen[0].spent, usd("12.50"));
    assert_eq!(seen[2].spent, usd("24.00"));
}

#[test]
fn a_reserve_alone_never_fires_a_spend_level() {
    let budget = Budget::builder("b", Limit::hard(usd("10")).with_thresholds([80]))
        .build()
        .unwrap();
    let seen = threshold_log(&budget);
    let guard = budget.reserve(usd("9")).unwrap(); // 90 % held, 0 % spent
    assert!(guard.crossings().is_empty());
    let committed = guard.commit(usd("8")).unwrap(); // spend $8.00 of $10: 80 %
    assert_eq!(committed.events.len(), 1);
    assert_eq!(levels(&seen.lock().unwrap()), [80]);
}

#[test]
fn a_hold_that_returns_money_does_not_rearm_a_level() {
    let early = Limit::hard(usd("10"))
        .with_thresholds([80])
        .with_threshold_basis(ThresholdBasis::SpentAndHeld);
    let budget = Budget::builder("b", early).build().unwrap();
    let seen = threshold_log(&budget);
    let guard = budget.reserve(usd("9")).unwrap(); // spend + holds at 90 %: the early warning
    assert_eq!(guard.crossings().len(), 1);
    guard.commit(usd("1")).unwrap(); // $8 returns; spend did not fall: stays fired
    budget.reserve(usd("8")).unwrap().release().unwrap(); // 90 % again: nothing
    let again = budget.reserve(usd("8.50")).unwrap();
    assert!(again.crossings().is_empty());
    again.commit(usd("8.50")).unwrap(); // spend itself reaches 95 %: still fired
    assert_eq!(
        levels(&seen.lock().unwrap()),
        [80],
        "the old rule fired it three times"
    );
}

#[test]
fn the_early_warning_fires_once_when_spend_plus_holds_cross() {
    let (budget, _clock) = daily_25(ThresholdBasis::SpentAndHeld);
    let seen = threshold_log(&budget);
    assert_eq!(overestimating_loop(&budget), 49);
    let seen = seen.lock().unwrap();
    assert_eq!(levels(&seen), [50, 80, 95]);
    // The 80 % warning comes with the reserve that takes spend + holds to $20.00, and says
    // which part is spent and which is held.
    let eighty = &seen[1];
    assert_eq!(eighty.basis, ThresholdBasis::SpentAndHeld);
    assert_eq!(eighty.spent, usd("19.00"));
    assert_eq!(eighty.reserved, usd("1.00"));
    assert_eq!(eighty.remaining, usd("5.00"));
    assert_eq!(eighty.percent_used, 80);
}

#[test]
fn levels_rearm_when_spend_falls_back_at_the_period_reset() {
    let (budget, clock) = daily_25(ThresholdBasis::Spent);
    let seen = threshold_log(&budget);
    budget
        .reserve(usd("20"))
        .unwrap()
        .commit(usd("20"))
        .unwrap();
    assert_eq!(levels(&seen.lock().unwrap()), [50, 80]);
    clock.advance(Duration::from_secs(86_400)); // a new day: spend back to $0
    budget
        .reserve(usd("13"))
        .unwrap()
        .commit(usd("13"))
        .unwrap();
    assert_eq!(levels(&seen.lock().unwrap()), [50, 80, 50]);
    let last = seen.lock().unwrap()[2].clone();
    assert_eq!(last.spent, usd("13"));
    assert_eq!(
        last.at,
        system_time(START.saturating_add(Duration::from_secs(86_400)))
    );
}

#[test]
fn a_raised_limit_rearms_only_the_levels_spend_is_now_below() {
    let budget = Budget::builder("b", Limit::hard(usd("10")).with_thresholds([50, 80]))
        .build()
        .unwrap();
    let seen = threshold_log(&budget);
    budget.reserve(usd("8")).unwrap().commit(usd("8")).unwrap(); // 50 and 80
    budget.credit(usd("2")).unwrap(); // $8 of $12: 80 % ($9.60) re-arms, 50 % ($6) does not
    budget.reserve(usd("2")).unwrap().commit(usd("2")).unwrap(); // $10 of $12: 83 %
    assert_eq!(levels(&seen.lock().unwrap()), [50, 80, 80]);
}

#[test]
fn a_reopened_file_store_keeps_the_basis_and_the_fired_levels() {
    for compact in [false, true] {
        let path = fresh_path("reopen");
        let early = Limit::hard(usd("10"))
            .with_thresholds([50, 80])
            .with_threshold_basis(ThresholdBasis::SpentAndHeld);
        {
            let store = FileStore::open(&path).unwrap();
            let budget = Budget::builder("org", early)
                .child("team", Limit::hard(usd("10")).with_thresholds([50, 80]))
                .build_in(store)
                .unwrap();
            let team = budget.at("team").unwrap();
            // org: spend + holds $6 → its 50 % warns at the reserve; team: spend $6 → 50 %.
            let guard = team.reserve(usd("6")).unwrap();
            let early_levels: Vec<u16> = guard.crossings().iter().map(|c| c.level()).collect();
            assert_eq!(early_levels, [50]);
            let committed = guard.commit(usd("6")).unwrap();
            let spend_levels: Vec<u16> = committed.events.iter().map(|c| c.level()).collect();
            assert_eq!(spend_levels, [50]);
        }
        if compact {
            // Rewritten as one snapshot: the fired levels come back from the figures.
            FileStore::open(&path).unwrap().compact().unwrap();
        }
        let store: Arc<dyn Store> = Arc::new(FileStore::open(&path).unwrap());
        let org = Budget::open(store, "org").unwrap();
        let limit = org.balance(Unit::Usd).unwrap().limit.unwrap();
        assert_eq!(limit.thresholds().basis(), ThresholdBasis::SpentAndHeld);
        assert_eq!(limit.thresholds().levels(), &[50, 80]);
        let team = org.at("team").unwrap();
        let team_limit = team.balance(Unit::Usd).unwrap().limit.unwrap();
        assert_eq!(team_limit.thresholds().basis(), ThresholdBasis::Spent);
        // Spend to $7: 50 % fired before the reopen on both nodes, 80 % not reached.
        let committed = team.reserve(usd("1")).unwrap().commit(usd("1")).unwrap();
        assert!(committed.events.is_empty(), "compact = {compact}");
        // Spend to $8.50: team's 80 % fires at the commit, org's early warning at the reserve.
        let guard = team.reserve(usd("1.50")).unwrap();
        let early: Vec<(String, u16)> = guard
            .crossings()
            .iter()
            .map(|c| (c.node().to_string(), c.level()))
            .collect();
        assert_eq!(early, [("org".to_owned(), 80)], "compact = {compact}");
        let committed = guard.commit(usd("1.50")).unwrap();
        let late: Vec<(String, u16)> = committed
            .events
            .iter()
            .map(|c| (c.node().to_string(), c.level()))
            .collect();
        assert_eq!(late, [("org/team".to_owned(), 80)], "compact = {compact}");
    }
}

#[test]
fn events_are_stamped_with_the_store_clock() {
    let clock = ManualClock::new(START);
    let budget = Budget::builder("b", Limit::hard(usd("10")).with_thresholds([50]))
        .build_in(MemoryStore::with_clock(clock.clone()))
        .unwrap();
    let (_id, events) = budget.subscribe();
    clock.advance(Duration::from_secs(90));
    budget.reserve(usd("6")).unwrap().commit(usd("6")).unwrap();
    clock.advance(Duration::from_secs(30));
    assert!(budget.reserve(usd("5")).is_err());
    drop(budget.reserve(usd("1")).unwrap());
    let stamped: Vec<(&'static str, SystemTime)> = events
        .try_iter()
        .map(|event| {
            let kind = match &event {
                Event::ThresholdCrossed(_) => "threshold",
                Event::ReserveDenied(_) => "denied",
                Event::HoldReleased(_) => "released",
                _ => "other",
            };
            (kind, event.at())
        })
        .collect();
    let t90 = system_time(START.saturating_add(Duration::from_secs(90)));
    let t120 = system_time(START.saturating_add(Duration::from_secs(120)));
    assert_eq!(
        stamped,
        [("threshold", t90), ("denied", t120), ("released", t120)]
    );
    assert_eq!(
        budget.store().now(),
        START.saturating_add(Duration::from_secs(120))
    );
}

#[test]
fn a_file_store_stamps_events_with_its_clock() {
    let clock = ManualClock::new(START);
    let store = FileStore::options()
        .clock(clock.clone())
        .open(fresh_path("clock"))
        .unwrap();
    let budget = Budget::builder("b", Limit::hard(usd("1")))
        .build_in(store)
        .unwrap();
    let (_id, events) = budget.subscribe();
    clock.advance(Duration::from_secs(7));
    assert!(budget.reserve(usd("2")).is_err());
    let event = events.try_recv().expect("a denial");
    assert_eq!(
        event.at(),
        system_time(START.saturating_add(Duration::from_secs(7)))
    );
}

#[cfg(feature = "serde")]
#[test]
fn the_basis_round_trips_through_serde_and_old_level_lists_still_read() {
    let early = Limit::hard(usd("10"))
        .with_thresholds([50, 80])
        .with_threshold_basis(ThresholdBasis::SpentAndHeld);
    let json = serde_json::to_string(&early).unwrap();
    assert!(json.contains("\"basis\":\"spent_and_held\""), "{json}");
    assert_eq!(serde_json::from_str::<Limit>(&json).unwrap(), early);
    let plain = Limit::hard(usd("10")).with_thresholds([50, 80]);
    let json = serde_json::to_string(&plain).unwrap();
    assert!(json.contains("\"thresholds\":[50,80]"), "{json}");
    let read: Limit = serde_json::from_str(&json).unwrap();
    assert_eq!(read.thresholds().basis(), ThresholdBasis::Spent);
}
