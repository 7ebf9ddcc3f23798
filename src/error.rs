//! The crate's error type. Every variant carries what a caller needs to act on it: the node path,
//! the unit, the limit and the amounts involved.

use std::fmt;
use std::sync::Arc;

use crate::amount::{Amount, Unit};
use crate::clock::Timestamp;
use crate::ids::HoldId;

mod exceeded;
mod store_error;

pub use self::exceeded::Exceeded;
pub use self::store_error::{StoreError, StoreErrorKind};

/// Why text or a number could not become an [`Amount`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AmountError {
    /// The value is below zero.
    Negative,
    /// The operation needs an amount above zero (a reserve of nothing is a bug in the caller).
    Zero,
    /// The value has more decimal places than the unit can hold exactly.
    TooPrecise {
        /// The unit asked for.
        unit: Unit,
        /// The places it holds.
        decimal_places: u32,
    },
    /// The text is not a decimal number.
    NotANumber,
    /// The text names no known unit.
    UnknownUnit,
    /// The text has a number but no unit (`"12"` instead of `"$12"` or `"12 tokens"`).
    MissingUnit,
    /// A range whose minimum is above its maximum.
    EmptyRange,
    /// A commit's actual cost is below what [`Guard::record`](crate::Guard::record) already
    /// recorded as spent on the same hold (commit takes the *total* actual cost).
    BelowRecorded {
        /// What was already recorded, in minor units.
        recorded_minor: i64,
    },
}

impl fmt::Display for AmountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AmountError::Negative => f.write_str("amounts cannot be negative"),
            AmountError::Zero => f.write_str("the amount must be above zero"),
            AmountError::TooPrecise {
                unit,
                decimal_places,
            } => write!(
                f,
                "{unit} holds at most {decimal_places} decimal places (round up with Amount::rounded_up)"
            ),
            AmountError::NotANumber => f.write_str("not a decimal number"),
            AmountError::UnknownUnit => {
                f.write_str("unknown unit (expected usd, tokens or requests)")
            }
            AmountError::MissingUnit => {
                f.write_str("missing unit (write \"$1.50\", \"1.50 usd\" or \"300 tokens\")")
            }
            AmountError::EmptyRange => f.write_str("the minimum is above the maximum"),
            AmountError::BelowRecorded { recorded_minor } => write!(
                f,
                "below the {recorded_minor} minor units already recorded on this hold (commit takes the total cost)"
            ),
        }
    }
}

/// Everything that can go wrong. Variants may be added, so match with a wildcard arm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A hard limit on the path would be exceeded; nothing was held.
    #[error(
        "budget exceeded at {}{}: requested {}, but limit {} has {} spent and {} reserved ({} remaining)",
        .0.node, .0.period.map(|period| format!(" ({period} limit)")).unwrap_or_default(),
        .0.requested, .0.limit, .0.spent, .0.reserved, .0.remaining()
    )]
    BudgetExceeded(Box<Exceeded>),

    /// A node on the path owes money (an overage recorded as debt) and refuses new holds until a
    /// credit repays it.
    #[error("{node} is in debt by {debt}; credit it before reserving again")]
    InDebt {
        /// The indebted node.
        node: Arc<str>,
        /// What it owes.
        debt: Amount,
    },

    /// An amount was negative, zero where it must not be, too precise, or not a number.
    #[error("invalid amount {input:?}: {reason}")]
    InvalidAmount {
        /// The offending input, as given.
        input: String,
        /// What is wrong with it.
        reason: AmountError,
    },

    /// Arithmetic would leave the range of `i64` minor units.
    #[error("overflow while trying to {operation}")]
    Overflow {
        /// What was being computed.
        operation: &'static str,
    },

    /// Two different units met where one was expected.
    #[error("unit mismatch in {context}: expected {expected}, found {found}")]
    UnitMismatch {
        /// The unit in force (of the hold, the limit, ...).
        expected: Unit,
        /// The unit given.
        found: Unit,
        /// Where it happened.
        context: &'static str,
    },

    /// The node has no limit in this unit, so an operation on its limit (a credit, a debit,
    /// an auto top-up rule) has nothing to change. Reserves, commits and records never return
    /// it: every unit is ledgered, limited or not.
    #[error("{node} has no limit in {unit} to change; set a {unit} limit first")]
    UnitNotBudgeted {
        /// The reserving node.
        node: Arc<str>,
        /// The unit asked for.
        unit: Unit,
    },

    /// No node has this path (it never existed or was removed).
    #[error("no budget node at {path:?}")]
    UnknownNode {
        /// The path looked up.
        path: String,
    },

    /// A node with this path already exists.
    #[error("a budget node already exists at {path:?}")]
    DuplicateNode {
        /// The path in use.
        path: String,
    },

    /// A node name is empty, contains `/`, or is otherwise unusable.
    #[error("invalid node name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A node cannot be removed while it has children or live holds.
    #[error("cannot remove {node}: it has {children} children and {holds} live holds")]
    NodeInUse {
        /// The node.
        node: Arc<str>,
        /// Child count.
        children: usize,
        /// Live holds on it.
        holds: usize,
    },

    /// A node was given two limits in the same unit and the same period.
    #[error("{node}: two limits in {unit} of the same period; give each period one limit")]
    DuplicateLimit {
        /// The node's path.
        node: String,
        /// The unit given twice.
        unit: Unit,
    },

    /// A snapshot handed to [`Store::restore`](crate::Store::restore) is not self-consistent
    /// (an orphan node, a hold on an unknown node, reserved totals that do not match the holds).
    #[error("invalid snapshot: {reason}")]
    InvalidSnapshot {
        /// What is inconsistent.
        reason: String,
    },

    /// A threshold level is unusable (0 %, above 1000 %, or more than eight levels on one limit).
    #[error("invalid threshold level {level}: {reason}")]
    InvalidThreshold {
        /// The offending level in percent (or the number of levels given, when too many).
        level: u32,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// No tier of a [`Ladder`](crate::Ladder) may be used: every tier's rule excludes it (or
    /// the ladder is empty). When a tier was tried and denied, that denial is returned instead.
    #[error("no tier of the ladder is allowed ({tiers} tiers, all excluded by their rules)")]
    NoTierAllowed {
        /// How many tiers the ladder has.
        tiers: usize,
    },

    /// The root node cannot be removed.
    #[error("cannot remove the root node {node}")]
    RootRemoval {
        /// The root's path.
        node: Arc<str>,
    },

    /// A limit change or debit would put the limit below what is already spent and held.
    #[error(
        "{node}: a {unit} limit of {requested_limit} is below the {spent} spent plus {reserved} reserved"
    )]
    LimitBelowUsage {
        /// The node.
        node: Arc<str>,
        /// The unit of the limit.
        unit: Unit,
        /// The limit that was asked for.
        requested_limit: Amount,
        /// Spent on the node.
        spent: Amount,
        /// Reserved on the node.
        reserved: Amount,
    },

    /// A commit above the held amount under
    /// [`OveragePolicy::Reject`](crate::OveragePolicy::Reject), or above what
    /// [`AllowIfAvailable`](crate::OveragePolicy::AllowIfAvailable) or the overdraft could cover.
    /// The hold has ended and the spend **was recorded**: the held part as spent, the rest as
    /// `debt` on the nodes that could not absorb it (see the policy docs).
    #[error("{node}: actual cost {actual} is above the {held} held; recorded {debt} as debt")]
    OverageRejected {
        /// The node the hold was reserved on.
        node: Arc<str>,
        /// What was held.
        held: Amount,
        /// What was reported as spent.
        actual: Amount,
        /// The debt **this commit** recorded (the most any node on the path took on from it);
        /// debt owed before is not included ([`Balance::debt`](crate::Balance::debt) has the
        /// total).
        debt: Amount,
    },

    /// The hold has already ended (committed, released or expired) or never existed in this store.
    #[error("hold {hold} is not live (already committed, released or expired)")]
    UnknownHold {
        /// The hold.
        hold: HoldId,
    },

    /// The hold passed its deadline and was reclaimed (its reservation went back
    /// to the budget). From a commit: the spend above what was recorded did not fit without a
    /// hold and **nothing was recorded** (see [`crate::expiry`]); from `record` or `extend`:
    /// nothing changed.
    #[error("hold {hold} on {node} expired at {expired_at} and was reclaimed")]
    ReservationExpired {
        /// The hold.
        hold: HoldId,
        /// The node it was reserved on.
        node: Arc<str>,
        /// Its deadline.
        expired_at: Timestamp,
    },

    /// A node on the path is frozen: no new holds until it is active again (live holds may
    /// still record, commit and release). Nothing was held.
    #[error("{node} is frozen: no new holds")]
    Frozen {
        /// The frozen node (the reserving node or an ancestor).
        node: Arc<str>,
    },

    /// A node on the path is closed: no new holds and no further recording (live holds may
    /// only commit or release). Nothing changed.
    #[error("{node} is closed")]
    Closed {
        /// The closed node (the reserving node or an ancestor).
        node: Arc<str>,
    },

    /// A label ([`Labels`](crate::Labels): model, agent, task or tag) is unusable. Nothing was
    /// held.
    #[error("invalid label {label:?}: {reason}")]
    InvalidLabel {
        /// The offending label, as given.
        label: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The node's request rate limit (or an ancestor's) has no slot left in its window; nothing
    /// was held and no slot was taken. A retry after `retry_after` can succeed (as far as the
    /// rate limit is concerned).
    #[error(
        "{node} is rate limited: at most {limit} requests per {window:?}; retry in {retry_after:?}"
    )]
    RateLimited {
        /// The rate-limited node (the reserving node or an ancestor).
        node: Arc<str>,
        /// Requests allowed per window.
        limit: u32,
        /// The window.
        window: std::time::Duration,
        /// How long from the reserve's time until a request is allowed again.
        retry_after: std::time::Duration,
    },

    /// A rate limit that cannot be enforced: zero requests, a zero window, or a window too long
    /// to count in nanoseconds. Nothing changed.
    #[error("invalid rate limit of {requests} requests per {window:?}: {reason}")]
    InvalidRateLimit {
        /// Requests per window, as given.
        requests: u32,
        /// The window, as given.
        window: std::time::Duration,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// An [`IdempotencyKey`](crate::idempotency::IdempotencyKey) is empty, longer than
    /// [`MAX_IDEMPOTENCY_KEY_LEN`](crate::idempotency::MAX_IDEMPOTENCY_KEY_LEN) bytes, or has
    /// control characters. Nothing changed.
    #[error("invalid idempotency key {key:?}: {reason}")]
    InvalidIdempotencyKey {
        /// The key as given (cut to the longest length allowed).
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// An idempotency key that the store remembers was used for a different request (another
    /// operation, node, hold, amount or TTL). Nothing changed; use a new key for a new request
    /// (see [`crate::idempotency`]).
    #[error(
        "idempotency key {key:?} was already used for a different {first} request; this {requested} request needs its own key"
    )]
    IdempotencyMismatch {
        /// The key.
        key: Arc<str>,
        /// The operation the key was first used for (`"reserve"`, `"commit"`, ...).
        first: &'static str,
        /// The operation of the refused request.
        requested: &'static str,
    },

    /// A reserve retried with an idempotency key whose hold has since ended (see
    /// [`crate::idempotency`]). Nothing changed. After [`HoldEnd::Committed`] the spend is
    /// booked; after a release or expiry, reserve again with a new key.
    ///
    /// [`HoldEnd::Committed`]: crate::idempotency::HoldEnd::Committed
    #[error(
        "idempotency key {key:?} reserved hold {hold}, which has since been {how}; reserve with a new key to hold again"
    )]
    HoldEnded {
        /// The key.
        key: Arc<str>,
        /// The hold the first reserve created.
        hold: crate::ids::HoldId,
        /// How it ended.
        how: crate::idempotency::HoldEnd,
    },

    /// A burn-rate window that cannot be measured: zero or too many buckets, a window shorter
    /// than one nanosecond per bucket, or one too long to count in nanoseconds. Nothing changed.
    #[error("invalid burn-rate window of {window:?} in {buckets} buckets: {reason}")]
    InvalidBurnWindow {
        /// The window, as given.
        window: std::time::Duration,
        /// The bucket count, as given.
        buckets: u16,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// An auto top-up rule that cannot work: a zero threshold, amount or count, a total cap
    /// below one top-up, or a predictive rule on a node that does not track its burn rate.
    /// Nothing changed.
    #[error("invalid top-up rule: {reason}")]
    InvalidTopUp {
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A duration (a hold's TTL, a heartbeat, a sweep interval) is unusable.
    #[error("invalid duration for {what}: {reason}")]
    InvalidDuration {
        /// What the duration was for.
        what: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A time zone name the bundled IANA time zone database does not know (see
    /// [`Period::in_zone`](crate::period::Period::in_zone)). Nothing changed.
    #[error("unknown time zone {name:?}: not an IANA time zone name such as \"Europe/Berlin\"")]
    UnknownTimeZone {
        /// The name, as given.
        name: String,
    },

    /// A period or rollover that cannot apply: a rollover on a limit without a period, or a
    /// time zone on a fixed-length window. Nothing changed.
    #[error("invalid period {period}: {reason}")]
    InvalidPeriod {
        /// The period, as given (`none` when the limit has none).
        period: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A budget file is damaged in a way a crash cannot explain (a bad header, a damaged
    /// snapshot, a bad record followed by valid ones). Nothing was changed on disk.
    #[error("{}: corrupted at byte {offset}: {reason}", path.display())]
    Corrupted {
        /// The file.
        path: std::path::PathBuf,
        /// Byte offset of the damaged header or record.
        offset: u64,
        /// What is wrong there.
        reason: String,
    },

    /// Another open store (in this or another process) owns the budget file.
    #[error("{}: locked by another open FileStore; close it first", path.display())]
    Locked {
        /// The file.
        path: std::path::PathBuf,
    },

    /// The budget file was written by a newer version of the format.
    #[error(
        "{}: format version {found} is newer than the {supported} this build reads; upgrade budget-guard",
        path.display()
    )]
    UnsupportedVersion {
        /// The file.
        path: std::path::PathBuf,
        /// The version in the file.
        found: u16,
        /// The newest version this build reads.
        supported: u16,
    },

    /// The file is not a budget file (empty, or another format). Nothing was changed on disk.
    #[error("{}: not a budget-guard file ({reason})", path.display())]
    NotABudgetFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why it was not recognised.
        reason: &'static str,
    },

    /// An [`Approver`](crate::approval::Approver) refused a reserve above its rule's threshold (see
    /// [`crate::approval`]). Nothing was held; rules above the refusing one were not asked.
    #[error(
        "{node} requires approval above {threshold}; a request of {estimate} was denied: {reason}"
    )]
    ApprovalDenied {
        /// The node whose rule refused (the reserving node or an ancestor).
        node: Arc<str>,
        /// The request's amount in the rule's unit.
        estimate: Amount,
        /// The rule's threshold.
        threshold: Amount,
        /// The approver's reason.
        reason: String,
    },

    /// Something is beyond a size limit of the crate; nothing was changed (nothing was written,
    /// for a budget file). Raised by a reserve past [`MAX_LIVE_HOLDS`](crate::MAX_LIVE_HOLDS)
    /// live holds, and by a [`FileStore`](crate::FileStore) whose state no longer fits in one
    /// snapshot record (the reader would refuse it): compaction, restore and reopen then fail
    /// with this error while the file keeps the last state that fits.
    #[error("{what}: {size} is above the limit of {limit}")]
    TooLarge {
        /// What is too large.
        what: &'static str,
        /// Its size (a count or bytes, as `what` says).
        size: u64,
        /// The largest size accepted.
        limit: u64,
    },

    /// A blocking reserve met an approval rule whose approver is async
    /// ([`Budget::require_approval_async`](crate::Budget::require_approval_async)); reserve with
    /// `reserve_async` (or `run_async`, `fallback_async`) instead. Nothing was held.
    #[error("{node} requires approval above {threshold} from an async approver; use reserve_async")]
    AsyncApprovalRequired {
        /// The node whose rule needs the async approver.
        node: Arc<str>,
        /// The rule's threshold.
        threshold: Amount,
    },

    /// The storage backend failed. [`StoreError::kind`] says whether the operation may have
    /// happened and whether to retry (see [`StoreErrorKind`]).
    #[error("store failure: {0}")]
    Store(#[from] StoreError),

    /// The store does not implement this operation (it declares so in
    /// [`Store::supports`](crate::Store::supports)). Nothing changed; retrying will not help.
    #[error("{store} does not support the {op} operation")]
    Unsupported {
        /// The operation refused.
        op: crate::op::OpKind,
        /// The store's name.
        store: &'static str,
    },
}

impl Error {
    /// `true` for a [`Store`](Error::Store) failure of kind
    /// [`Transient`](StoreErrorKind::Transient): the operation did not happen and may be
    /// retried as it is.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Store(error) if error.kind() == StoreErrorKind::Transient)
    }

    /// `true` for a [`Store`](Error::Store) failure of kind
    /// [`OutcomeUnknown`](StoreErrorKind::OutcomeUnknown): the operation may have happened;
    /// retry only with the same idempotency key.
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, Error::Store(error) if error.kind() == StoreErrorKind::OutcomeUnknown)
    }

    /// The [`Exceeded`] details if this is a [`Error::BudgetExceeded`].
    pub fn exceeded(&self) -> Option<&Exceeded> {
        match self {
            Error::BudgetExceeded(details) => Some(details),
            _ => None,
        }
    }

    /// `true` for errors that mean "the budget says no" (exceeded, in debt, or an approver
    /// denied the amount), as opposed to bad input or a store failure. Ladders and fallback
    /// chains move to a cheaper tier on these.
    pub fn is_denial(&self) -> bool {
        matches!(
            self,
            Error::BudgetExceeded(_)
                | Error::InDebt { .. }
                | Error::NoTierAllowed { .. }
                | Error::ApprovalDenied { .. }
        )
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
