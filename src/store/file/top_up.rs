//! The bytes of burn-rate windows and auto top-ups (record tags 20 and 21, and the snapshot
//! section of tag 20; see `docs/file-format.md`).
//!
//! * Tag 20, kind 0: a node's burn window (`buckets u16`, 0 for none, `window i64` nanos).
//! * Tag 20, kind 1: a node's top-up rule state as it is now (set, removed, or re-armed). The
//!   rule's window is `i64` nanos (0 for none), or `-1` followed by a calendar period (`u8`
//!   kind, zone string, `i64` window, `i64` anchor, as for periodic limits) for
//!   `TopUp::per_period`.
//! * Tag 21: a top-up applied at a logged time, with whether the rule stayed armed; replay
//!   credits the node and counts it without evaluating the rule.
//! * Snapshot section 20: every node's burn window and top-up state, by node position.

use std::time::Duration;

use super::{Dec, Decoded, Enc, Op, period_codec};
use crate::amount::Amount;
use crate::balance::{NodeSnapshot, Snapshot};
use crate::burn::BurnWindow;
use crate::clock::Timestamp;
use crate::ids::NodeId;
use crate::ledger::TopUpLog;
use crate::top_up::{TopUp, TopUpReason, TopUpSnapshot};

/// A node's burn window or top-up rule state.
pub(super) const TAG_BURN: u8 = 20;
/// A top-up applied.
pub(super) const TAG_TOPPED_UP: u8 = 21;
/// In a top-up rule's window field: a calendar period follows.
const CALENDAR_WINDOW: i64 = -1;

impl Enc<'_> {
    fn burn_window(&mut self, window: Option<&BurnWindow>) {
        self.u16(window.map_or(0, BurnWindow::buckets));
        self.i64(window.map_or(0, BurnWindow::window_nanos));
    }

    fn top_up_state(&mut self, state: Option<&TopUpSnapshot>) {
        let Some(state) = state else {
            self.u8(0);
            return;
        };
        self.u8(1);
        let rule = &state.rule;
        self.amount(rule.threshold());
        self.i64(rule.amount().minor_units());
        self.u32(rule.max_count().unwrap_or(0));
        self.i64(rule.max_total().map_or(-1, Amount::minor_units));
        match rule.calendar_period() {
            Some(period) => {
                self.i64(CALENDAR_WINDOW);
                self.period(&period);
            }
            None => self.i64(rule.period_nanos().unwrap_or(0)),
        }
        self.i64(rule.horizon_nanos().unwrap_or(0));
        self.u32(state.count);
        self.i64(state.total.minor_units());
        self.i64(state.window);
        self.u8(u8::from(state.armed));
    }

    pub(in super::super) fn set_burn_window(&mut self, node: NodeId, window: Option<&BurnWindow>) {
        self.u8(TAG_BURN);
        self.u64(node.into_raw());
        self.u8(0);
        self.burn_window(window);
    }

    pub(in super::super) fn set_top_up_state(
        &mut self,
        node: NodeId,
        state: Option<&TopUpSnapshot>,
    ) {
        self.u8(TAG_BURN);
        self.u64(node.into_raw());
        self.u8(1);
        self.top_up_state(state);
    }

    /// One entry of the ledger's top-up log.
    pub(in super::super) fn top_up_log(&mut self, entry: &TopUpLog) {
        match entry {
            TopUpLog::Applied {
                node,
                added,
                at,
                reason,
                armed,
            } => {
                self.u8(TAG_TOPPED_UP);
                self.u64(node.into_raw());
                self.amount(*added);
                self.time(*at);
                self.u8(reason.code());
                self.u8(u8::from(*armed));
            }
            TopUpLog::State { node, state } => self.set_top_up_state(*node, Some(state)),
        }
    }

    /// The snapshot section of tag 20 (written only when a node has a window or a rule).
    pub(super) fn burn_section(&mut self, snapshot: &Snapshot) {
        let timed: Vec<(u32, &NodeSnapshot)> = (0u32..)
            .zip(&snapshot.nodes)
            .filter(|(_, node)| node.burn_window.is_some() || node.top_up.is_some())
            .collect();
        if timed.is_empty() {
            return;
        }
        self.u8(TAG_BURN);
        let length_at = self.0.len();
        self.u32(0);
        self.u32(u32::try_from(timed.len()).expect("below 2^32 nodes"));
        for (position, node) in timed {
            self.u32(position);
            self.burn_window(node.burn_window.as_ref());
            self.top_up_state(node.top_up.as_ref());
        }
        let length = u32::try_from(self.0.len() - length_at - 4).expect("below 4 GiB");
        self.0[length_at..length_at + 4].copy_from_slice(&length.to_le_bytes());
    }
}

/// Whether a snapshot needs the tag-20 section.
pub(super) fn has_burn_section(snapshot: &Snapshot) -> bool {
    snapshot
        .nodes
        .iter()
        .any(|node| node.burn_window.is_some() || node.top_up.is_some())
}

impl Dec<'_> {
    fn burn_window(&mut self) -> Decoded<Option<BurnWindow>> {
        let buckets = self.u16()?;
        let nanos = self.i64()?;
        if buckets == 0 {
            return Ok(None);
        }
        let window = Duration::from_nanos(u64::try_from(nanos).map_err(|_| "bad burn window")?);
        BurnWindow::with_buckets(window, buckets)
            .map(Some)
            .map_err(|_| "bad burn window")
    }

    fn duration(&mut self) -> Decoded<Option<Duration>> {
        let nanos = self.i64()?;
        match nanos {
            0 => Ok(None),
            n if n > 0 => Ok(Some(Duration::from_nanos(n.unsigned_abs()))),
            _ => Err("negative duration in a top-up rule"),
        }
    }

    fn top_up_state(&mut self) -> Decoded<Option<TopUpSnapshot>> {
        match self.u8()? {
            0 => return Ok(None),
            1 => {}
            _ => return Err("bad top-up flag"),
        }
        let below = self.amount()?;
        let unit = below.unit();
        let mut rule = TopUp::when_below(below).adding(self.amount_in(unit)?);
        let count = self.u32()?;
        if count > 0 {
            rule = rule.at_most(count);
        }
        let total = self.i64()?;
        if total >= 0 {
            rule = rule.at_most_total(Amount::from_minor(total, unit));
        } else if total != -1 {
            return Err("bad top-up total cap");
        }
        match self.i64()? {
            0 => {}
            CALENDAR_WINDOW => {
                let code = self.u8()?;
                let zone = self.str()?;
                let nanos = self.i64()?;
                let anchor = self.i64()?;
                rule = rule.per_period(period_codec::from_parts(code, zone, nanos, anchor)?);
            }
            nanos if nanos > 0 => rule = rule.per(Duration::from_nanos(nanos.unsigned_abs())),
            _ => return Err("negative window in a top-up rule"),
        }
        if let Some(horizon) = self.duration()? {
            rule = rule.predictive(horizon);
        }
        rule.validate().map_err(|_| "invalid top-up rule")?;
        let mut state = TopUpSnapshot::new(rule);
        state.count = self.u32()?;
        state.total = self.amount_in(unit)?;
        state.window = self.i64()?;
        state.armed = match self.u8()? {
            0 => false,
            1 => true,
            _ => return Err("bad armed flag"),
        };
        Ok(Some(state))
    }

    /// The payload of a tag-20 record.
    pub(super) fn burn_record(&mut self) -> Decoded<Op> {
        let node = self.node()?;
        match self.u8()? {
            0 => Ok(Op::BurnWindow {
                node,
                window: self.burn_window()?,
            }),
            1 => Ok(Op::TopUpState {
                node,
                state: self.top_up_state()?,
            }),
            _ => Err("unknown burn record kind"),
        }
    }

    /// The payload of a tag-21 record.
    pub(super) fn topped_up(&mut self) -> Decoded<Op> {
        let node = self.node()?;
        let added = self.amount()?;
        if added.is_zero() {
            return Err("a zero top-up");
        }
        let at: Timestamp = self.time()?;
        let reason = TopUpReason::from_code(self.u8()?).ok_or("unknown top-up reason")?;
        let armed = match self.u8()? {
            0 => false,
            1 => true,
            _ => return Err("bad armed flag"),
        };
        Ok(Op::ToppedUp {
            node,
            added,
            at,
            reason,
            armed,
        })
    }

    /// The snapshot section of tag 20.
    pub(super) fn burn_section(&mut self, nodes: &mut [NodeSnapshot]) -> Decoded<()> {
        for _ in 0..self.u32()? {
            let position = self.u32()? as usize;
            let window = self.burn_window()?;
            let state = self.top_up_state()?;
            let node = nodes.get_mut(position).ok_or("bad burn node")?;
            node.burn_window = window;
            node.top_up = state;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Frame, decode, push_record, read_frame};
    use super::*;
    use crate::amount::Unit;
    use crate::balance::AccountSnapshot;
    use crate::node_state::NodeState;
    use crate::policy::Limit;

    fn round_trip(write: impl FnOnce(&mut Enc<'_>)) -> (Vec<u8>, Op) {
        let mut buf = Vec::new();
        push_record(&mut buf, write);
        match read_frame(&buf, 0) {
            Frame::Valid { payload, .. } => {
                let op = decode(payload).expect("decodes");
                (buf, op)
            }
            other => panic!("bad frame {other:?}"),
        }
    }

    fn rule() -> TopUp {
        let usd = |minor| Amount::from_minor(minor, Unit::Usd);
        TopUp::when_below(usd(5))
            .adding(usd(7))
            .at_most(3)
            .at_most_total(usd(21))
            .per(Duration::from_secs(60))
            .predictive(Duration::from_secs(30))
    }

    #[test]
    fn records_round_trip() {
        let node = NodeId::new(2, 9);
        let window = BurnWindow::with_buckets(Duration::from_secs(90), 9).unwrap();
        let (_, op) = round_trip(|e| e.set_burn_window(node, Some(&window)));
        assert_eq!(
            op,
            Op::BurnWindow {
                node,
                window: Some(window)
            }
        );
        let (_, op) = round_trip(|e| e.set_burn_window(node, None));
        assert_eq!(op, Op::BurnWindow { node, window: None });
        let mut state = TopUpSnapshot::new(rule());
        state.count = 2;
        state.total = Amount::from_minor(14, Unit::Usd);
        state.window = 28_333_333;
        state.armed = false;
        let (_, op) = round_trip(|e| e.top_up_log(&TopUpLog::State { node, state }));
        assert_eq!(
            op,
            Op::TopUpState {
                node,
                state: Some(state)
            }
        );
        let at = Timestamp::from_unix_nanos(1_700_000_000_000_000_000);
        let applied = TopUpLog::Applied {
            node,
            added: Amount::from_minor(7, Unit::Usd),
            at,
            reason: TopUpReason::Projected,
            armed: true,
        };
        let (mut bytes, op) = round_trip(|e| e.top_up_log(&applied));
        assert_eq!(
            op,
            Op::ToppedUp {
                node,
                added: Amount::from_minor(7, Unit::Usd),
                at,
                reason: TopUpReason::Projected,
                armed: true
            }
        );
        // A zero top-up is damage, not a record.
        let payload = super::super::FRAME_LEN;
        bytes[payload + 1 + 8 + 1..payload + 1 + 8 + 9].copy_from_slice(&0i64.to_le_bytes());
        assert!(decode(&bytes[payload..]).is_err());
    }

    #[test]
    fn snapshots_carry_the_section_only_when_needed() {
        let account = AccountSnapshot {
            unit: Unit::Usd,
            limit: Some(Limit::hard(Amount::from_minor(10, Unit::Usd))),
            spent: Amount::from_minor(3, Unit::Usd),
            reserved: Amount::from_minor(0, Unit::Usd),
            debt: Amount::from_minor(0, Unit::Usd),
            allowance: None,
            resets_at: None,
            further_limits: Vec::new(),
        };
        let plain = Snapshot {
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
            next_serial: 4,
        };
        let node = NodeId::new(0, 1);
        let (plain_bytes, op) = round_trip(|e| e.snapshot(&plain, &[node]).unwrap());
        assert!(matches!(op, Op::Snapshot { snapshot, .. } if snapshot == plain));
        let mut timed = plain.clone();
        timed.nodes[0].burn_window = Some(BurnWindow::new(Duration::from_secs(60)).unwrap());
        timed.nodes[0].top_up = Some(TopUpSnapshot::new(rule()));
        let (timed_bytes, op) = round_trip(|e| e.snapshot(&timed, &[node]).unwrap());
        assert!(matches!(op, Op::Snapshot { snapshot, .. } if snapshot == timed));
        assert!(
            timed_bytes.len() > plain_bytes.len(),
            "the section is written only for nodes with a window or a rule"
        );
    }
}
