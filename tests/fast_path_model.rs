//! The reserve's one-walk fast path (one unit, or one walk per unit for a cost in several
//! units) against the exact two-pass path, on random trees and random sequences of reserves,
//! commits and releases in dollars and tokens: every answer and every balance must be the same.
//!
//! Both trees live in stores of their own, each beside a spare root. In one store the spare root
//! is frozen: a ledger with any node not active sends every reserve down the exact path (the fast
//! path only runs while every node is active), so the two trees see the same operations through
//! the two paths.

use std::sync::Arc;

use budget_guard::{
    Amount, Budget, Cost, Guard, Limit, Limits, MemoryStore, NodeState, OveragePolicy,
    ThresholdBasis, Unit,
};
use proptest::prelude::*;

const NODES: [&str; 4] = ["", "team", "team/task", "team/other"];

/// A limit on one unit of one node: none, or a cap with its kind, thresholds and policy.
#[derive(Clone, Debug)]
struct LimitSpec {
    cap: u32,
    soft: bool,
    thresholds: bool,
    spent_and_held: bool,
    policy: u8,
}

#[derive(Clone, Debug)]
enum Step {
    Reserve {
        node: usize,
        dollars: Option<u32>,
        tokens: Option<u32>,
    },
    Commit {
        guard: usize,
        dollars: u32,
        tokens: u32,
    },
    Release {
        guard: usize,
    },
}

fn limit_spec() -> impl Strategy<Value = Option<LimitSpec>> {
    prop::option::weighted(
        0.8,
        (
            50_u32..1_000,
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            0_u8..3,
        )
            .prop_map(
                |(cap, soft, thresholds, spent_and_held, policy)| LimitSpec {
                    cap,
                    soft,
                    thresholds,
                    spent_and_held,
                    policy,
                },
            ),
    )
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..NODES.len(), prop::option::of(1_u32..300), prop::option::of(1_u32..300))
            .prop_map(|(node, dollars, tokens)| Step::Reserve { node, dollars, tokens }),
        2 => (0_usize..8, 0_u32..400, 0_u32..400)
            .prop_map(|(guard, dollars, tokens)| Step::Commit { guard, dollars, tokens }),
        1 => (0_usize..8).prop_map(|guard| Step::Release { guard }),
    ]
}

/// `spec` as a limit of `unit`: dollars in cents, tokens as counted.
fn limit(unit: Unit, spec: &LimitSpec) -> Limit {
    let amount = amount(unit, spec.cap);
    let mut limit = if spec.soft {
        Limit::soft(amount)
    } else {
        Limit::hard(amount)
    };
    if spec.thresholds {
        limit = limit.with_thresholds([50, 80]);
    }
    if spec.spent_and_held {
        limit = limit.with_threshold_basis(ThresholdBasis::SpentAndHeld);
    }
    limit.with_overage(match spec.policy {
        0 => OveragePolicy::Reject,
        1 => OveragePolicy::AllowIfAvailable,
        _ => OveragePolicy::AllowWithOverdraft {
            limit: amount_of(unit, spec.cap / 4),
        },
    })
}

fn amount(unit: Unit, count: u32) -> Amount {
    amount_of(unit, count)
}

fn amount_of(unit: Unit, count: u32) -> Amount {
    match unit {
        Unit::Usd => Amount::try_from_minor(i64::from(count) * 10_000_000, Unit::Usd).unwrap(),
        _ => Amount::tokens(count),
    }
}

/// The cost of a step's amounts; `None` if it has none.
fn cost(dollars: Option<u32>, tokens: Option<u32>) -> Option<Cost> {
    let mut cost: Option<Cost> = None;
    for (unit, count) in [(Unit::Usd, dollars), (Unit::Tokens, tokens)] {
        if let Some(count) = count {
            let amount = amount(unit, count);
            cost = Some(match cost {
                None => Cost::from(amount),
                Some(cost) => cost.with(amount).unwrap(),
            });
        }
    }
    cost
}

/// The tree of `specs` (per node: dollars, tokens) in a store of its own, beside a spare root
/// that is frozen when `exact`.
fn tree(specs: &[(Option<LimitSpec>, Option<LimitSpec>)], exact: bool) -> Vec<Budget> {
    let store: Arc<dyn budget_guard::Store> = Arc::new(MemoryStore::new());
    let spare = Budget::builder("spare", Limit::hard(Amount::tokens(1)))
        .build_shared(store.clone())
        .unwrap();
    if exact {
        spare.set_state(NodeState::Frozen).unwrap();
    }
    let limits = |index: usize| {
        let (dollars, tokens) = &specs[index];
        let mut limits = Vec::new();
        if let Some(spec) = dollars {
            limits.push(limit(Unit::Usd, spec));
        }
        if let Some(spec) = tokens {
            limits.push(limit(Unit::Tokens, spec));
        }
        Limits::from(limits)
    };
    let mut builder = Budget::builder("org", limits(0));
    for (index, path) in NODES.iter().enumerate().skip(1) {
        builder = builder.child(path, limits(index));
    }
    let org = builder.build_shared(store).unwrap();
    NODES
        .iter()
        .map(|path| {
            if path.is_empty() {
                org.clone()
            } else {
                org.at(path).unwrap()
            }
        })
        .collect()
}

/// What a user sees of a reserve.
fn seen(reserved: &budget_guard::Result<Guard<'_>>) -> String {
    match reserved {
        Ok(guard) => {
            let levels: Vec<_> = guard
                .crossings()
                .iter()
                .map(|crossing| (crossing.node().clone(), crossing.unit(), crossing.level()))
                .collect();
            format!(
                "held {:?}, soft {:?}, levels {levels:?}",
                guard.held(),
                guard.over_soft_limit()
            )
        }
        Err(error) => format!("{error:?}"),
    }
}

/// Every node's figures in both units.
fn books(nodes: &[Budget]) -> Vec<(Amount, Amount, Amount)> {
    let mut books = Vec::new();
    for node in nodes {
        for unit in [Unit::Usd, Unit::Tokens] {
            let balance = node.balance(unit).unwrap();
            books.push((balance.spent, balance.reserved, balance.debt));
        }
    }
    books
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    #[test]
    fn fast_and_exact_reserve_paths_give_the_same_answers_and_books(
        specs in prop::collection::vec((limit_spec(), limit_spec()), NODES.len()),
        steps in prop::collection::vec(step(), 1..40),
    ) {
        let fast = tree(&specs, false);
        let exact = tree(&specs, true);
        let mut guards: Vec<(Guard<'_>, Guard<'_>)> = Vec::new();
        for step in &steps {
            match step {
                Step::Reserve { node, dollars, tokens } => {
                    let Some(cost) = cost(*dollars, *tokens) else { continue };
                    let (a, b) = (fast[*node].reserve(cost), exact[*node].reserve(cost));
                    prop_assert_eq!(seen(&a), seen(&b), "{:?}", step);
                    if let (Ok(a), Ok(b)) = (a, b) {
                        guards.push((a, b));
                    }
                }
                Step::Commit { guard, dollars, tokens } => {
                    if guards.is_empty() { continue }
                    let (a, b) = guards.remove(guard % guards.len());
                    let held = a.held();
                    let actual = cost(
                        held.get(Unit::Usd).map(|_| *dollars),
                        held.get(Unit::Tokens).map(|_| *tokens),
                    ).unwrap();
                    let (a, b) = (a.commit(actual), b.commit(actual));
                    prop_assert_eq!(format!("{a:?}"), format!("{b:?}"), "{:?}", step);
                }
                Step::Release { guard } => {
                    if guards.is_empty() { continue }
                    drop(guards.remove(guard % guards.len()));
                }
            }
            prop_assert_eq!(books(&fast), books(&exact), "after {:?}", step);
        }
    }
}
