//! Every invalid input gets its specific, descriptive error and changes no balance.

use budget_guard::{Amount, AmountError, Budget, Cost, Error, Limit, Limits, OveragePolicy, Unit};

fn usd(text: &str) -> Amount {
    Amount::usd(text).unwrap()
}

/// acme ($10) → team ($4) → task ($1), plus a tracking-only node and a live hold on the task.
struct Fixture {
    root: Budget,
    team: Budget,
    task: Budget,
    tracking: Budget,
}

fn fixture() -> Fixture {
    let root = Budget::builder("acme", Limit::hard(usd("10")))
        .child("team", Limit::hard(usd("4")))
        .child("team/task", Limit::hard(usd("1")))
        .child("tracking", Limits::none())
        .build()
        .unwrap();
    Fixture {
        team: root.at("team").unwrap(),
        task: root.at("team/task").unwrap(),
        tracking: root.at("tracking").unwrap(),
        root,
    }
}

type Case = (
    &'static str,
    fn(&Fixture) -> Error,
    fn(&Error) -> bool,
    &'static str,
);

fn reason(error: &Error) -> Option<AmountError> {
    match error {
        Error::InvalidAmount { reason, .. } => Some(*reason),
        _ => None,
    }
}

const CASES: &[Case] = &[
    (
        "negative amount",
        |_| Amount::usd("-0.01").unwrap_err(),
        |e| reason(e) == Some(AmountError::Negative),
        "cannot be negative",
    ),
    (
        "not a number",
        |_| Amount::usd("ten dollars").unwrap_err(),
        |e| reason(e) == Some(AmountError::NotANumber),
        "not a decimal number",
    ),
    (
        "too precise",
        |_| Amount::usd("0.0000000001").unwrap_err(),
        |e| {
            matches!(
                reason(e),
                Some(AmountError::TooPrecise {
                    decimal_places: 9,
                    ..
                })
            )
        },
        "at most 9 decimal places",
    ),
    (
        "unknown unit",
        |_| "5 euros".parse::<Amount>().unwrap_err(),
        |e| reason(e) == Some(AmountError::UnknownUnit),
        "unknown unit",
    ),
    (
        "missing unit",
        |_| "5".parse::<Amount>().unwrap_err(),
        |e| reason(e) == Some(AmountError::MissingUnit),
        "missing unit",
    ),
    (
        "amount overflow",
        |_| Amount::usd("99999999999").unwrap_err(),
        |e| matches!(e, Error::Overflow { .. }),
        "overflow",
    ),
    (
        "zero reserve",
        |f| f.task.reserve(Amount::zero(Unit::Usd)).unwrap_err(),
        |e| reason(e) == Some(AmountError::Zero),
        "above zero",
    ),
    (
        "empty cost",
        |f| f.task.reserve(Cost::new()).unwrap_err(),
        |e| reason(e) == Some(AmountError::Zero),
        "above zero",
    ),
    (
        "empty range",
        |f| f.task.reserve_up_to(usd("0.5"), usd("0.1")).unwrap_err(),
        |e| reason(e) == Some(AmountError::EmptyRange),
        "minimum is above the maximum",
    ),
    (
        "commit below recorded spend",
        |f| {
            let guard = f.task.reserve(usd("0.5")).unwrap();
            guard.record(usd("0.2")).unwrap();
            let spent_before = f.task.balance(Unit::Usd).unwrap();
            let failed = guard.commit(usd("0.1")).unwrap_err();
            let retry = failed.into_guard().expect("hold still live");
            assert_eq!(f.task.balance(Unit::Usd).unwrap(), spent_before);
            retry.commit(usd("0.1")).unwrap_err().into_error()
        },
        |e| matches!(reason(e), Some(AmountError::BelowRecorded { .. })),
        "already recorded",
    ),
    (
        "reserve overflow on a tracking node",
        |f| {
            let huge = Amount::try_from_minor(i64::MAX, Unit::Tokens).unwrap();
            f.tracking
                .set_limit(Limit::soft(Amount::tokens(1)))
                .unwrap();
            let _first = f.tracking.reserve(huge).unwrap();
            f.tracking.reserve(Amount::tokens(1)).unwrap_err()
        },
        |e| matches!(e, Error::Overflow { .. }),
        "overflow",
    ),
    (
        "commit in another unit",
        |f| {
            let guard = f.task.reserve(usd("0.5")).unwrap();
            guard.commit(Amount::tokens(10)).unwrap_err().into_error()
        },
        |e| {
            matches!(
                e,
                Error::UnitMismatch {
                    expected: Unit::Usd,
                    found: Unit::Tokens,
                    ..
                }
            )
        },
        "expected usd, found tokens",
    ),
    (
        "overdraft in another unit",
        |f| {
            let policy = OveragePolicy::AllowWithOverdraft {
                limit: Amount::tokens(5),
            };
            f.task
                .set_limit(Limit::hard(usd("1")).with_overage(policy))
                .unwrap_err()
        },
        |e| matches!(e, Error::UnitMismatch { .. }),
        "overdraft limit",
    ),
    (
        "two amounts of one unit in a cost",
        |_| Cost::from(usd("1")).with(usd("2")).unwrap_err(),
        |e| matches!(e, Error::UnitMismatch { .. }),
        "two amounts of one unit",
    ),
    (
        "credit in a unit without a limit",
        |f| f.task.credit(Amount::tokens(10)).unwrap_err(),
        |e| matches!(e, Error::UnitNotBudgeted { .. }),
        "no limit in tokens",
    ),
    (
        "unknown path",
        |f| f.root.at("team/nobody").unwrap_err(),
        |e| matches!(e, Error::UnknownNode { path } if path == "acme/team/nobody"),
        "acme/team/nobody",
    ),
    (
        "removed node",
        |f| {
            let temp = f.team.add_child("temp", Limits::none()).unwrap();
            let stale = temp.clone();
            temp.remove().unwrap();
            stale.balance(Unit::Usd).unwrap_err()
        },
        |e| matches!(e, Error::UnknownNode { path } if path == "acme/team/temp"),
        "acme/team/temp",
    ),
    (
        "duplicate node",
        |f| f.team.add_child("task", Limits::none()).unwrap_err(),
        |e| matches!(e, Error::DuplicateNode { path } if path == "acme/team/task"),
        "already exists",
    ),
    (
        "duplicate limit",
        |f| {
            let limits = [Limit::hard(usd("1")), Limit::soft(usd("2"))];
            f.team.add_child("double", limits).unwrap_err()
        },
        |e| {
            matches!(
                e,
                Error::DuplicateLimit {
                    unit: Unit::Usd,
                    ..
                }
            )
        },
        "two limits in usd",
    ),
    (
        "name with a slash",
        |f| f.team.add_child("a/b", Limits::none()).unwrap_err(),
        |e| matches!(e, Error::InvalidName { .. }),
        "cannot contain '/'",
    ),
    (
        "empty name",
        |f| f.team.add_child("", Limits::none()).unwrap_err(),
        |e| matches!(e, Error::InvalidName { .. }),
        "cannot be empty",
    ),
    (
        "remove a node with children",
        |f| f.team.clone().remove().unwrap_err(),
        |e| {
            matches!(
                e,
                Error::NodeInUse {
                    children: 1,
                    holds: 0,
                    ..
                }
            )
        },
        "1 children",
    ),
    (
        "remove a node with a live hold",
        |f| {
            let _guard = f.task.reserve(usd("0.1")).unwrap();
            f.task.clone().remove().unwrap_err()
        },
        |e| matches!(e, Error::NodeInUse { holds: 1, .. }),
        "1 live holds",
    ),
    (
        "remove the root",
        |f| f.root.clone().remove().unwrap_err(),
        |e| matches!(e, Error::RootRemoval { .. }),
        "root",
    ),
    (
        "limit below usage",
        |f| {
            let _guard = f.task.reserve(usd("0.6")).unwrap();
            f.task.set_limit(Limit::hard(usd("0.5"))).unwrap_err()
        },
        |e| matches!(e, Error::LimitBelowUsage { .. }),
        "below the $0.00 spent plus $0.60 reserved",
    ),
    (
        "debit more than the limit",
        |f| f.task.debit(usd("2")).unwrap_err(),
        |e| matches!(e, Error::LimitBelowUsage { .. }),
        "below",
    ),
    (
        "inconsistent snapshot",
        |f| {
            let _guard = f.task.reserve(usd("0.3")).unwrap();
            let mut snapshot = f.root.snapshot().unwrap();
            snapshot.holds.clear();
            f.root.store().restore(&snapshot).unwrap_err()
        },
        |e| matches!(e, Error::InvalidSnapshot { .. }),
        "holds add up to",
    ),
    (
        "commit on an ended hold",
        |f| {
            let guard = f.task.reserve(usd("0.3")).unwrap();
            let hold = guard.id();
            guard.release().unwrap();
            f.root
                .store()
                .commit(hold, &Cost::from(usd("0.1")))
                .unwrap_err()
        },
        |e| matches!(e, Error::UnknownHold { .. }),
        "not live",
    ),
    (
        "reserve past a hard limit",
        |f| f.task.reserve(usd("1.01")).unwrap_err(),
        |e| {
            e.exceeded()
                .is_some_and(|x| x.never_fits() && &*x.node == "acme/team/task")
        },
        "budget exceeded at acme/team/task: requested $1.01",
    ),
];

/// Cases that must build state first (a hold, a recorded spend, a removed node) change the books
/// before their failing call; `failed_calls_inside_stateful_cases_change_nothing` and the
/// assertions inside those cases cover the failing call itself. Every other case must leave the
/// whole store exactly as it found it.
fn checks_state(name: &str) -> bool {
    !matches!(
        name,
        "commit below recorded spend"
            | "reserve overflow on a tracking node"
            | "remove a node with a live hold"
            | "limit below usage"
            | "removed node"
            | "inconsistent snapshot"
            | "commit on an ended hold"
            | "commit in another unit"
    )
}

#[test]
fn every_bad_input_has_its_own_error_and_changes_nothing() {
    for (name, trigger, is_expected, message_part) in CASES {
        let fixture = fixture();
        let before = fixture.root.snapshot().unwrap();
        let error = trigger(&fixture);
        assert!(is_expected(&error), "{name}: wrong error {error:?}");
        let message = error.to_string();
        assert!(
            message.contains(message_part),
            "{name}: message {message:?} should mention {message_part:?}"
        );
        if checks_state(name) {
            assert_eq!(
                fixture.root.snapshot().unwrap(),
                before,
                "{name} changed the books"
            );
        }
    }
}

#[test]
fn failed_calls_inside_stateful_cases_change_nothing() {
    // The stateful cases above, with the books compared around the failing call itself.
    let f = fixture();
    let guard = f.task.reserve(usd("0.6")).unwrap();
    let before = f.root.snapshot().unwrap();
    assert!(f.task.set_limit(Limit::hard(usd("0.5"))).is_err());
    assert!(f.task.clone().remove().is_err());
    let retry = guard
        .commit(Amount::tokens(1))
        .unwrap_err()
        .into_guard()
        .unwrap();
    let mut broken = f.root.snapshot().unwrap();
    broken.holds.clear();
    assert!(f.root.store().restore(&broken).is_err());
    assert_eq!(f.root.snapshot().unwrap(), before);
    retry.commit(usd("0.6")).unwrap();
    assert_eq!(f.task.balance(Unit::Usd).unwrap().spent, usd("0.6"));
}
