//! Attribution reports (issue 8, item 5): totals equal the ledger to the nano-unit, grouping by
//! node / model / agent / task / tag, time ranges, bounded memory, the audit sink, top cost
//! drivers in threshold events, the dashboard.

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use budget_guard::report::{GroupBy, ReportOptions, ReportQuery, SpendOutcome};
use budget_guard::{
    Amount, Budget, Error, Labels, Limit, ManualClock, ModelPrice, OveragePolicy, PriceTable,
    Status, Timestamp, Unit, Usage,
};

fn usd(text: &str) -> Amount {
    Amount::usd(text).unwrap()
}

/// `spent + debt`: the money a node has spent, inside its limit or beyond it.
fn ledger_spent(budget: &Budget, unit: Unit) -> Amount {
    let balance = budget.balance(unit).unwrap();
    Amount::try_from_minor(
        balance.spent.minor_units() + balance.debt.minor_units(),
        unit,
    )
    .unwrap()
}

fn prices() -> PriceTable {
    PriceTable::new()
        .with(
            "gpt-4o",
            ModelPrice::per_million("2.50".parse().unwrap(), "10".parse().unwrap()).unwrap(),
        )
        .with(
            "gpt-4o-mini",
            ModelPrice::per_million("0.15".parse().unwrap(), "0.60".parse().unwrap()).unwrap(),
        )
}

#[test]
fn report_totals_equal_the_ledger_to_the_nano_unit_under_8_threads() {
    let mut builder = Budget::builder("org", Limit::hard(usd("1000")));
    for t in 0..8 {
        builder = builder
            .child(
                &format!("agent-{t}"),
                Limit::hard(usd("3")).with_overage(OveragePolicy::AllowIfAvailable),
            )
            .child(&format!("strict-{t}"), Limit::hard(usd("1")));
    }
    let org = builder.build().unwrap();
    org.enable_reports(ReportOptions::new()).unwrap();
    let prices = Arc::new(prices());

    let workers: Vec<_> = (0..8)
        .map(|t| {
            let org = org.clone();
            let prices = prices.clone();
            thread::spawn(move || {
                let agent = org.at(&format!("agent-{t}")).unwrap();
                let strict = org.at(&format!("strict-{t}")).unwrap();
                let models = ["gpt-4o", "gpt-4o-mini"];
                for i in 0u64..400 {
                    let labels = Labels::new()
                        .agent(format!("agent-{t}"))
                        .tag(format!("feature:{}", i % 3));
                    match i % 5 {
                        // commit below the hold (odd nano amounts)
                        0 => {
                            if let Ok(guard) = agent.reserve_labeled(usd("0.01"), &labels) {
                                let cost = Amount::try_from_minor(1_234_567 + i as i64, Unit::Usd);
                                let _ = guard.commit(cost.unwrap());
                            }
                        }
                        // commit above the hold: allowed while there is room, else rejected
                        1 => {
                            if let Ok(guard) = agent.reserve_labeled(usd("0.001"), &labels) {
                                let _ = guard.commit(usd("0.0023"));
                            }
                        }
                        // streamed spend, then the guard is dropped
                        2 => {
                            if let Ok(guard) = agent.reserve_labeled(usd("0.002"), &labels) {
                                let _ = guard.record(usd("0.000777"));
                            }
                        }
                        // priced by a usage report
                        3 => {
                            let model = models[(i as usize / 5) % 2];
                            if let Ok(guard) = agent.reserve_for(&prices, model, 1_000, 200) {
                                let _ = guard.commit_usage(
                                    prices.get(model).unwrap(),
                                    &Usage::new(900 + i, 150),
                                );
                            }
                        }
                        // a strict node: an overage is refused and recorded as debt
                        _ => {
                            if let Ok(guard) = strict.reserve_labeled(usd("0.01"), &labels) {
                                let outcome = guard.commit(usd("0.013"));
                                assert!(matches!(
                                    outcome.map_err(|e| e.into_error()),
                                    Ok(_) | Err(Error::OverageRejected { .. })
                                ));
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }

    let report = org.report(&ReportQuery::by(GroupBy::Node)).unwrap();
    assert_eq!(report.dropped.records, 0);
    assert_eq!(report.total.usd, ledger_spent(&org, Unit::Usd));
    assert!(report.total.usd > usd("1"), "{}", report.total.usd);
    for t in 0..8 {
        for name in [format!("agent-{t}"), format!("strict-{t}")] {
            let node = org.at(&name).unwrap();
            let own = node.report(&ReportQuery::by(GroupBy::Node)).unwrap();
            assert_eq!(own.total.usd, ledger_spent(&node, Unit::Usd), "{name}");
            let row = report.rows.iter().find(|row| *row.key == *node.path());
            assert_eq!(row.unwrap().totals.usd, own.total.usd, "{name}");
        }
    }
    // Every strict node ended in debt through OverageRejected, and those commits are counted.
    assert!((0..8).all(|t| {
        !org.at(&format!("strict-{t}"))
            .unwrap()
            .balance(Unit::Usd)
            .unwrap()
            .debt
            .is_zero()
    }));
    // Grouped any way, the total is the same; by model, the usage reports' tokens show up.
    let by_model = org.report(&ReportQuery::by(GroupBy::Model)).unwrap();
    let summed: i64 = by_model
        .rows
        .iter()
        .map(|r| r.totals.usd.minor_units())
        .sum();
    assert_eq!(summed, report.total.usd.minor_units());
    let gpt = by_model.rows.iter().find(|r| &*r.key == "gpt-4o").unwrap();
    assert!(gpt.totals.input_tokens > 0 && gpt.totals.output_tokens > 0);
}

#[test]
fn grouping_by_model_agent_task_and_tag_with_hand_computed_figures() {
    let org = Budget::builder("org", Limit::hard(usd("10")))
        .child("team", Limit::hard(usd("5")))
        .build()
        .unwrap();
    org.enable_reports(ReportOptions::new()).unwrap();
    let team = org.at("team").unwrap();
    let prices = prices();

    // gpt-4o: 1,000 in × $2.50/M + 100 out × $10/M = $0.0025 + $0.001 = $0.0035
    let guard = team.reserve_for(&prices, "gpt-4o", 1_000, 500).unwrap();
    let mut guard = guard;
    guard
        .label(
            &Labels::new()
                .agent("planner")
                .task("s-1")
                .tag("feature:search"),
        )
        .unwrap();
    guard
        .commit_usage(prices.get("gpt-4o").unwrap(), &Usage::new(1_000, 100))
        .unwrap();
    // gpt-4o-mini: 2,000 × $0.15/M + 1,000 × $0.60/M = $0.0003 + $0.0006 = $0.0009
    let mut guard = org
        .reserve_for(&prices, "gpt-4o-mini", 2_000, 1_000)
        .unwrap();
    guard
        .label(
            &Labels::new()
                .agent("writer")
                .task("s-1")
                .tag("feature:chat")
                .tag("feature:search"),
        )
        .unwrap();
    guard
        .commit_usage(
            prices.get("gpt-4o-mini").unwrap(),
            &Usage::new(2_000, 1_000),
        )
        .unwrap();
    // Unlabelled spend.
    team.reserve(usd("1")).unwrap().commit(usd("0.25")).unwrap();

    let report = |group| org.report(&ReportQuery::by(group)).unwrap();
    let figure = |report: &budget_guard::report::Report, key: &str| {
        report
            .rows
            .iter()
            .find(|row| &*row.key == key)
            .map(|row| row.totals.usd)
    };

    let by_model = report(GroupBy::Model);
    assert_eq!(figure(&by_model, "gpt-4o"), Some(usd("0.0035")));
    assert_eq!(figure(&by_model, "gpt-4o-mini"), Some(usd("0.0009")));
    assert_eq!(figure(&by_model, "(none)"), Some(usd("0.25")));
    assert_eq!(by_model.rows[0].key.as_ref(), "(none)"); // biggest first
    assert_eq!(by_model.total.usd, usd("0.2544"));
    assert_eq!(by_model.total.records, 3);
    assert_eq!(by_model.total.input_tokens, 3_000);
    assert_eq!(by_model.total.output_tokens, 1_100);

    let by_agent = report(GroupBy::Agent);
    assert_eq!(figure(&by_agent, "planner"), Some(usd("0.0035")));
    assert_eq!(figure(&by_agent, "writer"), Some(usd("0.0009")));

    let by_task = report(GroupBy::Task);
    assert_eq!(figure(&by_task, "s-1"), Some(usd("0.0044")));

    // A record with two tags counts in both groups.
    let by_tag = report(GroupBy::Tag);
    assert_eq!(figure(&by_tag, "feature:search"), Some(usd("0.0044")));
    assert_eq!(figure(&by_tag, "feature:chat"), Some(usd("0.0009")));
    assert_eq!(figure(&by_tag, "(none)"), Some(usd("0.25")));

    let by_node = report(GroupBy::Node);
    assert_eq!(figure(&by_node, "org/team"), Some(usd("0.2535")));
    assert_eq!(figure(&by_node, "org"), Some(usd("0.0009")));

    // A subtree report covers the subtree only.
    let team_report = team.report(&ReportQuery::by(GroupBy::Model)).unwrap();
    assert_eq!(team_report.total.usd, usd("0.2535"));
    assert_eq!(team_report.total.usd, ledger_spent(&team, Unit::Usd));

    let table = by_model.to_string();
    assert!(
        table.contains("gpt-4o-mini") && table.contains("$0.2544"),
        "{table}"
    );
}

#[test]
fn time_ranges_select_buckets_by_the_report_clock() {
    // A minute boundary (1,699,999,980 s = 28,333,333 minutes).
    let clock = ManualClock::new(Timestamp::from_unix_nanos(1_699_999_980_000_000_000));
    let start = clock.now_for_test();
    let org = Budget::builder("org", Limit::hard(usd("10")))
        .build()
        .unwrap();
    org.enable_reports(ReportOptions::new().clock(clock.clone()))
        .unwrap();
    let spend = |amount: &str| {
        org.reserve(usd(amount))
            .unwrap()
            .commit(usd(amount))
            .unwrap();
    };
    spend("1"); // minute 0
    clock.advance(Duration::from_secs(90));
    spend("2"); // minute 1
    clock.advance(Duration::from_secs(60));
    spend("4"); // minute 2

    let total = |query: ReportQuery| org.report(&query).unwrap().total.usd;
    let minute = |n: u64| start.saturating_add(Duration::from_secs(60 * n));
    assert_eq!(total(ReportQuery::by(GroupBy::Node)), usd("7"));
    assert_eq!(
        total(ReportQuery::by(GroupBy::Node).since(minute(1))),
        usd("6")
    );
    assert_eq!(
        total(ReportQuery::by(GroupBy::Node).until(minute(1))),
        usd("1")
    );
    assert_eq!(
        total(
            ReportQuery::by(GroupBy::Node)
                .since(minute(1))
                .until(minute(2))
        ),
        usd("2")
    );
}

/// `ManualClock::now` through the `Clock` trait, without importing it at every call.
trait NowForTest {
    fn now_for_test(&self) -> Timestamp;
}

impl NowForTest for ManualClock {
    fn now_for_test(&self) -> Timestamp {
        budget_guard::Clock::now(self)
    }
}

#[test]
fn many_distinct_tags_over_many_buckets_stay_under_the_row_cap() {
    let clock = ManualClock::new(Timestamp::EPOCH);
    let org = Budget::builder("org", Limit::hard(usd("1000000")))
        .child("a", Limit::hard(usd("1000000")))
        .build()
        .unwrap();
    org.enable_reports(ReportOptions::new().clock(clock.clone()).max_rows(100))
        .unwrap();
    let a = org.at("a").unwrap();
    for minute in 0..50 {
        for tag in 0..40 {
            let labels = Labels::new().tag(format!("t{minute}-{tag}"));
            let node = if tag % 2 == 0 { &org } else { &a };
            node.reserve_labeled(usd("0.000000123"), &labels)
                .unwrap()
                .commit(usd("0.000000123"))
                .unwrap();
            let report = org.report(&ReportQuery::by(GroupBy::Tag)).unwrap();
            assert!(report.retained_rows <= 100, "{}", report.retained_rows);
        }
        clock.advance(Duration::from_secs(60));
    }
    let report = org.report(&ReportQuery::by(GroupBy::Tag)).unwrap();
    assert!(report.retained_rows <= 100);
    assert!(report.dropped.records > 0);
    // Nothing vanished: grouped plus dropped equals the ledger.
    assert_eq!(report.total.records + report.dropped.records, 2_000);
    assert_eq!(
        report.total.usd.minor_units() + report.dropped.usd.minor_units(),
        ledger_spent(&org, Unit::Usd).minor_units()
    );
    // The newest minute is kept in full.
    assert_eq!(
        org.report(
            &ReportQuery::by(GroupBy::Tag).since(Timestamp::from_unix_nanos(49 * 60_000_000_000))
        )
        .unwrap()
        .rows
        .len(),
        40
    );
}

#[test]
fn the_sink_receives_every_record_and_a_panicking_sink_changes_nothing() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let org = Budget::builder("org", Limit::hard(usd("1")))
        .build()
        .unwrap();
    org.enable_reports(ReportOptions::new().sink(move |record| {
        log.lock().unwrap().push(record.clone());
        assert!(
            record.outcome != SpendOutcome::Released,
            "a sink that panics"
        );
    }))
    .unwrap();
    org.reserve_labeled(usd("0.5"), &Labels::new().model("m"))
        .unwrap()
        .commit(usd("0.2"))
        .unwrap();
    let streamed = org.reserve(usd("0.1")).unwrap();
    streamed.record(usd("0.05")).unwrap();
    drop(streamed); // released with recorded spend: the sink panics, caught
    org.reserve(usd("0.1")).unwrap().release().unwrap(); // no spend: no record
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].outcome, SpendOutcome::Committed);
    assert_eq!(seen[0].labels.model_name(), Some("m"));
    assert_eq!(seen[1].outcome, SpendOutcome::Released);
    let sum: i64 = seen
        .iter()
        .map(|r| r.spent.get(Unit::Usd).unwrap().minor_units())
        .sum();
    assert_eq!(sum, ledger_spent(&org, Unit::Usd).minor_units());
}

#[test]
fn threshold_events_name_the_top_cost_drivers() {
    let org = Budget::builder("org", Limit::hard(usd("10")).with_thresholds([50]))
        .build()
        .unwrap();
    org.enable_reports(ReportOptions::new().top_drivers(GroupBy::Model, 2))
        .unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let log = events.clone();
    org.on_threshold(move |event| log.lock().unwrap().push(event.clone()));
    for (model, amount) in [("a", "1"), ("b", "3"), ("c", "0.5"), ("b", "1")] {
        org.reserve_labeled(usd(amount), &Labels::new().model(model))
            .unwrap()
            .commit(usd(amount))
            .unwrap();
    }
    // The last commit takes spend from $4.50 to $5.50: level 50 fires (on committed spend,
    // semantics issue 13) with the spend so far, that commit included.
    let events = events.lock().unwrap();
    assert_eq!(events.len(), 1);
    let drivers = &events[0].top_drivers;
    assert_eq!(drivers.len(), 2);
    assert_eq!((&*drivers[0].key, drivers[0].spent), ("b", usd("4")));
    assert_eq!((&*drivers[1].key, drivers[1].spent), ("a", usd("1")));
    assert!(
        events[0]
            .top_drivers
            .iter()
            .all(|driver| driver.group_by == GroupBy::Model)
    );
}

#[test]
fn the_dashboard_shows_status_spent_and_limit() {
    let org = Budget::builder("org", Limit::hard(usd("10")))
        .child("full", Limit::hard(usd("1")))
        .child("warm", Limit::hard(usd("1")))
        .child("soft", Limit::soft(usd("1")))
        .child("owing", Limit::hard(usd("1")))
        .build()
        .unwrap();
    let at = |path: &str| org.at(path).unwrap();
    at("full")
        .reserve(usd("1"))
        .unwrap()
        .commit(usd("1"))
        .unwrap();
    at("warm")
        .reserve(usd("0.85"))
        .unwrap()
        .commit(usd("0.85"))
        .unwrap();
    at("soft")
        .reserve(usd("1.5"))
        .unwrap()
        .commit(usd("1.5"))
        .unwrap();
    let rejected = at("owing").reserve(usd("0.5")).unwrap().commit(usd("1.2"));
    assert!(rejected.is_err());
    let board = org.dashboard(Unit::Usd).unwrap();
    let status: Vec<_> = board.rows.iter().map(|r| (&*r.node, r.status)).collect();
    assert_eq!(
        status,
        [
            ("org", Status::Ok),
            ("org/full", Status::Exhausted),
            ("org/warm", Status::Warning),
            ("org/soft", Status::OverSoftLimit),
            ("org/owing", Status::InDebt),
        ]
    );
    assert_eq!(board.rows[4].spent, usd("1.2"));
    let table = board.to_string();
    assert!(
        table.contains("org/full") && table.contains("exhausted"),
        "{table}"
    );
}

#[test]
fn bad_labels_and_options_are_typed_errors_that_hold_nothing() {
    let org = Budget::builder("org", Limit::hard(usd("1")))
        .build()
        .unwrap();
    let err = org
        .reserve_labeled(usd("0.5"), &Labels::new().agent(""))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidLabel { .. }), "{err}");
    assert!(org.balance(Unit::Usd).unwrap().reserved.is_zero());
    let mut guard = org.reserve(usd("0.5")).unwrap();
    let err = guard
        .label(&Labels::new().tag("x".repeat(200)))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidLabel { .. }));
    assert!(guard.labels().is_none());
    drop(guard);
    assert!(matches!(
        org.enable_reports(ReportOptions::new().bucket(Duration::ZERO)),
        Err(Error::InvalidDuration { .. })
    ));
    assert!(org.report(&ReportQuery::by(GroupBy::Node)).is_none());
}

#[cfg(feature = "serde")]
#[test]
fn reports_export_with_serde() {
    let org = Budget::builder("org", Limit::hard(usd("1")))
        .build()
        .unwrap();
    org.enable_reports(ReportOptions::new()).unwrap();
    org.reserve_labeled(usd("0.5"), &Labels::new().model("m").tag("t"))
        .unwrap()
        .commit(usd("0.123456789"))
        .unwrap();
    let report = org.report(&ReportQuery::by(GroupBy::Model)).unwrap();
    let json = serde_json::to_string(&report).unwrap();
    assert!(json.contains("\"group_by\":\"model\""), "{json}");
    assert!(json.contains("0.123456789"), "{json}");
    let back: budget_guard::report::Report = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);
    let board = serde_json::to_string(&org.dashboard(Unit::Usd).unwrap()).unwrap();
    assert!(board.contains("\"status\":\"ok\""), "{board}");
}
