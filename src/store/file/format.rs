//! The byte format of a budget file: header, record frames and the payload codec.
//!
//! Everything is little-endian. See the module docs of `store::file` for the drawing; this file
//! is the single place that reads or writes those bytes.

use std::sync::Arc;
use std::time::Duration;

use crate::amount::{Amount, Unit};
use crate::balance::{AccountSnapshot, HoldSnapshot, NodeSnapshot, Snapshot};
use crate::clock::Timestamp;
use crate::cost::Cost;
use crate::ids::{HoldId, NodeId};
use crate::node_state::NodeState;
use crate::period::{Period, Rollover, codec as period_codec};
use crate::policy::{Limit, LimitKind, Limits, OveragePolicy};
use crate::rate::RateLimit;
use crate::threshold::{MAX_LEVELS, ThresholdBasis};

/// Set in a limit's threshold-count byte for [`ThresholdBasis::SpentAndHeld`].
const EARLY_WARNING_BIT: u8 = 0x80;

/// First eight bytes of every budget file.
pub(super) const MAGIC: [u8; 8] = *b"BGLEDGER";
/// The format version this build writes and the newest it reads.
pub(super) const VERSION: u16 = 1;
/// Header: magic (8), version (2), flags (2), crc32 of the first 12 bytes (4).
pub(super) const HEADER_LEN: usize = 16;
/// Record frame: payload length (4), crc32 of the length bytes and the payload (4).
pub(super) const FRAME_LEN: usize = 8;
/// Largest payload, shared by both sides: the reader takes anything longer for damage, so the
/// writer refuses to write it ([`push_checked_record`]) instead of leaving an unreadable file.
pub(super) const MAX_PAYLOAD: usize = 1 << 30;

// Record tags (first payload byte).
const TAG_SNAPSHOT: u8 = 1;
const TAG_CREATE_NODE: u8 = 2;
const TAG_REMOVE_NODE: u8 = 3;
const TAG_RESERVE: u8 = 4;
const TAG_RECORD: u8 = 5;
const TAG_COMMIT: u8 = 6;
const TAG_RELEASE: u8 = 7;
const TAG_SET_LIMIT: u8 = 8;
const TAG_REMOVE_LIMIT: u8 = 9;
const TAG_CREDIT: u8 = 10;
const TAG_DEBIT: u8 = 11;
const TAG_EXPIRE: u8 = 12;
const TAG_EXTEND: u8 = 13;
const TAG_SET_STATE: u8 = 14;
const TAG_SET_RATE_LIMIT: u8 = 15;
/// Periods rolled (or one node's new periods started) at a logged time; also the id of the
/// snapshot section that carries period state.
const TAG_ROLL: u8 = 16;
/// A create-node or set-limit record whose limits carry periods (the plain records cannot).
const TAG_PERIODIC: u8 = 17;
// Tags 18 (a keyed operation) and 19 (a remembered key): see `idempotency.rs`.
#[path = "idempotency.rs"]
mod idempotency;
use self::idempotency::{TAG_KEYED, TAG_REMEMBER};
// Tags 20 (burn window / top-up rule state) and 21 (a top-up applied): see `top_up.rs`.
#[path = "top_up.rs"]
mod top_up;
use self::top_up::{TAG_BURN, TAG_TOPPED_UP};
// Snapshot section 8 (a unit's further limits, other periods): see `caps.rs`.
#[path = "caps.rs"]
mod caps;

/// The 16-byte file header.
pub(super) fn header() -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header[..8].copy_from_slice(&MAGIC);
    header[8..10].copy_from_slice(&VERSION.to_le_bytes());
    // bytes 10..12: flags, zero in version 1
    let crc = crc32fast::hash(&header[..12]);
    header[12..16].copy_from_slice(&crc.to_le_bytes());
    header
}

/// What the first bytes of a file say about it.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum HeaderCheck {
    /// A version-1 budget file.
    Ok,
    /// Not a budget file at all.
    Foreign(&'static str),
    /// A budget file of a newer version.
    Newer(u16),
    /// The magic matches but the header is damaged.
    Damaged(&'static str),
}

pub(super) fn check_header(bytes: &[u8]) -> HeaderCheck {
    if bytes.is_empty() {
        return HeaderCheck::Foreign("the file is empty");
    }
    let magic_len = bytes.len().min(MAGIC.len());
    if bytes[..magic_len] != MAGIC[..magic_len] {
        return HeaderCheck::Foreign("the magic bytes do not match");
    }
    if bytes.len() < HEADER_LEN {
        return HeaderCheck::Damaged("the header is cut short");
    }
    let stored = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes"));
    if crc32fast::hash(&bytes[..12]) != stored {
        return HeaderCheck::Damaged("the header checksum does not match");
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    if version > VERSION {
        return HeaderCheck::Newer(version);
    }
    if version == 0 || bytes[10..12] != [0, 0] {
        return HeaderCheck::Damaged("unknown version 0 or flags");
    }
    HeaderCheck::Ok
}

/// Appends one framed record to `buf`; `write` writes the payload through an [`Enc`].
/// Nothing is allocated once `buf` has grown to its working size. For records of bounded size
/// (every record but the snapshot: names, keys and level counts are capped where they are set).
pub(super) fn push_record(buf: &mut Vec<u8>, write: impl FnOnce(&mut Enc<'_>)) {
    push_checked_record(buf, MAX_PAYLOAD, |enc| {
        write(enc);
        Ok(())
    })
    .expect("a record of bounded size is below MAX_PAYLOAD");
}

/// A record whose payload would pass the reader's limit; nothing of it was kept.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct TooLarge {
    /// Payload bytes written before the writer noticed (at least `limit + 1`).
    pub(super) written: usize,
    /// The limit passed.
    pub(super) limit: usize,
}

/// [`Enc::fits`] failed: the payload already passed its limit.
#[derive(Debug)]
pub(super) struct Full;

/// Appends one framed record to `buf` unless its payload would be longer than `limit` bytes
/// (production passes [`MAX_PAYLOAD`], the reader's limit). `write` may stop early by returning
/// [`Full`] from [`Enc::fits`], so a state far too large is not encoded to the end. On `Err`,
/// `buf` is as it was.
pub(super) fn push_checked_record(
    buf: &mut Vec<u8>,
    limit: usize,
    write: impl FnOnce(&mut Enc<'_>) -> Result<(), Full>,
) -> Result<(), TooLarge> {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; FRAME_LEN]);
    let end = start + FRAME_LEN + limit;
    let written = write(&mut Enc(buf, end));
    if written.is_err() || buf.len() > end {
        let written = buf.len() - start - FRAME_LEN;
        buf.truncate(start);
        return Err(TooLarge { written, limit });
    }
    let len = u32::try_from(buf.len() - start - FRAME_LEN).expect("MAX_PAYLOAD is below 4 GiB");
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&buf[start..start + 4]);
    hasher.update(&buf[start + FRAME_LEN..]);
    let crc = hasher.finalize();
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// A frame read from `bytes` at `offset`.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Frame<'a> {
    /// A record whose checksum matches; `next` is the offset after it.
    Valid { payload: &'a [u8], next: usize },
    /// The end of the data: `offset == bytes.len()`.
    End,
    /// Fewer bytes than the frame announces, or a checksum mismatch.
    Invalid(&'static str),
}

pub(super) fn read_frame(bytes: &[u8], offset: usize) -> Frame<'_> {
    let rest = &bytes[offset..];
    if rest.is_empty() {
        return Frame::End;
    }
    if rest.len() < FRAME_LEN {
        return Frame::Invalid("a record frame is cut short");
    }
    let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
    let stored = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
    if len == 0 || len > MAX_PAYLOAD {
        return Frame::Invalid("a record length is out of range");
    }
    if rest.len() - FRAME_LEN < len {
        return Frame::Invalid("a record is cut short");
    }
    let payload = &rest[FRAME_LEN..FRAME_LEN + len];
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&rest[..4]);
    hasher.update(payload);
    if hasher.finalize() != stored {
        return Frame::Invalid("a record checksum does not match");
    }
    Frame::Valid {
        payload,
        next: offset + FRAME_LEN + len,
    }
}

/// Payload writer: the buffer, and the buffer length the payload must not pass.
#[derive(Debug)]
pub(super) struct Enc<'a>(&'a mut Vec<u8>, usize);

impl Enc<'_> {
    /// `Err` once the payload is longer than its limit: a large writer checks this as it goes.
    fn fits(&self) -> Result<(), Full> {
        if self.0.len() > self.1 {
            return Err(Full);
        }
        Ok(())
    }
    fn u8(&mut self, value: u8) {
        self.0.push(value);
    }
    fn u16(&mut self, value: u16) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }
    fn u32(&mut self, value: u32) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }
    fn u64(&mut self, value: u64) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }
    fn i64(&mut self, value: i64) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }
    fn time(&mut self, value: Timestamp) {
        self.i64(value.as_unix_nanos());
    }
    fn str(&mut self, value: &str) {
        self.u32(u32::try_from(value.len()).expect("string below 4 GiB"));
        self.0.extend_from_slice(value.as_bytes());
    }
    fn unit(&mut self, unit: Unit) {
        self.u8(unit.index() as u8);
    }
    fn amount(&mut self, amount: Amount) {
        self.unit(amount.unit());
        self.i64(amount.minor_units());
    }
    fn cost(&mut self, cost: &Cost) {
        let mask = Unit::ALL
            .into_iter()
            .filter(|unit| cost.has(*unit))
            .fold(0u8, |mask, unit| mask | (1 << unit.index()));
        self.u8(mask);
        for unit in cost.units() {
            self.i64(cost.minor(unit));
        }
    }
    fn limit(&mut self, limit: &Limit) {
        self.amount(limit.amount());
        self.u8(match limit.kind() {
            LimitKind::Hard => 0,
            LimitKind::Soft => 1,
        });
        match limit.overage() {
            OveragePolicy::Reject => self.u8(0),
            OveragePolicy::AllowIfAvailable => self.u8(1),
            OveragePolicy::AllowWithOverdraft { limit } => {
                self.u8(2);
                self.amount(limit);
            }
        }
        let levels = limit.thresholds().levels();
        // At most MAX_LEVELS (8), checked when the limit was set; the high bit marks the early
        // warning basis (files without it read as the default, spend).
        let early = match limit.thresholds().basis() {
            ThresholdBasis::SpentAndHeld => EARLY_WARNING_BIT,
            _ => 0,
        };
        self.u8(levels.len() as u8 | early);
        for level in levels {
            self.u16(*level);
        }
    }

    /// A limit with its period and rollover (tag 17 records and the snapshot's period section).
    fn period(&mut self, period: &Period) {
        let (code, zone, nanos, anchor) = period_codec::parts(period);
        self.u8(code);
        self.str(zone);
        self.i64(nanos);
        self.i64(anchor);
    }
    fn rollover(&mut self, rollover: Rollover) {
        match rollover {
            Rollover::None => self.u8(0),
            Rollover::CarryForward { cap } => {
                self.u8(1);
                self.amount(cap);
            }
            Rollover::CapAtAllocation => self.u8(2),
        }
    }
    fn periodic_limit(&mut self, limit: &Limit) {
        self.limit(limit);
        match limit.period() {
            Some(period) => {
                self.u8(1);
                self.period(&period);
            }
            None => self.u8(0),
        }
        self.rollover(limit.rollover());
    }

    /// Tag 16: roll every due period at `now` (`node == None`), or start `node`'s new periods.
    pub(super) fn roll(&mut self, now: Timestamp, node: Option<NodeId>) {
        self.u8(TAG_ROLL);
        self.time(now);
        match node {
            Some(node) => {
                self.u8(1);
                self.u64(node.into_raw());
            }
            None => self.u8(0),
        }
    }

    /// `requests` (0 for none) and the window in nanoseconds.
    fn rate_limit(&mut self, limit: Option<&RateLimit>) {
        self.u32(limit.map_or(0, RateLimit::requests));
        self.i64(limit.map_or(0, RateLimit::window_nanos));
    }

    pub(super) fn set_rate_limit(&mut self, node: NodeId, limit: Option<&RateLimit>) {
        self.u8(TAG_SET_RATE_LIMIT);
        self.u64(node.into_raw());
        self.rate_limit(limit);
    }

    /// The whole state; stops with [`Full`] as soon as it passes the payload limit.
    pub(super) fn snapshot(
        &mut self,
        snapshot: &Snapshot,
        node_ids: &[NodeId],
    ) -> Result<(), Full> {
        self.u8(TAG_SNAPSHOT);
        self.u32(snapshot.next_serial);
        self.u32(u32::try_from(snapshot.nodes.len()).expect("below 2^32 nodes"));
        for (node, id) in snapshot.nodes.iter().zip(node_ids) {
            self.str(&node.path);
            self.u64(id.into_raw());
            self.u8(node.accounts.len() as u8);
            for account in &node.accounts {
                self.unit(account.unit);
                match &account.limit {
                    Some(limit) => {
                        self.u8(1);
                        self.limit(limit);
                    }
                    None => self.u8(0),
                }
                self.i64(account.spent.minor_units());
                self.i64(account.reserved.minor_units());
                self.i64(account.debt.minor_units());
            }
            self.u8(node.state.code());
            self.fits()?;
        }
        for holds in [&snapshot.holds, &snapshot.expired_holds] {
            self.u32(u32::try_from(holds.len()).expect("below 2^32 holds"));
            for hold in holds {
                self.u64(hold.id.into_raw());
                self.str(&hold.node);
                self.cost(&hold.held);
                self.cost(&hold.recorded);
                self.time(hold.expires_at);
                self.fits()?;
            }
        }
        // Trailing section (absent in files written before rate limits): the rate-limited
        // nodes by position.
        let limited: Vec<(u32, &RateLimit)> = (0u32..)
            .zip(&snapshot.nodes)
            .filter_map(|(position, node)| node.rate_limit.as_ref().map(|limit| (position, limit)))
            .collect();
        // Periodic accounts: (node position, account).
        let periodic: Vec<(u32, &AccountSnapshot)> = (0u32..)
            .zip(&snapshot.nodes)
            .flat_map(|(position, node)| {
                node.accounts
                    .iter()
                    .filter(|a| a.limit.is_some_and(|l| l.period().is_some()))
                    .map(move |account| (position, account))
            })
            .collect();
        let timed = top_up::has_burn_section(snapshot);
        let further = caps::has_further_limits(snapshot);
        if !limited.is_empty() || !periodic.is_empty() || timed || further {
            self.u32(u32::try_from(limited.len()).expect("below 2^32 nodes"));
            for (position, limit) in limited {
                self.u32(position);
                self.rate_limit(Some(limit));
            }
        }
        // Tagged sections after the rate limits, each `tag u8, length u32, payload`, the tag
        // being the record tag of the feature that owns the section (absent in older files).
        if !periodic.is_empty() {
            self.u8(TAG_ROLL);
            let length_at = self.0.len();
            self.u32(0);
            self.u32(u32::try_from(periodic.len()).expect("below 2^32 accounts"));
            for (position, account) in periodic {
                let limit = account.limit.expect("periodic accounts have a limit");
                self.u32(position);
                self.unit(account.unit);
                self.periodic_limit(&limit);
                self.i64(account.allowance.map_or(i64::MIN, Amount::minor_units));
                self.time(
                    account
                        .resets_at
                        .unwrap_or(Timestamp::from_unix_nanos(i64::MIN)),
                );
            }
            let length = u32::try_from(self.0.len() - length_at - 4).expect("below 4 GiB");
            self.0[length_at..length_at + 4].copy_from_slice(&length.to_le_bytes());
        }
        self.burn_section(snapshot);
        self.further_limits_section(snapshot);
        self.fits()
    }
    pub(super) fn create_node(
        &mut self,
        parent: Option<NodeId>,
        name: &str,
        limits: &Limits,
        id: NodeId,
    ) {
        let periodic = limits.iter().any(|limit| limit.period().is_some());
        if periodic {
            self.u8(TAG_PERIODIC);
            self.u8(0);
        } else {
            self.u8(TAG_CREATE_NODE);
        }
        match parent {
            Some(parent) => {
                self.u8(1);
                self.u64(parent.into_raw());
            }
            None => self.u8(0),
        }
        self.str(name);
        self.u8(limits.0.len() as u8);
        for limit in limits.iter() {
            if periodic {
                self.periodic_limit(limit);
            } else {
                self.limit(limit);
            }
        }
        self.u64(id.into_raw());
    }
    pub(super) fn remove_node(&mut self, node: NodeId) {
        self.u8(TAG_REMOVE_NODE);
        self.u64(node.into_raw());
    }
    pub(super) fn reserve(&mut self, node: NodeId, cost: &Cost, hold: HoldId, expires: Timestamp) {
        self.u8(TAG_RESERVE);
        self.u64(node.into_raw());
        self.cost(cost);
        self.u64(hold.into_raw());
        self.time(expires);
    }
    pub(super) fn set_state(&mut self, node: NodeId, state: NodeState) {
        self.u8(TAG_SET_STATE);
        self.u64(node.into_raw());
        self.u8(state.code());
    }
    pub(super) fn expire(&mut self, hold: HoldId) {
        self.u8(TAG_EXPIRE);
        self.u64(hold.into_raw());
    }
    pub(super) fn extend(&mut self, hold: HoldId, expires: Timestamp) {
        self.u8(TAG_EXTEND);
        self.u64(hold.into_raw());
        self.time(expires);
    }
    pub(super) fn record(&mut self, hold: HoldId, partial: &Cost) {
        self.u8(TAG_RECORD);
        self.u64(hold.into_raw());
        self.cost(partial);
    }
    pub(super) fn commit(&mut self, hold: HoldId, actual: &Cost) {
        self.u8(TAG_COMMIT);
        self.u64(hold.into_raw());
        self.cost(actual);
    }
    pub(super) fn release(&mut self, hold: HoldId) {
        self.u8(TAG_RELEASE);
        self.u64(hold.into_raw());
    }
    pub(super) fn set_limit(&mut self, node: NodeId, limit: &Limit) {
        if limit.period().is_some() {
            self.u8(TAG_PERIODIC);
            self.u8(1);
            self.u64(node.into_raw());
            self.periodic_limit(limit);
        } else {
            self.u8(TAG_SET_LIMIT);
            self.u64(node.into_raw());
            self.limit(limit);
        }
    }
    pub(super) fn remove_limit(&mut self, node: NodeId, unit: Unit) {
        self.u8(TAG_REMOVE_LIMIT);
        self.u64(node.into_raw());
        self.unit(unit);
    }
    pub(super) fn credit(&mut self, node: NodeId, amount: Amount) {
        self.u8(TAG_CREDIT);
        self.u64(node.into_raw());
        self.amount(amount);
    }
    pub(super) fn debit(&mut self, node: NodeId, amount: Amount) {
        self.u8(TAG_DEBIT);
        self.u64(node.into_raw());
        self.amount(amount);
    }
}

/// One decoded record. Node and hold ids are the ones the *writing* process handed out; the
/// replay maps them to the ids of the ledger being rebuilt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Op {
    /// An operation applied once per idempotency key: its key's entry, then the operation.
    Keyed {
        key: crate::idempotency::IdempotencyKey,
        entry: crate::ledger::Entry,
        op: Box<Op>,
    },
    /// A remembered idempotency key (after a snapshot, or a keyed no-op).
    Remember {
        key: crate::idempotency::IdempotencyKey,
        entry: crate::ledger::Entry,
    },
    /// The whole state (start of a file, or a `restore`), with the writer's node id per node.
    Snapshot {
        snapshot: Snapshot,
        node_ids: Vec<NodeId>,
    },
    CreateNode {
        parent: Option<NodeId>,
        name: String,
        limits: Limits,
        id: NodeId,
    },
    RemoveNode {
        node: NodeId,
    },
    Reserve {
        node: NodeId,
        cost: Cost,
        hold: HoldId,
        expires: Timestamp,
    },
    /// A node's new state.
    SetState {
        node: NodeId,
        state: NodeState,
    },
    /// A hold reclaimed after its deadline.
    Expire {
        hold: HoldId,
    },
    /// A heartbeat: the hold's new deadline.
    Extend {
        hold: HoldId,
        expires: Timestamp,
    },
    Record {
        hold: HoldId,
        partial: Cost,
    },
    Commit {
        hold: HoldId,
        actual: Cost,
    },
    Release {
        hold: HoldId,
    },
    SetLimit {
        node: NodeId,
        limit: Limit,
    },
    SetRateLimit {
        node: NodeId,
        limit: Option<RateLimit>,
    },
    RemoveLimit {
        node: NodeId,
        unit: Unit,
    },
    Credit {
        node: NodeId,
        amount: Amount,
    },
    Debit {
        node: NodeId,
        amount: Amount,
    },
    /// Periods rolled at `now`, or only `node`'s new periods started.
    Roll {
        now: Timestamp,
        node: Option<NodeId>,
    },
    /// A node's burn window (tag 20, kind 0).
    BurnWindow {
        node: NodeId,
        window: Option<crate::burn::BurnWindow>,
    },
    /// A node's top-up rule state (tag 20, kind 1).
    TopUpState {
        node: NodeId,
        state: Option<crate::top_up::TopUpSnapshot>,
    },
    /// A top-up applied at `at` (tag 21).
    ToppedUp {
        node: NodeId,
        added: Amount,
        at: Timestamp,
        reason: crate::top_up::TopUpReason,
        armed: bool,
    },
}

type Decoded<T> = Result<T, &'static str>;

/// Payload reader; every failure is a short reason for a `Corrupted` error.
struct Dec<'a> {
    bytes: &'a [u8],
    pos: usize,
}

/// Fewest payload bytes of one snapshot node: path length (4), id (8), account count (1),
/// state (1).
const MIN_NODE_BYTES: usize = 14;
/// Fewest payload bytes of one snapshot hold: id (8), path length (4), two cost masks (2),
/// deadline (8).
const MIN_HOLD_BYTES: usize = 22;

impl<'a> Dec<'a> {
    /// How many items of at least `min_bytes` each the rest of the payload can hold, at most
    /// `count`: the capacity to reserve for a count read from the payload.
    fn capacity(&self, count: usize, min_bytes: usize) -> usize {
        count.min((self.bytes.len() - self.pos) / min_bytes)
    }
    fn take(&mut self, n: usize) -> Decoded<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or("length overflow")?;
        let slice = self.bytes.get(self.pos..end).ok_or("payload ends early")?;
        self.pos = end;
        Ok(slice)
    }
    fn u8(&mut self) -> Decoded<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Decoded<u16> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().expect("2")))
    }
    fn u32(&mut self) -> Decoded<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4")))
    }
    fn u64(&mut self) -> Decoded<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8")))
    }
    fn i64(&mut self) -> Decoded<i64> {
        Ok(i64::from_le_bytes(self.take(8)?.try_into().expect("8")))
    }
    fn state(&mut self) -> Decoded<NodeState> {
        NodeState::from_code(self.u8()?).ok_or("unknown node state")
    }
    fn time(&mut self) -> Decoded<Timestamp> {
        Ok(Timestamp::from_unix_nanos(self.i64()?))
    }
    fn minor(&mut self) -> Decoded<i64> {
        let value = self.i64()?;
        if value < 0 {
            return Err("negative amount");
        }
        Ok(value)
    }
    fn str(&mut self) -> Decoded<&'a str> {
        let len = self.u32()? as usize;
        std::str::from_utf8(self.take(len)?).map_err(|_| "text is not UTF-8")
    }
    fn unit(&mut self) -> Decoded<Unit> {
        Unit::ALL
            .get(self.u8()? as usize)
            .copied()
            .ok_or("unknown unit")
    }
    fn amount(&mut self) -> Decoded<Amount> {
        let unit = self.unit()?;
        Ok(Amount::from_minor(self.minor()?, unit))
    }
    fn amount_in(&mut self, unit: Unit) -> Decoded<Amount> {
        Ok(Amount::from_minor(self.minor()?, unit))
    }
    fn cost(&mut self) -> Decoded<Cost> {
        let mask = self.u8()?;
        if mask >> Unit::ALL.len() != 0 {
            return Err("unknown unit in a cost");
        }
        let mut cost = Cost::new();
        for unit in Unit::ALL {
            if mask & (1 << unit.index()) != 0 {
                cost.set(unit, self.minor()?);
            }
        }
        Ok(cost)
    }
    fn limit(&mut self) -> Decoded<Limit> {
        let amount = self.amount()?;
        let limit = match self.u8()? {
            0 => Limit::hard(amount),
            1 => Limit::soft(amount),
            _ => return Err("unknown limit kind"),
        };
        let overage = match self.u8()? {
            0 => OveragePolicy::Reject,
            1 => OveragePolicy::AllowIfAvailable,
            2 => OveragePolicy::AllowWithOverdraft {
                limit: self.amount()?,
            },
            _ => return Err("unknown overage policy"),
        };
        let count_byte = self.u8()?;
        let basis = if count_byte & EARLY_WARNING_BIT != 0 {
            ThresholdBasis::SpentAndHeld
        } else {
            ThresholdBasis::Spent
        };
        let count = usize::from(count_byte & !EARLY_WARNING_BIT);
        if count > MAX_LEVELS {
            return Err("more threshold levels than a limit can carry");
        }
        let mut levels = [0u16; MAX_LEVELS];
        for level in &mut levels[..count] {
            *level = self.u16()?;
        }
        let limit = limit
            .with_overage(overage)
            .with_thresholds(levels[..count].iter().copied())
            .with_threshold_basis(basis);
        limit.validate().map_err(|_| "invalid threshold levels")?;
        Ok(limit)
    }
    /// A create-node record's body; `limit` decodes one limit (plain or periodic records).
    fn create_node(&mut self, limit: fn(&mut Self) -> Decoded<Limit>) -> Decoded<Op> {
        let parent = match self.u8()? {
            0 => None,
            1 => Some(self.node()?),
            _ => return Err("bad parent flag"),
        };
        let name = self.str()?.to_owned();
        let count = self.u8()?;
        let limits = (0..count)
            .map(|_| limit(self))
            .collect::<Decoded<Vec<_>>>()?;
        Ok(Op::CreateNode {
            parent,
            name,
            limits: Limits(limits),
            id: self.node()?,
        })
    }

    fn periodic_limit(&mut self) -> Decoded<Limit> {
        let mut limit = self.limit()?;
        match self.u8()? {
            0 => {}
            1 => {
                let code = self.u8()?;
                let zone = self.str()?;
                let nanos = self.i64()?;
                let anchor = self.i64()?;
                limit = limit.per(period_codec::from_parts(code, zone, nanos, anchor)?);
            }
            _ => return Err("bad period flag"),
        }
        let rollover = match self.u8()? {
            0 => Rollover::None,
            1 => Rollover::CarryForward {
                cap: self.amount()?,
            },
            2 => Rollover::CapAtAllocation,
            _ => return Err("unknown rollover"),
        };
        let limit = limit.with_rollover(rollover);
        limit.validate().map_err(|_| "invalid periodic limit")?;
        Ok(limit)
    }
    /// The snapshot section of tag 16: period state per periodic account.
    fn period_section(&mut self, nodes: &mut [NodeSnapshot]) -> Decoded<()> {
        for _ in 0..self.u32()? {
            let position = self.u32()? as usize;
            let unit = self.unit()?;
            let limit = self.periodic_limit()?;
            let allowance = self.i64()?;
            let resets_at = self.i64()?;
            let node = nodes.get_mut(position).ok_or("bad period node")?;
            let account = node
                .accounts
                .iter_mut()
                .find(|account| account.unit == unit)
                .ok_or("period of a missing account")?;
            if limit.unit() != unit {
                return Err("period limit in another unit");
            }
            account.limit = Some(limit);
            account.allowance = match allowance {
                i64::MIN => None,
                minor if minor >= 0 => Some(Amount::from_minor(minor, unit)),
                _ => return Err("negative allowance"),
            };
            account.resets_at =
                (resets_at != i64::MIN).then_some(Timestamp::from_unix_nanos(resets_at));
        }
        Ok(())
    }
    fn node(&mut self) -> Decoded<NodeId> {
        Ok(NodeId::from_raw(self.u64()?))
    }
    fn hold(&mut self) -> Decoded<HoldId> {
        Ok(HoldId::from_raw(self.u64()?))
    }

    fn snapshot(&mut self) -> Decoded<Op> {
        let next_serial = self.u32()?;
        let node_count = self.u32()? as usize;
        // Capacity from the bytes left, never from the count alone: a count is untrusted.
        let capacity = self.capacity(node_count, MIN_NODE_BYTES);
        let mut nodes = Vec::with_capacity(capacity);
        let mut node_ids = Vec::with_capacity(capacity);
        for _ in 0..node_count {
            let path: Arc<str> = self.str()?.into();
            node_ids.push(self.node()?);
            let account_count = self.u8()?;
            let mut accounts = Vec::with_capacity(usize::from(account_count));
            for _ in 0..account_count {
                let unit = self.unit()?;
                let limit = match self.u8()? {
                    0 => None,
                    1 => Some(self.limit()?),
                    _ => return Err("bad limit flag"),
                };
                accounts.push(AccountSnapshot {
                    unit,
                    limit,
                    spent: self.amount_in(unit)?,
                    reserved: self.amount_in(unit)?,
                    debt: self.amount_in(unit)?,
                    allowance: None,
                    resets_at: None,
                    further_limits: Vec::new(),
                });
            }
            let state = self.state()?;
            nodes.push(NodeSnapshot {
                path,
                accounts,
                state,
                rate_limit: None,
                burn_window: None,
                top_up: None,
            });
        }
        let holds = self.holds()?;
        let expired_holds = self.holds()?;
        if self.pos < self.bytes.len() {
            for _ in 0..self.u32()? {
                let position = self.u32()? as usize;
                let limit = self.rate_limit()?;
                let node: &mut NodeSnapshot = nodes.get_mut(position).ok_or("bad rate node")?;
                node.rate_limit = limit;
            }
        }
        while self.pos < self.bytes.len() {
            let tag = self.u8()?;
            let length = self.u32()? as usize;
            let end = self.pos.checked_add(length).ok_or("length overflow")?;
            if end > self.bytes.len() {
                return Err("a snapshot section is cut short");
            }
            match tag {
                TAG_ROLL => self.period_section(&mut nodes)?,
                TAG_BURN => self.burn_section(&mut nodes)?,
                TAG_SET_LIMIT => self.further_limits_section(&mut nodes)?,
                _ => return Err("unknown snapshot section"),
            }
            if self.pos != end {
                return Err("a snapshot section has the wrong length");
            }
        }
        Ok(Op::Snapshot {
            snapshot: Snapshot {
                nodes,
                holds,
                expired_holds,
                next_serial,
            },
            node_ids,
        })
    }

    fn rate_limit(&mut self) -> Decoded<Option<RateLimit>> {
        let requests = self.u32()?;
        let nanos = self.i64()?;
        if requests == 0 {
            return Ok(None);
        }
        let window = Duration::from_nanos(u64::try_from(nanos).map_err(|_| "bad rate window")?);
        RateLimit::new(requests, window)
            .map(Some)
            .map_err(|_| "bad rate limit")
    }

    fn holds(&mut self) -> Decoded<Vec<HoldSnapshot>> {
        let hold_count = self.u32()? as usize;
        let mut holds = Vec::with_capacity(self.capacity(hold_count, MIN_HOLD_BYTES));
        for _ in 0..hold_count {
            holds.push(HoldSnapshot {
                id: self.hold()?,
                node: self.str()?.into(),
                held: self.cost()?,
                recorded: self.cost()?,
                expires_at: self.time()?,
            });
        }
        Ok(holds)
    }

    fn op(&mut self) -> Decoded<Op> {
        let op = match self.u8()? {
            TAG_SNAPSHOT => self.snapshot()?,
            TAG_CREATE_NODE => self.create_node(Self::limit)?,
            TAG_REMOVE_NODE => Op::RemoveNode { node: self.node()? },
            TAG_RESERVE => Op::Reserve {
                node: self.node()?,
                cost: self.cost()?,
                hold: self.hold()?,
                expires: self.time()?,
            },
            TAG_EXPIRE => Op::Expire { hold: self.hold()? },
            TAG_SET_STATE => Op::SetState {
                node: self.node()?,
                state: self.state()?,
            },
            TAG_EXTEND => Op::Extend {
                hold: self.hold()?,
                expires: self.time()?,
            },
            TAG_RECORD => Op::Record {
                hold: self.hold()?,
                partial: self.cost()?,
            },
            TAG_COMMIT => Op::Commit {
                hold: self.hold()?,
                actual: self.cost()?,
            },
            TAG_RELEASE => Op::Release { hold: self.hold()? },
            TAG_SET_RATE_LIMIT => Op::SetRateLimit {
                node: self.node()?,
                limit: self.rate_limit()?,
            },
            TAG_SET_LIMIT => Op::SetLimit {
                node: self.node()?,
                limit: self.limit()?,
            },
            TAG_REMOVE_LIMIT => Op::RemoveLimit {
                node: self.node()?,
                unit: self.unit()?,
            },
            TAG_CREDIT => Op::Credit {
                node: self.node()?,
                amount: self.amount()?,
            },
            TAG_DEBIT => Op::Debit {
                node: self.node()?,
                amount: self.amount()?,
            },
            TAG_BURN => self.burn_record()?,
            TAG_TOPPED_UP => self.topped_up()?,
            TAG_ROLL => Op::Roll {
                now: self.time()?,
                node: match self.u8()? {
                    0 => None,
                    1 => Some(self.node()?),
                    _ => return Err("bad roll node flag"),
                },
            },
            TAG_PERIODIC => match self.u8()? {
                0 => self.create_node(Self::periodic_limit)?,
                1 => Op::SetLimit {
                    node: self.node()?,
                    limit: self.periodic_limit()?,
                },
                _ => return Err("unknown periodic record"),
            },
            TAG_KEYED => self.keyed()?,
            TAG_REMEMBER => self.remember()?,
            _ => return Err("unknown record type"),
        };
        if self.pos != self.bytes.len() {
            return Err("trailing bytes after a record");
        }
        Ok(op)
    }
}

/// Decodes one record payload.
pub(super) fn decode(payload: &[u8]) -> Result<Op, &'static str> {
    Dec {
        bytes: payload,
        pos: 0,
    }
    .op()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(write: impl FnOnce(&mut Enc<'_>)) -> Op {
        let mut buf = Vec::new();
        push_record(&mut buf, write);
        match read_frame(&buf, 0) {
            Frame::Valid { payload, next } => {
                assert_eq!(next, buf.len());
                decode(payload).expect("decodes")
            }
            other => panic!("bad frame {other:?}"),
        }
    }

    #[test]
    fn header_round_trips_and_rejects_others() {
        assert_eq!(check_header(&header()), HeaderCheck::Ok);
        assert!(matches!(check_header(b""), HeaderCheck::Foreign(_)));
        assert!(matches!(
            check_header(b"SQLite format 3\0"),
            HeaderCheck::Foreign(_)
        ));
        assert!(matches!(check_header(b"BGLED"), HeaderCheck::Damaged(_)));
        let mut newer = header();
        newer[8] = 9;
        let crc = crc32fast::hash(&newer[..12]);
        newer[12..16].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(check_header(&newer), HeaderCheck::Newer(9));
    }

    #[test]
    fn ops_round_trip() {
        let node = NodeId::new(3, 7);
        let hold = HoldId::new(1, 9);
        let cost = Cost::from(Amount::from_minor(5, Unit::Usd))
            .with(Amount::tokens(40))
            .unwrap();
        let expires = Timestamp::from_unix_nanos(1_700_000_060_000_000_000);
        assert_eq!(
            round_trip(|e| e.reserve(node, &cost, hold, expires)),
            Op::Reserve {
                node,
                cost,
                hold,
                expires
            }
        );
        assert_eq!(round_trip(|e| e.expire(hold)), Op::Expire { hold });
        assert_eq!(
            round_trip(|e| e.set_state(node, NodeState::Frozen)),
            Op::SetState {
                node,
                state: NodeState::Frozen
            }
        );
        assert_eq!(
            round_trip(|e| e.extend(hold, expires)),
            Op::Extend { hold, expires }
        );
        let limit = Limit::hard(Amount::from_minor(10, Unit::Usd)).with_overage(
            OveragePolicy::AllowWithOverdraft {
                limit: Amount::from_minor(2, Unit::Usd),
            },
        );
        let limits = Limits(vec![limit, Limit::soft(Amount::tokens(5))]);
        assert_eq!(
            round_trip(|e| e.create_node(Some(node), "agent-7", &limits, node)),
            Op::CreateNode {
                parent: Some(node),
                name: "agent-7".into(),
                limits,
                id: node
            }
        );
        assert_eq!(
            round_trip(|e| e.remove_limit(node, Unit::Requests)),
            Op::RemoveLimit {
                node,
                unit: Unit::Requests
            }
        );
    }

    #[test]
    fn periodic_records_and_snapshot_sections_round_trip() {
        use crate::period::{Period, Rollover};
        let node = NodeId::new(2, 5);
        let now = Timestamp::from_unix_nanos(1_772_971_200_000_000_000);
        assert_eq!(
            round_trip(|e| e.roll(now, None)),
            Op::Roll { now, node: None }
        );
        assert_eq!(
            round_trip(|e| e.roll(now, Some(node))),
            Op::Roll {
                now,
                node: Some(node)
            }
        );
        let periodic = Limit::hard(Amount::from_minor(10, Unit::Usd))
            .per(Period::monthly().in_zone("Europe/Berlin").unwrap())
            .with_rollover(Rollover::CarryForward {
                cap: Amount::from_minor(4, Unit::Usd),
            });
        assert_eq!(
            round_trip(|e| e.set_limit(node, &periodic)),
            Op::SetLimit {
                node,
                limit: periodic
            }
        );
        let limits = Limits(vec![periodic, Limit::soft(Amount::tokens(5))]);
        assert_eq!(
            round_trip(|e| e.create_node(None, "team", &limits, node)),
            Op::CreateNode {
                parent: None,
                name: "team".into(),
                limits,
                id: node
            }
        );
        // A plain limit keeps the old record, readable by builds without periods.
        let mut plain = Vec::new();
        push_record(&mut plain, |e| {
            e.set_limit(node, &Limit::hard(Amount::from_minor(10, Unit::Usd)))
        });
        assert_eq!(plain[FRAME_LEN], TAG_SET_LIMIT);

        let account = AccountSnapshot {
            unit: Unit::Usd,
            limit: Some(periodic),
            spent: Amount::from_minor(3, Unit::Usd),
            reserved: Amount::from_minor(1, Unit::Usd),
            debt: Amount::from_minor(0, Unit::Usd),
            allowance: Some(Amount::from_minor(14, Unit::Usd)),
            resets_at: Some(now),
            further_limits: Vec::new(),
        };
        let snapshot = Snapshot {
            nodes: vec![NodeSnapshot {
                path: "team".into(),
                accounts: vec![account],
                state: NodeState::Active,
                rate_limit: None,
                burn_window: None,
                top_up: None,
            }],
            holds: Vec::new(),
            expired_holds: Vec::new(),
            next_serial: 9,
        };
        match round_trip(|e| e.snapshot(&snapshot, &[node]).unwrap()) {
            Op::Snapshot {
                snapshot: decoded, ..
            } => assert_eq!(decoded, snapshot),
            other => panic!("not a snapshot: {other:?}"),
        }
    }

    #[test]
    fn a_flipped_bit_fails_the_checksum() {
        let mut buf = Vec::new();
        push_record(&mut buf, |e| e.release(HoldId::new(1, 2)));
        for byte in 0..buf.len() {
            let mut damaged = buf.clone();
            damaged[byte] ^= 0x10;
            assert!(
                matches!(read_frame(&damaged, 0), Frame::Invalid(_)),
                "flip at {byte} went unnoticed"
            );
        }
    }
}
