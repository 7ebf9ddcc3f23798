//! The reference-model property test on RedisStore: random operation sequences run on a
//! RedisStore (a real `redis-server`) and on a MemoryStore (the ledger, the reference rules) side
//! by side, with one manual clock for both. After every step the two must agree exactly: the
//! operation's result or error (every field, threshold crossings included; hold ids mapped) and
//! every node's books (the snapshot's nodes and live holds). Zero divergence on the operations
//! the store declares.
//!
//! Periodic limits are among the generated limits (short fixed windows that clock moves cross
//! once or many times, and calendar days in two zones, with every rollover). The ledger rolls
//! every period at the first operation after its end; the Redis scripts roll lazily, only the
//! accounts an operation touches. So half the cases compare the books (a snapshot, which rolls
//! everything on both sides) only at the end: a lazy roll that ended elsewhere than the
//! ledger's eager ones shows in the results and in the final books.
//!
//! 2,000 cases by default, as two tests of 1,000 that run side by side, each on its own server
//! with a fresh tree namespace per case; `PROPTEST_CASES=N` overrides the total.

mod redis_support;

use std::sync::Arc;
use std::time::Duration;

use budget_guard::expiry::{ExpiredHold, ReserveOptions};
use budget_guard::idempotency::{IdempotencyKey, OpOptions};
use budget_guard::period::{Period, Rollover};
use budget_guard::rate::RateLimit;
use budget_guard::{
    Amount, Cost, HoldId, Limit, Limits, ManualClock, MemoryStore, NodeId, NodeState,
    OveragePolicy, RedisOptions, Store, ThresholdBasis, Timestamp, Unit,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};
use redis_support::RedisServer;

/// One cent in nano-dollars: whole cents, so that amounts collide with limits and levels.
const CENT: i64 = 10_000_000;

/// The case count: `PROPTEST_CASES` if set, else 2,000; run as two tests of half as many,
/// side by side, each on its own server.
fn half_of_cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(2_000u32)
        .div_ceil(2)
}

/// One step. Nodes index the seven nodes of [`TREE`]; holds index every hold granted so far in
/// the case (modulo their count), ended ones included; keys pick one of three idempotency keys
/// shared by every kind of operation (`None`: no key).
#[derive(Clone, Debug)]
enum Step {
    Reserve {
        node: usize,
        cents: i64,
        tokens: Option<i64>,
        ttl: u64,
        key: Option<u8>,
    },
    ReserveUpTo {
        node: usize,
        min: i64,
        max: i64,
        ttl: u64,
        key: Option<u8>,
    },
    Check {
        node: usize,
        cents: i64,
        tokens: Option<i64>,
    },
    Commit {
        hold: usize,
        cents: i64,
        tokens: Option<i64>,
        key: Option<u8>,
    },
    Record {
        hold: usize,
        cents: i64,
        tokens: Option<i64>,
    },
    Release {
        hold: usize,
        key: Option<u8>,
    },
    Extend {
        hold: usize,
        ttl: u64,
    },
    Credit {
        node: usize,
        cents: i64,
        key: Option<u8>,
    },
    Debit {
        node: usize,
        cents: i64,
        key: Option<u8>,
    },
    SetLimit {
        node: usize,
        cents: i64,
        shape: u8,
    },
    RemoveLimit {
        node: usize,
        tokens: bool,
    },
    SetState {
        node: usize,
        state: NodeState,
    },
    SetRateLimit {
        node: usize,
        requests: u32,
        seconds: u64,
    },
    RemoveNode {
        node: usize,
    },
    /// Creates the node again as in [`TREE`] (refused while it exists).
    CreateNode {
        node: usize,
    },
    Advance {
        seconds: u64,
    },
    Sweep,
}

fn key() -> impl Strategy<Value = Option<u8>> {
    prop_oneof![3 => Just(None), 1 => (0..3u8).prop_map(Some)]
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let node = 0..TREE.len();
    let hold = 0..64usize;
    let tokens = prop_oneof![3 => Just(None), 1 => (0..400i64).prop_map(Some)];
    let step = prop_oneof![
        6 => (node.clone(), 0..14i64, tokens.clone(), 1..90u64, key())
            .prop_map(|(node, cents, tokens, ttl, key)| Step::Reserve { node, cents, tokens, ttl, key }),
        2 => (node.clone(), 0..6i64, 0..20i64, 1..90u64, key())
            .prop_map(|(node, min, max, ttl, key)| Step::ReserveUpTo { node, min, max, ttl, key }),
        5 => (hold.clone(), 0..18i64, tokens, key())
            .prop_map(|(hold, cents, tokens, key)| Step::Commit { hold, cents, tokens, key }),
        3 => (hold.clone(), 0..8i64, prop_oneof![3 => Just(None), 1 => (0..100i64).prop_map(Some)])
            .prop_map(|(hold, cents, tokens)| Step::Record { hold, cents, tokens }),
        2 => (node.clone(), 0..14i64, prop_oneof![3 => Just(None), 1 => (0..400i64).prop_map(Some)])
            .prop_map(|(node, cents, tokens)| Step::Check { node, cents, tokens }),
        1 => (hold.clone(), key()).prop_map(|(hold, key)| Step::Release { hold, key }),
        1 => (hold, 1..90u64).prop_map(|(hold, ttl)| Step::Extend { hold, ttl }),
        1 => (node.clone(), 1..12i64, key()).prop_map(|(node, cents, key)| Step::Credit { node, cents, key }),
        1 => (node.clone(), 1..12i64, key()).prop_map(|(node, cents, key)| Step::Debit { node, cents, key }),
        1 => (node.clone(), 0..60i64, 0..SHAPES)
            .prop_map(|(node, cents, shape)| Step::SetLimit { node, cents, shape }),
        1 => (node.clone(), any::<bool>()).prop_map(|(node, tokens)| Step::RemoveLimit { node, tokens }),
        1 => (node.clone(), prop_oneof![
            2 => Just(NodeState::Active),
            1 => Just(NodeState::Frozen),
            1 => Just(NodeState::Closed),
        ])
            .prop_map(|(node, state)| Step::SetState { node, state }),
        1 => (node.clone(), 0..4u32, 1..30u64)
            .prop_map(|(node, requests, seconds)| Step::SetRateLimit { node, requests, seconds }),
        1 => node.clone().prop_map(|node| Step::RemoveNode { node }),
        1 => node.clone().prop_map(|node| Step::CreateNode { node }),
        2 => (1..60u64).prop_map(|seconds| Step::Advance { seconds }),
        // Across several short windows, or one or more days.
        1 => prop_oneof![200..1_000u64, 40_000..200_000u64]
            .prop_map(|seconds| Step::Advance { seconds }),
        1 => Just(Step::Sweep),
    ];
    prop::collection::vec(step, 1..50)
}

fn usd(cents: i64) -> Amount {
    Amount::try_from_minor(cents * CENT, Unit::Usd).unwrap()
}

fn tokens(count: i64) -> Amount {
    Amount::tokens(u32::try_from(count).unwrap())
}

/// How many shapes [`limit`] has.
const SHAPES: u8 = 14;

fn every(seconds: u64) -> Period {
    Period::every(Duration::from_secs(seconds)).unwrap()
}

/// A limit of `cents` in one of [`SHAPES`] shapes: kinds, overage policies, threshold levels
/// and bases, periods (windows of 90 s and of 40 s from an odd anchor, UTC and Berlin days)
/// and every rollover.
fn limit(cents: i64, shape: u8) -> Limit {
    let amount = usd(cents);
    match shape {
        8 => Limit::hard(amount).per(every(90)),
        9 => Limit::hard(amount)
            .per(every(90))
            .with_rollover(Rollover::CarryForward { cap: usd(7) }),
        10 => Limit::soft(amount)
            .per(every(90))
            .with_rollover(Rollover::CapAtAllocation)
            .with_thresholds([50, 80]),
        11 => Limit::hard(amount)
            .per(Period::daily())
            .with_rollover(Rollover::CapAtAllocation)
            .with_overage(OveragePolicy::AllowIfAvailable),
        12 => Limit::hard(amount)
            .per(
                Period::every_from(
                    Duration::from_secs(40),
                    Timestamp::from_unix_nanos(7_000_000_000),
                )
                .unwrap(),
            )
            .with_rollover(Rollover::CarryForward { cap: usd(30) })
            .with_overage(OveragePolicy::AllowWithOverdraft { limit: usd(2) })
            .with_thresholds([25, 75])
            .with_threshold_basis(ThresholdBasis::SpentAndHeld),
        13 => Limit::hard(amount)
            .per(Period::daily().in_zone("Europe/Berlin").unwrap())
            .with_rollover(Rollover::CarryForward { cap: usd(5) })
            .with_thresholds([50]),
        0 => Limit::hard(amount),
        1 => Limit::hard(amount).with_thresholds([50, 80]),
        2 => Limit::hard(amount).with_overage(OveragePolicy::AllowIfAvailable),
        3 => Limit::hard(amount).with_overage(OveragePolicy::AllowWithOverdraft { limit: usd(2) }),
        4 => Limit::soft(amount),
        5 => Limit::soft(amount).with_overage(OveragePolicy::AllowIfAvailable),
        6 => Limit::hard(amount)
            .with_thresholds([25, 75])
            .with_threshold_basis(ThresholdBasis::SpentAndHeld),
        _ => Limit::hard(amount)
            .with_overage(OveragePolicy::AllowWithOverdraft { limit: usd(0) })
            .with_thresholds([90]),
    }
}

/// A node of [`TREE`]: name, parent, USD limit as (cents, [`limit`] shape), tokens limit.
type TreeNode = (&'static str, Option<usize>, Option<(i64, u8)>, Option<i64>);

/// The tree every case starts from.
const TREE: [TreeNode; 7] = [
    ("root", None, Some((100, 1)), None),
    ("a", Some(0), Some((40, 2)), Some(2_000)),
    ("a1", Some(1), Some((10, 0)), None),
    ("a2", Some(1), Some((5, 10)), None),
    ("b", Some(0), None, Some(500)),
    ("b1", Some(4), Some((15, 9)), None),
    ("b2", Some(4), Some((8, 3)), None),
];

/// One store of the pair, with the ids it gave.
struct Side {
    store: Arc<dyn Store>,
    nodes: Vec<NodeId>,
    /// Ids of removed nodes that were created again (tree index, id), oldest first: errors
    /// about their holds still name them.
    retired: Vec<(usize, NodeId)>,
    holds: Vec<HoldId>,
    /// Whole days the clock has moved: part of every idempotency key's name, so that no key is
    /// retried a day or more after its first use. The ledger forgets keys after 24 h on its
    /// clock; Redis expires them after 24 h on the server's own clock, which a manual clock
    /// does not move (see `tests/redis_conformance.rs`).
    day: u64,
}

impl Side {
    fn build(store: Arc<dyn Store>) -> Side {
        let mut side = Side {
            store,
            nodes: Vec::new(),
            retired: Vec::new(),
            holds: Vec::new(),
            day: 0,
        };
        for index in 0..TREE.len() {
            let id = side.create(index).unwrap();
            side.nodes.push(id);
        }
        side
    }

    /// Creates node `index` of [`TREE`] under its parent's current id.
    fn create(&self, index: usize) -> budget_guard::Result<NodeId> {
        let (name, parent, usd_limit, token_limit) = TREE[index];
        let mut limits = Vec::new();
        if let Some((cents, shape)) = usd_limit {
            limits.push(limit(cents, shape));
        }
        if let Some(count) = token_limit {
            limits.push(Limit::hard(tokens(count)).with_thresholds([50]));
        }
        let limits = if limits.is_empty() {
            Limits::none()
        } else {
            Limits::from(limits)
        };
        let parent = parent.map(|parent| self.nodes[parent]);
        self.store.create_node(parent, name, &limits)
    }

    /// Runs `step`; returns its result as text, with hold ids as `H<index>`.
    fn run(&mut self, step: &Step) -> String {
        let store = &self.store;
        let day = self.day;
        let key_name = |key: u8| IdempotencyKey::new(format!("k{key}-{day}")).unwrap();
        let options = |key: Option<u8>| {
            let mut options = OpOptions::new();
            if let Some(key) = key {
                options = options.idempotency_key(key_name(key));
            }
            options
        };
        let hold = |index: usize| self.holds.get(index % self.holds.len().max(1)).copied();
        let text = match *step {
            Step::Reserve {
                node,
                cents,
                tokens: count,
                ttl,
                key,
            } => {
                let mut cost = Cost::from(usd(cents));
                if let Some(count) = count {
                    cost = cost.with(tokens(count)).unwrap();
                }
                let mut reserve = ReserveOptions::new().ttl(Duration::from_secs(ttl));
                if let Some(key) = key {
                    reserve = reserve.idempotency_key(key_name(key));
                }
                let result = store.reserve_with(self.nodes[node], &cost, &reserve);
                self.granted(result)
            }
            Step::ReserveUpTo {
                node,
                min,
                max,
                ttl,
                key,
            } => {
                let mut reserve = ReserveOptions::new().ttl(Duration::from_secs(ttl));
                if let Some(key) = key {
                    reserve = reserve.idempotency_key(key_name(key));
                }
                let result =
                    store.reserve_up_to_with(self.nodes[node], usd(min), usd(max), &reserve);
                self.granted(result)
            }
            Step::Check {
                node,
                cents,
                tokens: count,
            } => {
                let mut cost = Cost::from(usd(cents));
                if let Some(count) = count {
                    cost = cost.with(tokens(count)).unwrap();
                }
                match store.check(self.nodes[node], &cost) {
                    Ok(mut check) => {
                        let expired = self.expired(std::mem::take(&mut check.expired));
                        format!("Ok({check:?}, reclaimed {expired:?})")
                    }
                    Err(error) => format!("Err({error:?})"),
                }
            }
            Step::Commit {
                hold: index,
                cents,
                tokens: count,
                key,
            } => {
                let Some(id) = hold(index) else {
                    return "no hold".to_owned();
                };
                let mut cost = Cost::from(usd(cents));
                if let Some(count) = count {
                    cost = cost.with(tokens(count)).unwrap();
                }
                format!("{:?}", store.commit_with(id, &cost, &options(key)))
            }
            Step::Record {
                hold: index,
                cents,
                tokens: count,
            } => {
                let Some(id) = hold(index) else {
                    return "no hold".to_owned();
                };
                let mut cost = Cost::from(usd(cents));
                if let Some(count) = count {
                    cost = cost.with(tokens(count)).unwrap();
                }
                format!("{:?}", store.record(id, &cost))
            }
            Step::Release { hold: index, key } => {
                let Some(id) = hold(index) else {
                    return "no hold".to_owned();
                };
                format!("{:?}", store.release_with(id, &options(key)))
            }
            Step::Extend { hold: index, ttl } => {
                let Some(id) = hold(index) else {
                    return "no hold".to_owned();
                };
                format!("{:?}", store.extend(id, Duration::from_secs(ttl)))
            }
            Step::Credit { node, cents, key } => {
                format!(
                    "{:?}",
                    store.credit_with(self.nodes[node], usd(cents), &options(key))
                )
            }
            Step::Debit { node, cents, key } => {
                format!(
                    "{:?}",
                    store.debit_with(self.nodes[node], usd(cents), &options(key))
                )
            }
            Step::SetLimit { node, cents, shape } => {
                format!(
                    "{:?}",
                    store.set_limit(self.nodes[node], limit(cents, shape))
                )
            }
            Step::RemoveLimit { node, tokens } => {
                let unit = if tokens { Unit::Tokens } else { Unit::Usd };
                format!("{:?}", store.remove_limit(self.nodes[node], unit))
            }
            Step::SetState { node, state } => {
                format!("{:?}", store.set_state(self.nodes[node], state))
            }
            Step::SetRateLimit {
                node,
                requests,
                seconds,
            } => {
                // Zero requests removes the limit.
                let limit = (requests > 0)
                    .then(|| RateLimit::new(requests, Duration::from_secs(seconds)).unwrap());
                format!("{:?}", store.set_rate_limit(self.nodes[node], limit))
            }
            Step::RemoveNode { node } => format!("{:?}", store.remove_node(self.nodes[node])),
            Step::CreateNode { node } => match self.create(node) {
                Ok(id) => {
                    let old = std::mem::replace(&mut self.nodes[node], id);
                    self.retired.push((node, old));
                    "Ok(created)".to_owned()
                }
                Err(error) => format!("Err({error:?})"),
            },
            Step::Sweep => match store.sweep() {
                Ok(swept) => format!("Ok({:?})", self.expired(swept)),
                Err(error) => format!("Err({error:?})"),
            },
            Step::Advance { .. } => String::new(),
        };
        self.named(text)
    }

    /// A reservation's result as text; a new hold is numbered.
    fn granted(&mut self, result: budget_guard::Result<budget_guard::Reservation>) -> String {
        match result {
            Ok(mut granted) => {
                if !self.holds.contains(&granted.hold) {
                    self.holds.push(granted.hold);
                }
                let expired = self.expired(std::mem::take(&mut granted.expired));
                format!("Ok({granted:?}, reclaimed {expired:?})")
            }
            Err(error) => format!("Err({error:?})"),
        }
    }

    /// Reclaimed holds as named text, sorted: the order they are reported in is not part of
    /// the contract (the ledger reports them in slot order).
    fn expired(&self, holds: Vec<ExpiredHold>) -> Vec<String> {
        let mut holds: Vec<String> = holds
            .iter()
            .map(|hold| self.named(format!("{hold:?}")))
            .collect();
        holds.sort();
        holds
    }

    /// `text` with every hold id of this side replaced by `H<index>` and every node id by
    /// `N<index>` (ids differ between stores).
    fn named(&self, mut text: String) -> String {
        let holds = self
            .holds
            .iter()
            .enumerate()
            .map(|(index, id)| (format!("{id:?}"), format!("H{index}")));
        let nodes = self
            .nodes
            .iter()
            .enumerate()
            .map(|(index, id)| (format!("{id:?}"), format!("N{index}")));
        let retired =
            self.retired.iter().enumerate().map(|(order, (index, id))| {
                (format!("{id:?}"), format!("N{index}-retired{order}"))
            });
        let mut ids: Vec<(String, String)> = holds.chain(nodes).chain(retired).collect();
        // Longest first: `hold#1.1` is a prefix of `hold#1.10`.
        ids.sort_by_key(|(id, _)| std::cmp::Reverse(id.len()));
        for (id, name) in ids {
            text = text.replace(&id, &name);
        }
        text
    }

    /// The books: every node's accounts and state, and the live holds (ids as indexes).
    fn books(&self) -> Books {
        let snapshot = self.store.snapshot().unwrap();
        let mut holds: Vec<_> = snapshot
            .holds
            .into_iter()
            .map(|hold| {
                let index = self.holds.iter().position(|id| *id == hold.id);
                (index, hold.node, hold.held, hold.recorded, hold.expires_at)
            })
            .collect();
        holds.sort_by_key(|hold| hold.0);
        (snapshot.nodes, holds)
    }
}

/// Every node's snapshot, and the live holds as (hold index, node, held, recorded, deadline).
type Books = (
    Vec<budget_guard::NodeSnapshot>,
    Vec<(Option<usize>, Arc<str>, Cost, Cost, Timestamp)>,
);

/// Runs one case; `audit` compares the books after every step, else only at the end.
fn run_case(
    server: &RedisServer,
    case: u64,
    (steps, audit): &(Vec<Step>, bool),
) -> Result<(), TestCaseError> {
    let clock = ManualClock::new(Timestamp::from_unix_nanos(1_767_225_600_000_000_000));
    let memory: Arc<dyn Store> = Arc::new(MemoryStore::with_clock(clock.clone()));
    let redis: Arc<dyn Store> = Arc::new(server.store_with(
        &format!("case{case}"),
        RedisOptions::new().clock(clock.clone()),
    ));
    let mut reference = Side::build(memory);
    let mut tested = Side::build(redis);
    prop_assert_eq!(reference.books(), tested.books(), "after building the tree");
    let mut elapsed = 0u64;
    for (index, step) in steps.iter().enumerate() {
        if let Step::Advance { seconds } = step {
            clock.advance(Duration::from_secs(*seconds));
            elapsed += seconds;
            (reference.day, tested.day) = (elapsed / 86_400, elapsed / 86_400);
        }
        let expected = reference.run(step);
        let actual = tested.run(step);
        prop_assert_eq!(&actual, &expected, "step {} ({:?}): result", index, step);
        if *audit || index + 1 == steps.len() {
            prop_assert_eq!(
                tested.books(),
                reference.books(),
                "step {} ({:?}): books",
                index,
                step
            );
        }
    }
    Ok(())
}

#[test]
fn redis_store_agrees_with_the_ledger_on_every_step() {
    agrees_with_the_ledger();
}

/// The other half of the cases, beside the first.
#[test]
fn redis_store_agrees_with_the_ledger_on_every_step_too() {
    agrees_with_the_ledger();
}

fn agrees_with_the_ledger() {
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    let config = Config {
        cases: half_of_cases(),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/redis_model.proptest-regressions",
        ))),
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let case = std::sync::atomic::AtomicU64::new(0);
    let outcome = runner.run(&(steps(), any::<bool>()), |case_steps| {
        let number = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        run_case(&server, number, &case_steps)
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}
