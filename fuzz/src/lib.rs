//! Shared code of the fuzz targets: the ledger invariants checked on a [`Snapshot`], the
//! operation language of the `ops` target, and the `file_decode` driver.
//!
//! Every check panics with a description, which libFuzzer reports as a crash.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arbitrary::Arbitrary;

#[path = "hostile.rs"]
pub mod hostile;
use budget_guard::expiry::ReserveOptions;
use budget_guard::{
    Amount, Cost, Durability, Error, FileStore, HoldId, Limit, Limits, ManualClock, MemoryStore,
    NodeId, NodeState, OveragePolicy, Snapshot, Store, Timestamp, Unit,
};

/// Checks the ledger invariants on one consistent snapshot:
///
/// 1. every figure is non-negative, and on every hard limit `spent + reserved <= limit`;
/// 2. conservation: each node's `reserved` equals the outstanding part (`held - recorded`) of the
///    live holds on it and below it, per unit; each hold's `recorded <= held`;
/// 3. every hold names a node that exists.
///
/// # Panics
/// On the first broken invariant, naming it.
pub fn check_invariants(snapshot: &Snapshot) {
    let mut outstanding: HashMap<(&str, Unit), i128> = HashMap::new();
    for hold in &snapshot.holds {
        assert!(
            snapshot.nodes.iter().any(|n| n.path == hold.node),
            "hold {:?} on unknown node {}",
            hold.id,
            hold.node
        );
        for held in hold.held.iter() {
            let unit = held.unit();
            let recorded = hold.recorded.get(unit).map_or(0, Amount::minor_units);
            assert!(
                held.minor_units() >= 0 && recorded >= 0,
                "negative hold {hold:?}"
            );
            assert!(
                recorded <= held.minor_units(),
                "recorded above held: {hold:?}"
            );
            let open = i128::from(held.minor_units() - recorded);
            // The hold's node and every ancestor carry it.
            let mut path: &str = &hold.node;
            loop {
                *outstanding.entry((path, unit)).or_default() += open;
                match path.rfind('/') {
                    Some(cut) => path = &path[..cut],
                    None => break,
                }
            }
        }
        for recorded in hold.recorded.iter() {
            assert!(
                hold.held.get(recorded.unit()).is_some(),
                "recorded in a unit the hold does not hold: {hold:?}"
            );
        }
    }
    for node in &snapshot.nodes {
        for account in &node.accounts {
            let (spent, reserved, debt) = (
                account.spent.minor_units(),
                account.reserved.minor_units(),
                account.debt.minor_units(),
            );
            assert!(
                spent >= 0 && reserved >= 0 && debt >= 0,
                "negative figure at {} {:?}",
                node.path,
                account
            );
            if let Some(limit) = account.limit {
                assert!(
                    limit.amount().minor_units() >= 0,
                    "negative limit at {}",
                    node.path
                );
                if limit.kind() == budget_guard::LimitKind::Hard {
                    assert!(
                        i128::from(spent) + i128::from(reserved)
                            <= i128::from(limit.amount().minor_units()),
                        "hard limit passed at {}: {account:?}",
                        node.path
                    );
                }
            }
            let expected = outstanding
                .get(&(&*node.path, account.unit))
                .copied()
                .unwrap_or(0);
            assert_eq!(
                i128::from(reserved),
                expected,
                "conservation: {} {:?} reserves {reserved}, its live holds {expected}",
                node.path,
                account.unit
            );
        }
        // A node without an account in a unit must not have open holds in it.
        for unit in Unit::ALL {
            if !node.accounts.iter().any(|a| a.unit == unit) {
                let expected = outstanding.get(&(&*node.path, unit)).copied().unwrap_or(0);
                assert_eq!(
                    expected, 0,
                    "{} holds {unit:?} without an account",
                    node.path
                );
            }
        }
    }
}

/// Panics unless `error` is a typed error a caller can act on: never a storage failure from an
/// in-memory store, and its message renders.
pub fn check_typed(error: &Error, op: &dyn std::fmt::Debug) {
    assert!(
        !matches!(error, Error::Store(_)),
        "{op:?}: storage error from memory: {error}"
    );
    assert!(!error.to_string().is_empty(), "{op:?}: empty message");
}

// ---------------------------------------------------------------------------------------------
// file_decode

/// A scratch file for one target, named after it and the process.
pub(crate) fn scratch_path(target: &str) -> PathBuf {
    // tmpfs when available: open syncs, and a disk sync per input would dominate the run.
    let dir = ["/dev/shm", "/tmp"]
        .into_iter()
        .map(PathBuf::from)
        .find(|d| d.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    dir.join(format!(
        "budget-guard-fuzz-{target}-{}.bg",
        std::process::id()
    ))
}

/// Writes `data` as a budget file and opens it: `Ok` or a typed error, never a panic. On `Ok` the
/// snapshot satisfies [`check_invariants`], equals what the read-only [`FileStore::inspect`]
/// sees, and a reopen of the file the store rewrote gives the same books.
pub fn decode_file(data: &[u8]) {
    let path = scratch_path("decode");
    std::fs::write(&path, data).expect("write the scratch file");
    let inspected = FileStore::inspect(&path);
    if let Err(error) = &inspected {
        assert!(!error.to_string().is_empty());
    }
    let opened = FileStore::options()
        .durability(Durability::Unsynced)
        .open(&path);
    match opened {
        Err(error) => {
            assert!(!error.to_string().is_empty());
            if !matches!(error, Error::Store(_)) {
                // A refused file is left as it was.
                assert_eq!(
                    std::fs::read(&path).unwrap(),
                    data,
                    "refused file was changed"
                );
            }
        }
        Ok(store) => {
            let snapshot = store.snapshot().expect("snapshot of an open store");
            check_invariants(&snapshot);
            if let Ok(inspected) = &inspected {
                assert_eq!(inspected, &snapshot, "inspect and open disagree");
            }
            drop(store);
            let reopened = FileStore::options()
                .durability(Durability::Unsynced)
                .open(&path)
                .expect("reopen the file the store itself wrote");
            assert_eq!(
                reopened.snapshot().unwrap(),
                snapshot,
                "reopen changed the books"
            );
        }
    }
    let _ = std::fs::remove_file(&path);
}

// ---------------------------------------------------------------------------------------------
// ops

/// A unit, fuzzer-chosen.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum U {
    /// Dollars, counted in cents so amounts collide with limits.
    Usd,
    /// Whole tokens.
    Tokens,
}

/// A small amount, or an extreme one (for overflow paths).
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Size {
    /// `n` cents or tokens.
    Small(u8),
    /// `i64::MAX - n` minor units.
    Huge(u8),
}

impl Size {
    fn amount(self, unit: U) -> Amount {
        let (minor, unit) = match (self, unit) {
            (Size::Small(n), U::Usd) => (i64::from(n) * 10_000_000, Unit::Usd),
            (Size::Small(n), U::Tokens) => (i64::from(n) * 10, Unit::Tokens),
            (Size::Huge(n), U::Usd) => (i64::MAX - i64::from(n), Unit::Usd),
            (Size::Huge(n), U::Tokens) => (i64::MAX - i64::from(n), Unit::Tokens),
        };
        Amount::try_from_minor(minor, unit).expect("non-negative")
    }
}

/// A limit, fuzzer-chosen.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub struct L {
    unit: U,
    size: Size,
    hard: bool,
    /// 0 reject, 1 allow if available, otherwise an overdraft of `policy` cents/tokens.
    policy: u8,
    thresholds: bool,
}

impl L {
    fn limit(self) -> Limit {
        let amount = self.size.amount(self.unit);
        let base = if self.hard {
            Limit::hard(amount)
        } else {
            Limit::soft(amount)
        };
        let base = base.with_overage(match self.policy {
            0 => OveragePolicy::Reject,
            1 => OveragePolicy::AllowIfAvailable,
            n => OveragePolicy::AllowWithOverdraft {
                limit: Size::Small(n).amount(self.unit),
            },
        });
        if self.thresholds {
            base.with_thresholds([50, 80, 95])
        } else {
            base
        }
    }
}

/// One step of the `ops` target. Node and hold indexes wrap around the ones known so far
/// (removed nodes and ended holds stay known, so stale ids are exercised too).
#[derive(Arbitrary, Clone, Debug)]
pub enum Op {
    /// Reserve one or two units.
    Reserve {
        node: u8,
        usd: Option<Size>,
        tokens: Option<Size>,
        ttl_secs: u8,
    },
    /// Reserve as much as fits between `min` and `max`.
    ReserveUpTo {
        node: u8,
        unit: U,
        min: Size,
        max: Size,
        ttl_secs: u8,
    },
    /// Commit a hold with a total cost.
    Commit {
        hold: u8,
        usd: Option<Size>,
        tokens: Option<Size>,
    },
    /// Record partial spend on a hold.
    Record { hold: u8, unit: U, size: Size },
    /// Release a hold (idempotent).
    Release { hold: u8 },
    /// Heartbeat.
    Extend { hold: u8, ttl_secs: u8 },
    /// Reclaim expired holds.
    Sweep,
    /// Move the manual clock.
    Advance { secs: u8 },
    /// Add funds.
    Credit { node: u8, unit: U, size: Size },
    /// Take funds.
    Debit { node: u8, unit: U, size: Size },
    /// Set or replace a limit.
    SetLimit { node: u8, limit: L },
    /// Remove a limit.
    RemoveLimit { node: u8, unit: U },
    /// Freeze, close or reactivate a subtree.
    SetState { node: u8, state: u8 },
    /// Add a child (names from a small set, so duplicates happen).
    AddChild {
        parent: u8,
        name: u8,
        limit: Option<L>,
    },
    /// Remove a node.
    RemoveNode { node: u8 },
    /// Snapshot, restore it, and check nothing changed.
    SnapshotRestore,
}

fn unit(u: U) -> Unit {
    match u {
        U::Usd => Unit::Usd,
        U::Tokens => Unit::Tokens,
    }
}

fn cost(usd: Option<Size>, tokens: Option<Size>) -> Cost {
    let mut cost = Cost::new();
    if let Some(size) = usd {
        cost = cost.with(size.amount(U::Usd)).unwrap();
    }
    if let Some(size) = tokens {
        cost = cost.with(size.amount(U::Tokens)).unwrap();
    }
    cost
}

fn ttl(secs: u8) -> ReserveOptions {
    ReserveOptions::new().ttl(Duration::from_secs(u64::from(secs)))
}

fn pick<T: Copy>(items: &[T], index: u8) -> Option<T> {
    (!items.is_empty()).then(|| items[usize::from(index) % items.len()])
}

/// Applies `ops` to a fresh tree `root($100, 10k tokens) → a($40) → a1($10, a2 soft $5);
/// root → b(no limit) → b1($8, overdraft $2)` on a [`MemoryStore`] with a manual clock.
///
/// After every step: [`check_invariants`]; an error is [`check_typed`]; an operation that
/// failed changed nothing (except the documented cases: a commit whose overage was rejected
/// records the spend, and a refused reserve may first reclaim expired holds).
///
/// # Panics
/// On any broken rule.
pub fn run_ops(ops: &[Op]) {
    let clock = ManualClock::new(Timestamp::from_unix_nanos(1_000_000_000_000));
    let store: Arc<dyn Store> = Arc::new(MemoryStore::with_clock(clock.clone()));
    let usd = |n: i64| Amount::try_from_minor(n * 10_000_000, Unit::Usd).unwrap();
    let root = store
        .create_node(
            None,
            "root",
            &Limits::from(vec![
                Limit::hard(usd(10_000)),
                Limit::hard(Amount::tokens(10_000)),
            ]),
        )
        .unwrap();
    let a = store
        .create_node(
            Some(root),
            "a",
            &Limit::hard(usd(4_000))
                .with_overage(OveragePolicy::AllowIfAvailable)
                .into(),
        )
        .unwrap();
    let a1 = store
        .create_node(
            Some(a),
            "a1",
            &Limit::hard(usd(1_000)).with_thresholds([50, 80]).into(),
        )
        .unwrap();
    let a2 = store
        .create_node(Some(a), "a2", &Limit::soft(usd(500)).into())
        .unwrap();
    let b = store.create_node(Some(root), "b", &Limits::none()).unwrap();
    let b1 = store
        .create_node(
            Some(b),
            "b1",
            &Limit::hard(usd(800))
                .with_overage(OveragePolicy::AllowWithOverdraft { limit: usd(200) })
                .into(),
        )
        .unwrap();
    let mut nodes: Vec<NodeId> = vec![root, a, a1, a2, b, b1];
    let mut holds: Vec<HoldId> = Vec::new();
    check_invariants(&store.snapshot().unwrap());

    for op in ops {
        let before = store.snapshot().unwrap();
        // `Some(true)`: a failure may have changed the books (documented exceptions).
        let (result, may_change): (Result<(), Error>, bool) = match *op {
            Op::Reserve {
                node,
                usd,
                tokens,
                ttl_secs,
            } => {
                let Some(node) = pick(&nodes, node) else {
                    continue;
                };
                match store.reserve_with(node, &cost(usd, tokens), &ttl(ttl_secs)) {
                    Ok(granted) => {
                        holds.push(granted.hold);
                        (Ok(()), true)
                    }
                    Err(error) => (Err(error), true),
                }
            }
            Op::ReserveUpTo {
                node,
                unit: u,
                min,
                max,
                ttl_secs,
            } => {
                let Some(node) = pick(&nodes, node) else {
                    continue;
                };
                let (min, max) = (min.amount(u), max.amount(u));
                match store.reserve_up_to_with(node, min, max, &ttl(ttl_secs)) {
                    Ok(granted) => {
                        let held = granted.held.get(unit(u)).expect("held in the unit asked");
                        assert!(min <= held && held <= max, "{op:?}: granted {held}");
                        holds.push(granted.hold);
                        (Ok(()), true)
                    }
                    Err(error) => (Err(error), true),
                }
            }
            Op::Commit { hold, usd, tokens } => {
                let Some(hold) = pick(&holds, hold) else {
                    continue;
                };
                let result = store.commit(hold, &cost(usd, tokens)).map(drop);
                let overage = matches!(result, Err(Error::OverageRejected { .. }));
                (result, overage)
            }
            Op::Record {
                hold,
                unit: u,
                size,
            } => {
                let Some(hold) = pick(&holds, hold) else {
                    continue;
                };
                (store.record(hold, &size.amount(u).into()), false)
            }
            Op::Release { hold } => {
                let Some(hold) = pick(&holds, hold) else {
                    continue;
                };
                (store.release(hold).map(drop), false)
            }
            Op::Extend { hold, ttl_secs } => {
                let Some(hold) = pick(&holds, hold) else {
                    continue;
                };
                (
                    store
                        .extend(hold, Duration::from_secs(u64::from(ttl_secs)))
                        .map(drop),
                    false,
                )
            }
            Op::Sweep => (store.sweep().map(drop), false),
            Op::Advance { secs } => {
                clock.advance(Duration::from_secs(u64::from(secs)));
                (Ok(()), false)
            }
            Op::Credit {
                node,
                unit: u,
                size,
            } => {
                let Some(node) = pick(&nodes, node) else {
                    continue;
                };
                (store.credit(node, size.amount(u)).map(drop), false)
            }
            Op::Debit {
                node,
                unit: u,
                size,
            } => {
                let Some(node) = pick(&nodes, node) else {
                    continue;
                };
                (store.debit(node, size.amount(u)).map(drop), false)
            }
            Op::SetLimit { node, limit } => {
                let Some(node) = pick(&nodes, node) else {
                    continue;
                };
                (store.set_limit(node, limit.limit()).map(drop), false)
            }
            Op::RemoveLimit { node, unit: u } => {
                let Some(node) = pick(&nodes, node) else {
                    continue;
                };
                (store.remove_limit(node, unit(u)).map(drop), false)
            }
            Op::SetState { node, state } => {
                let Some(node) = pick(&nodes, node) else {
                    continue;
                };
                let state = match state % 3 {
                    0 => NodeState::Active,
                    1 => NodeState::Frozen,
                    _ => NodeState::Closed,
                };
                (store.set_state(node, state).map(drop), false)
            }
            Op::AddChild {
                parent,
                name,
                limit,
            } => {
                let Some(parent) = pick(&nodes, parent) else {
                    continue;
                };
                let name = ["x", "y", "z", "", "a/b"][usize::from(name) % 5];
                let limits = limit.map_or_else(Limits::none, |l| l.limit().into());
                match store.create_node(Some(parent), name, &limits) {
                    Ok(id) => {
                        nodes.push(id);
                        (Ok(()), false)
                    }
                    Err(error) => (Err(error), false),
                }
            }
            Op::RemoveNode { node } => {
                let Some(node) = pick(&nodes, node) else {
                    continue;
                };
                (store.remove_node(node), false)
            }
            Op::SnapshotRestore => {
                // Paths of the known nodes, to re-resolve after the restore (ids change).
                let paths: Vec<Option<Arc<str>>> = nodes
                    .iter()
                    .map(|&id| store.node_info(id).ok().map(|info| info.path))
                    .collect();
                store
                    .restore(&before)
                    .expect("restore the store's own snapshot");
                assert_eq!(
                    store.snapshot().unwrap(),
                    before,
                    "restore changed the books"
                );
                for (id, path) in nodes.iter_mut().zip(paths) {
                    if let Some(path) = path {
                        *id = store.resolve(&path).expect("a restored path resolves");
                    }
                }
                (Ok(()), false)
            }
        };
        let after = store.snapshot().unwrap();
        check_invariants(&after);
        if let Err(error) = &result {
            check_typed(error, op);
            if !may_change {
                assert_eq!(
                    after, before,
                    "{op:?} failed with {error} but changed the books"
                );
            }
        }
    }
}
