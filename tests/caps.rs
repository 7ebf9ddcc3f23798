//! Several caps on one node (issue 13 item 2) and every unit ledgered (item 3), through the
//! public API with a `ManualClock`: daily $25, weekly $150 and monthly $500 on one agent node,
//! checked in one atomic step, refusals naming the node and the period, a `FileStore` that
//! keeps every cap across reopen, and token counts recorded on a dollars-only tree.

use std::sync::Arc;
use std::time::Duration;

use budget_guard::period::Period;
use budget_guard::{
    Amount, Budget, Cost, Error, FileStore, Limit, Limits, ManualClock, MemoryStore, Store,
    Timestamp, Unit,
};

fn at(text: &str) -> Timestamp {
    let instant: jiff::Timestamp = text.parse().expect("a valid RFC 3339 instant");
    Timestamp::from_unix_nanos(i64::try_from(instant.as_nanosecond()).expect("in range"))
}

fn usd(text: &str) -> Amount {
    Amount::usd(text).expect("valid amount")
}

const DAY: Duration = Duration::from_secs(86_400);

/// Daily $25, weekly $150, monthly $500, all hard, on one node.
fn three_caps() -> Limits {
    Limits::from([
        Limit::hard(usd("25")).per(Period::daily()),
        Limit::hard(usd("150")).per(Period::weekly()),
        Limit::hard(usd("500")).per(Period::monthly()),
    ])
}

fn spend(budget: &Budget, amount: &str) {
    budget
        .reserve(usd(amount))
        .expect("fits")
        .commit(usd(amount))
        .expect("commit");
}

/// The refusal of a reserve of `amount`: (node, period, limit, spent).
fn refusal(budget: &Budget, amount: &str) -> (String, Option<Period>, Amount, Amount) {
    let error = budget.reserve(usd(amount)).expect_err("refused");
    let details = error.exceeded().expect("BudgetExceeded");
    (
        details.node.to_string(),
        details.period,
        details.limit,
        details.spent,
    )
}

const DAILY: Option<Period> = Some(Period::daily());
const WEEKLY: Option<Period> = Some(Period::weekly());
const MONTHLY: Option<Period> = Some(Period::monthly());

#[test]
fn daily_weekly_and_monthly_caps_on_one_node_each_refuse_in_turn() {
    // Monday 2 March 2026, 09:00 UTC.
    let clock = ManualClock::new(at("2026-03-02T09:00:00Z"));
    let agent = Budget::builder("agent", three_caps())
        .build_in(MemoryStore::with_clock(clock.clone()))
        .expect("build");

    spend(&agent, "25");
    let refused = refusal(&agent, "0.01");
    assert_eq!(refused, ("agent".into(), DAILY, usd("25"), usd("25")));
    let message = agent.reserve(usd("0.01")).unwrap_err().to_string();
    assert!(message.contains("agent (daily (UTC) limit)"), "{message}");

    // Tuesday to Saturday: $25 a day fills the week ($150) on Saturday.
    for _ in 0..5 {
        clock.advance(DAY);
        spend(&agent, "25");
    }
    clock.advance(DAY); // Sunday: a fresh day, the same week
    assert_eq!(
        refusal(&agent, "0.01"),
        ("agent".into(), WEEKLY, usd("150"), usd("150"))
    );

    // Two more full weeks ($300) and $50 in the fourth: the month holds $500.
    for _ in 0..2 {
        clock.advance(DAY); // Monday
        for day in 0..6 {
            if day > 0 {
                clock.advance(DAY);
            }
            spend(&agent, "25");
        }
        clock.advance(DAY); // Sunday
    }
    clock.advance(DAY); // Monday 23 March
    spend(&agent, "25");
    clock.advance(DAY);
    spend(&agent, "25");
    clock.advance(DAY); // Wednesday 25 March: day and week have room, the month has none
    assert_eq!(
        refusal(&agent, "0.01"),
        ("agent".into(), MONTHLY, usd("500"), usd("500"))
    );
    clock.set(at("2026-04-01T00:00:00Z"));
    spend(&agent, "25");
}

#[test]
fn a_hold_counts_against_every_cap_and_the_tightest_room_refuses() {
    let clock = ManualClock::new(at("2026-03-02T09:00:00Z"));
    let agent = Budget::builder("agent", three_caps())
        .build_in(MemoryStore::with_clock(clock.clone()))
        .expect("build");
    // Monday's and Tuesday's spend is in this week but not in Wednesday's period.
    spend(&agent, "20");
    clock.set(at("2026-03-03T09:00:00Z"));
    spend(&agent, "20");
    clock.set(at("2026-03-04T09:00:00Z"));
    spend(&agent, "5"); // today: $5, week: $45
    let held = agent
        .reserve(usd("18"))
        .expect("fits the day: 5 + 18 <= 25");
    // Day: 25 - 5 - 18 = 2 left; the week has 150 - 45 - 18 = 87.
    assert_eq!(
        refusal(&agent, "2.01"),
        ("agent".into(), DAILY, usd("25"), usd("5"))
    );
    let check = agent.check(usd("2")).expect("check");
    assert!(check.fits());
    let figures: Vec<(Option<Period>, Amount, Amount, Option<Amount>)> = check
        .limits
        .iter()
        .map(|row| {
            let balance = &row.balance;
            (
                balance.limit.and_then(|l| l.period()),
                balance.spent,
                balance.reserved,
                balance.remaining,
            )
        })
        .collect();
    assert_eq!(
        figures,
        [
            (DAILY, usd("5"), usd("18"), Some(usd("2"))),
            (WEEKLY, usd("45"), usd("18"), Some(usd("87"))),
            (MONTHLY, usd("45"), usd("18"), Some(usd("437"))),
        ]
    );
    held.commit(usd("18")).expect("commit");
    assert_eq!(agent.balance(Unit::Usd).unwrap().spent, usd("23"));
}

#[test]
fn the_same_unit_and_period_twice_is_still_a_duplicate() {
    let twice = Limits::from([
        Limit::hard(usd("25")).per(Period::daily()),
        Limit::hard(usd("30")).per(Period::daily()),
    ]);
    let error = Budget::builder("agent", twice).build().unwrap_err();
    assert!(
        matches!(&error, Error::DuplicateLimit { node, unit: Unit::Usd } if node == "agent"),
        "{error}"
    );
    let all_time_twice = Limits::from([Limit::hard(usd("25")), Limit::soft(usd("30"))]);
    assert!(matches!(
        Budget::builder("agent", all_time_twice).build(),
        Err(Error::DuplicateLimit { .. })
    ));
    // Threshold levels belong on the unit's first limit.
    let levels_on_second = Limits::from([
        Limit::hard(usd("25")).per(Period::daily()),
        Limit::hard(usd("150"))
            .per(Period::weekly())
            .with_thresholds([80]),
    ]);
    assert!(matches!(
        Budget::builder("agent", levels_on_second).build(),
        Err(Error::InvalidThreshold { level: 80, .. })
    ));
}

#[test]
fn set_limit_changes_the_cap_of_its_period() {
    let clock = ManualClock::new(at("2026-03-02T09:00:00Z"));
    let agent = Budget::builder("agent", three_caps())
        .build_in(MemoryStore::with_clock(clock.clone()))
        .expect("build");
    for _ in 0..6 {
        spend(&agent, "25");
        clock.advance(DAY);
    }
    assert_eq!(refusal(&agent, "1").1, WEEKLY);
    agent
        .set_limit(Limit::hard(usd("200")).per(Period::weekly()))
        .expect("raise the week");
    spend(&agent, "25"); // Sunday: the day's and the week's room now fit
    assert_eq!(refusal(&agent, "0.01").1, DAILY);
    // The daily cap is still the first limit, untouched.
    let daily = agent.balance(Unit::Usd).unwrap().limit.unwrap();
    assert_eq!(
        (daily.amount(), daily.period()),
        (usd("25"), Some(Period::daily()))
    );
    // Lowering the week below its spend is refused, naming its figures.
    assert!(matches!(
        agent.set_limit(Limit::hard(usd("100")).per(Period::weekly())),
        Err(Error::LimitBelowUsage { spent, .. }) if spent == usd("175")
    ));
}

#[test]
fn reserve_up_to_and_record_stop_at_the_tightest_period() {
    let clock = ManualClock::new(at("2026-03-02T09:00:00Z"));
    let agent = Budget::builder("agent", three_caps())
        .build_in(MemoryStore::with_clock(clock.clone()))
        .expect("build");
    spend(&agent, "20");
    // Up to $10 asked, $5 left today: the hold takes the day's room.
    let streaming = agent.reserve_up_to(usd("1"), usd("10")).unwrap();
    assert_eq!(streaming.held().get(Unit::Usd), Some(usd("5")));
    streaming.release().unwrap();
    // A metered hold grows while every period has room and is cut off at the day's cap.
    let metered = agent.reserve(usd("2")).unwrap();
    metered.record(usd("4")).expect("grows to $4: 20 + 4 <= 25");
    let error = metered.record(usd("1.01")).expect_err("past the day");
    assert_eq!(error.exceeded().unwrap().period, DAILY);
    assert_eq!(agent.balance(Unit::Usd).unwrap().spent, usd("24"));
    metered.commit(usd("4")).unwrap();
}

#[test]
fn an_overage_must_fit_every_period_under_allow_if_available() {
    use budget_guard::OveragePolicy;
    let clock = ManualClock::new(at("2026-03-02T09:00:00Z"));
    let limits = Limits::from([
        Limit::hard(usd("25"))
            .per(Period::daily())
            .with_overage(OveragePolicy::AllowIfAvailable),
        Limit::hard(usd("30")).per(Period::weekly()),
    ]);
    let agent = Budget::builder("agent", limits)
        .build_in(MemoryStore::with_clock(clock.clone()))
        .expect("build");
    spend(&agent, "20"); // Monday: week $20
    clock.advance(DAY);
    // Tuesday: $5 held, $12 spent. The day has room for the $7 excess, the week only $5.
    let error = agent
        .reserve(usd("5"))
        .unwrap()
        .commit(usd("12"))
        .expect_err("the weekly cap has no room for the overage");
    assert!(matches!(error.error(), Error::OverageRejected { .. }));
    let balance = agent.balance(Unit::Usd).unwrap();
    assert_eq!((balance.spent, balance.debt), (usd("5"), usd("7")));
    // The same excess fits when the week has room: it is spent, not owed.
    agent.credit(usd("7")).unwrap(); // repays the debt on the main (daily) cap
    // The repaid $7 was really spent this week: the weekly cap shows $32 of $30 and refuses
    // until its period ends.
    let weekly = agent.check(usd("1")).unwrap().limits[1].clone();
    assert_eq!(
        (
            weekly.balance.spent,
            weekly.balance.remaining,
            weekly.refuses
        ),
        (usd("32"), Some(usd("0")), true)
    );
    assert_eq!(refusal(&agent, "1").1, WEEKLY);
    clock.advance(7 * DAY);
    agent.reserve(usd("5")).unwrap().commit(usd("12")).unwrap();
    let balance = agent.balance(Unit::Usd).unwrap();
    assert_eq!((balance.spent, balance.debt), (usd("12"), usd("0")));
}

/// Eight threads race $1 reserves at one node whose daily cap ($25) is tighter than its weekly
/// one ($30, $7 already spent): exactly 23 are granted, every run.
#[test]
fn racing_threads_get_exactly_what_the_tightest_period_allows() {
    let clock = ManualClock::new(at("2026-03-02T09:00:00Z"));
    let limits = Limits::from([
        Limit::hard(usd("25")).per(Period::daily()),
        Limit::hard(usd("30")).per(Period::weekly()),
    ]);
    let agent = Budget::builder("agent", limits)
        .build_in(MemoryStore::with_clock(clock.clone()))
        .expect("build");
    spend(&agent, "7"); // Monday
    clock.advance(DAY); // Tuesday: day room $25, week room $23
    let granted = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for _ in 0..10 {
                    if let Ok(guard) = agent.reserve(usd("1")) {
                        guard.commit(usd("1")).unwrap();
                        granted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(granted.into_inner(), 23);
    assert_eq!(refusal(&agent, "1").1, WEEKLY);
    assert_eq!(agent.balance(Unit::Usd).unwrap().spent, usd("23"));
}

/// The FileStore keeps every cap's period spend across a reopen: once replaying the log, once
/// reading the compacted snapshot.
#[test]
fn a_reopened_file_store_keeps_every_cap() {
    let dir = std::env::temp_dir().join(format!("bg-caps-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("caps.bg");
    let _ = std::fs::remove_file(&path);
    let clock = ManualClock::new(at("2026-03-02T09:00:00Z"));
    let open = |clock: &ManualClock| {
        Arc::new(
            FileStore::options()
                .clock(clock.clone())
                .open(&path)
                .expect("open"),
        )
    };
    let before = {
        let store = open(&clock);
        let agent = Budget::builder("agent", three_caps())
            .build_shared(store.clone())
            .unwrap();
        for _ in 0..5 {
            spend(&agent, "25");
            clock.advance(DAY);
        }
        spend(&agent, "20"); // Saturday: week $145
        clock.advance(DAY); // Sunday: a fresh day ($25 of room), $5 left in the week
        agent.check(usd("1")).unwrap();
        store.snapshot().unwrap()
    };
    for round in 0..2 {
        let store = open(&clock);
        assert_eq!(store.snapshot().unwrap(), before, "round {round}");
        let agent = Budget::open(store.clone(), "agent").unwrap();
        assert_eq!(
            refusal(&agent, "5.01"),
            ("agent".into(), WEEKLY, usd("150"), usd("145"))
        );
        if round == 1 {
            store.compact().unwrap();
        }
    }
    let store = open(&clock);
    let agent = Budget::open(store.clone(), "agent").unwrap();
    clock.advance(DAY); // Monday: a new day and week, the same month
    spend(&agent, "25");
    assert_eq!(
        refusal(&agent, "0.01"),
        ("agent".into(), DAILY, usd("25"), usd("25"))
    );
    let accounts = &store.snapshot().unwrap().nodes[0].accounts;
    let further: Vec<Amount> = accounts[0]
        .further_limits
        .iter()
        .map(|cap| cap.spent)
        .collect();
    assert_eq!(further, [usd("25"), usd("170")]); // week restarted, month kept
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- item 3: every unit is ledgered --------------------------------------------------------

#[test]
fn tokens_on_a_dollars_only_tree_are_recorded_not_refused() {
    let org = Budget::builder("org", Limit::hard(usd("10")))
        .child("agent", Limits::none())
        .build()
        .unwrap();
    let agent = org.at("agent").unwrap();
    let guard = agent
        .reserve(Cost::from(usd("0.50")).with(Amount::tokens(4_000)).unwrap())
        .expect("tokens are held even though nobody limits them");
    assert_eq!(
        org.balance(Unit::Tokens).unwrap().reserved,
        Amount::tokens(4_000)
    );
    guard
        .commit(Cost::from(usd("0.12")).with(Amount::tokens(3_100)).unwrap())
        .unwrap();
    for node in [&org, &agent] {
        let info = node.info().unwrap();
        let tokens = info.balance(Unit::Tokens).expect("a tokens balance");
        assert_eq!(tokens.spent, Amount::tokens(3_100), "{}", info.path);
        assert_eq!(tokens.limit, None);
        assert_eq!(tokens.remaining, None);
    }
    // Only limits refuse: the dollar cap still binds.
    assert!(
        agent
            .reserve(Cost::from(usd("10")).with(Amount::tokens(1)).unwrap())
            .unwrap_err()
            .is_denial()
    );
}

#[test]
fn a_provider_cost_books_with_its_token_count_on_a_dollar_hold() {
    let org = Budget::builder("org", Limit::hard(usd("10")))
        .child("agent", Limit::hard(usd("2")))
        .build()
        .unwrap();
    let agent = org.at("agent").unwrap();
    // Estimate in dollars; the provider reports $0.031 and 1,200 tokens (no price table).
    let guard = agent.reserve(usd("0.50")).unwrap();
    let committed = guard
        .commit(
            Cost::from(usd("0.031"))
                .with(Amount::tokens(1_200))
                .unwrap(),
        )
        .unwrap();
    assert_eq!(committed.returned.get(Unit::Usd), Some(usd("0.469")));
    for node in [&org, &agent] {
        assert_eq!(node.balance(Unit::Usd).unwrap().spent, usd("0.031"));
        assert_eq!(
            node.balance(Unit::Tokens).unwrap().spent,
            Amount::tokens(1_200)
        );
        assert_eq!(node.balance(Unit::Tokens).unwrap().debt, Amount::tokens(0));
    }
    // A held unit missing from the commit is still a mismatch, and changes nothing.
    let guard = agent
        .reserve(Cost::from(usd("0.10")).with(Amount::tokens(10)).unwrap())
        .unwrap();
    let error = guard.commit(usd("0.10")).unwrap_err();
    assert!(matches!(error.error(), Error::UnitMismatch { .. }));
    assert_eq!(agent.balance(Unit::Usd).unwrap().spent, usd("0.031"));
}
