//! A store outside the crate, built the way a remote backend is: it implements only
//! `Store::apply` and `Store::read` and sends every operation and every result through a
//! `serde_json` round trip, as a network hop would. The whole conformance suite runs on it, and
//! on a `PartialStore` that declares it cannot do top-ups or burn windows, and on one that
//! declares only the money core (what `RedisStore` declares), and on one that declares nothing
//! beyond nodes, reserve, commit and release: every check skips what a store does not declare.

use std::sync::Arc;
use std::time::Duration;

use budget_guard::burn::BurnWindow;
use budget_guard::expiry::ExpiredHold;
use budget_guard::idempotency::IdempotencyKey;
use budget_guard::rate::RateLimit;
use budget_guard::top_up::TopUp;
use budget_guard::{
    Amount, Answer, Applied, Balance, Check, Committed, Cost, Error, HoldId, Limit, Limits,
    ManualClock, MemoryStore, NodeId, NodeState, Op, OpKind, Query, Reservation, Store, StoreError,
    StoreErrorKind, Timestamp, Unit, Verdict,
};
use budget_guard::{Budget, Snapshot};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Serializes `value` to JSON text and reads it back: what a remote store's transport does.
fn over_the_wire<T: Serialize + DeserializeOwned>(value: &T) -> T {
    let text = serde_json::to_string(value).expect("serializes");
    serde_json::from_str(&text).expect("deserializes what it serialized")
}

/// A store whose books live "elsewhere" (a `MemoryStore` it owns): every `Op` and `Query`
/// crosses a JSON round trip on the way in, and every `Applied` and `Answer` on the way out.
///
/// Errors are passed as they are: [`Error`] is not serde (it carries a
/// [`StoreError`]'s boxed source), so a real remote store maps its server's error codes to
/// `Error` variants itself.
#[derive(Debug)]
struct WireStore {
    books: MemoryStore,
}

impl WireStore {
    fn with_clock(clock: ManualClock) -> Self {
        WireStore {
            books: MemoryStore::with_clock(clock),
        }
    }
}

impl Store for WireStore {
    fn apply(&self, op: &Op) -> budget_guard::Result<Applied> {
        let received = over_the_wire(op);
        assert_eq!(&received, op, "an op survives the wire unchanged");
        self.books
            .apply(&received)
            .map(|applied| over_the_wire(&applied))
    }

    fn read(&self, query: &Query) -> budget_guard::Result<Answer> {
        let received = over_the_wire(query);
        assert_eq!(&received, query, "a query survives the wire unchanged");
        self.books
            .read(&received)
            .map(|answer| over_the_wire(&answer))
    }

    fn now(&self) -> Timestamp {
        self.books.now()
    }
    // No `cancel_epoch`: like most remote stores it has no cheap counter, so guards ask
    // `cancellation` (a `Query`) every time.
}

/// A remote store that declares only part of the operations (say, its server scripts do not
/// have the rest yet) and refuses the others with `Error::Unsupported`.
#[derive(Debug)]
struct PartialStore {
    wire: WireStore,
    missing: &'static [OpKind],
}

impl PartialStore {
    /// Every operation but top-ups and burn windows.
    fn with_clock(clock: ManualClock) -> Self {
        PartialStore {
            wire: WireStore::with_clock(clock),
            missing: &[OpKind::SetTopUp, OpKind::SetBurnWindow],
        }
    }

    /// The least a store can be: it creates nodes, reserves, commits and releases, nothing else.
    fn bare(clock: ManualClock) -> Self {
        PartialStore {
            wire: WireStore::with_clock(clock),
            missing: &[
                OpKind::RemoveNode,
                OpKind::ReserveUpTo,
                OpKind::Extend,
                OpKind::Sweep,
                OpKind::Record,
                OpKind::Credit,
                OpKind::Debit,
                OpKind::SetState,
                OpKind::SetLimit,
                OpKind::RemoveLimit,
                OpKind::SetRateLimit,
                OpKind::SetBurnWindow,
                OpKind::SetTopUp,
                OpKind::Restore,
            ],
        }
    }

    /// Only the money core, the operations `RedisStore` declares: nodes are created, never
    /// removed; reserve (not up to), extend, sweep, commit, release (no `record`); credit,
    /// debit, state and limits; no rate limits, burn windows, top-ups or restores.
    fn money_core(clock: ManualClock) -> Self {
        PartialStore {
            wire: WireStore::with_clock(clock),
            missing: &[
                OpKind::RemoveNode,
                OpKind::ReserveUpTo,
                OpKind::Record,
                OpKind::SetRateLimit,
                OpKind::SetBurnWindow,
                OpKind::SetTopUp,
                OpKind::Restore,
            ],
        }
    }
}

impl Store for PartialStore {
    fn apply(&self, op: &Op) -> budget_guard::Result<Applied> {
        if !self.supports(op.kind()) {
            return Err(Error::Unsupported {
                op: op.kind(),
                store: "PartialStore",
            });
        }
        self.wire.apply(op)
    }

    fn read(&self, query: &Query) -> budget_guard::Result<Answer> {
        self.wire.read(query)
    }

    fn supports(&self, kind: OpKind) -> bool {
        !self.missing.contains(&kind)
    }

    fn now(&self) -> Timestamp {
        self.wire.now()
    }
}

mod wire {
    budget_guard::store_conformance_tests!(clock: super::WireStore::with_clock);
}

mod partial {
    budget_guard::store_conformance_tests!(clock: super::PartialStore::with_clock);
}

/// Every check runs on a store with only the money core: a check skips what the store does
/// not declare instead of failing on its `Unsupported`.
mod money_core {
    budget_guard::store_conformance_tests!(clock: super::PartialStore::money_core);
}

/// Likewise on a store with nothing but nodes, reserve, commit and release.
mod bare {
    budget_guard::store_conformance_tests!(clock: super::PartialStore::bare);
}

fn usd(text: &str) -> Amount {
    Amount::usd(text).expect("valid amount")
}

#[test]
fn every_op_and_query_survives_json_unchanged() {
    let node = NodeId::from_raw(3);
    let hold = HoldId::from_raw(9);
    let key = Some(IdempotencyKey::new("retry-1").unwrap());
    let cost = Cost::from(usd("1.25"));
    let ops = vec![
        Op::CreateNode {
            parent: Some(node),
            name: "agent-7".into(),
            limits: Limits::from(vec![
                Limit::hard(usd("10")),
                Limit::soft(Amount::tokens(500)),
            ]),
        },
        Op::RemoveNode { node },
        Op::Reserve {
            node,
            cost,
            ttl: Duration::from_millis(1_500),
            idempotency_key: key.clone(),
        },
        Op::ReserveUpTo {
            node,
            min: usd("1"),
            max: usd("3"),
            ttl: Duration::from_secs(60),
            idempotency_key: None,
        },
        Op::Extend {
            hold,
            ttl: Duration::from_secs(5),
        },
        Op::Sweep,
        Op::Record {
            hold,
            partial: cost,
        },
        Op::Commit {
            hold,
            actual: cost,
            idempotency_key: key.clone(),
        },
        Op::Release {
            hold,
            idempotency_key: None,
        },
        Op::Credit {
            node,
            amount: usd("2"),
            idempotency_key: key.clone(),
        },
        Op::Debit {
            node,
            amount: usd("0.5"),
            idempotency_key: None,
        },
        Op::SetState {
            node,
            state: NodeState::Frozen,
        },
        Op::SetLimit {
            node,
            limit: Limit::hard(usd("20")),
        },
        Op::RemoveLimit {
            node,
            unit: Unit::Tokens,
        },
        Op::SetRateLimit {
            node,
            limit: Some(RateLimit::new(10, Duration::from_secs(60)).unwrap()),
        },
        Op::SetBurnWindow {
            node,
            window: Some(BurnWindow::new(Duration::from_secs(3_600)).unwrap()),
        },
        Op::SetTopUp {
            node,
            rule: Some(TopUp::when_below(usd("3")).adding(usd("5"))),
        },
        Op::Restore {
            snapshot: Box::new(Snapshot::default()),
        },
    ];
    let kinds: Vec<OpKind> = ops.iter().map(Op::kind).collect();
    assert_eq!(kinds, OpKind::ALL, "one op of every kind, in order");
    for op in &ops {
        assert_eq!(&over_the_wire(op), op);
    }
    let queries = [
        Query::Resolve {
            path: "acme/agent-7".into(),
        },
        Query::Check { node, cost },
        Query::Balance {
            node,
            unit: Unit::Usd,
        },
        Query::NodeInfo { node },
        Query::Snapshot,
        Query::Cancellation { hold },
    ];
    for query in &queries {
        assert_eq!(&over_the_wire(query), query);
    }
}

#[test]
fn a_budget_on_the_wire_store_keeps_exact_figures() {
    let clock = ManualClock::new(Timestamp::EPOCH);
    let org = Budget::builder("org", Limit::hard(usd("10")).with_thresholds([50]))
        .build_in(WireStore::with_clock(clock))
        .unwrap();
    let team = org.add_child("team", Limit::hard(usd("4"))).unwrap();
    let guard = team.reserve(usd("3")).unwrap();
    let committed = guard.commit(usd("2.75")).unwrap();
    assert_eq!(committed.spent, Cost::from(usd("2.75")));
    assert_eq!(committed.returned, Cost::from(usd("0.25")));
    let balance = org.balance(Unit::Usd).unwrap();
    assert_eq!(balance.spent, usd("2.75"));
    assert_eq!(balance.remaining, Some(usd("7.25")));
    let denied = team.reserve(usd("1.50")).unwrap_err();
    assert_eq!(denied.exceeded().unwrap().remaining(), usd("1.25"));
}

#[test]
fn an_undeclared_op_is_a_typed_unsupported_error_that_changes_nothing() {
    let store = Arc::new(PartialStore::with_clock(ManualClock::new(Timestamp::EPOCH)));
    assert!(!store.supports(OpKind::SetTopUp));
    assert!(!store.supports(OpKind::SetBurnWindow));
    assert!(store.supports(OpKind::Reserve));
    let wallet = Budget::builder("wallet", Limit::hard(usd("10")))
        .build_in(store.clone())
        .unwrap();
    let before = store.snapshot().unwrap();
    let refused = wallet
        .set_top_up(TopUp::when_below(usd("3")).adding(usd("5")))
        .unwrap_err();
    assert!(
        matches!(
            refused,
            Error::Unsupported {
                op: OpKind::SetTopUp,
                store: "PartialStore"
            }
        ),
        "{refused:?}"
    );
    assert_eq!(
        refused.to_string(),
        "PartialStore does not support the SetTopUp operation"
    );
    let window = BurnWindow::new(Duration::from_secs(60)).unwrap();
    assert!(matches!(
        wallet.set_burn_window(Some(window)),
        Err(Error::Unsupported {
            op: OpKind::SetBurnWindow,
            ..
        })
    ));
    assert_eq!(store.snapshot().unwrap(), before, "nothing changed");
    // the ops it declares still work
    assert_eq!(
        wallet
            .reserve(usd("4"))
            .unwrap()
            .commit(usd("4"))
            .unwrap()
            .spent,
        Cost::from(usd("4"))
    );
}

#[test]
fn a_wrong_result_variant_is_a_permanent_store_error() {
    let error = Applied::Removed.into_reservation().unwrap_err();
    let Error::Store(store_error) = &error else {
        panic!("expected a store error, got {error:?}");
    };
    assert_eq!(store_error.kind(), StoreErrorKind::Permanent);
    assert_eq!(
        store_error.message(),
        "the store returned Removed where Reserved was expected"
    );
    assert!(matches!(
        Answer::Node(NodeId::from_raw(1)).into_balance(),
        Err(Error::Store(_))
    ));
}

/// A store that fails every reserve as a remote store would on a lost connection.
#[derive(Debug)]
struct FlakyStore {
    books: MemoryStore,
    kind: StoreErrorKind,
}

impl Store for FlakyStore {
    fn apply(&self, op: &Op) -> budget_guard::Result<Applied> {
        match op {
            Op::Reserve { .. } => Err(StoreError::of_kind(self.kind, "connection lost").into()),
            _ => self.books.apply(op),
        }
    }

    fn read(&self, query: &Query) -> budget_guard::Result<Answer> {
        self.books.read(query)
    }
}

#[test]
fn store_error_kinds_reach_the_caller_with_the_retry_rule() {
    for kind in [
        StoreErrorKind::Transient,
        StoreErrorKind::OutcomeUnknown,
        StoreErrorKind::Permanent,
    ] {
        let store = FlakyStore {
            books: MemoryStore::new(),
            kind,
        };
        let budget = Budget::builder("run", Limit::hard(usd("1")))
            .build_in(store)
            .unwrap();
        let error = budget.reserve(usd("0.5")).unwrap_err();
        assert_eq!(error.is_transient(), kind == StoreErrorKind::Transient);
        assert_eq!(
            error.outcome_unknown(),
            kind == StoreErrorKind::OutcomeUnknown
        );
        assert!(!error.is_denial());
    }
    assert_eq!(StoreError::new("x").kind(), StoreErrorKind::Permanent);
    assert_eq!(
        StoreError::with_source("x", std::io::Error::other("y"))
            .with_kind(StoreErrorKind::Transient)
            .kind(),
        StoreErrorKind::Transient
    );
}

/// Every result an `Applied` or `Answer` carries, built from outside the crate as a remote
/// backend must, and carried across the wire intact.
#[test]
fn results_are_constructible_outside_the_crate() {
    let held = Cost::from(usd("2"));
    let at = Timestamp::from_unix_nanos(5_000_000_000);
    let expired = ExpiredHold::new(HoldId::from_raw(4), "org/a", held, Cost::new(), at);
    assert_eq!(expired.returned(), held);
    let limit = Limit::hard(usd("10")).with_thresholds([50]);
    let crossing =
        budget_guard::ThresholdCrossing::from_figures("org", &limit, usd("5"), usd("1"), 50);
    assert_eq!(crossing.remaining(), usd("4"));
    assert_eq!(crossing.percent_used(), 50);
    let reservation = Reservation::new(HoldId::from_raw(5), held, at)
        .with_expired(vec![expired.clone()])
        .with_events(vec![crossing].into());
    assert_eq!(reservation.events.len(), 1);
    let committed = Committed::new(Cost::from(usd("1.5")), Cost::from(usd("0.5")), Cost::new())
        .with_replayed(true);
    let exceeded = budget_guard::Exceeded::new("org", usd("10"), usd("9"), usd("0.5"), usd("1"));
    assert_eq!(exceeded.remaining(), usd("0.5"));
    let check = Check::new(
        "org",
        Cost::from(usd("1")),
        Verdict::Exceeded(exceeded.clone()),
    )
    .with_limiting(vec![exceeded]);
    assert!(!check.fits());
    let balance = Balance::new("org", Unit::Usd)
        .with_limit(Some(limit))
        .with_allowance(Some(usd("10")))
        .with_spent(usd("7"))
        .with_reserved(usd("1"))
        .with_remaining(Some(usd("2")));
    assert_eq!(balance.percent_used(), Some(80));
    let info = budget_guard::NodeInfo::new("org", NodeState::Active)
        .with_balances(vec![balance.clone()])
        .with_live_holds(1);
    assert_eq!(info.balance(Unit::Usd), Some(&balance));
    let top_up = budget_guard::top_up::TopUpApplied::new(
        "org",
        usd("5"),
        usd("15"),
        usd("7"),
        budget_guard::top_up::TopUpReason::Below,
        at,
        1,
    );
    for applied in [
        Applied::Reserved(reservation.clone().with_top_ups(vec![top_up])),
        Applied::Committed(committed),
        Applied::Swept(vec![expired]),
        Applied::Balance(Box::new(balance)),
    ] {
        assert_eq!(over_the_wire(&applied), applied);
    }
    for answer in [Answer::Check(check), Answer::NodeInfo(info)] {
        assert_eq!(over_the_wire(&answer), answer);
    }
}

/// Results read off the wire are input like any other: extreme figures are answered with
/// saturated numbers, never an arithmetic overflow.
#[test]
fn extreme_figures_in_results_do_not_overflow() {
    let max = Amount::try_from_minor(i64::MAX, Unit::Usd).unwrap();
    let zero = Amount::zero(Unit::Usd);
    let exceeded = budget_guard::Exceeded::new("org", zero, max, max, usd("1"));
    assert_eq!(over_the_wire(&exceeded).remaining(), zero);
    let crossing =
        budget_guard::ThresholdCrossing::from_figures("org", &Limit::hard(zero), max, max, 100);
    let crossing = over_the_wire(&crossing);
    assert_eq!(crossing.remaining(), zero);
    assert_eq!(crossing.percent_used(), 100);
}
