//! RedisStore against a real `redis-server` (started per test): the money core, exact money at
//! the 2^53 boundary, deadlines on the server's clock, and what it declares unsupported.

mod redis_support;

use std::sync::Arc;
use std::time::Duration;

use budget_guard::expiry::ReserveOptions;
use budget_guard::idempotency::{IdempotencyKey, OpOptions};
use budget_guard::{
    Amount, Budget, Cost, Error, Limit, Limits, ManualClock, NodeState, OpKind, OveragePolicy,
    RedisOptions, RedisStore, Store, Timestamp, Unit,
};
use redis_support::RedisServer;

fn usd(text: &str) -> Amount {
    Amount::usd(text).unwrap()
}

fn cost(text: &str) -> Cost {
    Cost::from(usd(text))
}

/// `acme` ($10) → `team` ($5) → `task` (no limit).
fn tree(store: &RedisStore) -> [budget_guard::NodeId; 3] {
    let acme = store
        .create_node(None, "acme", &Limit::hard(usd("10")).into())
        .unwrap();
    let team = store
        .create_node(Some(acme), "team", &Limit::hard(usd("5")).into())
        .unwrap();
    let task = store
        .create_node(Some(team), "task", &Limits::none())
        .unwrap();
    [acme, team, task]
}

fn figures(store: &RedisStore, node: budget_guard::NodeId) -> (Amount, Amount) {
    let balance = store.balance(node, Unit::Usd).unwrap();
    (balance.spent, balance.reserved)
}

#[test]
fn reserve_commit_release_on_the_whole_path() {
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    let store = server.store("t");
    let [acme, team, task] = tree(&store);
    let hold = store.reserve(task, &cost("2.50")).unwrap().hold;
    for node in [acme, team, task] {
        assert_eq!(figures(&store, node), (usd("0"), usd("2.50")));
    }
    let committed = store.commit(hold, &cost("1.75")).unwrap();
    assert_eq!(committed.spent, cost("1.75"));
    assert_eq!(committed.returned, cost("0.75"));
    for node in [acme, team, task] {
        assert_eq!(figures(&store, node), (usd("1.75"), usd("0")));
    }
    assert!(matches!(
        store.commit(hold, &cost("1")),
        Err(Error::UnknownHold { .. })
    ));
    let second = store.reserve(task, &cost("1")).unwrap().hold;
    assert!(store.release(second).unwrap());
    assert!(
        !store.release(second).unwrap(),
        "a second release changes nothing"
    );
    assert_eq!(figures(&store, acme), (usd("1.75"), usd("0")));
    assert_eq!(
        store.balance(team, Unit::Usd).unwrap().remaining,
        Some(usd("3.25"))
    );
}

#[test]
fn a_denied_reserve_names_the_limiting_node_and_holds_nothing() {
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    let store = server.store("t");
    let [acme, team, task] = tree(&store);
    store.reserve(task, &cost("4")).unwrap();
    let Err(Error::BudgetExceeded(exceeded)) = store.reserve(task, &cost("1.01")) else {
        panic!("the team's $5 limit denies");
    };
    assert_eq!(&*exceeded.node, "acme/team");
    assert_eq!(exceeded.limit, usd("5"));
    assert_eq!(exceeded.reserved, usd("4"));
    assert_eq!(exceeded.requested, usd("1.01"));
    assert_eq!(figures(&store, acme), (usd("0"), usd("4")));
    assert_eq!(figures(&store, team), (usd("0"), usd("4")));
    store.reserve(task, &cost("1")).unwrap();
}

#[test]
fn multi_unit_reserve_is_all_or_nothing() {
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    let store = server.store("t");
    let limits = Limits::from([Limit::hard(usd("10")), Limit::hard(Amount::tokens(1_000))]);
    let root = store.create_node(None, "acme", &limits).unwrap();
    let ask = Cost::from(usd("1")).with(Amount::tokens(1_001)).unwrap();
    assert!(matches!(
        store.reserve(root, &ask),
        Err(Error::BudgetExceeded(_))
    ));
    assert_eq!(figures(&store, root), (usd("0"), usd("0")));
    let ask = Cost::from(usd("1")).with(Amount::tokens(1_000)).unwrap();
    store.reserve(root, &ask).unwrap();
    assert_eq!(
        store.balance(root, Unit::Tokens).unwrap().reserved,
        Amount::tokens(1_000)
    );
}

#[test]
fn frozen_and_closed_nodes_block_new_holds_below_them() {
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    let store = server.store("t");
    let [_, team, task] = tree(&store);
    let live = store.reserve(task, &cost("1")).unwrap().hold;
    assert_eq!(
        store.set_state(team, NodeState::Frozen).unwrap(),
        NodeState::Active
    );
    assert!(
        matches!(store.reserve(task, &cost("1")), Err(Error::Frozen { node }) if &*node == "acme/team")
    );
    store.commit(live, &cost("0.5")).unwrap();
    store.set_state(team, NodeState::Closed).unwrap();
    assert!(matches!(
        store.reserve(task, &cost("1")),
        Err(Error::Closed { .. })
    ));
    store.set_state(team, NodeState::Active).unwrap();
    store.reserve(task, &cost("1")).unwrap();
}

#[test]
fn credit_debit_and_set_limit_change_the_limit_exactly() {
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    let store = server.store("t");
    let [_, team, task] = tree(&store);
    store.reserve(task, &cost("3")).unwrap();
    let after = store.credit(team, usd("1.50")).unwrap();
    assert_eq!(after.limit.map(|limit| limit.amount()), Some(usd("6.50")));
    assert_eq!(after.remaining, Some(usd("3.50")));
    let after = store.debit(team, usd("0.50")).unwrap();
    assert_eq!(after.remaining, Some(usd("3")));
    assert!(matches!(
        store.debit(team, usd("3.01")),
        Err(Error::LimitBelowUsage { requested_limit, .. }) if requested_limit == usd("2.99")
    ));
    assert!(matches!(
        store.credit(task, usd("1")),
        Err(Error::UnitNotBudgeted { .. })
    ));
    let after = store.set_limit(team, Limit::hard(usd("4"))).unwrap();
    assert_eq!(after.limit, Some(Limit::hard(usd("4"))));
    assert_eq!(after.remaining, Some(usd("1")));
    assert!(matches!(
        store.set_limit(team, Limit::hard(usd("2.99"))),
        Err(Error::LimitBelowUsage { .. })
    ));
    let unlimited = store.remove_limit(team, Unit::Usd).unwrap();
    assert_eq!((unlimited.limit, unlimited.remaining), (None, None));
    assert_eq!(unlimited.reserved, usd("3"));
    store.set_limit(team, Limit::hard(usd("4"))).unwrap();
    // A soft limit only reports, so it may go below what is spent and held (as in the ledger).
    let soft = store.set_limit(team, Limit::soft(usd("2"))).unwrap();
    assert_eq!(soft.limit, Some(Limit::soft(usd("2"))));
    assert_eq!((soft.reserved, soft.remaining), (usd("3"), Some(usd("0"))));
}

#[test]
fn idempotency_keys_apply_once_and_refuse_other_requests() {
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    let store = server.store("t");
    let [acme, _, task] = tree(&store);
    let key = IdempotencyKey::new("run-42/step-1").unwrap();
    let options = ReserveOptions::new().idempotency_key(key.clone());
    let first = store.reserve_with(task, &cost("2"), &options).unwrap();
    let again = store.reserve_with(task, &cost("2"), &options).unwrap();
    assert_eq!(again.hold, first.hold);
    assert!(again.replayed && !first.replayed);
    assert_eq!(figures(&store, acme), (usd("0"), usd("2")));
    assert!(matches!(
        store.reserve_with(task, &cost("3"), &options),
        Err(Error::IdempotencyMismatch {
            first: "reserve",
            requested: "reserve",
            ..
        })
    ));
    let commit_key = OpOptions::new().idempotency_key(IdempotencyKey::new("commit-1").unwrap());
    let committed = store
        .commit_with(first.hold, &cost("1.20"), &commit_key)
        .unwrap();
    let replay = store
        .commit_with(first.hold, &cost("1.20"), &commit_key)
        .unwrap();
    assert!(replay.replayed && !committed.replayed);
    assert_eq!(replay.spent, cost("1.20"));
    assert_eq!(figures(&store, acme), (usd("1.20"), usd("0")));
    assert!(matches!(
        store.reserve_with(task, &cost("2"), &options),
        Err(Error::HoldEnded {
            how: budget_guard::idempotency::HoldEnd::Committed,
            ..
        })
    ));
    let credit_key = OpOptions::new().idempotency_key(IdempotencyKey::new("topup-7").unwrap());
    store.credit_with(acme, usd("1"), &credit_key).unwrap();
    store.credit_with(acme, usd("1"), &credit_key).unwrap();
    let limit = store
        .balance(acme, Unit::Usd)
        .unwrap()
        .limit
        .unwrap()
        .amount();
    assert_eq!(limit, usd("11"), "a retried credit applies once");
}

#[test]
fn money_is_exact_up_to_2_pow_53_minor_units_and_refused_beyond() {
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    let store = server.store("t");
    let max = RedisStore::MAX_EXACT_MINOR;
    assert_eq!(max, 9_007_199_254_740_991);
    let limit = Amount::try_from_minor(max, Unit::Usd).unwrap();
    let root = store
        .create_node(None, "acme", &Limit::hard(limit).into())
        .unwrap();
    let hold = store.reserve(root, &Cost::from(limit)).unwrap().hold;
    assert_eq!(
        store
            .balance(root, Unit::Usd)
            .unwrap()
            .reserved
            .minor_units(),
        max
    );
    store.commit(hold, &Cost::from(limit)).unwrap();
    assert_eq!(
        store.balance(root, Unit::Usd).unwrap().spent.minor_units(),
        max
    );

    let beyond = Amount::try_from_minor(max + 1, Unit::Usd).unwrap();
    assert!(matches!(
        store.create_node(None, "big", &Limit::hard(beyond).into()),
        Err(Error::TooLarge { size, .. }) if size == 1 << 53
    ));
    assert!(matches!(
        store.credit(root, beyond),
        Err(Error::TooLarge { .. })
    ));
    // A sum past the bound is refused by the script before it writes anything.
    assert!(matches!(
        store.credit(root, Amount::try_from_minor(1, Unit::Usd).unwrap()),
        Err(Error::Overflow { .. })
    ));
    assert_eq!(
        store
            .balance(root, Unit::Usd)
            .unwrap()
            .limit
            .unwrap()
            .amount()
            .minor_units(),
        max
    );
}

#[test]
fn deadlines_follow_the_server_clock_not_the_clients() {
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    // The store's own time is the server's; a client clock three hours ahead (say, a Budget's
    // events clock) plays no part in deadlines.
    let skewed = ManualClock::new(Timestamp::from_unix_nanos(server.time_us() * 1_000));
    skewed.advance(Duration::from_secs(3 * 3600));
    let store = server.store("t");
    let root = store
        .create_node(None, "acme", &Limit::hard(usd("1")).into())
        .unwrap();
    let ttl = Duration::from_millis(300);
    let before = server.time_us();
    let reserved = store
        .reserve_with(root, &cost("1"), &ReserveOptions::new().ttl(ttl))
        .unwrap();
    let after = server.time_us();
    let deadline = reserved.expires_at.as_unix_nanos() / 1_000;
    assert!(deadline >= before + 300_000 && deadline <= after + 300_000);
    assert!(reserved.expires_at < budget_guard::Clock::now(&skewed));
    while server.time_us() <= deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    // Past the server's deadline, a reserve that would be denied reclaims the hold first.
    let again = store.reserve(root, &cost("1")).unwrap();
    assert_eq!(again.expired.len(), 1);
    assert_eq!(again.expired[0].hold, reserved.hold);
    assert_eq!(again.expired[0].held, cost("1"));
    assert!(matches!(
        store.extend(reserved.hold, Duration::from_secs(1)),
        Err(Error::ReservationExpired { .. })
    ));
}

#[test]
fn rate_limits_count_every_client_on_the_servers_clock() {
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    let first = server.store("t");
    let second = server.store("t");
    let root = first
        .create_node(None, "acme", &Limit::hard(usd("10")).into())
        .unwrap();
    let limit = budget_guard::rate::RateLimit::new(2, Duration::from_secs(60)).unwrap();
    assert_eq!(first.set_rate_limit(root, Some(limit)).unwrap(), None);
    let before = server.time_us();
    first.reserve(root, &cost("1")).unwrap();
    second.reserve(root, &cost("1")).unwrap();
    // The third request in the window is refused whichever client sends it, and holds nothing.
    let Err(Error::RateLimited {
        node,
        limit: requests,
        window,
        retry_after,
    }) = second.reserve(root, &cost("1"))
    else {
        panic!("a third request within the minute is rate limited");
    };
    let elapsed = Duration::from_micros((server.time_us() - before).unsigned_abs());
    assert_eq!(
        (&*node, requests, window),
        ("acme", 2, Duration::from_secs(60))
    );
    // The window counts from the first grant on the server's clock.
    assert!(
        retry_after <= Duration::from_secs(60) && retry_after + elapsed >= Duration::from_secs(60)
    );
    assert_eq!(figures(&first, root), (usd("0"), usd("2")));
    assert_eq!(first.set_rate_limit(root, None).unwrap(), Some(limit));
    first.reserve(root, &cost("1")).unwrap();
}

#[test]
fn a_sweep_returns_the_money_of_holds_whose_owner_died() {
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    let store = server.store("t");
    let root = store
        .create_node(None, "acme", &Limit::hard(usd("5")).into())
        .unwrap();
    let short = ReserveOptions::new().ttl(Duration::from_millis(100));
    let dead = store.reserve_with(root, &cost("2"), &short).unwrap();
    let live = store
        .reserve_with(
            root,
            &cost("1"),
            &ReserveOptions::new().ttl(Duration::from_secs(600)),
        )
        .unwrap();
    while server.time_us() <= dead.expires_at.as_unix_nanos() / 1_000 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let swept = store.sweep().unwrap();
    assert_eq!(
        swept.iter().map(|hold| hold.hold).collect::<Vec<_>>(),
        vec![dead.hold]
    );
    assert!(
        store.sweep().unwrap().is_empty(),
        "each expiry is reported once"
    );
    assert_eq!(figures(&store, root), (usd("0"), usd("1")));
    store.commit(live.hold, &cost("1")).unwrap();
    // A late commit of the reclaimed hold is charged without a hold when it fits.
    let late = store.commit(dead.hold, &cost("0.5")).unwrap();
    assert!(late.expired);
    assert_eq!(figures(&store, root), (usd("1.5"), usd("0")));
}

/// `acme` ($10, hard, `Reject`) → `team` ($2, hard, `AllowIfAvailable`) → `task` (no limit),
/// then two commits above their holds: the first fits everywhere, the second does not fit the
/// team, which governs the task's overage. The exact figures are the ledger's; the scenario runs
/// on a MemoryStore and on a RedisStore.
fn overage_scenario(store: &dyn Store) {
    let acme = store
        .create_node(None, "acme", &Limit::hard(usd("10")).into())
        .unwrap();
    let lenient = Limit::hard(usd("2")).with_overage(OveragePolicy::AllowIfAvailable);
    let team = store
        .create_node(Some(acme), "team", &lenient.into())
        .unwrap();
    let task = store
        .create_node(Some(team), "task", &Limits::none())
        .unwrap();
    let books = |node| {
        let balance = store.balance(node, Unit::Usd).unwrap();
        (balance.spent, balance.reserved, balance.debt)
    };

    let hold = store.reserve(task, &cost("1")).unwrap().hold;
    let committed = store.commit(hold, &cost("1.50")).unwrap();
    assert_eq!(
        (committed.spent, committed.returned, committed.overage),
        (cost("1.50"), cost("0"), cost("0.50"))
    );
    for node in [acme, team, task] {
        assert_eq!(books(node), (usd("1.50"), usd("0"), usd("0")));
    }

    // The team has $0.10 left after the held $0.40 is spent: the $0.60 excess is rejected and
    // becomes the team's debt; the task (no limit) and acme (room) take it as spend.
    let hold = store.reserve(task, &cost("0.40")).unwrap().hold;
    let key = OpOptions::new().idempotency_key(IdempotencyKey::new("over-1").unwrap());
    let rejected = store.commit_with(hold, &cost("1"), &key).unwrap_err();
    let Error::OverageRejected {
        node,
        held,
        actual,
        debt,
    } = &rejected
    else {
        panic!("expected OverageRejected, got {rejected:?}");
    };
    assert_eq!(
        (&**node, *held, *actual, *debt),
        ("acme/team/task", usd("0.40"), usd("1"), usd("0.60"))
    );
    assert_eq!(books(team), (usd("1.90"), usd("0"), usd("0.60")));
    assert_eq!(books(task), (usd("2.50"), usd("0"), usd("0")));
    assert_eq!(books(acme), (usd("2.50"), usd("0"), usd("0")));
    // A retry with the same key answers the same refusal and books nothing twice.
    let retried = store.commit_with(hold, &cost("1"), &key).unwrap_err();
    assert_eq!(format!("{retried:?}"), format!("{rejected:?}"));
    assert_eq!(books(team), (usd("1.90"), usd("0"), usd("0.60")));
    assert!(matches!(
        store.reserve(task, &cost("0.01")),
        Err(Error::InDebt { .. })
    ));
    // A credit repays the debt first.
    store.credit(team, usd("1")).unwrap();
    assert_eq!(books(team), (usd("2.50"), usd("0"), usd("0")));
}

#[test]
fn a_commit_above_the_hold_follows_the_overage_policy_as_the_ledger_does() {
    overage_scenario(&budget_guard::MemoryStore::new());
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    overage_scenario(&server.store("t"));
}

/// `AllowWithOverdraft` also lets a late commit (of a reclaimed hold) run into debt up to the
/// overdraft, and refuses it beyond, changing nothing.
fn late_overdraft_scenario(store: &dyn Store, clock: &ManualClock) {
    let policy = OveragePolicy::AllowWithOverdraft { limit: usd("0.25") };
    let root = store
        .create_node(
            None,
            "acme",
            &Limit::hard(usd("1")).with_overage(policy).into(),
        )
        .unwrap();
    let short = ReserveOptions::new().ttl(Duration::from_secs(1));
    let dead = store
        .reserve_with(root, &cost("0.50"), &short)
        .unwrap()
        .hold;
    clock.advance(Duration::from_secs(2));
    assert_eq!(store.sweep().unwrap().len(), 1);
    let live = store.reserve(root, &cost("0.90")).unwrap().hold;
    store.commit(live, &cost("0.90")).unwrap();
    // $0.40 late: $0.10 fits, $0.30 of debt would pass the $0.25 overdraft.
    assert!(matches!(
        store.commit(dead, &cost("0.40")),
        Err(Error::ReservationExpired { .. })
    ));
    let balance = store.balance(root, Unit::Usd).unwrap();
    assert_eq!((balance.spent, balance.debt), (usd("0.90"), usd("0")));
    let late = store.commit(dead, &cost("0.30")).unwrap();
    assert!(late.expired);
    assert_eq!((late.spent, late.overage), (cost("0.30"), cost("0")));
    let balance = store.balance(root, Unit::Usd).unwrap();
    assert_eq!((balance.spent, balance.debt), (usd("1"), usd("0.20")));
}

#[test]
fn a_late_commit_may_use_the_overdraft_as_the_ledger_allows() {
    let start = Timestamp::from_unix_nanos(1_700_000_000_000_000_000);
    let clock = ManualClock::new(start);
    late_overdraft_scenario(
        &budget_guard::MemoryStore::with_clock(clock.clone()),
        &clock,
    );
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    let clock = ManualClock::new(start);
    let store = server.store_with("t", RedisOptions::new().clock(clock.clone()));
    late_overdraft_scenario(&store, &clock);
}

#[test]
fn an_overage_is_exact_up_to_2_pow_53_and_refused_beyond_without_change() {
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    let store = server.store("t");
    let max = RedisStore::MAX_EXACT_MINOR;
    let minor = |value| Cost::from(Amount::try_from_minor(value, Unit::Usd).unwrap());
    let limit = Limit::hard(Amount::try_from_minor(max, Unit::Usd).unwrap())
        .with_overage(OveragePolicy::AllowIfAvailable);
    let root = store.create_node(None, "acme", &limit.into()).unwrap();
    let hold = store.reserve(root, &minor(1_000)).unwrap().hold;
    // The check is the ledger's: spent + reserved + debt + actual must stay exact.
    assert!(matches!(
        store.commit(hold, &minor(max - 999)),
        Err(Error::Overflow { .. })
    ));
    let balance = store.balance(root, Unit::Usd).unwrap();
    assert_eq!(
        (balance.spent.minor_units(), balance.reserved.minor_units()),
        (0, 1_000),
        "a refused overage changed the books"
    );
    let committed = store.commit(hold, &minor(max - 1_000)).unwrap();
    assert_eq!(committed.overage, minor(max - 2_000));
    let balance = store.balance(root, Unit::Usd).unwrap();
    assert_eq!(
        (balance.spent.minor_units(), balance.reserved.minor_units()),
        (max - 1_000, 0)
    );
}

#[test]
fn undeclared_operations_and_limits_are_refused_not_approximated() {
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    let store = server.store("t");
    let root = store
        .create_node(None, "acme", &Limit::hard(usd("5")).into())
        .unwrap();
    for kind in [OpKind::SetBurnWindow, OpKind::SetTopUp, OpKind::Restore] {
        assert!(!store.supports(kind));
    }
    assert!(matches!(
        store.set_top_up(root, None),
        Err(Error::Unsupported {
            op: OpKind::SetTopUp,
            ..
        })
    ));
    // The scripts keep one limit per unit: a periodic limit beside another in the same unit
    // (which the ledger keeps as a further cap) is refused.
    let daily = Limit::hard(usd("1")).per(budget_guard::period::Period::daily());
    let two_caps = Limits::from([daily, Limit::hard(usd("5"))]);
    assert!(matches!(
        store.create_node(None, "daily", &two_caps),
        Err(Error::Unsupported {
            op: OpKind::CreateNode,
            ..
        })
    ));
    // The server counts microseconds: a shorter window cannot roll exactly.
    let tiny = budget_guard::period::Period::every(Duration::from_nanos(999)).unwrap();
    assert!(matches!(
        store.set_limit(root, Limit::hard(usd("1")).per(tiny)),
        Err(Error::InvalidPeriod { .. })
    ));
    assert!(
        store.resolve("daily").is_err(),
        "a refused create left nothing behind"
    );
}

#[test]
fn budget_handles_work_across_stores_on_one_tree() {
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    let first = Budget::builder("acme", Limit::hard(usd("1")))
        .child("agent", Limits::none())
        .build_in(server.store("fleet"))
        .unwrap();
    let other: Arc<dyn Store> = Arc::new(server.store("fleet"));
    let agent = Budget::open(other, "acme/agent").unwrap();
    agent
        .reserve(usd("0.60"))
        .unwrap()
        .commit(usd("0.40"))
        .unwrap();
    assert_eq!(first.balance(Unit::Usd).unwrap().spent, usd("0.40"));
    // Another tree name is another namespace: it does not see `acme`.
    assert!(server.store("elsewhere").resolve("acme").is_err());
    let prefixed = server.store_with("fleet", RedisOptions::new().prefix("app2"));
    assert!(prefixed.resolve("acme").is_err());
}

#[test]
fn cancellation_says_why_a_holds_work_should_stop() {
    use budget_guard::Cancellation;
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    let store = server.store("t");
    let [_, team, task] = tree(&store);
    let hold = store.reserve(task, &cost("1")).unwrap().hold;
    assert_eq!(store.cancellation(hold).unwrap(), None);
    store.set_state(team, NodeState::Frozen).unwrap();
    assert_eq!(
        store.cancellation(hold).unwrap(),
        Some(Cancellation::Frozen {
            node: "acme/team".into()
        })
    );
    store.set_state(team, NodeState::Closed).unwrap();
    assert_eq!(
        store.cancellation(hold).unwrap(),
        Some(Cancellation::Closed {
            node: "acme/team".into()
        })
    );
    store.set_state(team, NodeState::Active).unwrap();
    store.commit(hold, &cost("1")).unwrap();
    assert_eq!(store.cancellation(hold).unwrap(), Some(Cancellation::Ended));

    let short = ReserveOptions::new().ttl(Duration::from_millis(50));
    let lapsed = store.reserve_with(task, &cost("1"), &short).unwrap();
    while server.time_us() <= lapsed.expires_at.as_unix_nanos() / 1_000 {
        std::thread::sleep(Duration::from_millis(10));
    }
    store.sweep().unwrap();
    assert_eq!(
        store.cancellation(lapsed.hold).unwrap(),
        Some(Cancellation::Expired {
            expired_at: lapsed.expires_at
        })
    );
}

/// The commands the scripts ran inside Redis since the counters were last reset, by name
/// (`INFO commandstats`, without the `EVALSHA` calls themselves and this test's own reads).
fn inner_commands(connection: &mut redis::Connection) -> std::collections::BTreeMap<String, u64> {
    redis_support::commandstats(connection)
        .into_iter()
        .filter(|(name, _)| redis_support::is_inner_command(name))
        .map(|(name, (calls, _))| (name, calls))
        .collect()
}

fn reset_counters(connection: &mut redis::Connection) {
    redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .exec(connection)
        .unwrap();
}

/// Issue 14 (throughput): a reserve and a commit read each node of the path with one
/// `HGETALL` and write it with one `HSET`, instead of one `HGET` per field per check; on a
/// tree without periods a commit or release reads no clock. Before, a reserve on this tree ran
/// 37 inner commands, a commit 28 and a release 27; the money is the same.
#[test]
fn reserve_and_commit_read_each_node_once() {
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    let store = Arc::new(server.store("calls"));
    Budget::builder(
        "team",
        Limit::hard(usd("100")).with_thresholds([50, 80, 95]),
    )
    .child("agent", Limit::hard(usd("50")))
    .build_in(store.clone())
    .unwrap();
    let agent = Budget::open(store.clone(), "team/agent").unwrap();
    // Loads the scripts (a first EVALSHA answers NOSCRIPT) outside the counted calls.
    agent.reserve(usd("1")).unwrap().commit(usd("1")).unwrap();
    drop(agent.reserve(usd("1")).unwrap());
    let mut connection = server.connection();

    reset_counters(&mut connection);
    let guard = agent.reserve(usd("0.05")).unwrap();
    let reserve = inner_commands(&mut connection);
    reset_counters(&mut connection);
    guard.commit(usd("0.031")).unwrap();
    let commit = inner_commands(&mut connection);

    let counts = |pairs: &[(&str, u64)]| {
        pairs
            .iter()
            .map(|&(name, calls)| (name.to_owned(), calls))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    // The spec set (no periods: no clock read for them), the server's clock for the deadline,
    // each of the two nodes once, the hold's number, the two nodes' holds and the hold itself,
    // the deadline set, the unreported expiries.
    assert_eq!(
        reserve,
        counts(&[
            ("smembers", 1),
            ("time", 1),
            ("hgetall", 2),
            ("incr", 1),
            ("hset", 3),
            ("zadd", 1),
            ("lrange", 1),
        ])
    );
    // The spec set, the hold and the two nodes once each, the two nodes' figures, the hold's
    // end, its expiry, the deadline set.
    assert_eq!(
        commit,
        counts(&[
            ("smembers", 1),
            ("hgetall", 3),
            ("hset", 3),
            ("pexpire", 1),
            ("zrem", 1),
        ])
    );
    // A dropped guard's release: the spec set, the hold and the two nodes once each, the two
    // nodes' holds, the hold's end, its expiry, the deadline set (was 27 commands).
    let guard = agent.reserve(usd("0.05")).unwrap();
    reset_counters(&mut connection);
    drop(guard);
    assert_eq!(
        inner_commands(&mut connection),
        counts(&[
            ("smembers", 1),
            ("hgetall", 3),
            ("hset", 3),
            ("pexpire", 1),
            ("zrem", 1),
        ])
    );
    let team = Budget::open(store, "team").unwrap();
    assert_eq!(agent.balance(Unit::Usd).unwrap().spent, usd("1.031"));
    assert_eq!(team.balance(Unit::Usd).unwrap().spent, usd("1.031"));
    assert_eq!(team.balance(Unit::Usd).unwrap().reserved, usd("0"));
}

/// A builder whose child the store cannot keep (two caps in one unit on Redis) is refused
/// before anything is created: the same tree, corrected, builds on the next try instead of
/// finding its root left behind (`DuplicateNode`).
#[test]
fn a_builder_the_store_refuses_leaves_nothing_behind() {
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    let daily = Limit::hard(usd("10")).per(budget_guard::period::Period::daily());
    let monthly = Limit::hard(usd("200")).per(budget_guard::period::Period::monthly());
    let refused = Budget::builder("acme", Limit::hard(usd("500")))
        .child("team", Limits::from([daily, monthly]))
        .build_in(server.store("builder"));
    assert!(matches!(
        refused,
        Err(Error::Unsupported {
            op: OpKind::CreateNode,
            ..
        })
    ));
    let store = server.store("builder");
    assert!(store.resolve("acme").is_err(), "the root was not created");
    // The caps on a two-node path instead, as the store's docs advise.
    let acme = Budget::builder("acme", Limit::hard(usd("500")))
        .child("team", monthly)
        .child("team/daily", daily)
        .build_in(store)
        .unwrap();
    let daily = acme.at("team/daily").unwrap();
    daily.reserve(usd("4")).unwrap().commit(usd("4")).unwrap();
    assert_eq!(acme.balance(Unit::Usd).unwrap().spent, usd("4"));
}
