//! The reference model of `tests/model.rs` and `tests/model_file.rs`, and the runner that drives
//! a real store and the model side by side.
//!
//! The model keeps plain structs and recomputes everything the obvious way (no slabs, no serial
//! numbers, no path caching), so a bookkeeping bug in the optimised ledger shows up as a
//! divergence. After every step, every node's limit, spent, reserved and debt must agree with the
//! model, and so must the outcome class of the operation and the threshold levels it reported.
//!
//! The alert rule (semantics issue 13): every limit carries the levels 50 and 80 % (a soft one
//! also 100 %). A level fires once, reported by a successful reserve or commit on a path through
//! the node, when the node's committed spend has reached it; it re-arms only when spend is below
//! it after a credit, debit or new limit. A rejected overage reports nothing (its levels come
//! with the next reporting operation), and a restore marks the levels spend has reached as
//! reported. A reopen changes nothing: the reopened store continues exactly where it stopped.

use std::sync::Arc;

use budget_guard::{
    Amount, Budget, Crossings, Error, Guard, HoldId, Limit, LimitKind, Limits, NodeState,
    OveragePolicy, Store, Unit,
};
use proptest::prelude::*;

/// The case count: `PROPTEST_CASES` if set, else `default`. (A `ProptestConfig { cases, .. }`
/// literal would ignore the environment, so the tests build their config through this.)
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(default)
}

/// Half of [`cases`] (rounded up), for a run split into two tests that the harness runs side
/// by side on two threads: the same number of cases in half the time on two cores.
pub fn half_of_cases(default: u32) -> u32 {
    cases(default).div_ceil(2)
}

/// One cent in nano-dollars: model amounts are whole cents so that collisions with limits happen.
pub const CENT: i64 = 10_000_000;

/// The threshold levels of every hard limit in the model, and of every soft one.
const LEVELS: [u16; 2] = [50, 80];
const SOFT_LEVELS: [u16; 3] = [50, 80, 100];

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Policy {
    Reject,
    IfAvailable,
    Overdraft(i64),
}

#[derive(Clone, Debug)]
pub struct ModelNode {
    pub path: &'static str,
    pub parent: Option<usize>,
    pub limit: Option<(i64, LimitKind, Policy)>,
    pub spent: i64,
    pub reserved: i64,
    pub debt: i64,
    pub state: NodeState,
    /// Threshold levels fired and not re-armed.
    pub fired: Vec<u16>,
}

#[derive(Clone, Debug)]
pub struct ModelHold {
    pub node: usize,
    pub held: i64,
    pub recorded: i64,
}

/// What an operation did, compared between model and ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Exceeded,
    InDebt,
    Overage,
    Invalid,
    LimitBelowUsage,
    Frozen,
    Closed,
}

/// The outcome class of an operation that failed with `error` (or succeeded, for `None`).
pub fn class(error: Option<&Error>) -> Outcome {
    match error {
        None => Outcome::Ok,
        Some(Error::BudgetExceeded(_)) => Outcome::Exceeded,
        Some(Error::InDebt { .. }) => Outcome::InDebt,
        Some(Error::OverageRejected { .. }) => Outcome::Overage,
        Some(Error::LimitBelowUsage { .. }) => Outcome::LimitBelowUsage,
        Some(Error::Frozen { .. }) => Outcome::Frozen,
        Some(Error::Closed { .. }) => Outcome::Closed,
        Some(Error::InvalidAmount { .. } | Error::UnitNotBudgeted { .. }) => Outcome::Invalid,
        Some(other) => panic!("unexpected error class: {other}"),
    }
}

pub fn expected_class<T>(expected: &Result<T, Outcome>) -> Outcome {
    expected.as_ref().err().copied().unwrap_or(Outcome::Ok)
}

pub struct Model {
    pub nodes: Vec<ModelNode>,
    pub holds: Vec<Option<ModelHold>>,
}

impl Model {
    pub fn new() -> Self {
        let node = |path, parent, limit| ModelNode {
            path,
            parent,
            limit,
            spent: 0,
            reserved: 0,
            debt: 0,
            state: NodeState::Active,
            fired: Vec::new(),
        };
        use LimitKind::{Hard, Soft};
        Model {
            nodes: vec![
                node("root", None, Some((100 * CENT, Hard, Policy::Reject))),
                node(
                    "root/a",
                    Some(0),
                    Some((40 * CENT, Hard, Policy::IfAvailable)),
                ),
                node(
                    "root/a/a1",
                    Some(1),
                    Some((10 * CENT, Hard, Policy::Reject)),
                ),
                node("root/a/a2", Some(1), Some((5 * CENT, Soft, Policy::Reject))),
                node("root/b", Some(0), None),
                node(
                    "root/b/b1",
                    Some(4),
                    Some((15 * CENT, Hard, Policy::IfAvailable)),
                ),
                node(
                    "root/b/b2",
                    Some(4),
                    Some((8 * CENT, Hard, Policy::Overdraft(2 * CENT))),
                ),
            ],
            holds: Vec::new(),
        }
    }

    /// The threshold levels of a node's limit (see the module docs).
    pub fn levels(&self, node: usize) -> &'static [u16] {
        match self.nodes[node].limit {
            Some((_, LimitKind::Hard, _)) => &LEVELS,
            Some((_, LimitKind::Soft, _)) => &SOFT_LEVELS,
            None => &[],
        }
    }

    /// Levels of `node` its spend has reached.
    fn reached(&self, node: usize) -> Vec<u16> {
        let n = &self.nodes[node];
        let limit = n.limit.map_or(0, |(limit, _, _)| limit);
        self.levels(node)
            .iter()
            .copied()
            .filter(|level| i128::from(n.spent) * 100 >= i128::from(limit) * i128::from(*level))
            .collect()
    }

    /// A reporting operation on the path of `node` succeeded: the levels spend reached fire,
    /// once. Returns them as `(path, level)`.
    pub fn fire(&mut self, node: usize) -> Vec<(String, u16)> {
        let mut fired = Vec::new();
        for n in self.path(node) {
            for level in self.reached(n) {
                if !self.nodes[n].fired.contains(&level) {
                    self.nodes[n].fired.push(level);
                    fired.push((self.nodes[n].path.to_owned(), level));
                }
            }
        }
        fired.sort();
        fired
    }

    /// Spend may now be below fired levels (funds or a new limit): those re-arm.
    pub fn rearm(&mut self, node: usize) {
        let reached = self.reached(node);
        self.nodes[node]
            .fired
            .retain(|level| reached.contains(level));
    }

    /// After a restore: the levels spend has reached count as reported.
    pub fn settle(&mut self) {
        for node in 0..self.nodes.len() {
            self.nodes[node].fired = self.reached(node);
        }
    }

    pub fn path(&self, node: usize) -> Vec<usize> {
        let mut path = vec![node];
        while let Some(parent) = self.nodes[*path.last().unwrap()].parent {
            path.push(parent);
        }
        path
    }

    pub fn hard_room(&self, node: usize) -> Option<i64> {
        let n = &self.nodes[node];
        match n.limit {
            Some((limit, LimitKind::Hard, _)) => Some(limit - n.spent - n.reserved),
            _ => None,
        }
    }

    /// Debt check, then the smallest hard room on the path (None if nothing is hard).
    pub fn room(&self, node: usize) -> Result<Option<i64>, Outcome> {
        let path = self.path(node);
        if path.iter().any(|&n| self.nodes[n].debt > 0) {
            return Err(Outcome::InDebt);
        }
        Ok(path.iter().filter_map(|&n| self.hard_room(n)).min())
    }

    /// The refusal of the first node on the path (leaf first) that is closed, or frozen unless
    /// `closed_only`: a state applies to the whole subtree.
    pub fn blocked(&self, node: usize, closed_only: bool) -> Result<(), Outcome> {
        for n in self.path(node) {
            match self.nodes[n].state {
                NodeState::Closed => return Err(Outcome::Closed),
                NodeState::Frozen if !closed_only => return Err(Outcome::Frozen),
                _ => {}
            }
        }
        Ok(())
    }

    pub fn reserve(&mut self, node: usize, amount: i64) -> Result<usize, Outcome> {
        if amount == 0 {
            return Err(Outcome::Invalid);
        }
        self.blocked(node, false)?;
        if self.room(node)?.is_some_and(|room| amount > room) {
            return Err(Outcome::Exceeded);
        }
        self.hold(node, amount)
    }

    pub fn reserve_up_to(&mut self, node: usize, min: i64, max: i64) -> Result<usize, Outcome> {
        if min == 0 || min > max {
            return Err(Outcome::Invalid);
        }
        self.blocked(node, false)?;
        let room = self.room(node)?;
        if room.is_some_and(|room| room < min) {
            return Err(Outcome::Exceeded);
        }
        self.hold(node, room.map_or(max, |room| room.min(max)))
    }

    pub fn hold(&mut self, node: usize, amount: i64) -> Result<usize, Outcome> {
        for n in self.path(node) {
            self.nodes[n].reserved += amount;
        }
        self.holds.push(Some(ModelHold {
            node,
            held: amount,
            recorded: 0,
        }));
        Ok(self.holds.len() - 1)
    }

    pub fn release(&mut self, hold: usize) {
        if let Some(h) = self.holds[hold].take() {
            for n in self.path(h.node) {
                self.nodes[n].reserved -= h.held - h.recorded;
            }
        }
    }

    pub fn record(&mut self, hold: usize, partial: i64) -> Outcome {
        let h = self.holds[hold].clone().expect("live hold");
        if let Err(outcome) = self.blocked(h.node, true) {
            return outcome;
        }
        let growth = h.recorded + partial - h.held;
        if growth > 0 {
            match self.room(h.node) {
                Err(outcome) => return outcome,
                Ok(Some(room)) if growth > room => return Outcome::Exceeded,
                Ok(_) => {}
            }
        }
        let growth = growth.max(0);
        for n in self.path(h.node) {
            self.nodes[n].reserved += growth - partial;
            self.nodes[n].spent += partial;
        }
        self.holds[hold] = Some(ModelHold {
            held: h.held + growth,
            recorded: h.recorded + partial,
            ..h
        });
        Outcome::Ok
    }

    pub fn absorb(&mut self, node: usize, extra: i64) {
        let fits = self
            .hard_room(node)
            .map_or(extra, |room| extra.min(room.max(0)));
        self.nodes[node].spent += fits;
        self.nodes[node].debt += extra - fits;
    }

    pub fn commit(&mut self, hold: usize, actual: i64) -> Outcome {
        let h = self.holds[hold].clone().expect("live hold");
        if actual < h.recorded {
            return Outcome::Invalid;
        }
        self.holds[hold] = None;
        let path = self.path(h.node);
        for &n in &path {
            self.nodes[n].reserved -= h.held - h.recorded;
            self.nodes[n].spent += actual.min(h.held) - h.recorded;
        }
        let excess = actual - h.held;
        if excess <= 0 {
            return Outcome::Ok;
        }
        let governing = path
            .iter()
            .position(|&n| self.nodes[n].limit.is_some())
            .expect("every model path has a limit");
        let (_, kind, policy) = self.nodes[path[governing]].limit.unwrap();
        let room_everywhere = path
            .iter()
            .all(|&n| self.hard_room(n).is_none_or(|room| room >= excess));
        match policy {
            Policy::IfAvailable if room_everywhere => {
                for &n in &path {
                    self.nodes[n].spent += excess;
                }
                Outcome::Ok
            }
            Policy::Overdraft(overdraft) => {
                for &n in &path {
                    self.absorb(n, excess);
                }
                if path.iter().any(|&n| self.nodes[n].debt > overdraft) {
                    Outcome::Overage
                } else {
                    Outcome::Ok
                }
            }
            Policy::Reject | Policy::IfAvailable => {
                for (position, &n) in path.iter().enumerate() {
                    if position == governing && kind == LimitKind::Hard {
                        self.nodes[n].debt += excess;
                    } else {
                        self.absorb(n, excess);
                    }
                }
                Outcome::Overage
            }
        }
    }

    pub fn credit(&mut self, node: usize, amount: i64) -> Outcome {
        let n = &mut self.nodes[node];
        let Some((limit, kind, policy)) = n.limit else {
            return Outcome::Invalid; // UnitNotBudgeted, classified below
        };
        n.limit = Some((limit + amount, kind, policy));
        // New money repays debt first.
        let repaid = n.debt.min(amount);
        n.debt -= repaid;
        n.spent += repaid;
        self.rearm(node);
        Outcome::Ok
    }

    /// Sets the node's limit to `amount`, keeping its kind and policy (a node without a limit
    /// gets a hard one that rejects overage). A raise repays debt out of the added amount.
    pub fn set_limit(&mut self, node: usize, amount: i64) -> Outcome {
        let n = &mut self.nodes[node];
        let (kind, policy) = n
            .limit
            .map_or((LimitKind::Hard, Policy::Reject), |(_, kind, policy)| {
                (kind, policy)
            });
        if kind == LimitKind::Hard && amount < n.spent + n.reserved {
            return Outcome::LimitBelowUsage;
        }
        let added = n.limit.map_or(0, |(old, _, _)| amount - old);
        let had_levels = n.limit.is_some();
        n.limit = Some((amount, kind, policy));
        let repaid = n.debt.min(added.max(0));
        n.debt -= repaid;
        n.spent += repaid;
        if had_levels {
            self.rearm(node);
        } else {
            self.nodes[node].fired.clear(); // a new level set starts armed
        }
        Outcome::Ok
    }

    pub fn debit(&mut self, node: usize, amount: i64) -> Outcome {
        let n = &mut self.nodes[node];
        let Some((limit, kind, policy)) = n.limit else {
            return Outcome::Invalid;
        };
        let lowered = limit - amount;
        if lowered < 0 || (kind == LimitKind::Hard && lowered < n.spent + n.reserved) {
            return Outcome::LimitBelowUsage;
        }
        n.limit = Some((lowered, kind, policy));
        self.rearm(node);
        Outcome::Ok
    }
}

/// One step of a generated sequence. Node indexes address the model's seven nodes, hold indexes
/// sixteen slots of live holds (an empty slot makes the step a no-op).
#[derive(Clone, Debug)]
pub enum Op {
    Reserve {
        node: usize,
        cents: i64,
    },
    ReserveUpTo {
        node: usize,
        min: i64,
        max: i64,
    },
    Commit {
        hold: usize,
        cents: i64,
    },
    Record {
        hold: usize,
        cents: i64,
    },
    Release {
        hold: usize,
    },
    Drop {
        hold: usize,
    },
    Credit {
        node: usize,
        cents: i64,
    },
    Debit {
        node: usize,
        cents: i64,
    },
    SetLimit {
        node: usize,
        cents: i64,
    },
    SetState {
        node: usize,
        state: NodeState,
    },
    SnapshotRestore,
    /// Drop the store and open it again from its durable state (file store only).
    Reopen,
}

/// Sequences of 1..80 operations; `Reopen` among them only if `reopen` is set.
pub fn ops(reopen: bool) -> impl Strategy<Value = Vec<Op>> {
    let node = 0..7usize;
    let hold = 0..16usize;
    let op = prop_oneof![
        4 => (node.clone(), 0..12i64).prop_map(|(node, cents)| Op::Reserve { node, cents }),
        1 => (node.clone(), 0..6i64, 0..20i64)
            .prop_map(|(node, min, max)| Op::ReserveUpTo { node, min, max }),
        4 => (hold.clone(), 0..16i64).prop_map(|(hold, cents)| Op::Commit { hold, cents }),
        2 => (hold.clone(), 0..6i64).prop_map(|(hold, cents)| Op::Record { hold, cents }),
        1 => hold.clone().prop_map(|hold| Op::Release { hold }),
        1 => hold.prop_map(|hold| Op::Drop { hold }),
        1 => (node.clone(), 1..10i64).prop_map(|(node, cents)| Op::Credit { node, cents }),
        1 => (node.clone(), 1..10i64).prop_map(|(node, cents)| Op::Debit { node, cents }),
        1 => (node.clone(), 0..60i64).prop_map(|(node, cents)| Op::SetLimit { node, cents }),
        // Mostly back to active, so that frozen and closed subtrees do not stop whole cases.
        1 => (node, prop_oneof![
            2 => Just(NodeState::Active),
            1 => Just(NodeState::Frozen),
            1 => Just(NodeState::Closed),
        ])
            .prop_map(|(node, state)| Op::SetState { node, state }),
        1 => Just(Op::SnapshotRestore),
    ];
    // A weight of 0 is refused by proptest, so the reopen step is added only where it exists
    // (about one step in twenty).
    let op = if reopen {
        prop_oneof![20 => op, 1 => Just(Op::Reopen)].boxed()
    } else {
        op.boxed()
    };
    prop::collection::vec(op, 1..80)
}

/// A store under test.
pub trait Backend {
    /// A new, empty store.
    fn open(&mut self) -> Arc<dyn Store>;
    /// Opens the store again from its durable state; the previous handle has been dropped.
    /// Only called when [`Backend::reopens`] is `true`.
    fn reopen(&mut self) -> Arc<dyn Store>;
    /// Whether the store survives a reopen. Such a backend is driven through hold ids (a
    /// [`Guard`] keeps its store alive, so it cannot outlive one), the others through guards.
    fn reopens(&self) -> bool;
}

/// A live hold in a slot: a guard, or a bare id for stores that reopen.
// A test fixture with a handful of slots: the guard's size does not matter here.
#[allow(clippy::large_enum_variant)]
enum Held {
    Guard(Guard<'static>),
    Id(HoldId),
}

impl Held {
    fn id(&self) -> HoldId {
        match self {
            Held::Guard(guard) => guard.id(),
            Held::Id(id) => *id,
        }
    }
}

pub fn usd(minor: i64) -> Amount {
    Amount::try_from_minor(minor, Unit::Usd).unwrap()
}

fn build(model: &Model, store: &Arc<dyn Store>) -> Vec<Budget> {
    let mut budgets: Vec<Budget> = Vec::new();
    for node in &model.nodes {
        let limits = match node.limit {
            None => Limits::none(),
            Some((amount, kind, policy)) => Limits::from(limit(amount, kind, policy)),
        };
        let budget = match node.parent {
            None => Budget::builder(node.path, limits)
                .build_shared(store.clone())
                .unwrap(),
            Some(parent) => budgets[parent]
                .add_child(node.path.rsplit('/').next().unwrap(), limits)
                .unwrap(),
        };
        budgets.push(budget);
    }
    budgets
}

/// The store's limit for a model limit.
fn limit(amount: i64, kind: LimitKind, policy: Policy) -> Limit {
    let base = match kind {
        LimitKind::Hard => Limit::hard(usd(amount)),
        LimitKind::Soft => Limit::soft(usd(amount)),
    };
    base.with_overage(match policy {
        Policy::Reject => OveragePolicy::Reject,
        Policy::IfAvailable => OveragePolicy::AllowIfAvailable,
        Policy::Overdraft(cap) => OveragePolicy::AllowWithOverdraft { limit: usd(cap) },
    })
    .with_thresholds(LEVELS)
}

fn compare(model: &Model, budgets: &[Budget], step: usize, op: &Op) {
    for (node, budget) in model.nodes.iter().zip(budgets) {
        let balance = budget.balance(Unit::Usd).unwrap();
        let actual = (
            balance.limit.map(|l| l.amount().minor_units()),
            balance.spent.minor_units(),
            balance.reserved.minor_units(),
            balance.debt.minor_units(),
        );
        let expected = (
            node.limit.map(|l| l.0),
            node.spent,
            node.reserved,
            node.debt,
        );
        assert_eq!(
            actual, expected,
            "step {step} ({op:?}): {} diverged",
            node.path
        );
        assert_eq!(
            budget.info().unwrap().state,
            node.state,
            "step {step} ({op:?}): {} state diverged",
            node.path
        );
        if let Some((limit, LimitKind::Hard, _)) = node.limit {
            assert!(
                node.spent + node.reserved <= limit,
                "hard limit passed at {}",
                node.path
            );
        }
    }
}

/// Node ids change on restore and reopen, so every node is opened again by path.
fn reopen_budgets(store: &Arc<dyn Store>, model: &Model) -> Vec<Budget> {
    model
        .nodes
        .iter()
        .map(|node| Budget::open(store.clone(), node.path).unwrap())
        .collect()
}

/// Runs `ops` on a fresh store of `backend` and on the model, comparing after every step.
///
/// # Panics
/// On the first divergence, naming the step and the node.
pub fn run(backend: &mut dyn Backend, ops: &[Op]) {
    let mut model = Model::new();
    let mut store = backend.open();
    let mut budgets = build(&model, &store);
    let by_id = backend.reopens();
    // Slot i holds the store's hold and the model's hold index for a live hold.
    let mut live: Vec<Option<(Held, usize)>> = (0..16).map(|_| None).collect();
    for (step, op) in ops.iter().enumerate() {
        match *op {
            Op::Reserve { node, cents } => {
                let expected = model.reserve(node, cents * CENT);
                let actual = if by_id {
                    store
                        .reserve(budgets[node].id(), &usd(cents * CENT).into())
                        .map(|granted| (reported(&granted.events), Held::Id(granted.hold)))
                } else {
                    budgets[node]
                        .reserve_owned(usd(cents * CENT))
                        .map(|guard| (reported(guard.crossings()), Held::Guard(guard)))
                };
                assert_eq!(
                    class(actual.as_ref().err()),
                    expected_class(&expected),
                    "step {step}: {op:?}"
                );
                if let (Ok((events, held)), Ok(index)) = (actual, expected) {
                    assert_eq!(events, model.fire(node), "step {step}: {op:?}: levels");
                    keep(&mut live, &mut model, &store, held, index);
                }
            }
            Op::ReserveUpTo { node, min, max } => {
                let expected = model.reserve_up_to(node, min * CENT, max * CENT);
                let (min, max) = (usd(min * CENT), usd(max * CENT));
                let actual = if by_id {
                    store
                        .reserve_up_to(budgets[node].id(), min, max)
                        .map(|granted| {
                            let events = reported(&granted.events);
                            (granted.held, events, Held::Id(granted.hold))
                        })
                } else {
                    budgets[node].reserve_up_to(min, max).map(|guard| {
                        let events = reported(guard.crossings());
                        (guard.held(), events, Held::Guard(guard.into_owned()))
                    })
                };
                assert_eq!(
                    class(actual.as_ref().err()),
                    expected_class(&expected),
                    "step {step}: {op:?}"
                );
                if let (Ok((held, events, handle)), Ok(index)) = (actual, expected) {
                    assert_eq!(events, model.fire(node), "step {step}: {op:?}: levels");
                    assert_eq!(
                        held.get(Unit::Usd).unwrap().minor_units(),
                        model.holds[index].as_ref().unwrap().held
                    );
                    keep(&mut live, &mut model, &store, handle, index);
                }
            }
            Op::Commit { hold, cents } => {
                if let Some((held, index)) = live[hold].take() {
                    let node = model.holds[index].as_ref().expect("live hold").node;
                    let expected = model.commit(index, cents * CENT);
                    let still_live = model.holds[index].is_some();
                    let expected_events = match expected {
                        Outcome::Ok => model.fire(node),
                        _ => Vec::new(),
                    };
                    match held {
                        Held::Guard(guard) => {
                            let actual = guard.commit(usd(cents * CENT));
                            let error = actual.as_ref().err().map(|failed| failed.error());
                            assert_eq!(class(error), expected, "step {step}: {op:?}");
                            if let Ok(committed) = &actual {
                                assert_eq!(
                                    reported(&committed.events),
                                    expected_events,
                                    "step {step}: {op:?}: levels"
                                );
                            }
                            if let Err(error) = actual {
                                let guard = error.into_guard();
                                assert_eq!(
                                    guard.is_some(),
                                    still_live,
                                    "step {step}: {op:?}: guard handed back iff still live"
                                );
                                if let Some(guard) = guard {
                                    live[hold] = Some((Held::Guard(guard), index));
                                }
                            }
                        }
                        Held::Id(id) => {
                            let actual = store.commit(id, &usd(cents * CENT).into());
                            assert_eq!(
                                class(actual.as_ref().err()),
                                expected,
                                "step {step}: {op:?}"
                            );
                            if let Ok(committed) = &actual {
                                assert_eq!(
                                    reported(&committed.events),
                                    expected_events,
                                    "step {step}: {op:?}: levels"
                                );
                            }
                            if still_live {
                                live[hold] = Some((Held::Id(id), index));
                            }
                        }
                    }
                }
            }
            Op::Record { hold, cents } => {
                if let Some((held, index)) = &live[hold] {
                    let expected = model.record(*index, cents * CENT);
                    let actual = match held {
                        Held::Guard(guard) => guard.record(usd(cents * CENT)),
                        Held::Id(id) => store.record(*id, &usd(cents * CENT).into()),
                    };
                    assert_eq!(
                        class(actual.as_ref().err()),
                        expected,
                        "step {step}: {op:?}"
                    );
                }
            }
            Op::Release { hold } => {
                if let Some((held, index)) = live[hold].take() {
                    model.release(index);
                    match held {
                        Held::Guard(guard) => guard.release().unwrap(),
                        Held::Id(id) => assert!(store.release(id).unwrap(), "step {step}"),
                    }
                }
            }
            Op::Drop { hold } => {
                if let Some((held, index)) = live[hold].take() {
                    model.release(index);
                    drop_held(&store, held);
                }
            }
            Op::Credit { node, cents } => {
                let expected = model.credit(node, cents * CENT);
                let actual = budgets[node].credit(usd(cents * CENT));
                assert_eq!(
                    class(actual.as_ref().err()),
                    expected,
                    "step {step}: {op:?}"
                );
            }
            Op::Debit { node, cents } => {
                let expected = model.debit(node, cents * CENT);
                let actual = budgets[node].debit(usd(cents * CENT));
                assert_eq!(
                    class(actual.as_ref().err()),
                    expected,
                    "step {step}: {op:?}"
                );
            }
            Op::SetLimit { node, cents } => {
                let expected = model.set_limit(node, cents * CENT);
                let (kind, policy) = match model.nodes[node].limit {
                    Some((_, kind, policy)) => (kind, policy),
                    None => (LimitKind::Hard, Policy::Reject),
                };
                let actual = budgets[node].set_limit(limit(cents * CENT, kind, policy));
                assert_eq!(
                    class(actual.as_ref().err()),
                    expected,
                    "step {step}: {op:?}"
                );
            }
            Op::SetState { node, state } => {
                let previous = model.nodes[node].state;
                model.nodes[node].state = state;
                assert_eq!(
                    budgets[node].set_state(state).unwrap(),
                    previous,
                    "step {step}: {op:?}"
                );
            }
            Op::SnapshotRestore => {
                let snapshot = store.snapshot().unwrap();
                store.restore(&snapshot).unwrap();
                assert_eq!(store.snapshot().unwrap(), snapshot);
                model.settle();
                budgets = reopen_budgets(&store, &model);
            }
            Op::Reopen => {
                if by_id {
                    let snapshot = store.snapshot().unwrap();
                    let ids: Vec<HoldId> = live.iter().flatten().map(|(h, _)| h.id()).collect();
                    drop(budgets);
                    drop(store);
                    store = backend.reopen();
                    // A reopened store continues exactly where it stopped (the file holds the
                    // whole ledger): levels not yet reported are still reported later.
                    assert_eq!(
                        store.snapshot().unwrap(),
                        snapshot,
                        "step {step}: reopen changed the books"
                    );
                    for id in ids {
                        assert!(
                            store.snapshot().unwrap().holds.iter().any(|h| h.id == id),
                            "step {step}: hold {id:?} lost by reopen"
                        );
                    }
                    budgets = reopen_budgets(&store, &model);
                }
            }
        }
        compare(&model, &budgets, step, op);
    }
}

/// The threshold levels an operation reported, as `(path, level)`, sorted.
fn reported(crossings: &Crossings) -> Vec<(String, u16)> {
    let mut levels: Vec<(String, u16)> = crossings
        .iter()
        .map(|crossing| (crossing.node().to_string(), crossing.level()))
        .collect();
    levels.sort();
    levels
}

/// Puts a new hold in the first free slot, or releases it at once when all sixteen are taken.
fn keep(
    live: &mut [Option<(Held, usize)>],
    model: &mut Model,
    store: &Arc<dyn Store>,
    held: Held,
    index: usize,
) {
    match live.iter().position(Option::is_none) {
        Some(slot) => live[slot] = Some((held, index)),
        None => {
            model.release(index);
            drop_held(store, held);
        }
    }
}

/// Ends a hold the way a dropped guard does.
fn drop_held(store: &Arc<dyn Store>, held: Held) {
    match held {
        Held::Guard(guard) => drop(guard),
        Held::Id(id) => {
            store.release(id).unwrap();
        }
    }
}
