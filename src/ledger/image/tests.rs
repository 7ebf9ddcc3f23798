//! `Ledger -> image -> postcard bytes -> image -> Ledger` rebuilds the books exactly: the
//! same further operations give the same results and the same books as on the original.

use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::amount::Amount;
use crate::burn::BurnWindow;
use crate::clock::Timestamp;
use crate::cost::Cost;
use crate::idempotency::{IdempotencyKey, KeyRetention};
use crate::ids::HoldId;
use crate::op::{Op, Query};
use crate::period::Period;
use crate::policy::{Limit, Limits};
use crate::rate::RateLimit;
use crate::top_up::TopUp;

fn cents(n: i64) -> Amount {
    Amount::from_minor(n * 10_000_000, Unit::Usd)
}

/// One step of a random run: an operation, a query, or time passing.
#[derive(Clone, Debug)]
enum Step {
    Reserve {
        node: u8,
        cents: i64,
        ttl: u8,
        key: Option<u8>,
    },
    Commit {
        hold: u8,
        cents: i64,
        key: Option<u8>,
    },
    Release {
        hold: u8,
    },
    Record {
        hold: u8,
        cents: i64,
    },
    Extend {
        hold: u8,
        ttl: u8,
    },
    Credit {
        node: u8,
        cents: i64,
        key: Option<u8>,
    },
    Debit {
        node: u8,
        cents: i64,
    },
    Freeze {
        node: u8,
        frozen: bool,
    },
    Child {
        node: u8,
        cents: i64,
    },
    Remove {
        node: u8,
    },
    Sweep,
    Check {
        node: u8,
        cents: i64,
    },
    Advance {
        secs: u16,
    },
}

fn step() -> impl Strategy<Value = Step> {
    let node = 0u8..6;
    let amount = 1i64..400;
    let key = proptest::option::of(0u8..4);
    prop_oneof![
        4 => (node.clone(), amount.clone(), 1u8..30, key.clone())
            .prop_map(|(node, cents, ttl, key)| Step::Reserve { node, cents, ttl, key }),
        3 => (any::<u8>(), amount.clone(), key.clone())
            .prop_map(|(hold, cents, key)| Step::Commit { hold, cents, key }),
        1 => any::<u8>().prop_map(|hold| Step::Release { hold }),
        1 => (any::<u8>(), amount.clone()).prop_map(|(hold, cents)| Step::Record { hold, cents }),
        1 => (any::<u8>(), 1u8..30).prop_map(|(hold, ttl)| Step::Extend { hold, ttl }),
        1 => (node.clone(), amount.clone(), key)
            .prop_map(|(node, cents, key)| Step::Credit { node, cents, key }),
        1 => (node.clone(), amount.clone()).prop_map(|(node, cents)| Step::Debit { node, cents }),
        1 => (node.clone(), any::<bool>()).prop_map(|(node, frozen)| Step::Freeze { node, frozen }),
        1 => (node.clone(), amount.clone()).prop_map(|(node, cents)| Step::Child { node, cents }),
        1 => node.clone().prop_map(|node| Step::Remove { node }),
        1 => Just(Step::Sweep),
        1 => (node, amount).prop_map(|(node, cents)| Step::Check { node, cents }),
        2 => (1u16..7_200).prop_map(|secs| Step::Advance { secs }),
    ]
}

/// Drives one ledger: the nodes and holds the run knows, and its clock.
struct Run {
    ledger: Ledger,
    nodes: Vec<NodeId>,
    holds: Vec<HoldId>,
    now: Timestamp,
    retention: KeyRetention,
}

impl Run {
    /// A tree with every kind of state an image carries: a daily and a five-minute cap on
    /// one unit, thresholds, a soft limit, a rate limit, a burn window and a top-up rule.
    fn new() -> Self {
        let mut run = Run {
            ledger: Ledger::new(),
            nodes: Vec::new(),
            holds: Vec::new(),
            now: Timestamp::from_unix_nanos(1_768_478_400_000_000_000),
            retention: KeyRetention::new(
                Duration::from_secs(3_600),
                std::num::NonZeroUsize::new(3).unwrap(),
            )
            .unwrap(),
        };
        let minutes = Period::every(Duration::from_secs(300)).unwrap();
        let root_limits = Limits::from(vec![
            Limit::hard(cents(5_000)).per(Period::daily()),
            Limit::hard(cents(1_500)).per(minutes),
            Limit::hard(Amount::tokens(1_000_000)),
        ]);
        let specs: [(Option<usize>, &str, Limits); 4] = [
            (None, "org", root_limits),
            (
                Some(0),
                "team",
                Limits::from(Limit::hard(cents(2_000)).with_thresholds([50, 80])),
            ),
            (Some(1), "a", Limits::from(Limit::soft(cents(600)))),
            (Some(1), "b", Limits::from(Limit::hard(cents(900)))),
        ];
        for (parent, name, limits) in specs {
            let parent = parent.map(|index| run.nodes[index]);
            let op = Op::CreateNode {
                parent,
                name: name.into(),
                limits,
            };
            let id = run.apply(&op).unwrap().into_node().unwrap();
            run.nodes.push(id);
        }
        let (team, a, b) = (run.nodes[1], run.nodes[2], run.nodes[3]);
        let setup = [
            Op::SetRateLimit {
                node: a,
                limit: Some(RateLimit::per_minute(5).unwrap()),
            },
            Op::SetBurnWindow {
                node: team,
                window: Some(BurnWindow::new(Duration::from_secs(600)).unwrap()),
            },
            Op::SetTopUp {
                node: b,
                rule: Some(
                    TopUp::when_below(cents(200))
                        .adding(cents(300))
                        .at_most(2)
                        .per(Duration::from_secs(3_600)),
                ),
            },
        ];
        for op in &setup {
            run.apply(op).unwrap();
        }
        run
    }

    fn apply(&mut self, op: &Op) -> crate::error::Result<crate::op::Applied> {
        self.ledger.apply(op, Some(self.now), &self.retention)
    }

    fn node(&self, index: u8) -> NodeId {
        self.nodes[usize::from(index) % self.nodes.len()]
    }

    fn hold(&self, index: u8) -> HoldId {
        match self.holds.len() {
            0 => HoldId::from_raw(u64::from(index)),
            n => self.holds[usize::from(index) % n],
        }
    }

    /// Runs `step` and returns its result as text (results carry no process-local data).
    fn step(&mut self, step: &Step) -> String {
        let key = |k: &Option<u8>| k.map(|k| IdempotencyKey::new(format!("k{k}")).unwrap());
        let usd = |n: i64| Cost::from(cents(n));
        let op = match step {
            Step::Reserve {
                node,
                cents,
                ttl,
                key: k,
            } => Op::Reserve {
                node: self.node(*node),
                cost: usd(*cents),
                ttl: Duration::from_secs(u64::from(*ttl) * 60),
                idempotency_key: key(k),
            },
            Step::Commit {
                hold,
                cents,
                key: k,
            } => Op::Commit {
                hold: self.hold(*hold),
                actual: usd(*cents),
                idempotency_key: key(k),
            },
            Step::Release { hold } => Op::Release {
                hold: self.hold(*hold),
                idempotency_key: None,
            },
            Step::Record { hold, cents } => Op::Record {
                hold: self.hold(*hold),
                partial: usd(*cents),
            },
            Step::Extend { hold, ttl } => Op::Extend {
                hold: self.hold(*hold),
                ttl: Duration::from_secs(u64::from(*ttl) * 60),
            },
            Step::Credit {
                node,
                cents: n,
                key: k,
            } => Op::Credit {
                node: self.node(*node),
                amount: cents(*n),
                idempotency_key: key(k),
            },
            Step::Debit { node, cents: n } => Op::Debit {
                node: self.node(*node),
                amount: cents(*n),
                idempotency_key: None,
            },
            Step::Freeze { node, frozen } => Op::SetState {
                node: self.node(*node),
                state: if *frozen {
                    NodeState::Frozen
                } else {
                    NodeState::Active
                },
            },
            Step::Child { node, cents: n } => Op::CreateNode {
                parent: Some(self.node(*node)),
                name: format!("c{}", self.nodes.len()),
                limits: Limits::from(Limit::hard(cents(*n))),
            },
            Step::Remove { node } => Op::RemoveNode {
                node: self.node(*node),
            },
            Step::Sweep => Op::Sweep,
            Step::Check { node, cents } => {
                let query = Query::Check {
                    node: self.node(*node),
                    cost: usd(*cents),
                };
                let (answer, _) = self.ledger.read_noting(&query, Some(self.now));
                return format!("{answer:?}");
            }
            Step::Advance { secs } => {
                self.now = self
                    .now
                    .saturating_add(Duration::from_secs(u64::from(*secs)));
                return String::new();
            }
        };
        let result = self.apply(&op);
        match &result {
            Ok(crate::op::Applied::Reserved(granted)) => self.holds.push(granted.hold),
            Ok(crate::op::Applied::Node(id)) => self.nodes.push(*id),
            _ => {}
        }
        format!("{result:?}")
    }

    /// This run's books, written to postcard bytes and read back into a new run.
    fn through_bytes(&self) -> Run {
        let bytes = postcard::to_stdvec(&self.ledger.to_image()).unwrap();
        let image: LedgerImage = postcard::from_bytes(&bytes).unwrap();
        Run {
            ledger: Ledger::from_image(image).unwrap(),
            nodes: self.nodes.clone(),
            holds: self.holds.clone(),
            now: self.now,
            retention: self.retention,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256)
    ))]

    #[test]
    fn a_ledger_rebuilt_from_its_image_continues_exactly_like_the_original(
        steps in proptest::collection::vec(step(), 1..60),
        cut in 0usize..60,
    ) {
        let cut = cut.min(steps.len());
        let mut original = Run::new();
        for step in &steps[..cut] {
            original.step(step);
        }
        let mut rebuilt = original.through_bytes();
        prop_assert_eq!(rebuilt.ledger.to_image(), original.ledger.to_image());
        for (i, step) in steps[cut..].iter().enumerate() {
            let expected = original.step(step);
            let actual = rebuilt.step(step);
            prop_assert_eq!(actual, expected, "step {} after the cut: {:?}", i, step);
        }
        prop_assert_eq!(rebuilt.ledger.to_image(), original.ledger.to_image());
        prop_assert_eq!(rebuilt.ledger.snapshot(), original.ledger.snapshot());
    }
}

#[test]
fn an_image_with_a_child_that_names_another_parent_is_refused() {
    let mut run = Run::new();
    run.step(&Step::Reserve {
        node: 2,
        cents: 5,
        ttl: 5,
        key: None,
    });
    let mut image = run.ledger.to_image();
    // `a` (slot 2, parent `team`) moved to the children of `org` (slot 0).
    let team = image.nodes[1].node.as_mut().unwrap();
    team.children.retain(|child| *child != 2);
    image.nodes[0].node.as_mut().unwrap().children.push(2);
    let error = Ledger::from_image(image.clone()).unwrap_err();
    assert!(error.contains("names another parent"), "{error}");
    // Listed under both: one child too many.
    image.nodes[1].node.as_mut().unwrap().children.push(2);
    let error = Ledger::from_image(image).unwrap_err();
    assert!(error.contains("listed twice"), "{error}");
}

#[test]
fn an_image_whose_accounts_reserve_other_than_their_holds_is_refused() {
    let mut run = Run::new();
    run.step(&Step::Reserve {
        node: 2,
        cents: 5,
        ttl: 5,
        key: None,
    });
    let mut image = run.ledger.to_image();
    // `team` (slot 1) holds the $0.05 of its child's hold; claim $0.06.
    let team = image.nodes[1].node.as_mut().unwrap();
    team.accounts[0].cap.reserved += 10_000_000;
    let error = Ledger::from_image(image).unwrap_err();
    assert!(error.contains("holds add up to 50000000"), "{error}");
}

#[test]
fn an_image_whose_node_counts_its_holds_wrong_is_refused() {
    let mut run = Run::new();
    run.step(&Step::Reserve {
        node: 2,
        cents: 5,
        ttl: 5,
        key: None,
    });
    let mut image = run.ledger.to_image();
    image.nodes[2].node.as_mut().unwrap().live_holds = 7;
    let error = Ledger::from_image(image).unwrap_err();
    assert!(error.contains("wrong number of holds"), "{error}");
}

#[test]
fn an_image_whose_path_is_not_under_its_parent_is_refused() {
    let run = Run::new();
    let mut image = run.ledger.to_image();
    // `org/team/a` renamed `org/b2`: still team's child in the tree, elsewhere by its path.
    image.nodes[2].node.as_mut().unwrap().path = "org/b2".into();
    let error = Ledger::from_image(image).unwrap_err();
    assert!(
        error.contains("not a name under its parent's path"),
        "{error}"
    );
}
