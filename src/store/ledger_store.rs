//! [`LedgerStore`]: the one in-process store, generic over what it persists.
//!
//! Every in-process store is the same orchestration around the ledger's one interpreter
//! ([`Ledger::apply`] / [`Ledger::read_noting`]): decide whether the operation needs the store's time
//! (and read the clock outside the lock only then), take the lock, run the interpreter, hand
//! what happened to the [`Persist`] layer while still under the lock (so the persisted order is
//! the applied order), release the lock, and only then wait for durability (so concurrent
//! callers can share one sync). The store itself decides nothing about money, periods,
//! idempotency or top-ups: the ledger does.
//!
//! [`MemoryStore`](crate::MemoryStore) is `LedgerStore<NoPersist>`: nothing persisted, nothing
//! waited for, no cost over the bare ledger on the hot path (the persistence calls are inlined
//! no-ops).
//!
//! [`FileStore`](crate::FileStore) is `LedgerStore<FileLog>`: each command becomes one record
//! of a log replayed through the same interpreter at open (`docs/file-format.md`).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use crate::clock::{Clock, Timestamp};
use crate::cost::Cost;
use crate::error::Result;
use crate::expiry::ReserveOptions;
use crate::idempotency::{KeyRetention, OpOptions};
use crate::ids::{HoldId, NodeId};
use crate::ledger::Ledger;
use crate::op::{Answer, Applied, Op, Query};
use crate::store::{Committed, Reservation};
use crate::sync::Mutex;

/// What the ledger just ran, as handed to [`Persist::record`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum Command<'c, 'r> {
    /// A mutating operation and its result.
    Apply(&'c Op, &'r Result<Applied>),
    /// A query, its answer, and whether it may have changed the books (it rolled an ended
    /// period, or a check may have reclaimed expired holds: see [`Ledger::read_noting`]).
    Read(&'c Query, &'r Result<Answer>, bool),
}

/// What a [`LedgerStore`] does with each command the ledger ran.
///
/// [`record`](Persist::record) runs under the store's lock, right after the ledger ran the
/// command, so its order is the ledger's; it must not block on I/O. [`settle`](Persist::settle)
/// runs after the lock is released with what `record` returned, and may wait (for a sync).
pub(crate) trait Persist: Send + Sync + fmt::Debug {
    /// What `record` keeps under the store's lock (for example records not yet written).
    type Pending: Send + fmt::Debug;
    /// What `settle` waits for (for example a record's sequence number).
    type Ticket;

    /// Notes `command`, which the ledger ran at `now` (the books are `ledger` afterwards).
    /// `None`: nothing to wait for.
    ///
    /// It cannot fail: the ledger has already applied the command and other callers may
    /// already see its effect. A persistence that cannot note it must stop and report that
    /// from [`settle`](Persist::settle) (fail-stop), never pretend the command did not happen.
    fn record(
        &self,
        pending: &mut Self::Pending,
        ledger: &Ledger,
        command: Command<'_, '_>,
        now: Option<Timestamp>,
    ) -> Option<Self::Ticket>;

    /// Waits until what `record` noted is as durable as the persistence promises.
    ///
    /// # Errors
    /// A failed write or sync.
    fn settle(&self, ticket: Self::Ticket) -> Result<()>;
}

/// Persists nothing: the [`MemoryStore`](crate::MemoryStore).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct NoPersist;

impl Persist for NoPersist {
    type Pending = ();
    type Ticket = std::convert::Infallible;

    #[inline]
    fn record(
        &self,
        _: &mut (),
        _: &Ledger,
        _: Command<'_, '_>,
        _: Option<Timestamp>,
    ) -> Option<Self::Ticket> {
        None
    }

    #[inline]
    fn settle(&self, ticket: Self::Ticket) -> Result<()> {
        match ticket {}
    }
}

/// The ledger and the persistence layer's pending state, behind one lock.
#[derive(Debug)]
pub(crate) struct Books<P: Persist> {
    pub(crate) ledger: Ledger,
    pub(crate) pending: P::Pending,
}

/// The ledger behind one lock, run by its interpreter, persisted by `P`.
#[derive(Debug)]
pub(crate) struct LedgerStore<P: Persist> {
    books: Mutex<Books<P>>,
    persist: P,
    clock: Arc<dyn Clock>,
    /// The ledger's cancellation counter, read without the lock.
    epoch: Arc<AtomicU64>,
    /// Set once any limit has had a period: from then on every operation that reads or changes
    /// balances reads the clock (outside the lock) so the ledger can roll ended periods.
    periodic: AtomicBool,
    /// How long and how many idempotency keys are remembered.
    retention: KeyRetention,
    /// How many nodes track a burn rate or have a top-up rule (the ledger's counter): while
    /// zero, commit and record never read the clock (see [`crate::burn`]).
    timed: Arc<AtomicU32>,
}

impl<P: Persist> LedgerStore<P> {
    /// A store over `ledger` (empty, or recovered by the persistence layer) that reads time from
    /// `clock` and persists through `persist`.
    pub(crate) fn new(
        ledger: Ledger,
        pending: P::Pending,
        persist: P,
        clock: Arc<dyn Clock>,
    ) -> Self {
        LedgerStore {
            epoch: ledger.epoch_cell(),
            timed: ledger.timed_cell(),
            periodic: AtomicBool::new(ledger.has_periods()),
            books: Mutex::new(Books { ledger, pending }),
            persist,
            clock,
            retention: KeyRetention::DEFAULT,
        }
    }

    /// Remember idempotency keys as `retention` says.
    pub(crate) fn set_key_retention(&mut self, retention: KeyRetention) {
        self.retention = retention;
    }

    /// The store's clock.
    pub(crate) fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The ledger's cancellation counter.
    pub(crate) fn cancel_epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// The time for `needs` (an operation that cannot run without it), else for an operation
    /// that `uses` it only to roll periods and feed burn rates and top-up rules: read outside
    /// the lock, and not at all while no limit has had a period and no node tracks a burn rate
    /// or has a top-up rule (the ledger would not use it).
    #[inline]
    fn time_for(&self, needs: bool, uses: bool) -> Option<Timestamp> {
        let wanted = needs
            || (uses
                && (self.periodic.load(Ordering::Acquire)
                    || self.timed.load(Ordering::Relaxed) > 0));
        wanted.then(|| self.clock.now())
    }

    /// Runs `op` through the ledger, persists what happened, and waits as the persistence says.
    ///
    /// # Errors
    /// The ledger's error for `op`, or the persistence layer's.
    #[inline]
    pub(crate) fn apply(&self, op: &Op) -> Result<Applied> {
        // From the first periodic limit on, every operation reads the clock to roll periods.
        if op.adds_period() {
            self.periodic.store(true, Ordering::Release);
        }
        let now = self.time_for(op.needs_clock(), op.uses_clock());
        self.locked(
            now,
            |ledger| {
                let applied = ledger.apply(op, now, &self.retention);
                if matches!(op, Op::Restore { .. }) && ledger.has_periods() {
                    self.periodic.store(true, Ordering::Release);
                }
                applied
            },
            |applied| Command::Apply(op, applied),
        )
    }

    /// Answers `query` from the ledger, persisting what the read changed (rolled periods,
    /// reclaimed holds) as [`apply`](Self::apply) does.
    ///
    /// # Errors
    /// The ledger's error for `query`, or the persistence layer's.
    pub(crate) fn read(&self, query: &Query) -> Result<Answer> {
        let now = self.time_for(query.needs_clock(), query.uses_clock());
        let changed = std::cell::Cell::new(false);
        self.locked(
            now,
            |ledger| {
                let (answer, did) = ledger.read_noting(query, now);
                changed.set(did);
                answer
            },
            |answer| Command::Read(query, answer, changed.get()),
        )
    }

    /// Runs `f` on the ledger under the store's lock (a durable store's compaction, which must
    /// see the books and its pending records at one instant).
    pub(crate) fn with_ledger<T>(&self, f: impl FnOnce(&mut Ledger) -> T) -> T {
        f(&mut self.books.lock().ledger)
    }

    /// The persistence layer.
    pub(crate) fn persist(&self) -> &P {
        &self.persist
    }

    /// Runs `run` on the ledger under the lock, hands its result (as `command` describes it)
    /// to the persistence layer under the same lock, then settles outside it.
    #[inline]
    fn locked<'c, T>(
        &self,
        now: Option<Timestamp>,
        run: impl FnOnce(&mut Ledger) -> Result<T>,
        command: impl for<'r> FnOnce(&'r Result<T>) -> Command<'c, 'r>,
    ) -> Result<T> {
        let (result, ticket) = {
            let mut books = self.books.lock();
            let books = &mut *books;
            let result = run(&mut books.ledger);
            let ticket =
                self.persist
                    .record(&mut books.pending, &books.ledger, command(&result), now);
            (result, ticket)
        };
        if let Some(ticket) = ticket {
            self.persist.settle(ticket)?;
        }
        result
    }
}

/// The hot operations without an [`Op`]: a store that persists nothing has nothing to record,
/// so its typed `reserve`, `commit` and `release` run the ledger's typed entries directly
/// ([`Ledger::reserve_op`] and the others, the code [`Ledger::apply`] runs for those ops) and
/// neither build an `Op` nor move an [`Applied`] through the layers (issue 16). Same time rule
/// as [`LedgerStore::apply`]: the three ops use the time; a reserve, and a keyed commit or
/// release, need it.
impl LedgerStore<NoPersist> {
    /// [`Op::Reserve`] through [`Ledger::reserve_op`].
    ///
    /// # Errors
    /// As [`Store::reserve_with`](crate::Store::reserve_with).
    #[inline]
    pub(crate) fn reserve(
        &self,
        node: NodeId,
        cost: &Cost,
        options: &ReserveOptions,
    ) -> Result<Reservation> {
        let now = self.time_for(true, true);
        let mut books = self.books.lock();
        books.ledger.roll_periods_at(now);
        let key = options.idempotency_key.as_ref();
        (books.ledger).reserve_op(node, cost, options.ttl, key, now, &self.retention)
    }

    /// [`Op::Commit`] through [`Ledger::commit_op`].
    ///
    /// # Errors
    /// As [`Store::commit_with`](crate::Store::commit_with).
    #[inline]
    pub(crate) fn commit(
        &self,
        hold: HoldId,
        actual: &Cost,
        options: &OpOptions,
    ) -> Result<Committed> {
        let key = options.idempotency_key.as_ref();
        let now = self.time_for(key.is_some(), true);
        let mut books = self.books.lock();
        books.ledger.roll_periods_at(now);
        (books.ledger).commit_op(hold, actual, key, now, &self.retention)
    }

    /// [`Op::Release`] through [`Ledger::release_op`].
    ///
    /// # Errors
    /// As [`Store::release_with`](crate::Store::release_with).
    #[inline]
    pub(crate) fn release(&self, hold: HoldId, options: &OpOptions) -> Result<bool> {
        let key = options.idempotency_key.as_ref();
        let now = self.time_for(key.is_some(), true);
        let mut books = self.books.lock();
        books.ledger.roll_periods_at(now);
        books.ledger.release_op(hold, key, now, &self.retention)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::amount::{Amount, Unit};
    use crate::clock::ManualClock;
    use crate::cost::Cost;
    use crate::error::Error;
    use crate::policy::{Limit, Limits};

    /// Notes each command as `(name, succeeded, now)` and settles every ticket in order.
    #[derive(Debug, Default)]
    struct Recording {
        settled: parking_lot::Mutex<Vec<u64>>,
    }

    /// A command as the recording notes it.
    type Noted = (String, bool, Option<Timestamp>);

    impl Persist for Recording {
        type Pending = Vec<Noted>;
        type Ticket = u64;

        fn record(
            &self,
            pending: &mut Vec<Noted>,
            _: &Ledger,
            command: Command<'_, '_>,
            now: Option<Timestamp>,
        ) -> Option<u64> {
            let (name, ok) = match command {
                Command::Apply(op, result) => (format!("{:?}", op.kind()), result.is_ok()),
                Command::Read(query, answer, _) => (name_of(query), answer.is_ok()),
            };
            pending.push((name, ok, now));
            Some(pending.len() as u64)
        }

        fn settle(&self, ticket: u64) -> Result<()> {
            self.settled.lock().push(ticket);
            Ok(())
        }
    }

    /// The variant name of `query` (its `Debug` up to the first non-identifier character).
    fn name_of(query: &Query) -> String {
        let debug = format!("{query:?}");
        debug
            .split(|c: char| !c.is_alphanumeric())
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    fn usd(text: &str) -> Amount {
        Amount::usd(text).unwrap()
    }

    #[test]
    fn every_command_reaches_the_persistence_in_applied_order_with_its_time_and_is_settled() {
        let t0 = Timestamp::from_unix_nanos(5_000);
        let store = LedgerStore::new(
            Ledger::new(),
            Vec::new(),
            Recording::default(),
            Arc::new(ManualClock::new(t0)),
        );
        let create = Op::CreateNode {
            parent: None,
            name: "acme".into(),
            limits: Limits::from(Limit::hard(usd("10"))),
        };
        let node = store.apply(&create).unwrap().into_node().unwrap();
        let reserve = |amount: &str| Op::Reserve {
            node,
            cost: Cost::from(usd(amount)),
            ttl: Duration::from_secs(60),
            idempotency_key: None,
        };
        let hold = store
            .apply(&reserve("4"))
            .unwrap()
            .into_reservation()
            .unwrap();
        let commit = Op::Commit {
            hold: hold.hold,
            actual: Cost::from(usd("3")),
            idempotency_key: None,
        };
        store.apply(&commit).unwrap();
        // $3 spent, $7 left: a $20 reserve is refused, and the refusal is noted too.
        assert!(matches!(
            store.apply(&reserve("20")),
            Err(Error::BudgetExceeded { .. })
        ));
        let balance = Query::Balance {
            node,
            unit: Unit::Usd,
        };
        let answer = store.read(&balance).unwrap().into_balance().unwrap();
        assert_eq!(answer.spent, usd("3"));
        assert_eq!(answer.reserved, usd("0"));

        let noted = store.books.lock().pending.clone();
        let expected: Vec<Noted> = vec![
            ("CreateNode".into(), true, None),
            ("Reserve".into(), true, Some(t0)),
            ("Commit".into(), true, None),
            ("Reserve".into(), false, Some(t0)),
            ("Balance".into(), true, None),
        ];
        assert_eq!(noted, expected);
        assert_eq!(*store.persist.settled.lock(), vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn a_periodic_limit_makes_every_later_command_carry_the_time() {
        let t0 = Timestamp::from_unix_nanos(7_000);
        let clock = ManualClock::new(t0);
        let store = LedgerStore::new(
            Ledger::new(),
            Vec::new(),
            Recording::default(),
            Arc::new(clock.clone()),
        );
        let daily = Limit::hard(usd("10")).per(crate::period::Period::daily());
        let create = Op::CreateNode {
            parent: None,
            name: "acme".into(),
            limits: Limits::from(daily),
        };
        let node = store.apply(&create).unwrap().into_node().unwrap();
        clock.advance(Duration::from_secs(1));
        let credit = Op::Credit {
            node,
            amount: usd("1"),
            idempotency_key: None,
        };
        store.apply(&credit).unwrap();
        let times: Vec<Option<Timestamp>> = store
            .books
            .lock()
            .pending
            .iter()
            .map(|noted| noted.2)
            .collect();
        let t1 = Timestamp::from_unix_nanos(7_000 + 1_000_000_000);
        assert_eq!(times, vec![Some(t0), Some(t1)]);
    }

    #[test]
    fn a_check_that_reclaims_an_expired_hold_reaches_the_persistence_with_its_time() {
        let t0 = Timestamp::from_unix_nanos(0);
        let clock = ManualClock::new(t0);
        let store = LedgerStore::new(
            Ledger::new(),
            Vec::new(),
            Recording::default(),
            Arc::new(clock.clone()),
        );
        let create = Op::CreateNode {
            parent: None,
            name: "acme".into(),
            limits: Limits::from(Limit::hard(usd("10"))),
        };
        let node = store.apply(&create).unwrap().into_node().unwrap();
        let reserve = Op::Reserve {
            node,
            cost: Cost::from(usd("6")),
            ttl: Duration::from_secs(1),
            idempotency_key: None,
        };
        store.apply(&reserve).unwrap();
        clock.advance(Duration::from_secs(2));
        let check = Query::Check {
            node,
            cost: Cost::from(usd("9")),
        };
        // The expired $6 hold is reclaimed by the check itself, so $9 fits: the read changed
        // the books, and a durable store must be told.
        let answer = store.read(&check).unwrap().into_check().unwrap();
        assert_eq!(answer.expired.len(), 1);
        let t2 = Timestamp::from_unix_nanos(2_000_000_000);
        let last = store.books.lock().pending.last().cloned();
        assert_eq!(last, Some(("Check".to_owned(), true, Some(t2))));
        let balance = Query::Balance {
            node,
            unit: Unit::Usd,
        };
        let balance = store.read(&balance).unwrap().into_balance().unwrap();
        assert_eq!(balance.reserved, usd("0"));
    }
}
