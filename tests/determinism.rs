//! The interpreter is deterministic: random sequences of `(Op, now)` applied through
//! `Store::apply` to two fresh stores restored from the same snapshot give identical results and
//! identical books after every step. Nothing in the ledger may depend on anything but its books,
//! the operation and the store's time (no hash-map order, no clock read, no address).
//!
//! 256 cases by default; `PROPTEST_CASES=N` overrides it.

use std::time::Duration;

use budget_guard::burn::BurnWindow;
use budget_guard::idempotency::IdempotencyKey;
use budget_guard::period::Period;
use budget_guard::top_up::TopUp;
use budget_guard::{
    Amount, Answer, Applied, Cost, HoldId, Limit, Limits, ManualClock, MemoryStore, NodeId,
    NodeState, Op, OveragePolicy, Query, Result, Store, Timestamp, Unit,
};
use proptest::prelude::*;

const PATHS: [&str; 4] = ["org", "org/team", "org/team/a", "org/team/b"];

fn cents(n: u32) -> Amount {
    Amount::new(rust_decimal::Decimal::new(i64::from(n), 2), Unit::Usd).unwrap()
}

/// The books every case starts from: periodic and plain limits, thresholds, an overdraft, a
/// burn window and a top-up rule, and a few live holds.
fn starting_snapshot(clock: &ManualClock) -> budget_guard::Snapshot {
    let store = MemoryStore::with_clock(clock.clone());
    let org = store
        .create_node(
            None,
            "org",
            &Limits::from(Limit::hard(cents(10_000)).per(Period::daily())),
        )
        .unwrap();
    let team = store
        .create_node(
            Some(org),
            "team",
            &Limits::from(Limit::hard(cents(4_000)).with_thresholds([50, 80])),
        )
        .unwrap();
    store
        .create_node(Some(team), "a", &Limits::from(Limit::soft(cents(1_000))))
        .unwrap();
    let b = store
        .create_node(
            Some(team),
            "b",
            &Limits::from(
                Limit::hard(cents(500))
                    .with_overage(OveragePolicy::AllowWithOverdraft { limit: cents(100) }),
            ),
        )
        .unwrap();
    store
        .set_burn_window(
            team,
            Some(BurnWindow::new(Duration::from_secs(600)).unwrap()),
        )
        .unwrap();
    store
        .set_top_up(
            org,
            Some(TopUp::when_below(cents(2_000)).adding(cents(1_000))),
        )
        .unwrap();
    store.reserve(b, &Cost::from(cents(100))).unwrap();
    store.snapshot().unwrap()
}

/// One step of a case: wait `advance` seconds, then do `action`.
#[derive(Clone, Debug)]
struct Step {
    advance: u32,
    action: Action,
}

#[derive(Clone, Debug)]
enum Action {
    Reserve {
        node: usize,
        cents: u32,
        ttl: u8,
        key: Option<u8>,
    },
    ReserveUpTo {
        node: usize,
        min: u32,
        max: u32,
    },
    Commit {
        hold: usize,
        cents: u32,
        key: Option<u8>,
    },
    Release {
        hold: usize,
        key: Option<u8>,
    },
    Record {
        hold: usize,
        cents: u32,
    },
    Extend {
        hold: usize,
        ttl: u8,
    },
    Sweep,
    Credit {
        node: usize,
        cents: u32,
        key: Option<u8>,
    },
    Debit {
        node: usize,
        cents: u32,
    },
    SetState {
        node: usize,
        frozen: bool,
    },
    SetLimit {
        node: usize,
        cents: u32,
    },
    Check {
        node: usize,
        cents: u32,
    },
    Balance {
        node: usize,
    },
    Cancellation {
        hold: usize,
    },
}

fn action() -> impl Strategy<Value = Action> {
    let node = 0..PATHS.len();
    let hold = 0..8usize;
    let key = proptest::option::of(0..4u8);
    prop_oneof![
        4 => (node.clone(), 1..2_000u32, 1..120u8, key.clone())
            .prop_map(|(node, cents, ttl, key)| Action::Reserve { node, cents, ttl, key }),
        1 => (node.clone(), 1..500u32, 0..2_000u32)
            .prop_map(|(node, min, extra)| Action::ReserveUpTo { node, min, max: min + extra }),
        3 => (hold.clone(), 0..2_500u32, key.clone())
            .prop_map(|(hold, cents, key)| Action::Commit { hold, cents, key }),
        2 => (hold.clone(), key.clone()).prop_map(|(hold, key)| Action::Release { hold, key }),
        1 => (hold.clone(), 1..300u32).prop_map(|(hold, cents)| Action::Record { hold, cents }),
        1 => (hold.clone(), 0..120u8).prop_map(|(hold, ttl)| Action::Extend { hold, ttl }),
        1 => Just(Action::Sweep),
        1 => (node.clone(), 0..1_000u32, key)
            .prop_map(|(node, cents, key)| Action::Credit { node, cents, key }),
        1 => (node.clone(), 1..1_000u32).prop_map(|(node, cents)| Action::Debit { node, cents }),
        1 => (node.clone(), any::<bool>())
            .prop_map(|(node, frozen)| Action::SetState { node, frozen }),
        1 => (node.clone(), 0..20_000u32)
            .prop_map(|(node, cents)| Action::SetLimit { node, cents }),
        1 => (node.clone(), 1..2_000u32).prop_map(|(node, cents)| Action::Check { node, cents }),
        1 => node.prop_map(|node| Action::Balance { node }),
        1 => hold.prop_map(|hold| Action::Cancellation { hold }),
    ]
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let advance = prop_oneof![3 => Just(0u32), 2 => 1..90u32, 1 => 3_000..100_000u32];
    proptest::collection::vec(
        (advance, action()).prop_map(|(advance, action)| Step { advance, action }),
        1..60,
    )
}

/// A store on its own manual clock, restored from `snapshot`, and its node ids by path.
struct Replica {
    store: MemoryStore,
    clock: ManualClock,
    nodes: Vec<NodeId>,
}

impl Replica {
    fn restored(snapshot: &budget_guard::Snapshot, at: Timestamp) -> Replica {
        let clock = ManualClock::new(at);
        let store = MemoryStore::with_clock(clock.clone());
        store.restore(snapshot).unwrap();
        let nodes = PATHS
            .iter()
            .map(|path| store.resolve(path).unwrap())
            .collect();
        Replica {
            store,
            clock,
            nodes,
        }
    }
}

/// What a step produced, comparable across replicas (errors by their full text: `Error` is
/// not `PartialEq`).
#[derive(Debug, PartialEq)]
enum Outcome {
    Applied(Applied),
    Answer(Answer),
    Failed(String),
}

fn outcome<T>(result: Result<T>, wrap: impl FnOnce(T) -> Outcome) -> Outcome {
    match result {
        Ok(value) => wrap(value),
        Err(error) => Outcome::Failed(format!("{error:?}")),
    }
}

fn key(n: Option<u8>) -> Option<IdempotencyKey> {
    n.map(|n| IdempotencyKey::new(format!("key-{n}")).unwrap())
}

/// The op or query of `action` on `replica` (holds by their index among those granted so far).
fn run(replica: &Replica, holds: &[HoldId], action: &Action) -> Outcome {
    let node = |index: usize| replica.nodes[index];
    let hold = |index: usize| {
        holds
            .get(index)
            .copied()
            .unwrap_or(HoldId::from_raw(u64::MAX))
    };
    let op = match action.clone() {
        Action::Reserve {
            node: n,
            cents: c,
            ttl,
            key: k,
        } => Op::Reserve {
            node: node(n),
            cost: Cost::from(cents(c)),
            ttl: Duration::from_secs(u64::from(ttl)),
            idempotency_key: key(k),
        },
        Action::ReserveUpTo { node: n, min, max } => Op::ReserveUpTo {
            node: node(n),
            min: cents(min),
            max: cents(max),
            ttl: Duration::from_secs(60),
            idempotency_key: None,
        },
        Action::Commit {
            hold: h,
            cents: c,
            key: k,
        } => Op::Commit {
            hold: hold(h),
            actual: Cost::from(cents(c)),
            idempotency_key: key(k),
        },
        Action::Release { hold: h, key: k } => Op::Release {
            hold: hold(h),
            idempotency_key: key(k),
        },
        Action::Record { hold: h, cents: c } => Op::Record {
            hold: hold(h),
            partial: Cost::from(cents(c)),
        },
        Action::Extend { hold: h, ttl } => Op::Extend {
            hold: hold(h),
            ttl: Duration::from_secs(u64::from(ttl)),
        },
        Action::Sweep => Op::Sweep,
        Action::Credit {
            node: n,
            cents: c,
            key: k,
        } => Op::Credit {
            node: node(n),
            amount: cents(c),
            idempotency_key: key(k),
        },
        Action::Debit { node: n, cents: c } => Op::Debit {
            node: node(n),
            amount: cents(c),
            idempotency_key: None,
        },
        Action::SetState { node: n, frozen } => Op::SetState {
            node: node(n),
            state: if frozen {
                NodeState::Frozen
            } else {
                NodeState::Active
            },
        },
        Action::SetLimit { node: n, cents: c } => Op::SetLimit {
            node: node(n),
            limit: Limit::hard(cents(c)),
        },
        Action::Check { node: n, cents: c } => {
            let query = Query::Check {
                node: node(n),
                cost: Cost::from(cents(c)),
            };
            return outcome(replica.store.read(&query), Outcome::Answer);
        }
        Action::Balance { node: n } => {
            let query = Query::NodeInfo { node: node(n) };
            return outcome(replica.store.read(&query), Outcome::Answer);
        }
        Action::Cancellation { hold: h } => {
            let query = Query::Cancellation { hold: hold(h) };
            return outcome(replica.store.read(&query), Outcome::Answer);
        }
    };
    outcome(replica.store.apply(&op), Outcome::Applied)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(256)
    ))]

    #[test]
    fn the_same_ops_at_the_same_times_give_the_same_results_and_books(steps in steps()) {
        let start = Timestamp::from_unix_nanos(1_700_000_000_000_000_000);
        let snapshot = starting_snapshot(&ManualClock::new(start));
        let left = Replica::restored(&snapshot, start);
        let right = Replica::restored(&snapshot, start);
        prop_assert_eq!(&left.nodes, &right.nodes);
        let mut holds = Vec::new();
        for (index, step) in steps.iter().enumerate() {
            for replica in [&left, &right] {
                replica.clock.advance(Duration::from_secs(u64::from(step.advance)));
            }
            let one = run(&left, &holds, &step.action);
            let other = run(&right, &holds, &step.action);
            prop_assert_eq!(&one, &other, "step {}: {:?}", index, step);
            if let Outcome::Applied(Applied::Reserved(granted)) = &one
                && !granted.replayed
            {
                holds.push(granted.hold);
            }
            prop_assert_eq!(
                left.store.snapshot().unwrap(),
                right.store.snapshot().unwrap(),
                "books after step {}", index
            );
        }
    }
}
