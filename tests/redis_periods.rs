//! Periodic limits on RedisStore: periods roll on the server's time, lazily, with the ledger's
//! rollover rules, whichever client touches the account first, and whatever that client
//! believes the time to be. Each test also runs the same steps on a MemoryStore (the ledger)
//! with the same clock where the clock is manual, and asserts the exact figures.

mod redis_support;

use std::sync::Arc;
use std::time::Duration;

use budget_guard::expiry::ReserveOptions;
use budget_guard::period::{Period, Rollover};
use budget_guard::{
    Amount, Balance, Cost, Limit, ManualClock, MemoryStore, NodeId, RedisOptions, Store, Timestamp,
    Unit,
};
use redis_support::RedisServer;

const DAY: Duration = Duration::from_secs(86_400);

/// 2026-03-10T23:59:59Z: one second before a UTC midnight.
const EVENING: Timestamp = Timestamp::from_unix_nanos(1_773_187_199_000_000_000);
/// 2026-03-11T00:00:00Z.
const MIDNIGHT: Timestamp = Timestamp::from_unix_nanos(1_773_187_200_000_000_000);

fn usd(text: &str) -> Amount {
    Amount::usd(text).unwrap()
}

fn cost(text: &str) -> Cost {
    Cost::from(usd(text))
}

/// Reserve options with a TTL long enough for a hold to live across days.
fn long_hold() -> ReserveOptions {
    ReserveOptions::new().ttl(Duration::from_secs(30 * 86_400))
}

/// A Redis store on `clock` (the scripts' time) and a MemoryStore on the same clock.
fn pair(server: &RedisServer, tree: &str, clock: &ManualClock) -> [Arc<dyn Store>; 2] {
    [
        Arc::new(server.store_with(tree, RedisOptions::new().clock(clock.clone()))),
        Arc::new(MemoryStore::with_clock(clock.clone())),
    ]
}

/// `store`'s balance of `node` in USD.
fn usd_balance(store: &dyn Store, node: NodeId) -> Balance {
    store.balance(node, Unit::Usd).unwrap()
}

#[test]
fn a_daily_limit_rolls_at_the_servers_midnight() {
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    let clock = ManualClock::new(EVENING);
    for store in pair(&server, "daily", &clock) {
        clock.set(EVENING);
        let daily = Limit::hard(usd("10")).per(Period::daily());
        let team = store.create_node(None, "team", &daily.into()).unwrap();
        let hold = store.reserve(team, &cost("7")).unwrap();
        store.commit(hold.hold, &cost("7")).unwrap();
        let balance = usd_balance(&*store, team);
        assert_eq!(balance.resets_at, Some(MIDNIGHT));
        assert_eq!(
            (balance.spent, balance.remaining),
            (usd("7"), Some(usd("3")))
        );

        // One microsecond before midnight: still the same day.
        clock.set(Timestamp::from_unix_nanos(MIDNIGHT.as_unix_nanos() - 1_000));
        assert!(store.reserve(team, &cost("4")).is_err());
        assert_eq!(usd_balance(&*store, team).spent, usd("7"));

        clock.set(MIDNIGHT);
        let balance = usd_balance(&*store, team);
        assert_eq!(balance.spent, usd("0"));
        assert_eq!(balance.allowance, Some(usd("10")));
        assert_eq!(balance.resets_at, Some(MIDNIGHT.saturating_add(DAY)));
        let hold = store.reserve(team, &cost("10")).unwrap();
        store.release(hold.hold).unwrap();
    }
}

/// Spends $4 of $10 on day one, $2 on day two, then nothing for two days: the allowance of
/// each day under each rollover.
#[test]
fn each_rollover_carries_exact_amounts_also_over_idle_days() {
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    // (rollover, allowance on day 2, on day 5 after two idle days)
    let cases = [
        (Rollover::None, "10", "10"),
        // Day 1 leaves 6, capped at 3; day 2 leaves 11, capped; idle days carry 3.
        (Rollover::CarryForward { cap: usd("3") }, "13", "13"),
        // Day 1 leaves 6; day 2 leaves 14, capped at 10; idle days stay at the cap.
        (Rollover::CapAtAllocation, "16", "20"),
        // Day 2 leaves 14; idle day 3 carries 10 + 14 = 24; idle day 4 reaches the cap, 25.
        (Rollover::CarryForward { cap: usd("25") }, "16", "35"),
    ];
    for (index, (rollover, day_two, day_five)) in cases.into_iter().enumerate() {
        let clock = ManualClock::new(MIDNIGHT);
        for store in pair(&server, &format!("rollover{index}"), &clock) {
            clock.set(MIDNIGHT);
            let limit = Limit::hard(usd("10"))
                .per(Period::daily())
                .with_rollover(rollover);
            let node = store.create_node(None, "agent", &limit.into()).unwrap();
            let spend = |amount: &str| {
                let hold = store.reserve(node, &cost(amount)).unwrap();
                store.commit(hold.hold, &cost(amount)).unwrap();
            };
            spend("4");
            clock.advance(DAY);
            assert_eq!(
                usd_balance(&*store, node).allowance,
                Some(usd(day_two)),
                "{rollover:?} on day 2"
            );
            spend("2");
            clock.advance(3 * DAY);
            let balance = usd_balance(&*store, node);
            assert_eq!(
                balance.allowance,
                Some(usd(day_five)),
                "{rollover:?} on day 5"
            );
            assert_eq!(balance.spent, usd("0"));
            assert_eq!(balance.resets_at, Some(MIDNIGHT.saturating_add(5 * DAY)));
        }
    }
}

/// A live hold larger than the allocation stays reserved across the boundary and keeps its
/// room: the new period's carry is at least what the hold occupies beyond the allocation. Its
/// commit counts in the new period.
#[test]
fn a_hold_carried_across_the_boundary_keeps_its_room_and_counts_when_committed() {
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    let clock = ManualClock::new(EVENING);
    for store in pair(&server, "carried", &clock) {
        clock.set(EVENING);
        let limit = Limit::hard(usd("10"))
            .per(Period::daily())
            .with_rollover(Rollover::CarryForward { cap: usd("2") });
        let node = store.create_node(None, "agent", &limit.into()).unwrap();
        // A top-up for today only: $15 today.
        assert_eq!(
            store.credit(node, usd("5")).unwrap().allowance,
            Some(usd("15"))
        );
        let hold = store.reserve_with(node, &cost("14"), &long_hold()).unwrap();
        clock.set(MIDNIGHT);
        let balance = usd_balance(&*store, node);
        // Unused 15 capped at 2, but the hold occupies 14 - 10 = 4 beyond the allocation.
        assert_eq!(balance.allowance, Some(usd("14")));
        assert_eq!(
            (balance.spent, balance.reserved, balance.remaining),
            (usd("0"), usd("14"), Some(usd("0")))
        );
        let committed = store.commit(hold.hold, &cost("6")).unwrap();
        assert_eq!(committed.returned, cost("8"));
        let balance = usd_balance(&*store, node);
        assert_eq!(
            (balance.spent, balance.reserved, balance.remaining),
            (usd("6"), usd("0"), Some(usd("8")))
        );
    }
}

/// Two processes on one tree: the second never saw the limit being set. Whichever touches the
/// account first after the boundary rolls it, once; the other sees the rolled books.
#[test]
fn two_clients_see_one_roll() {
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    let clock = ManualClock::new(EVENING);
    let first = server.store_with("fleet", RedisOptions::new().clock(clock.clone()));
    let team = first
        .create_node(None, "team", &Limit::hard(usd("100")).into())
        .unwrap();
    let limit = Limit::hard(usd("10"))
        .per(Period::daily())
        .with_rollover(Rollover::CapAtAllocation);
    first.set_limit(team, limit).unwrap();
    let hold = first.reserve(team, &cost("3")).unwrap();
    first.commit(hold.hold, &cost("3")).unwrap();

    let second = server.store_with("fleet", RedisOptions::new().clock(clock.clone()));
    clock.set(MIDNIGHT);
    // The second client learns the period from the server and rolls it: 7 unused carries.
    let hold = second.reserve(team, &cost("5")).unwrap();
    second.commit(hold.hold, &cost("5")).unwrap();
    let seen_by_second = usd_balance(&second, team);
    let seen_by_first = usd_balance(&first, team);
    assert_eq!(seen_by_first, seen_by_second);
    assert_eq!(seen_by_first.limit, Some(limit));
    assert_eq!(seen_by_first.allowance, Some(usd("17")));
    assert_eq!(seen_by_first.spent, usd("5"), "rolled once, not again");
    assert_eq!(seen_by_first.resets_at, Some(MIDNIGHT.saturating_add(DAY)));
}

/// A client whose idea of the time is five hours ahead of the server's: it sends the bounds of
/// tomorrow's period, the script refuses them (changing nothing), and the call lands in the
/// server's period. A store that trusted the client's clock would roll at 7 pm.
#[test]
fn a_client_whose_clock_is_hours_ahead_lands_in_the_servers_period() {
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    let berlin = Period::daily().in_zone("Europe/Berlin").unwrap();
    // 2026-03-10T22:30:00Z is 23:30 in Berlin; Berlin's midnight is 23:00Z.
    let late = Timestamp::from_unix_nanos(1_773_181_800_000_000_000);
    let berlin_midnight = Timestamp::from_unix_nanos(1_773_183_600_000_000_000);
    let server_clock = ManualClock::new(late);
    let ahead = ManualClock::new(late.saturating_add(Duration::from_secs(5 * 3_600)));
    let store = server.store_with(
        "skewed",
        RedisOptions::new()
            .clock(server_clock.clone())
            .estimate_clock(ahead.clone()),
    );
    let node = store
        .create_node(None, "agent", &Limit::hard(usd("10")).per(berlin).into())
        .unwrap();
    let hold = store.reserve(node, &cost("4")).unwrap();
    store.commit(hold.hold, &cost("4")).unwrap();
    let balance = usd_balance(&store, node);
    assert_eq!(balance.resets_at, Some(berlin_midnight));
    assert_eq!(balance.spent, usd("4"));

    // Past Berlin's midnight on the server's clock (still 5 hours behind the client's).
    server_clock.set(berlin_midnight);
    ahead.set(berlin_midnight.saturating_add(Duration::from_secs(5 * 3_600)));
    let balance = usd_balance(&store, node);
    assert_eq!(balance.spent, usd("0"));
    assert_eq!(balance.resets_at, Some(berlin_midnight.saturating_add(DAY)));
}

/// The same on the server's real clock (`TIME`, no manual clock): a client three days ahead
/// still starts, spends in and reports the period that contains the server's now.
#[test]
fn periods_follow_the_servers_time_not_the_clients() {
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    let hourly = Period::every(Duration::from_secs(3_600)).unwrap();
    let server_now = || Timestamp::from_unix_nanos(server.time_us() * 1_000);
    let before = server_now();
    let ahead = ManualClock::new(before.saturating_add(3 * DAY));
    let store = server.store_with("real", RedisOptions::new().estimate_clock(ahead));
    let node = store
        .create_node(None, "agent", &Limit::hard(usd("10")).per(hourly).into())
        .unwrap();
    let hold = store.reserve(node, &cost("4")).unwrap();
    store.commit(hold.hold, &cost("4")).unwrap();
    let balance = usd_balance(&store, node);
    let after = server_now();
    // The period of the server's time (the hour may turn during the test: either end).
    let ends = [hourly.bounds_at(before).1, hourly.bounds_at(after).1];
    assert!(
        ends.contains(&balance.resets_at.unwrap()),
        "{:?} not in {ends:?}",
        balance.resets_at
    );
    if ends[0] == ends[1] {
        assert_eq!(balance.spent, usd("4"));
    }
}

/// Lua keeps integers exact up to 2^53 − 1: a periodic limit whose allocation plus rollover
/// cap (the most one period can offer) passes it is refused when set, one that reaches it
/// exactly is kept.
#[test]
fn a_period_that_could_offer_more_than_2_pow_53_minor_units_is_refused() {
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    let store = server.store("exact");
    let node = store
        .create_node(None, "agent", &Limit::hard(usd("1")).into())
        .unwrap();
    let max = budget_guard::RedisStore::MAX_EXACT_MINOR;
    let minor = |value: i64| Amount::try_from_minor(value, Unit::Usd).unwrap();
    let daily = |allocation: i64, cap: i64| {
        Limit::hard(minor(allocation))
            .per(Period::daily())
            .with_rollover(Rollover::CarryForward { cap: minor(cap) })
    };
    let refused = store.set_limit(node, daily(max / 2 + 1, max / 2 + 1));
    assert!(
        matches!(refused, Err(budget_guard::Error::TooLarge { size, .. }) if size == (max / 2 + 1) as u64 * 2),
        "{refused:?}"
    );
    assert_eq!(usd_balance(&store, node).limit, Some(Limit::hard(usd("1"))));
    let kept = store.set_limit(node, daily(max / 2 + 1, max / 2)).unwrap();
    assert_eq!(kept.allowance, Some(minor(max / 2 + 1)));
}

/// Weekly and monthly periods in time zones, and days across a DST change, give the ledger's
/// books day after day for ten weeks (spending a dollar a day, with a carry).
#[test]
fn calendar_periods_agree_with_the_ledger_day_after_day() {
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    let periods = [
        Period::weekly().in_zone("Europe/Berlin").unwrap(),
        Period::monthly().in_zone("America/New_York").unwrap(),
        Period::daily().in_zone("America/New_York").unwrap(),
    ];
    // 2026-02-20T12:00:00Z: ten weeks cover New York's and Berlin's DST changes in March.
    let start = Timestamp::from_unix_nanos(1_771_588_800_000_000_000);
    for (index, period) in periods.into_iter().enumerate() {
        let clock = ManualClock::new(start);
        let [redis, memory] = pair(&server, &format!("calendar{index}"), &clock);
        let limit = Limit::hard(usd("20"))
            .per(period)
            .with_rollover(Rollover::CarryForward { cap: usd("4") });
        let nodes =
            [&redis, &memory].map(|store| store.create_node(None, "agent", &limit.into()).unwrap());
        let mut resets = 0;
        let mut last_end = None;
        for day in 0..70 {
            for (store, node) in [(&redis, nodes[0]), (&memory, nodes[1])] {
                if let Ok(hold) = store.reserve(node, &cost("1")) {
                    store.commit(hold.hold, &cost("1")).unwrap();
                }
            }
            let expected = usd_balance(&*memory, nodes[1]);
            assert_eq!(
                usd_balance(&*redis, nodes[0]),
                expected,
                "{period} on day {day}"
            );
            if last_end.is_some_and(|end| end != expected.resets_at) {
                resets += 1;
            }
            last_end = Some(expected.resets_at);
            clock.advance(Duration::from_secs(86_400 + 3_600));
        }
        assert!(resets >= 2, "{period}: the periods turned ({resets} times)");
    }
}

/// What one reserve of `amount` on `node` did: granted (and then committed in full), or
/// refused, with the refusing node, its period and its figures.
#[derive(Debug, PartialEq)]
enum Outcome {
    Spent,
    Refused {
        node: String,
        period: Option<Period>,
        limit: Amount,
        spent: Amount,
        reserved: Amount,
        requested: Amount,
    },
}

fn spend_or_refusal(store: &dyn Store, node: NodeId, amount: &str) -> Outcome {
    match store.reserve(node, &cost(amount)) {
        Ok(hold) => {
            store.commit(hold.hold, &cost(amount)).unwrap();
            Outcome::Spent
        }
        Err(budget_guard::Error::BudgetExceeded(exceeded)) => Outcome::Refused {
            node: exceeded.node.to_string(),
            period: exceeded.period,
            limit: exceeded.limit,
            spent: exceeded.spent,
            reserved: exceeded.reserved,
            requested: exceeded.requested,
        },
        Err(other) => panic!("reserve of {amount}: {other}"),
    }
}

/// Refused by `node`'s cap of `period` (`limit`, `spent`, nothing held) for `requested`.
fn refused(node: &str, period: Period, limit: &str, spent: &str, requested: &str) -> Outcome {
    Outcome::Refused {
        node: node.to_owned(),
        period: Some(period),
        limit: usd(limit),
        spent: usd(spent),
        reserved: usd("0"),
        requested: usd(requested),
    }
}

/// "$10 a day and $200 a month" for a fleet. RedisStore keeps one limit per unit and node, so
/// on Redis the two caps go on a two-node path (the monthly cap on `fleet`, the daily one on
/// `fleet/agents`, where the work reserves): a reserve must fit both, as it must fit both caps
/// of one ledger node that has them. Two clients spend across 21 days and the month boundary;
/// every reserve is granted or refused exactly as the ledger does for one node with both caps,
/// by the same period with the same figures (only the refusing node's name differs).
#[test]
fn daily_and_monthly_caps_on_a_two_node_path_match_one_ledger_node_with_both() {
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    let (daily, monthly) = (Period::daily(), Period::monthly());
    let day_cap = Limit::hard(usd("10")).per(daily);
    let month_cap = Limit::hard(usd("200")).per(monthly);
    // 2026-03-11 to 2026-03-31, then 2026-04-01.
    let april = Timestamp::from_unix_nanos(MIDNIGHT.as_unix_nanos() + 21 * 86_400 * 1_000_000_000);

    let clock = ManualClock::new(MIDNIGHT);
    let ledger = MemoryStore::with_clock(clock.clone());
    let both = budget_guard::Limits::from([day_cap, month_cap]);
    let ledger_node = ledger.create_node(None, "agents", &both).unwrap();
    let first = server.store_with("caps", RedisOptions::new().clock(clock.clone()));
    let second = server.store_with("caps", RedisOptions::new().clock(clock.clone()));
    let fleet = first.create_node(None, "fleet", &month_cap.into()).unwrap();
    let agents = first
        .create_node(Some(fleet), "agents", &day_cap.into())
        .unwrap();

    // Both setups take the same steps; the expected outcomes name the ledger's node and the
    // Redis path's node for the same cap.
    let step = |client: usize, amount: &str, expected: [Outcome; 2]| {
        use budget_guard::Clock as _;
        let redis: &dyn Store = if client == 0 { &first } else { &second };
        let got = [
            spend_or_refusal(&ledger, ledger_node, amount),
            spend_or_refusal(redis, agents, amount),
        ];
        assert_eq!(got, expected, "{amount} at {:?}", clock.now());
    };
    let spent = || Outcome::Spent;

    // March 11 to 30: each day the first client spends $6.25, the second is refused $4 by the
    // daily cap ($3.75 left) and spends $3.75: $10 a day, $200 by the end of March 30.
    for day in 0..20 {
        clock.set(Timestamp::from_unix_nanos(
            MIDNIGHT.as_unix_nanos() + day * 86_400 * 1_000_000_000,
        ));
        step(0, "6.25", [spent(), spent()]);
        step(
            1,
            "4",
            [
                refused("agents", daily, "10", "6.25", "4"),
                refused("fleet/agents", daily, "10", "6.25", "4"),
            ],
        );
        step(1, "3.75", [spent(), spent()]);
    }
    // March 31: the day has $10 of room, the month none; the monthly cap refuses one cent.
    clock.set(Timestamp::from_unix_nanos(april.as_unix_nanos() - 1_000));
    step(
        0,
        "0.01",
        [
            refused("agents", monthly, "200", "200", "0.01"),
            refused("fleet", monthly, "200", "200", "0.01"),
        ],
    );
    // April 1: both caps start afresh; the day's $10 goes, the next cent is the day's refusal.
    clock.set(april);
    step(1, "10", [spent(), spent()]);
    step(
        0,
        "0.01",
        [
            refused("agents", daily, "10", "10", "0.01"),
            refused("fleet/agents", daily, "10", "10", "0.01"),
        ],
    );
    let ledger_day = usd_balance(&ledger, ledger_node);
    let redis_day = usd_balance(&second, agents);
    let redis_month = usd_balance(&first, fleet);
    assert_eq!((ledger_day.spent, redis_day.spent), (usd("10"), usd("10")));
    assert_eq!(redis_month.spent, usd("10"));
    assert_eq!(redis_month.remaining, Some(usd("190")));
    assert_eq!(
        redis_month.resets_at,
        Some(Timestamp::from_unix_nanos(1_777_593_600_000_000_000)),
        "2026-05-01T00:00:00Z"
    );
}
