//! The ledger authority: the [`Store`] trait every backend implements, and what its operations
//! return.
//!
//! A `Store` owns the books of one or more budget trees and applies each operation
//! ([`Op`](crate::Op)) atomically wherever the books live: behind a mutex
//! ([`MemoryStore`](crate::MemoryStore)), in a file, or inside a server-side script. In-process
//! stores run the crate's one interpreter of the money rules; a remote store must agree with it
//! on the conformance suite.

pub(crate) mod file;
mod forward;
pub(crate) mod ledger_store;
pub(crate) mod memory;
#[cfg(feature = "redis")]
pub(crate) mod redis;
mod results;

use std::fmt;
use std::time::Duration;

use crate::amount::{Amount, Unit};
use crate::balance::{Balance, NodeInfo, Snapshot};
use crate::burn::BurnWindow;
use crate::cancel::Cancellation;
use crate::check::Check;
use crate::clock::Timestamp;
use crate::cost::Cost;
use crate::error::Result;
use crate::expiry::{ExpiredHold, ReserveOptions};
use crate::idempotency::OpOptions;
use crate::ids::{HoldId, NodeId};
use crate::node_state::NodeState;
use crate::op::{Answer, Applied, Op, OpKind, Query};
use crate::policy::{Limit, Limits};
use crate::rate::RateLimit;
use crate::top_up::TopUp;

pub use self::results::{Committed, Reservation};

/// The ledger authority of one or more budget trees.
///
/// # Contract
///
/// Implementations must uphold, for every operation and under any interleaving of callers
/// (threads, processes or machines):
///
/// 1. **Atomicity.** An operation either applies its whole effect or returns an error and
///    changes nothing. A reserve holds on the node *and every ancestor* or on none. The one
///    exception is [`commit`](Store::commit) returning
///    [`Error::OverageRejected`](crate::Error::OverageRejected): the spend is recorded and the
///    error reports the overage (money spent must not vanish from the books).
/// 2. **Hard limits.** On every node and unit with a hard limit, `spent + reserved <= limit` at
///    every instant; overruns appear only as `debt`.
/// 3. **Conservation.** Each hold ends exactly once (commit, release, or reclaim after its
///    deadline). After it ends, its outstanding amount is no longer reserved anywhere on its path.
///    A hold is never reclaimed before its deadline, and one past it is reclaimed at the latest
///    when a reserve would otherwise be denied or at the next [`sweep`](Store::sweep): a crashed
///    caller's hold is never lost forever.
/// 4. **Idempotent release.** Releasing a hold that already ended returns `Ok(false)` and changes
///    nothing, because guards release on drop and a drop may race a commit.
/// 5. **No user code under a lock.** A store calls back into nothing: events and callbacks are
///    delivered by the caller after the operation returns.
/// 6. **Validation.** Bad input (zero or mismatched amounts, unknown node or hold, invalid names)
///    is a typed error that changes nothing.
/// 7. **Idempotency keys.** A key in [`ReserveOptions::idempotency_key`] or
///    [`OpOptions::idempotency_key`] is looked up, and remembered after an operation that
///    changed the books, in the same atomic step as the operation: among any number of
///    concurrent callers with one key and one request, exactly one applies it and all get its
///    result (see [`crate::idempotency`]). A store that persists its books persists its keys.
///
/// The crate's conformance suite (`budget_guard::conformance`, feature `conformance`) checks these
/// rules against any implementation; run it for yours.
///
/// # Holds and crashes
///
/// A reservation is a resource held *between* calls. Whoever obtains a [`HoldId`] must end it with
/// `commit` or `release`; [`Guard`](crate::Guard) does this on drop. Holds of callers that died
/// are reclaimed once their deadline passes (see [`crate::expiry`]). Stores read time only
/// through a [`Clock`](crate::Clock): at most once per operation, and on commit only once some
/// limit has a period or when the commit carries an idempotency key (for the key's retention).
///
/// # Periods
///
/// A [`Limit`] with a [`Period`](crate::period::Period) resets at its boundaries: every operation
/// that reads or changes balances first rolls the periods that ended at the store's `now` (spend
/// back to zero, live holds still reserved, debt kept, the [`Rollover`](crate::period::Rollover)
/// applied), so no thread is needed. See [`crate::period`]; the conformance suite checks it.
///
/// # Implementing a store
///
/// A store implements two methods: [`apply`](Store::apply), which runs one [`Op`] (a change to
/// the books) atomically and returns its [`Applied`] result, and [`read`](Store::read), which
/// answers one [`Query`]. Every typed method below (`reserve`, `commit`, `balance`, ...) is
/// provided: it builds the `Op` or `Query` and takes the expected variant out of the result, so
/// callers and [`Budget`](crate::Budget) never need to know. A store that keeps the books in
/// process runs the crate's one interpreter (as [`MemoryStore`](crate::MemoryStore) does); a
/// remote store sends the operation to where the books live. A store that cannot do some
/// operation says so in [`supports`](Store::supports) and returns
/// [`Error::Unsupported`](crate::Error::Unsupported) for it. Optional hooks:
/// [`now`](Store::now) (the store's clock) and [`cancel_epoch`](Store::cancel_epoch) (a cheap
/// cancellation counter). Overriding a typed method is allowed (for speed) but it must mean
/// exactly what `apply` means. See `docs/architecture.md` and `tests/wire_store.rs` for a
/// complete store outside the crate.
///
/// The trait is object-safe; [`Budget`](crate::Budget) uses it as `Arc<dyn Store>`.
pub trait Store: Send + Sync + fmt::Debug + 'static {
    /// Applies one change to the books, atomically, and returns its result: the [`Applied`]
    /// variant each [`Op`] variant documents. The rules, and the errors, of each operation are
    /// those of the typed method of the same name (see [`Op`]).
    ///
    /// # Errors
    /// As the typed method of the operation; [`Unsupported`](crate::Error::Unsupported) for an
    /// operation the store does not [`support`](Store::supports) (nothing changes);
    /// [`Store`](crate::Error::Store) for a backend failure, whose
    /// [`kind`](crate::StoreError::kind) says whether the operation may have happened.
    fn apply(&self, op: &Op) -> Result<Applied>;

    /// Answers one read of the books: the [`Answer`] variant each [`Query`] variant documents.
    ///
    /// # Errors
    /// As the typed method of the query; [`Store`](crate::Error::Store) for a backend failure.
    fn read(&self, query: &Query) -> Result<Answer>;

    /// Whether the store implements operations of `kind`; an unsupported operation returns
    /// [`Error::Unsupported`](crate::Error::Unsupported). Provided: every operation is
    /// supported.
    fn supports(&self, kind: OpKind) -> bool {
        let _ = kind;
        true
    }

    /// Checks, changing nothing, that this store can keep `limits` on a node: the refusals of
    /// [`create_node`](Store::create_node) that depend on the store rather than on the limits
    /// alone (a store that cannot enforce a kind of limit exactly refuses it here). Builders
    /// call it for every node before they create any, so a tree the store refuses is not left
    /// half built. Provided: accepts everything (the ledger's own checks run at creation).
    ///
    /// # Errors
    /// What `create_node` would return for these limits on this store, for example
    /// [`Unsupported`](crate::Error::Unsupported).
    fn validate_limits(&self, limits: &Limits) -> Result<()> {
        let _ = limits;
        Ok(())
    }

    /// Creates a node named `name` under `parent` (`None` creates a root) with `limits`.
    ///
    /// # Errors
    /// [`UnknownNode`](crate::Error::UnknownNode) for a stale parent,
    /// [`InvalidName`](crate::Error::InvalidName), [`DuplicateNode`](crate::Error::DuplicateNode),
    /// [`DuplicateLimit`](crate::Error::DuplicateLimit), and
    /// [`UnitMismatch`](crate::Error::UnitMismatch) for an overdraft in another unit.
    fn create_node(&self, parent: Option<NodeId>, name: &str, limits: &Limits) -> Result<NodeId> {
        let op = Op::CreateNode {
            parent,
            name: name.to_owned(),
            limits: limits.clone(),
        };
        self.apply(&op)?.into_node()
    }

    /// Removes a node that has no children and no live holds. Its spend stays counted in its
    /// ancestors.
    ///
    /// # Errors
    /// [`UnknownNode`](crate::Error::UnknownNode), [`NodeInUse`](crate::Error::NodeInUse),
    /// [`RootRemoval`](crate::Error::RootRemoval).
    fn remove_node(&self, node: NodeId) -> Result<()> {
        self.apply(&Op::RemoveNode { node })?.into_removed()
    }

    /// The id of the node at `path` (`acme/support/agent-7`).
    ///
    /// # Errors
    /// [`UnknownNode`](crate::Error::UnknownNode).
    fn resolve(&self, path: &str) -> Result<NodeId> {
        let query = Query::Resolve {
            path: path.to_owned(),
        };
        self.read(&query)?.into_node()
    }

    /// The store's time: what its [`Clock`](crate::Clock) reads now. [`Budget`](crate::Budget)
    /// stamps events with it, so a store on a [`ManualClock`](crate::ManualClock) gives events
    /// the manual time. Provided: the [`SystemClock`](crate::SystemClock), for stores that
    /// keep no clock.
    fn now(&self) -> Timestamp {
        crate::clock::Clock::now(&crate::clock::SystemClock)
    }

    /// Holds `cost` on `node` and every ancestor, atomically, with the default
    /// [`ReserveOptions`] (a 60 s TTL). Provided: calls [`reserve_with`](Store::reserve_with).
    ///
    /// # Errors
    /// As [`reserve_with`](Store::reserve_with).
    fn reserve(&self, node: NodeId, cost: &Cost) -> Result<Reservation> {
        self.reserve_with(node, cost, &ReserveOptions::DEFAULT)
    }

    /// Holds `cost` on `node` and every ancestor, atomically, until the store's clock passes
    /// `now + options.ttl` (the clock is read once). A reserve that would be denied first
    /// reclaims every hold past its deadline, then checks again; the reclaimed holds are reported
    /// in [`Reservation::expired`] (or by the next sweep if the reserve is still denied).
    ///
    /// # Errors
    /// [`BudgetExceeded`](crate::Error::BudgetExceeded) naming the limiting node,
    /// [`InDebt`](crate::Error::InDebt),
    /// [`InvalidAmount`](crate::Error::InvalidAmount) for an empty or zero cost,
    /// [`InvalidDuration`](crate::Error::InvalidDuration) for a zero TTL,
    /// [`Overflow`](crate::Error::Overflow), [`UnknownNode`](crate::Error::UnknownNode);
    /// [`IdempotencyMismatch`](crate::Error::IdempotencyMismatch) if
    /// [`options.idempotency_key`](ReserveOptions::idempotency_key) was used for another
    /// request. A retry with the same key and request returns the first reservation
    /// ([`Reservation::replayed`]) and holds nothing more.
    #[inline]
    fn reserve_with(
        &self,
        node: NodeId,
        cost: &Cost,
        options: &ReserveOptions,
    ) -> Result<Reservation> {
        let op = Op::Reserve {
            node,
            cost: *cost,
            ttl: options.ttl,
            idempotency_key: options.idempotency_key.clone(),
        };
        self.apply(&op).and_then(Applied::into_reservation)
    }

    /// The dry run of [`reserve`](Store::reserve): what a reserve of `cost` on `node` would do
    /// now, by the same rules, holding nothing. Like a reserve, a check that a hard limit would
    /// deny first reclaims holds past their deadline (allowed at any time after it; reported in
    /// [`Check::expired`]). Refusals are verdicts ([`Check::verdict`]), not errors.
    ///
    /// # Errors
    /// [`InvalidAmount`](crate::Error::InvalidAmount) for an empty or zero cost,
    /// [`Overflow`](crate::Error::Overflow), [`UnknownNode`](crate::Error::UnknownNode).
    fn check(&self, node: NodeId, cost: &Cost) -> Result<Check> {
        self.read(&Query::Check { node, cost: *cost })?.into_check()
    }

    /// Holds as much as the path has room for, at least `min` and at most `max` (one unit), with
    /// the default [`ReserveOptions`]. Provided: calls
    /// [`reserve_up_to_with`](Store::reserve_up_to_with).
    ///
    /// # Errors
    /// As [`reserve_up_to_with`](Store::reserve_up_to_with).
    fn reserve_up_to(&self, node: NodeId, min: Amount, max: Amount) -> Result<Reservation> {
        self.reserve_up_to_with(node, min, max, &ReserveOptions::DEFAULT)
    }

    /// As [`reserve_up_to`](Store::reserve_up_to), with a deadline as in
    /// [`reserve_with`](Store::reserve_with); expired holds are reclaimed when not even `min`
    /// fits.
    ///
    /// # Errors
    /// As [`reserve_with`](Store::reserve_with) when not even `min` fits; `InvalidAmount` when
    /// `min > max`.
    fn reserve_up_to_with(
        &self,
        node: NodeId,
        min: Amount,
        max: Amount,
        options: &ReserveOptions,
    ) -> Result<Reservation> {
        let op = Op::ReserveUpTo {
            node,
            min,
            max,
            ttl: options.ttl,
            idempotency_key: options.idempotency_key.clone(),
        };
        self.apply(&op).and_then(Applied::into_reservation)
    }

    /// The heartbeat: moves a live hold's deadline to the store's `now + ttl` (earlier or later)
    /// and returns it. A hold past its deadline that was not reclaimed yet is still live and is
    /// extended.
    ///
    /// # Errors
    /// [`ReservationExpired`](crate::Error::ReservationExpired) if the hold was reclaimed,
    /// [`UnknownHold`](crate::Error::UnknownHold) if it ended otherwise,
    /// [`InvalidDuration`](crate::Error::InvalidDuration) for a zero `ttl`. Nothing changes.
    fn extend(&self, hold: HoldId, ttl: Duration) -> Result<Timestamp> {
        self.apply(&Op::Extend { hold, ttl })?.into_extended()
    }

    /// Reclaims every hold whose deadline has passed (its outstanding part returns to the budget
    /// on the whole path; recorded spend stays spent) and returns every reclaimed hold not
    /// reported before, including those reclaimed by denied reserves. Each reclaimed hold is
    /// reported exactly once, here or in [`Reservation::expired`].
    ///
    /// # Errors
    /// Only store failures.
    fn sweep(&self) -> Result<Vec<ExpiredHold>> {
        self.apply(&Op::Sweep)?.into_swept()
    }

    /// Moves `partial` of a live hold into spent (streaming). A partial spend past the hold grows
    /// the hold if every node has room; otherwise nothing is recorded.
    ///
    /// # Errors
    /// [`BudgetExceeded`](crate::Error::BudgetExceeded) (nothing recorded),
    /// [`ReservationExpired`](crate::Error::ReservationExpired) for a reclaimed hold,
    /// [`UnknownHold`](crate::Error::UnknownHold), [`UnitMismatch`](crate::Error::UnitMismatch).
    fn record(&self, hold: HoldId, partial: &Cost) -> Result<()> {
        let op = Op::Record {
            hold,
            partial: *partial,
        };
        self.apply(&op)?.into_recorded()
    }

    /// Ends a hold with its *total* actual cost, returning the unused rest. A hold past its
    /// deadline but not reclaimed commits normally; a reclaimed hold's spend is recorded without
    /// a hold where the limits allow ([`Committed::expired`], see [`crate::expiry`]).
    ///
    /// # Errors
    /// [`ReservationExpired`](crate::Error::ReservationExpired): the hold was reclaimed and its
    /// spend does not fit (nothing recorded);
    /// [`OverageRejected`](crate::Error::OverageRejected) (hold ended, spend recorded);
    /// [`UnknownHold`](crate::Error::UnknownHold), [`UnitMismatch`](crate::Error::UnitMismatch),
    /// [`InvalidAmount`](crate::Error::InvalidAmount) below the recorded spend, and
    /// [`Overflow`](crate::Error::Overflow) (hold unchanged and still live).
    #[inline]
    fn commit(&self, hold: HoldId, actual: &Cost) -> Result<Committed> {
        let op = Op::Commit {
            hold,
            actual: *actual,
            idempotency_key: None,
        };
        self.apply(&op).and_then(Applied::into_committed)
    }

    /// Ends a hold without spending its outstanding part. `Ok(false)` if it had already ended.
    ///
    /// # Errors
    /// Only store failures ([`Store`](crate::Error::Store)).
    fn release(&self, hold: HoldId) -> Result<bool> {
        let op = Op::Release {
            hold,
            idempotency_key: None,
        };
        self.apply(&op).and_then(Applied::into_released)
    }

    /// [`commit`](Store::commit) with [`OpOptions`]. Without an idempotency key it is exactly
    /// `commit`. With one, the key is checked and remembered in the same atomic step as the
    /// commit (see [`crate::idempotency`]): a retry with the same key and the same hold and
    /// actual cost returns the first result ([`Committed::replayed`] set, or the first
    /// [`OverageRejected`](crate::Error::OverageRejected)) and records nothing; the store reads
    /// its clock once for the key's retention.
    ///
    /// # Errors
    /// As [`commit`](Store::commit);
    /// [`IdempotencyMismatch`](crate::Error::IdempotencyMismatch) if the key was used for
    /// another request (nothing changes).
    fn commit_with(&self, hold: HoldId, actual: &Cost, options: &OpOptions) -> Result<Committed> {
        let op = Op::Commit {
            hold,
            actual: *actual,
            idempotency_key: options.idempotency_key.clone(),
        };
        self.apply(&op).and_then(Applied::into_committed)
    }

    /// [`release`](Store::release) with [`OpOptions`]; a retry with the same key and hold
    /// returns the first answer (see [`crate::idempotency`]).
    ///
    /// # Errors
    /// [`IdempotencyMismatch`](crate::Error::IdempotencyMismatch) if the key was used for
    /// another request; otherwise only store failures.
    fn release_with(&self, hold: HoldId, options: &OpOptions) -> Result<bool> {
        let op = Op::Release {
            hold,
            idempotency_key: options.idempotency_key.clone(),
        };
        self.apply(&op).and_then(Applied::into_released)
    }

    /// A counter that must change (it may change more often) whenever the answer of
    /// [`cancellation`](Store::cancellation) may have changed for some live hold: a node state
    /// changed, a hold was reclaimed, an overage was recorded, a limit changed, or spend reached a
    /// hard limit. [`Guard::is_cancelled`](crate::Guard::is_cancelled) compares it and asks
    /// `cancellation` only when it moved, so the check usually costs one atomic load.
    ///
    /// The provided implementation returns `None`: no counter, guards ask every time.
    fn cancel_epoch(&self) -> Option<u64> {
        None
    }

    /// Why the work of hold `hold` should stop, if it should (see [`Cancellation`]): a frozen or
    /// closed node on its path (the nearest one), the hold reclaimed by expiry
    /// ([`Cancellation::Expired`], while remembered), a hard limit on its path in one of its
    /// units used up by spend or a node there in debt ([`Cancellation::Exhausted`]), or the hold
    /// ended otherwise ([`Cancellation::Ended`]). Changes nothing.
    ///
    /// # Errors
    /// Only store failures.
    fn cancellation(&self, hold: HoldId) -> Result<Option<Cancellation>> {
        self.read(&Query::Cancellation { hold })?
            .into_cancellation()
    }

    /// Sets a node's [`NodeState`] and returns the previous one. Frozen and closed apply to the
    /// whole subtree: every later reserve on the node or below it fails with
    /// [`Frozen`](crate::Error::Frozen) or [`Closed`](crate::Error::Closed) naming the node;
    /// live holds keep committing and releasing (see [`NodeState`]).
    ///
    /// # Errors
    /// [`UnknownNode`](crate::Error::UnknownNode).
    fn set_state(&self, node: NodeId, state: NodeState) -> Result<NodeState> {
        self.apply(&Op::SetState { node, state })?.into_state()
    }

    /// Sets (`Some`) or removes (`None`) the node's request rate limit and returns the previous
    /// one. Every later reserve on the node or below it must then fit the rate limit *and* the
    /// budget in one atomic step: a reserve denied by either takes neither money nor a rate slot
    /// ([`RateLimited`](crate::Error::RateLimited) carries the exact `retry_after`; see
    /// [`crate::rate`]). The configuration is part of the books ([`Snapshot`]); recent request
    /// times need not survive a restore.
    ///
    /// # Errors
    /// [`UnknownNode`](crate::Error::UnknownNode),
    /// [`InvalidRateLimit`](crate::Error::InvalidRateLimit).
    fn set_rate_limit(&self, node: NodeId, limit: Option<RateLimit>) -> Result<Option<RateLimit>> {
        self.apply(&Op::SetRateLimit { node, limit })?
            .into_rate_limit()
    }

    /// Starts (`Some`) or stops (`None`) measuring the node's burn rate over a sliding window
    /// and returns the previous window (see [`crate::burn`]). While any node tracks a burn rate
    /// or has a top-up rule, the store passes its clock's time to commit and record, and feeds
    /// every spend on the path into the tracking nodes' buckets; balances then carry
    /// [`Balance::burn_rate`] and [`Balance::depletes_at`]. The window is part of the books
    /// ([`Snapshot`]); the measured spend need not survive a restore.
    ///
    /// # Errors
    /// [`UnknownNode`](crate::Error::UnknownNode),
    /// [`InvalidBurnWindow`](crate::Error::InvalidBurnWindow). Nothing changes on error.
    fn set_burn_window(
        &self,
        node: NodeId,
        window: Option<BurnWindow>,
    ) -> Result<Option<BurnWindow>> {
        self.apply(&Op::SetBurnWindow { node, window })?
            .into_burn_window()
    }

    /// Sets (`Some`, with fresh counters) or removes (`None`) the node's auto top-up rule and
    /// returns the previous rule. The store evaluates the rule inside every reserve, record and
    /// commit on the node or below it, under the same atomic step, and applies each top-up as a
    /// [`credit`](Store::credit) of the rule's amount, at most once per crossing (see
    /// [`crate::top_up`]). The rule, its counters and whether it is armed are part of the books
    /// ([`Snapshot`]) and must survive a restore.
    ///
    /// # Errors
    /// As [`TopUp::validate`]; [`UnitNotBudgeted`](crate::Error::UnitNotBudgeted) without a
    /// limit in the rule's unit; [`InvalidTopUp`](crate::Error::InvalidTopUp) for a predictive
    /// rule on a node without a burn window; [`UnknownNode`](crate::Error::UnknownNode).
    /// Nothing changes on error.
    fn set_top_up(&self, node: NodeId, rule: Option<TopUp>) -> Result<Option<TopUp>> {
        self.apply(&Op::SetTopUp { node, rule })?.into_top_up()
    }

    /// Sets or replaces the node's limit in `limit.unit()`. A raised limit repays debt first.
    ///
    /// # Errors
    /// [`LimitBelowUsage`](crate::Error::LimitBelowUsage) for a hard limit below
    /// `spent + reserved`; [`UnknownNode`](crate::Error::UnknownNode);
    /// [`UnitMismatch`](crate::Error::UnitMismatch) for an overdraft in another unit.
    fn set_limit(&self, node: NodeId, limit: Limit) -> Result<Balance> {
        self.apply(&Op::SetLimit { node, limit })?.into_balance()
    }

    /// Removes the node's limit in `unit`; the node keeps tracking that unit.
    ///
    /// # Errors
    /// [`UnknownNode`](crate::Error::UnknownNode).
    fn remove_limit(&self, node: NodeId, unit: Unit) -> Result<Balance> {
        self.apply(&Op::RemoveLimit { node, unit })?.into_balance()
    }

    /// Adds funds to a node: raises its limit by `amount`, repaying debt first.
    ///
    /// # Errors
    /// [`UnitNotBudgeted`](crate::Error::UnitNotBudgeted) without a limit in that unit,
    /// [`InvalidAmount`](crate::Error::InvalidAmount) for zero,
    /// [`Overflow`](crate::Error::Overflow).
    fn credit(&self, node: NodeId, amount: Amount) -> Result<Balance> {
        self.credit_with(node, amount, &OpOptions::new())
    }

    /// Takes funds from a node: lowers its limit by `amount`.
    ///
    /// # Errors
    /// [`LimitBelowUsage`](crate::Error::LimitBelowUsage) if that would leave less than is spent
    /// and held; otherwise as [`credit`](Store::credit).
    fn debit(&self, node: NodeId, amount: Amount) -> Result<Balance> {
        self.debit_with(node, amount, &OpOptions::new())
    }

    /// [`credit`](Store::credit) with [`OpOptions`]; a retry with the same key, node and
    /// amount credits nothing and returns the node's balance now (see
    /// [`crate::idempotency`]).
    ///
    /// # Errors
    /// As [`credit`](Store::credit);
    /// [`IdempotencyMismatch`](crate::Error::IdempotencyMismatch) if the key was used for
    /// another request.
    fn credit_with(&self, node: NodeId, amount: Amount, options: &OpOptions) -> Result<Balance> {
        let op = Op::Credit {
            node,
            amount,
            idempotency_key: options.idempotency_key.clone(),
        };
        self.apply(&op)?.into_balance()
    }

    /// [`debit`](Store::debit) with [`OpOptions`]; a retry with the same key, node and amount
    /// debits nothing and returns the node's balance now (see [`crate::idempotency`]).
    ///
    /// # Errors
    /// As [`debit`](Store::debit);
    /// [`IdempotencyMismatch`](crate::Error::IdempotencyMismatch) if the key was used for
    /// another request.
    fn debit_with(&self, node: NodeId, amount: Amount, options: &OpOptions) -> Result<Balance> {
        let op = Op::Debit {
            node,
            amount,
            idempotency_key: options.idempotency_key.clone(),
        };
        self.apply(&op)?.into_balance()
    }

    /// The node's balance in `unit`.
    ///
    /// # Errors
    /// [`UnknownNode`](crate::Error::UnknownNode).
    fn balance(&self, node: NodeId, unit: Unit) -> Result<Balance> {
        self.read(&Query::Balance { node, unit })?.into_balance()
    }

    /// The node's path, parent, children and balances.
    ///
    /// # Errors
    /// [`UnknownNode`](crate::Error::UnknownNode).
    fn node_info(&self, node: NodeId) -> Result<NodeInfo> {
        self.read(&Query::NodeInfo { node })?.into_node_info()
    }

    /// The complete state, consistent at one instant.
    ///
    /// # Errors
    /// Only store failures.
    fn snapshot(&self) -> Result<Snapshot> {
        self.read(&Query::Snapshot)?
            .into_snapshot()
            .map(|snapshot| *snapshot)
    }

    /// Replaces the complete state with `snapshot`, after checking it. Node ids handed out
    /// before are invalidated (paths stay valid); hold ids are kept.
    ///
    /// # Errors
    /// [`InvalidSnapshot`](crate::Error::InvalidSnapshot) for an inconsistent snapshot, or one
    /// naming a hold index at or above [`MAX_LIVE_HOLDS`](crate::MAX_LIVE_HOLDS) (refused before
    /// anything is allocated); [`TooLarge`](crate::Error::TooLarge) from a store that cannot
    /// write that much state (a [`FileStore`](crate::FileStore) past its record limit). The store
    /// is left unchanged.
    fn restore(&self, snapshot: &Snapshot) -> Result<()> {
        let op = Op::Restore {
            snapshot: Box::new(snapshot.clone()),
        };
        self.apply(&op)?.into_restored()
    }
}
