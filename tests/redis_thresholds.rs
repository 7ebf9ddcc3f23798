//! Threshold levels and soft limits on RedisStore against a real `redis-server`: the crossings
//! are the ledger's (the same scenario runs on a MemoryStore), and each level fires once across
//! every client of the tree, because the fired state lives on the server.

mod redis_support;

use std::collections::BTreeMap;
use std::sync::Arc;

use budget_guard::{
    Amount, Cost, Crossings, Error, Limit, MemoryStore, NodeId, Store, ThresholdBasis, Unit,
};
use redis_support::RedisServer;

fn usd(text: &str) -> Amount {
    Amount::usd(text).unwrap()
}

fn cost(text: &str) -> Cost {
    Cost::from(usd(text))
}

/// Each crossing as (node, level, limit, spent, reserved), in the order reported.
fn fired(events: &Crossings) -> Vec<(String, u16, Amount, Amount, Amount)> {
    events
        .iter()
        .map(|crossing| {
            (
                crossing.node().to_string(),
                crossing.level(),
                crossing.limit(),
                crossing.spent(),
                crossing.reserved(),
            )
        })
        .collect()
}

fn crossing(
    node: &str,
    level: u16,
    limit: &str,
    spent: &str,
    reserved: &str,
) -> (String, u16, Amount, Amount, Amount) {
    (
        node.to_owned(),
        level,
        usd(limit),
        usd(spent),
        usd(reserved),
    )
}

/// `acme` ($8, hard, 50 %) → `team` ($4, hard, 50 % of spend plus holds) → `task` ($1 soft,
/// its implicit 100 % level): reserves and commits fire each level once, a rejected overage
/// leaves its crossing to the next operation, credits re-arm levels spend is below, and new
/// levels start armed. Every figure is the ledger's.
fn threshold_scenario(store: &dyn Store) {
    let acme = store
        .create_node(
            None,
            "acme",
            &Limit::hard(usd("8")).with_thresholds([50]).into(),
        )
        .unwrap();
    let early = Limit::hard(usd("4"))
        .with_thresholds([50])
        .with_threshold_basis(ThresholdBasis::SpentAndHeld);
    let team = store
        .create_node(Some(acme), "team", &early.into())
        .unwrap();
    let task = store
        .create_node(Some(team), "task", &Limit::soft(usd("1")).into())
        .unwrap();

    let first = store.reserve(task, &cost("2.50")).unwrap();
    assert_eq!(first.over_soft_limit.as_deref(), Some("acme/team/task"));
    assert_eq!(
        fired(&first.events),
        [crossing("acme/team", 50, "4", "0", "2.50")]
    );
    let committed = store.commit(first.hold, &cost("1.20")).unwrap();
    assert_eq!(
        fired(&committed.events),
        [crossing("acme/team/task", 100, "1", "1.20", "0")]
    );

    // The task's soft limit governs its overage (`Reject`): the team takes $0.10 and $0.20 of
    // debt; acme reaches 50 % ($4.20 of $8) but the refusal cannot report it.
    let second = store.reserve(task, &cost("2.70")).unwrap();
    assert!(second.events.is_empty());
    let Err(Error::OverageRejected { debt, .. }) = store.commit(second.hold, &cost("3")) else {
        panic!("the soft limit's Reject policy refuses the overage");
    };
    assert_eq!(debt, usd("0.20"));
    assert!(matches!(
        store.reserve(task, &cost("0.01")),
        Err(Error::InDebt { .. })
    ));
    let team_balance = store.credit(team, usd("0.20")).unwrap();
    assert_eq!(
        (team_balance.spent, team_balance.debt),
        (usd("4.20"), usd("0"))
    );
    assert_eq!(
        team_balance.limit,
        Some(early.with_amount(usd("4.20"))),
        "the levels and basis come back with the limit"
    );
    // The next evaluation at acme reports the level the refused commit reached.
    let third = store.reserve(acme, &cost("0.90")).unwrap();
    assert_eq!(
        fired(&third.events),
        [crossing("acme", 50, "8", "4.20", "0.90")]
    );
    // A credit raises the 50 % level to $5, above spend: the level re-arms and fires again.
    store.credit(acme, usd("2")).unwrap();
    let committed = store.commit(third.hold, &cost("0.90")).unwrap();
    assert_eq!(
        fired(&committed.events),
        [crossing("acme", 50, "10", "5.10", "0")]
    );
    // New levels start armed: back to 50 % after 60 %, the level spend is past fires again.
    for levels in [[60], [50]] {
        store
            .set_limit(acme, Limit::hard(usd("10")).with_thresholds(levels))
            .unwrap();
    }
    let fourth = store.reserve(acme, &cost("0.01")).unwrap();
    assert_eq!(
        fired(&fourth.events),
        [crossing("acme", 50, "10", "5.10", "0.01")]
    );
    // A replayed commit reports nothing again.
    let key = budget_guard::idempotency::OpOptions::new()
        .idempotency_key(budget_guard::idempotency::IdempotencyKey::new("c-4").unwrap());
    store.commit_with(fourth.hold, &cost("0.01"), &key).unwrap();
    let replay = store.commit_with(fourth.hold, &cost("0.01"), &key).unwrap();
    assert!(replay.replayed && replay.events.is_empty());
}

#[test]
fn crossings_are_the_ledgers() {
    threshold_scenario(&MemoryStore::new());
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    threshold_scenario(&server.store("t"));
}

#[test]
fn each_level_fires_once_across_two_clients() {
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    let first: Arc<dyn Store> = Arc::new(server.store("fleet"));
    let second: Arc<dyn Store> = Arc::new(server.store("fleet"));
    let levels = [25, 50, 75, 100];
    let root: NodeId = first
        .create_node(
            None,
            "acme",
            &Limit::hard(usd("10")).with_thresholds(levels).into(),
        )
        .unwrap();
    // Two clients, two threads each, 25 commits of $0.10 per thread: $10 in all.
    let threads: Vec<_> = [&first, &first, &second, &second]
        .into_iter()
        .map(|store| {
            let store = Arc::clone(store);
            std::thread::spawn(move || {
                let mut levels = Vec::new();
                for _ in 0..25 {
                    let hold = store.reserve(root, &cost("0.10")).unwrap();
                    levels.extend(hold.events.iter().map(|c| c.level()));
                    let committed = store.commit(hold.hold, &cost("0.10")).unwrap();
                    for crossing in committed.events.iter() {
                        // Fired by the commit that reached the level, with its figures.
                        let reached = usd("10").minor_units() * i64::from(crossing.level()) / 100;
                        assert!(crossing.spent().minor_units() >= reached);
                        assert!(
                            crossing.spent().minor_units() < reached + usd("0.10").minor_units()
                        );
                        levels.push(crossing.level());
                    }
                }
                levels
            })
        })
        .collect();
    let mut counts = BTreeMap::new();
    for thread in threads {
        for level in thread.join().unwrap() {
            *counts.entry(level).or_insert(0) += 1;
        }
    }
    assert_eq!(
        counts,
        BTreeMap::from([(25, 1), (50, 1), (75, 1), (100, 1)]),
        "each level fires exactly once in total"
    );
    assert_eq!(first.balance(root, Unit::Usd).unwrap().spent, usd("10"));
}

/// A hard limit of 2^53 − 1 minor units with levels at 50 % and 100 %: the 50 % level is
/// 4,503,599,627,370,496 (rounded up from ...495.5), which a double's `limit × 50 / 100` cannot
/// compute exactly; the scripts must fire it one minor unit later than ...495, never earlier.
fn boundary_scenario(store: &dyn Store) {
    let max = 9_007_199_254_740_991_i64;
    let minor = |value| Cost::from(Amount::try_from_minor(value, Unit::Usd).unwrap());
    let limit =
        Limit::hard(Amount::try_from_minor(max, Unit::Usd).unwrap()).with_thresholds([50, 100]);
    let root = store.create_node(None, "acme", &limit.into()).unwrap();
    let levels = |amount: i64| {
        let hold = store.reserve(root, &minor(amount)).unwrap().hold;
        let committed = store.commit(hold, &minor(amount)).unwrap();
        committed
            .events
            .iter()
            .map(|crossing| (crossing.level(), crossing.spent().minor_units()))
            .collect::<Vec<_>>()
    };
    assert_eq!(levels(4_503_599_627_370_495), []);
    assert_eq!(levels(1), [(50, 4_503_599_627_370_496)]);
    assert_eq!(levels(max - 4_503_599_627_370_497), []);
    assert_eq!(levels(1), [(100, max)]);
}

#[test]
fn levels_are_exact_at_the_2_pow_53_boundary() {
    boundary_scenario(&MemoryStore::new());
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    boundary_scenario(&server.store("t"));
}
