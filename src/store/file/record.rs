//! The budget file's records as serde data, encoded with `postcard` inside the log's framing
//! (`log.rs`): a [`Record::Image`] of the whole ledger, or a command the ledger ran with its
//! time and a digest of what it answered.
//!
//! Recovery loads the image and runs every later command through the same interpreter
//! ([`Ledger::apply`] / [`Ledger::read`]) with its recorded time, then compares the digest of
//! the result with the recorded one: equal books give equal answers, so a mismatch means the
//! file or the interpreter differs from the writer's, and the open fails instead of serving
//! other books (see `docs/file-format.md`).

use std::num::NonZeroUsize;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::amount::{Amount, Unit};
use crate::clock::Timestamp;
use crate::cost::Cost;
use crate::error::{Error, Result};
use crate::idempotency::{IdempotencyKey, KeyRetention};
use crate::ids::{HoldId, NodeId};
use crate::ledger::Ledger;
use crate::ledger::image::LedgerImage;
use crate::ledger::image::values::{
    self, AmountW, BurnWindowW, CostW, Invalid, LimitW, NodeStateW, RateLimitW, TopUpW,
};
use crate::op::{Answer, Applied, Op, Query};
use crate::policy::Limits;

/// One record of the log (its payload, before framing).
#[derive(Debug, Serialize, Deserialize)]
pub(super) enum Record {
    /// The whole ledger: the first record of every file, and the books after a restore.
    Image(Box<ImageRecord>),
    /// An operation the ledger ran.
    Apply(Logged<OpW>),
    /// A query that changed the books (rolled a period, reclaimed expired holds).
    Read(Logged<QueryW>),
}

/// The books, and the idempotency-key retention the commands after them ran with (replay
/// needs it: which keys are forgotten when is part of the rules).
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct ImageRecord {
    pub(super) retention: (DurationW, u64),
    pub(super) ledger: LedgerImage,
}

impl ImageRecord {
    /// The retention the writer used.
    pub(super) fn retention(&self) -> std::result::Result<KeyRetention, Invalid> {
        let ttl = self.retention.0.into_duration()?;
        let max = usize::try_from(self.retention.1)
            .ok()
            .and_then(NonZeroUsize::new)
            .ok_or("a key retention of zero keys")?;
        KeyRetention::new(ttl, max).map_err(|e| e.to_string())
    }
}

/// A command, the time the ledger ran it at, and a digest of its result.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Logged<C> {
    /// [`INTERPRETER_VERSION`](crate::ledger::INTERPRETER_VERSION) of the writer.
    pub(super) interpreter: u32,
    pub(super) command: C,
    /// Unix nanoseconds, `None` if the store did not read its clock for it.
    pub(super) now: Option<i64>,
    /// [`applied_digest`] or [`answer_digest`] of the result: 4 fixed bytes.
    pub(super) digest: [u8; 4],
}

impl Record {
    /// An image record of `ledger`, whose later commands run with `retention`.
    pub(super) fn image(ledger: &Ledger, retention: &KeyRetention) -> Record {
        Record::Image(Box::new(ImageRecord {
            retention: (retention.ttl().into(), retention.max_keys() as u64),
            ledger: ledger.to_image(),
        }))
    }

    /// The payload bytes.
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        // Writing into a `Vec` cannot fail, and every field is a plain value postcard encodes.
        postcard::to_io(self, out).expect("postcard encodes a record into a Vec");
    }

    /// The record in `payload`: every byte used, nothing trailing.
    pub(super) fn decode(payload: &[u8]) -> std::result::Result<Record, String> {
        match postcard::take_from_bytes::<Record>(payload) {
            Ok((record, [])) => Ok(record),
            Ok((_, rest)) => Err(format!("{} bytes after the record", rest.len())),
            Err(error) => Err(format!("undecodable record: {error}")),
        }
    }
}

/// The time as the log stores it.
pub(super) fn now_image(now: Option<Timestamp>) -> Option<i64> {
    now.map(values::time)
}

/// A duration exactly: seconds and nanoseconds.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(super) struct DurationW(u64, u32);

impl From<Duration> for DurationW {
    fn from(duration: Duration) -> Self {
        DurationW(duration.as_secs(), duration.subsec_nanos())
    }
}

impl DurationW {
    fn into_duration(self) -> std::result::Result<Duration, Invalid> {
        if self.1 >= 1_000_000_000 {
            return Err("a duration with a second's worth of nanoseconds or more".into());
        }
        Ok(Duration::new(self.0, self.1))
    }
}

/// An [`Op`] other than `Restore` (a restore is logged as the image it produced).
#[derive(Debug, Serialize, Deserialize)]
pub(super) enum OpW {
    CreateNode(Option<u64>, String, Vec<LimitW>),
    RemoveNode(u64),
    Reserve(u64, CostW, DurationW, Option<String>),
    ReserveUpTo(u64, AmountW, AmountW, DurationW, Option<String>),
    Extend(u64, DurationW),
    Sweep,
    Record(u64, CostW),
    Commit(u64, CostW, Option<String>),
    Release(u64, Option<String>),
    Credit(u64, AmountW, Option<String>),
    Debit(u64, AmountW, Option<String>),
    SetState(u64, NodeStateW),
    SetLimit(u64, LimitW),
    RemoveLimit(u64, u8),
    SetRateLimit(u64, Option<RateLimitW>),
    SetBurnWindow(u64, Option<BurnWindowW>),
    SetTopUp(u64, Option<TopUpW>),
}

fn key_image(key: Option<&IdempotencyKey>) -> Option<String> {
    key.map(|key| key.as_str().to_owned())
}

fn key(image: Option<String>) -> std::result::Result<Option<IdempotencyKey>, Invalid> {
    image
        .map(|key| IdempotencyKey::new(key).map_err(|e| e.to_string()))
        .transpose()
}

impl OpW {
    /// `op` as the log stores it; `None` for a restore.
    pub(super) fn new(op: &Op) -> Option<OpW> {
        let node = |id: &NodeId| id.into_raw();
        let hold = |id: &HoldId| id.into_raw();
        Some(match op {
            Op::CreateNode {
                parent,
                name,
                limits,
            } => OpW::CreateNode(
                parent.as_ref().map(node),
                name.clone(),
                limits.iter().map(LimitW::from).collect(),
            ),
            Op::RemoveNode { node: id } => OpW::RemoveNode(node(id)),
            Op::Reserve {
                node: id,
                cost,
                ttl,
                idempotency_key,
            } => OpW::Reserve(
                node(id),
                cost.into(),
                (*ttl).into(),
                key_image(idempotency_key.as_ref()),
            ),
            Op::ReserveUpTo {
                node: id,
                min,
                max,
                ttl,
                idempotency_key,
            } => OpW::ReserveUpTo(
                node(id),
                (*min).into(),
                (*max).into(),
                (*ttl).into(),
                key_image(idempotency_key.as_ref()),
            ),
            Op::Extend { hold: id, ttl } => OpW::Extend(hold(id), (*ttl).into()),
            Op::Sweep => OpW::Sweep,
            Op::Record { hold: id, partial } => OpW::Record(hold(id), partial.into()),
            Op::Commit {
                hold: id,
                actual,
                idempotency_key,
            } => OpW::Commit(hold(id), actual.into(), key_image(idempotency_key.as_ref())),
            Op::Release {
                hold: id,
                idempotency_key,
            } => OpW::Release(hold(id), key_image(idempotency_key.as_ref())),
            Op::Credit {
                node: id,
                amount,
                idempotency_key,
            } => OpW::Credit(
                node(id),
                (*amount).into(),
                key_image(idempotency_key.as_ref()),
            ),
            Op::Debit {
                node: id,
                amount,
                idempotency_key,
            } => OpW::Debit(
                node(id),
                (*amount).into(),
                key_image(idempotency_key.as_ref()),
            ),
            Op::SetState { node: id, state } => OpW::SetState(node(id), (*state).into()),
            Op::SetLimit { node: id, limit } => OpW::SetLimit(node(id), limit.into()),
            Op::RemoveLimit { node: id, unit } => OpW::RemoveLimit(node(id), unit.index() as u8),
            Op::SetRateLimit { node: id, limit } => {
                OpW::SetRateLimit(node(id), limit.as_ref().map(RateLimitW::from))
            }
            Op::SetBurnWindow { node: id, window } => {
                OpW::SetBurnWindow(node(id), window.as_ref().map(BurnWindowW::from))
            }
            Op::SetTopUp { node: id, rule } => {
                OpW::SetTopUp(node(id), rule.as_ref().map(TopUpW::from))
            }
            Op::Restore { .. } => return None,
        })
    }

    /// The operation again. Values are rebuilt through their constructors but not judged: an
    /// operation the ledger refused (a limit with bad levels) is logged too, and replay must
    /// hand it to the ledger to be refused again.
    pub(super) fn into_op(self) -> std::result::Result<Op, Invalid> {
        let node = NodeId::from_raw;
        let hold = HoldId::from_raw;
        Ok(match self {
            OpW::CreateNode(parent, name, limits) => Op::CreateNode {
                parent: parent.map(node),
                name,
                limits: Limits(
                    limits
                        .into_iter()
                        .map(LimitW::into_unchecked_limit)
                        .collect::<std::result::Result<_, _>>()?,
                ),
            },
            OpW::RemoveNode(id) => Op::RemoveNode { node: node(id) },
            OpW::Reserve(id, cost, ttl, k) => Op::Reserve {
                node: node(id),
                cost: cost.into_cost()?,
                ttl: ttl.into_duration()?,
                idempotency_key: key(k)?,
            },
            OpW::ReserveUpTo(id, min, max, ttl, k) => Op::ReserveUpTo {
                node: node(id),
                min: min.into_amount()?,
                max: max.into_amount()?,
                ttl: ttl.into_duration()?,
                idempotency_key: key(k)?,
            },
            OpW::Extend(id, ttl) => Op::Extend {
                hold: hold(id),
                ttl: ttl.into_duration()?,
            },
            OpW::Sweep => Op::Sweep,
            OpW::Record(id, partial) => Op::Record {
                hold: hold(id),
                partial: partial.into_cost()?,
            },
            OpW::Commit(id, actual, k) => Op::Commit {
                hold: hold(id),
                actual: actual.into_cost()?,
                idempotency_key: key(k)?,
            },
            OpW::Release(id, k) => Op::Release {
                hold: hold(id),
                idempotency_key: key(k)?,
            },
            OpW::Credit(id, amount, k) => Op::Credit {
                node: node(id),
                amount: amount.into_amount()?,
                idempotency_key: key(k)?,
            },
            OpW::Debit(id, amount, k) => Op::Debit {
                node: node(id),
                amount: amount.into_amount()?,
                idempotency_key: key(k)?,
            },
            OpW::SetState(id, state) => Op::SetState {
                node: node(id),
                state: state.into(),
            },
            OpW::SetLimit(id, limit) => Op::SetLimit {
                node: node(id),
                limit: limit.into_unchecked_limit()?,
            },
            OpW::RemoveLimit(id, unit) => Op::RemoveLimit {
                node: node(id),
                unit: values::unit(unit)?,
            },
            OpW::SetRateLimit(id, limit) => Op::SetRateLimit {
                node: node(id),
                limit: limit.map(RateLimitW::into_rate_limit).transpose()?,
            },
            OpW::SetBurnWindow(id, window) => Op::SetBurnWindow {
                node: node(id),
                window: window.map(BurnWindowW::into_window).transpose()?,
            },
            OpW::SetTopUp(id, rule) => Op::SetTopUp {
                node: node(id),
                rule: rule.map(TopUpW::into_unchecked_rule).transpose()?,
            },
        })
    }
}

/// A [`Query`] that can change the books.
#[derive(Debug, Serialize, Deserialize)]
pub(super) enum QueryW {
    Resolve(String),
    Check(u64, CostW),
    Balance(u64, u8),
    NodeInfo(u64),
    Snapshot,
    Cancellation(u64),
}

impl QueryW {
    pub(super) fn new(query: &Query) -> QueryW {
        match query {
            Query::Resolve { path } => QueryW::Resolve(path.clone()),
            Query::Check { node, cost } => QueryW::Check(node.into_raw(), cost.into()),
            Query::Balance { node, unit } => QueryW::Balance(node.into_raw(), unit.index() as u8),
            Query::NodeInfo { node } => QueryW::NodeInfo(node.into_raw()),
            Query::Snapshot => QueryW::Snapshot,
            Query::Cancellation { hold } => QueryW::Cancellation(hold.into_raw()),
        }
    }

    pub(super) fn into_query(self) -> std::result::Result<Query, Invalid> {
        Ok(match self {
            QueryW::Resolve(path) => Query::Resolve { path },
            QueryW::Check(node, cost) => Query::Check {
                node: NodeId::from_raw(node),
                cost: cost.into_cost()?,
            },
            QueryW::Balance(node, unit) => Query::Balance {
                node: NodeId::from_raw(node),
                unit: values::unit(unit)?,
            },
            QueryW::NodeInfo(node) => Query::NodeInfo {
                node: NodeId::from_raw(node),
            },
            QueryW::Snapshot => Query::Snapshot,
            QueryW::Cancellation(hold) => Query::Cancellation {
                hold: HoldId::from_raw(hold),
            },
        })
    }
}

/// FNV-1a, 64 bits: a digest of a result, fixed forever (no per-process seed, unlike
/// `std`'s hasher), so the writer and every later reader compute the same value.
struct Digest(u64);

impl Digest {
    fn new() -> Self {
        Digest(0xcbf2_9ce4_8422_2325)
    }
    fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self
    }
    fn u64(&mut self, value: u64) -> &mut Self {
        self.bytes(&value.to_le_bytes())
    }
    fn i64(&mut self, value: i64) -> &mut Self {
        self.bytes(&value.to_le_bytes())
    }
    fn str(&mut self, value: &str) -> &mut Self {
        self.u64(value.len() as u64).bytes(value.as_bytes())
    }
    fn amount(&mut self, amount: Amount) -> &mut Self {
        self.u64(amount.unit().index() as u64)
            .i64(amount.minor_units())
    }
    fn cost(&mut self, cost: &Cost) -> &mut Self {
        for unit in Unit::ALL {
            match cost.get(unit) {
                Some(amount) => self.u64(1 + unit.index() as u64).i64(amount.minor_units()),
                None => self.u64(0),
            };
        }
        self
    }
    fn time(&mut self, at: Timestamp) -> &mut Self {
        self.i64(at.as_unix_nanos())
    }
    fn debug(&mut self, value: &impl std::fmt::Debug) -> &mut Self {
        self.str(&format!("{value:?}"))
    }
    fn error(&mut self, error: &Error) -> [u8; 4] {
        self.u64(u64::MAX).str(&error.to_string()).finish()
    }
    /// The 64-bit hash folded to 32 bits: a divergence goes unnoticed once in 2^32, and the
    /// log saves 4 to 6 bytes per record over a varint of 64 bits.
    fn finish(&self) -> [u8; 4] {
        ((self.0 ^ (self.0 >> 32)) as u32).to_le_bytes()
    }
}

/// The digest of an operation's result: the figures that tell one outcome from another (ids,
/// amounts, deadlines, which holds expired) or the error's message. Events and top-up reports
/// are left out: they follow from the same books.
pub(super) fn applied_digest(result: &Result<Applied>) -> [u8; 4] {
    let mut d = Digest::new();
    let applied = match result {
        Ok(applied) => applied,
        Err(error) => return d.error(error),
    };
    match applied {
        Applied::Node(id) => d.u64(1).u64(id.into_raw()),
        Applied::Removed => d.u64(2),
        Applied::Reserved(granted) => {
            d.u64(3)
                .u64(granted.hold.into_raw())
                .cost(&granted.held)
                .time(granted.expires_at)
                .u64(granted.expired.len() as u64);
            for expired in &granted.expired {
                d.u64(expired.hold.into_raw());
            }
            &mut d
        }
        Applied::Extended(at) => d.u64(4).time(*at),
        Applied::Swept(expired) => {
            d.u64(5).u64(expired.len() as u64);
            for expired in expired {
                d.u64(expired.hold.into_raw());
            }
            &mut d
        }
        Applied::Recorded => d.u64(6),
        Applied::Committed(committed) => d
            .u64(7)
            .cost(&committed.spent)
            .cost(&committed.returned)
            .cost(&committed.overage)
            .u64(u64::from(committed.expired)),
        Applied::Released(released) => d.u64(8).u64(u64::from(*released)),
        Applied::Balance(balance) => {
            d.u64(9)
                .amount(balance.spent)
                .amount(balance.reserved)
                .amount(balance.debt);
            if let Some(remaining) = balance.remaining {
                d.amount(remaining);
            }
            &mut d
        }
        Applied::State(state) => d.u64(10).debug(state),
        Applied::RateLimit(limit) => d.u64(11).debug(limit),
        Applied::BurnWindow(window) => d.u64(12).debug(window),
        Applied::TopUp(rule) => d.u64(13).debug(rule),
        Applied::Restored => d.u64(14),
    };
    d.finish()
}

/// The digest of a query's answer (only queries that changed the books are logged).
pub(super) fn answer_digest(result: &Result<Answer>) -> [u8; 4] {
    let mut d = Digest::new();
    let answer = match result {
        Ok(answer) => answer,
        Err(error) => return d.error(error),
    };
    match answer {
        Answer::Node(id) => d.u64(1).u64(id.into_raw()),
        Answer::Check(check) => {
            d.u64(2)
                .debug(&check.verdict)
                .u64(check.expired.len() as u64);
            for expired in &check.expired {
                d.u64(expired.hold.into_raw());
            }
            &mut d
        }
        Answer::Balance(balance) => d
            .u64(3)
            .amount(balance.spent)
            .amount(balance.reserved)
            .amount(balance.debt),
        Answer::NodeInfo(info) => d.u64(4).u64(info.balances.len() as u64),
        Answer::Snapshot(snapshot) => d
            .u64(5)
            .u64(snapshot.nodes.len() as u64)
            .u64(snapshot.holds.len() as u64),
        Answer::Cancellation(cancellation) => d.u64(6).u64(u64::from(cancellation.is_some())),
    };
    d.finish()
}
