//! "Where do I stand" in one call (issue 13 item 4: `Check::limits`) and "is anything still
//! held" (item 10: `Budget::open_holds`), through the public API with exact numbers.

use budget_guard::period::Period;
use budget_guard::{
    Amount, Budget, Cost, Limit, Limits, ManualClock, MemoryStore, Timestamp, Unit, Verdict,
};

fn usd(text: &str) -> Amount {
    Amount::usd(text).expect("valid amount")
}

/// One row of a status table: node, period, limit, spent, reserved, remaining, refuses.
type Row = (
    String,
    Option<Period>,
    Option<Amount>,
    Amount,
    Amount,
    Option<Amount>,
    bool,
);

fn rows(check: &budget_guard::Check) -> Vec<Row> {
    check
        .limits
        .iter()
        .map(|row| {
            let b = &row.balance;
            (
                b.node.to_string(),
                b.limit.and_then(|limit| limit.period()),
                b.allowance,
                b.spent,
                b.reserved,
                b.remaining,
                row.refuses,
            )
        })
        .collect()
}

/// org (monthly $500) / agent (daily $25 and weekly $150) / task ($2): one check shows every
/// limit on the path with its figures and which would refuse.
#[test]
fn one_check_shows_every_limit_on_the_path() {
    let clock = ManualClock::new(Timestamp::from_unix_nanos(1_772_442_000_000_000_000));
    let org = Budget::builder("org", Limit::hard(usd("500")).per(Period::monthly()))
        .child(
            "agent",
            Limits::from([
                Limit::hard(usd("25")).per(Period::daily()),
                Limit::hard(usd("150")).per(Period::weekly()),
            ]),
        )
        .child("agent/task", Limit::hard(usd("2")))
        .build_in(MemoryStore::with_clock(clock))
        .unwrap();
    let agent = org.at("agent").unwrap();
    let task = org.at("agent/task").unwrap();
    agent.reserve(usd("20")).unwrap().commit(usd("20")).unwrap();
    task.reserve(usd("1.25"))
        .unwrap()
        .commit(usd("1.25"))
        .unwrap();
    let _held = task.reserve(usd("0.50")).unwrap();

    let check = task.check(usd("1")).unwrap();
    assert_eq!(
        rows(&check),
        [
            (
                "org/agent/task".into(),
                None,
                Some(usd("2")),
                usd("1.25"),
                usd("0.50"),
                Some(usd("0.25")),
                true,
            ),
            (
                "org/agent".into(),
                Some(Period::daily()),
                Some(usd("25")),
                usd("21.25"),
                usd("0.50"),
                Some(usd("3.25")),
                false,
            ),
            (
                "org/agent".into(),
                Some(Period::weekly()),
                Some(usd("150")),
                usd("21.25"),
                usd("0.50"),
                Some(usd("128.25")),
                false,
            ),
            (
                "org".into(),
                Some(Period::monthly()),
                Some(usd("500")),
                usd("21.25"),
                usd("0.50"),
                Some(usd("478.25")),
                false,
            ),
        ]
    );
    assert!(check.limits.iter().all(|row| row.requested == usd("1")));
    let Verdict::Exceeded(details) = &check.verdict else {
        panic!("{check:?}")
    };
    assert_eq!(&*details.node, "org/agent/task");

    // On the agent itself, $3.50 passes the day's room only: one refusing row, named daily.
    let check = agent.check(usd("3.50")).unwrap();
    let refusing: Vec<(String, Option<Period>)> = rows(&check)
        .into_iter()
        .filter(|row| row.6)
        .map(|row| (row.0, row.1))
        .collect();
    assert_eq!(refusing, [("org/agent".into(), Some(Period::daily()))]);
    assert_eq!(
        check.verdict,
        Verdict::Exceeded(
            agent
                .reserve(usd("3.50"))
                .unwrap_err()
                .exceeded()
                .unwrap()
                .clone()
        )
    );
    // A unit the request has and nobody limits gets a tracking row per node.
    let check = task
        .check(Cost::from(usd("0.10")).with(Amount::tokens(500)).unwrap())
        .unwrap();
    let tokens: Vec<(String, Option<Amount>, bool)> = check
        .limits
        .iter()
        .filter(|row| row.balance.unit == Unit::Tokens)
        .map(|row| {
            (
                row.balance.node.to_string(),
                row.balance.remaining,
                row.refuses,
            )
        })
        .collect();
    assert_eq!(
        tokens,
        [
            ("org/agent/task".into(), None, false),
            ("org/agent".into(), None, false),
            ("org".into(), None, false),
        ]
    );
    assert!(check.fits());
}

#[test]
fn open_holds_counts_and_sums_the_subtree() {
    let run = Budget::builder("run", Limit::hard(usd("10")))
        .child("planner", Limit::hard(usd("3")))
        .child("coder", Limit::hard(usd("5")))
        .child("runner", Limits::none())
        .build()
        .unwrap();
    let planner = run.at("planner").unwrap();
    let coder = run.at("coder").unwrap();
    // A name that shares a prefix is not in the subtree.
    let sibling = Budget::builder("run2", Limit::hard(usd("1")))
        .build_shared(run.store().clone())
        .unwrap();
    let _elsewhere = sibling.reserve(usd("0.40")).unwrap();

    let plan = planner.reserve(usd("1")).unwrap();
    let code = coder
        .reserve(Cost::from(usd("2")).with(Amount::tokens(9_000)).unwrap())
        .unwrap();
    code.record(Cost::from(usd("0.50")).with(Amount::tokens(1_000)).unwrap())
        .unwrap();
    let tools = run.reserve(usd("0.25")).unwrap();

    let open = run.open_holds().unwrap();
    assert_eq!(open.count, 3);
    // 1 + (2 - 0.50) + 0.25 dollars; 9000 - 1000 tokens.
    assert_eq!(open.held.get(Unit::Usd), Some(usd("2.75")));
    assert_eq!(open.held.get(Unit::Tokens), Some(Amount::tokens(8_000)));
    // The holds' outstanding amounts agree with what the root's balance has reserved.
    assert_eq!(run.balance(Unit::Usd).unwrap().reserved, usd("2.75"));
    let on_root: Vec<&str> = open
        .holds
        .iter()
        .filter(|hold| &*hold.node == "run")
        .map(|hold| &*hold.node)
        .collect();
    assert_eq!(on_root, ["run"]);

    let coder_open = coder.open_holds().unwrap();
    assert_eq!(coder_open.count, 1);
    assert_eq!(coder_open.holds[0].id, code.id());
    assert_eq!(coder_open.held.get(Unit::Usd), Some(usd("1.50")));
    assert!(run.at("runner").unwrap().open_holds().unwrap().is_empty());

    plan.commit(usd("0.80")).unwrap();
    code.commit(Cost::from(usd("1.10")).with(Amount::tokens(7_500)).unwrap())
        .unwrap();
    drop(tools);
    let open = run.open_holds().unwrap();
    assert!(open.is_empty(), "{open:?}");
    assert_eq!(open.held, Cost::new());
    assert_eq!(sibling.open_holds().unwrap().count, 1);
}
