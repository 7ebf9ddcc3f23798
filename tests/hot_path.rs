//! The hot path's one-walk reserve and its slot-read commit and release (issue 16) give the
//! same answers as the general paths: a refusal part-way up the path leaves every node as it
//! was, crossings on several nodes are reported leaf first, a commit or release after partial
//! spend moves exactly what the hold still held.

use budget_guard::{Amount, Budget, Cost, Limit, ThresholdBasis, Unit};

fn usd(text: &str) -> Amount {
    Amount::usd(text).unwrap()
}

fn reserved_and_spent(budget: &Budget) -> (Amount, Amount) {
    let balance = budget.balance(Unit::Usd).unwrap();
    (balance.reserved, balance.spent)
}

/// org $1 (hard) → team $10 → task $10, with $0.40 already spent on the task.
fn tree() -> (Budget, Budget, Budget) {
    let org = Budget::builder("org", Limit::hard(usd("1")))
        .child("team", Limit::hard(usd("10")))
        .child("team/task", Limit::hard(usd("10")))
        .build()
        .unwrap();
    let team = org.at("team").unwrap();
    let task = org.at("team/task").unwrap();
    task.reserve(usd("0.40"))
        .unwrap()
        .commit(usd("0.40"))
        .unwrap();
    (org, team, task)
}

#[test]
fn a_reserve_refused_at_the_root_after_fitting_below_changes_no_node() {
    let (org, team, task) = tree();
    // Fits the task and the team ($10 each), not the org ($0.60 left).
    let refused = task.reserve(usd("0.75")).unwrap_err();
    let exceeded = refused.exceeded().expect("BudgetExceeded");
    assert_eq!(&*exceeded.node, "org");
    assert_eq!(exceeded.limit, usd("1"));
    assert_eq!(exceeded.spent, usd("0.40"));
    assert_eq!(exceeded.reserved, usd("0"));
    assert_eq!(exceeded.requested, usd("0.75"));
    for budget in [&org, &team, &task] {
        assert_eq!(reserved_and_spent(budget), (usd("0"), usd("0.40")));
    }
    // Exactly the room left still fits, on every node.
    let guard = task.reserve(usd("0.60")).unwrap();
    for budget in [&org, &team, &task] {
        assert_eq!(reserved_and_spent(budget), (usd("0.60"), usd("0.40")));
    }
    drop(guard);
    assert_eq!(reserved_and_spent(&org), (usd("0"), usd("0.40")));
}

#[test]
fn a_reserve_reports_the_levels_it_reaches_on_every_node_leaf_first() {
    let early = |amount: &str| {
        Limit::hard(usd(amount))
            .with_thresholds([50])
            .with_threshold_basis(ThresholdBasis::SpentAndHeld)
    };
    let org = Budget::builder("org", early("4"))
        .child("team", Limit::hard(usd("100")))
        .child("team/task", early("2"))
        .build()
        .unwrap();
    let task = org.at("team/task").unwrap();
    // $2 held: the task at 100 %, the team at 2 %, the org at 50 %: two levels in one reserve.
    let both = task.reserve(usd("2")).unwrap();
    let nodes: Vec<&str> = both.crossings().iter().map(|c| &**c.node()).collect();
    assert_eq!(nodes, ["org/team/task", "org"]);
    drop(both);
    // Levels stay fired: the same reserve again reports nothing.
    assert!(task.reserve(usd("2")).unwrap().crossings().is_empty());
}

#[test]
fn a_commit_and_a_release_after_partial_spend_move_exactly_what_the_hold_still_held() {
    let (org, _team, task) = tree();
    let guard = task.reserve(usd("0.30")).unwrap();
    guard.record(usd("0.10")).unwrap();
    assert_eq!(reserved_and_spent(&org), (usd("0.20"), usd("0.50")));
    let committed = guard.commit(usd("0.25")).unwrap();
    assert_eq!(committed.spent.get(Unit::Usd), Some(usd("0.25")));
    assert_eq!(committed.returned.get(Unit::Usd), Some(usd("0.05")));
    assert_eq!(committed.overage.get(Unit::Usd), Some(usd("0")));
    assert_eq!(reserved_and_spent(&org), (usd("0"), usd("0.65")));
    assert_eq!(reserved_and_spent(&task), (usd("0"), usd("0.65")));

    let guard = task.reserve(usd("0.30")).unwrap();
    guard.record(usd("0.12")).unwrap();
    guard.release().unwrap();
    assert_eq!(reserved_and_spent(&org), (usd("0"), usd("0.77")));
    assert_eq!(reserved_and_spent(&task), (usd("0"), usd("0.77")));
}

#[test]
fn a_commit_below_what_was_recorded_is_refused_and_changes_nothing() {
    let (org, _team, task) = tree();
    let guard = task.reserve(usd("0.30")).unwrap();
    guard.record(usd("0.10")).unwrap();
    let refused = guard.commit(usd("0.05")).unwrap_err();
    assert!(
        matches!(refused.error(), budget_guard::Error::InvalidAmount { .. }),
        "{refused:?}"
    );
    assert_eq!(reserved_and_spent(&org), (usd("0.20"), usd("0.50")));
}

/// The memory store's typed `reserve`, `commit` and `release` skip building an `Op` (issue 16):
/// they must mean exactly what `apply` of the same operation means, on the same books. Two
/// stores get the same story, one through the typed methods and one through `apply`: a daily
/// limit whose period rolls between calls, keyed operations and their replays, an over-limit
/// refusal, a release.
#[test]
fn typed_reserve_commit_and_release_of_the_memory_store_mean_what_apply_means() {
    use std::time::Duration;

    use budget_guard::expiry::ReserveOptions;
    use budget_guard::idempotency::{IdempotencyKey, OpOptions};
    use budget_guard::period::Period;
    use budget_guard::{Cost, Limits, ManualClock, MemoryStore, Op, Result, Store, Timestamp};

    let day = Duration::from_secs(86_400);
    let key = |text: &str| IdempotencyKey::new(text).unwrap();
    let cost = |text: &str| Cost::from(usd(text));
    let run = |typed: bool| -> Vec<String> {
        let clock = ManualClock::new(Timestamp::from_unix_nanos(1_700_000_000_000_000_000));
        let store = MemoryStore::with_clock(clock.clone());
        let daily = Limits::from(Limit::hard(usd("1")).per(Period::daily()));
        let node = store.create_node(None, "acme", &daily).unwrap();
        let reserve = |amount: &str, with: Option<&str>| -> Result<budget_guard::Reservation> {
            let ttl = Duration::from_secs(60);
            if typed {
                let mut options = ReserveOptions::new().ttl(ttl);
                if let Some(text) = with {
                    options = options.idempotency_key(key(text));
                }
                store.reserve_with(node, &cost(amount), &options)
            } else {
                let op = Op::Reserve {
                    node,
                    cost: cost(amount),
                    ttl,
                    idempotency_key: with.map(key),
                };
                store.apply(&op)?.into_reservation()
            }
        };
        let commit = |hold, amount: &str, with: Option<&str>| {
            if typed {
                let mut options = OpOptions::new();
                if let Some(text) = with {
                    options = options.idempotency_key(key(text));
                }
                store.commit_with(hold, &cost(amount), &options)
            } else {
                let op = Op::Commit {
                    hold,
                    actual: cost(amount),
                    idempotency_key: with.map(key),
                };
                store.apply(&op)?.into_committed()
            }
        };
        let release = |hold| {
            if typed {
                store.release(hold)
            } else {
                let op = Op::Release {
                    hold,
                    idempotency_key: None,
                };
                store.apply(&op)?.into_released()
            }
        };
        let mut seen = Vec::new();
        let mut note = |what: String| seen.push(what);
        let first = reserve("0.70", Some("r1")).unwrap();
        note(format!("{first:?}"));
        note(format!("{:?}", reserve("0.70", Some("r1")))); // replayed
        note(format!("{:?}", reserve("0.40", None))); // refused: $0.30 left
        note(format!("{:?}", commit(first.hold, "0.65", Some("c1"))));
        note(format!("{:?}", commit(first.hold, "0.65", Some("c1")))); // replayed
        let second = reserve("0.35", None).unwrap();
        note(format!("{second:?}"));
        note(format!("{:?}", store.balance(node, Unit::Usd)));
        clock.advance(day); // the period rolls at the next operation
        note(format!("{:?}", release(second.hold)));
        note(format!("{:?}", release(second.hold))); // already ended
        note(format!("{:?}", store.balance(node, Unit::Usd)));
        let third = reserve("0.90", None).unwrap(); // fits the new day
        note(format!("{:?}", commit(third.hold, "0.90", None)));
        note(format!("{:?}", store.balance(node, Unit::Usd)));
        seen
    };
    let (typed, applied) = (run(true), run(false));
    assert_eq!(typed, applied);
    // The story is the one told above (so the comparison compares something).
    assert!(typed[1].contains("replayed: true"));
    assert!(typed[2].contains("BudgetExceeded"));
    assert!(typed[4].contains("replayed: true"));
    assert_eq!(typed[7], "Ok(true)");
    assert_eq!(typed[8], "Ok(false)");
    let figures = |line: &str| line.contains("spent: Amount($0.65), reserved: Amount($0.35)");
    assert!(figures(&typed[6]), "{}", typed[6]);
    // The day rolled on the typed release too: spend back to zero, then $0.90 of the new day.
    assert!(typed[9].contains("spent: Amount($0.00), reserved: Amount($0.00)"));
    assert!(typed[11].contains("spent: Amount($0.90), reserved: Amount($0.00)"));
}

/// A guard keeps what its accessors read and nothing else: the rare parts (a soft limit passed,
/// crossings, top-ups, report labels) share one box, allocated only when one of them exists, so
/// a guard is 128 bytes and moves as a few register copies instead of a `memcpy` call.
#[test]
fn a_guard_is_at_most_128_bytes_and_keeps_its_soft_limit_and_labels_together() {
    use budget_guard::report::{GroupBy, ReportOptions, ReportQuery};
    use budget_guard::{Guard, Labels};

    assert!(std::mem::size_of::<Guard<'static>>() <= 128);

    // org with a soft $0.50 → agent with a hard $1.
    let org = Budget::builder("org", Limit::soft(usd("0.50")))
        .child("agent", Limit::hard(usd("1")))
        .build()
        .unwrap();
    org.enable_reports(ReportOptions::new()).unwrap();
    let agent = org.at("agent").unwrap();
    let plain = agent.reserve(usd("0.30")).unwrap();
    assert_eq!(plain.over_soft_limit(), None);
    assert!(plain.crossings().is_empty() && plain.top_ups().is_empty());
    // $0.30 + $0.40 passes the org's soft $0.50 (the hard $1 on the agent still has room).
    let mut over = agent.reserve(usd("0.40")).unwrap();
    assert_eq!(over.over_soft_limit(), Some("org"));
    over.label(&Labels::new().agent("planner")).unwrap();
    assert_eq!(
        over.over_soft_limit(),
        Some("org"),
        "labels join the soft limit's box"
    );
    let mut labelled = plain;
    labelled.label(&Labels::new().agent("critic")).unwrap();
    assert_eq!(labelled.over_soft_limit(), None);
    let owned = over.into_owned(); // moves the box along
    assert_eq!(owned.over_soft_limit(), Some("org"));
    assert_eq!(owned.labels().and_then(Labels::agent_name), Some("planner"));
    owned.commit(usd("0.25")).unwrap();
    labelled.commit(usd("0.05")).unwrap();
    let report = org.report(&ReportQuery::by(GroupBy::Agent)).unwrap();
    let spent: Vec<(String, Amount)> = report
        .rows
        .iter()
        .map(|row| (row.key.to_string(), row.totals.usd))
        .collect();
    assert!(
        spent.contains(&("planner".to_owned(), usd("0.25"))),
        "{spent:?}"
    );
    assert!(
        spent.contains(&("critic".to_owned(), usd("0.05"))),
        "{spent:?}"
    );
}

/// org ($1 and 1,000 tokens, hard) → task ($10 and 10,000 tokens; tokens soft at 600).
fn two_unit_tree() -> (Budget, Budget) {
    let org = Budget::builder("org", Limit::hard(usd("1")))
        .child("task", Limit::hard(usd("10")))
        .build()
        .unwrap();
    org.set_limit(Limit::hard(Amount::tokens(1_000))).unwrap();
    let task = org.at("task").unwrap();
    let early = Limit::soft(Amount::tokens(600))
        .with_thresholds([50])
        .with_threshold_basis(ThresholdBasis::SpentAndHeld);
    task.set_limit(early).unwrap();
    (org, task)
}

fn dollars_and_tokens(dollars: &str, tokens: u32) -> Cost {
    Cost::from(usd(dollars))
        .with(Amount::tokens(tokens))
        .unwrap()
}

fn held(budget: &Budget) -> (Amount, Amount) {
    let dollars = budget.balance(Unit::Usd).unwrap().reserved;
    (dollars, budget.balance(Unit::Tokens).unwrap().reserved)
}

#[test]
fn a_two_unit_reserve_refused_in_its_second_unit_takes_back_the_first_on_every_node() {
    let (org, task) = two_unit_tree();
    // The dollars fit every node; 1,200 tokens fit the task (soft) but not the org.
    let refused = task.reserve(dollars_and_tokens("0.50", 1_200)).unwrap_err();
    let exceeded = refused.exceeded().expect("BudgetExceeded");
    assert_eq!(&*exceeded.node, "org");
    assert_eq!(exceeded.requested, Amount::tokens(1_200));
    assert_eq!(exceeded.limit, Amount::tokens(1_000));
    for budget in [&org, &task] {
        assert_eq!(held(budget), (usd("0"), Amount::tokens(0)));
    }
    // What fits is held in both units on both nodes, with the task's soft limit passed and its
    // 50 % level (300 tokens) and its 100 % reached.
    let guard = task.reserve(dollars_and_tokens("0.50", 700)).unwrap();
    assert_eq!(guard.over_soft_limit(), Some("org/task"));
    let levels: Vec<_> = guard
        .crossings()
        .iter()
        .map(|crossing| (&**crossing.node(), crossing.unit(), crossing.level()))
        .collect();
    assert_eq!(
        levels,
        [
            ("org/task", Unit::Tokens, 50),
            ("org/task", Unit::Tokens, 100)
        ]
    );
    for budget in [&org, &task] {
        assert_eq!(held(budget), (usd("0.50"), Amount::tokens(700)));
    }
    guard.commit(dollars_and_tokens("0.25", 400)).unwrap();
    for budget in [&org, &task] {
        assert_eq!(held(budget), (usd("0"), Amount::tokens(0)));
        assert_eq!(budget.balance(Unit::Usd).unwrap().spent, usd("0.25"));
        assert_eq!(
            budget.balance(Unit::Tokens).unwrap().spent,
            Amount::tokens(400)
        );
    }
}
