//! Recovery: read a budget file, check it, and replay its records through the ledger.

use std::collections::HashMap;
use std::path::Path;

use super::format::{self, Frame, HeaderCheck, Op};

#[path = "tail.rs"]
mod tail;
use crate::error::Error;
use crate::ids::{HoldId, NodeId};
use crate::ledger::{Lease, Ledger, Outcome};

/// The state rebuilt from a file.
#[derive(Debug)]
pub(super) struct Recovered {
    pub(super) ledger: Ledger,
    /// Records replayed (the snapshot included).
    pub(super) records: usize,
    /// Bytes after the last valid record that were ignored as a torn tail.
    pub(super) torn_bytes: usize,
}

/// Rebuilds the ledger from the complete contents of the file at `path`.
///
/// # Errors
/// `NotABudgetFile`, `UnsupportedVersion` or `Corrupted` naming `path` and the byte offset.
pub(super) fn recover(path: &Path, bytes: &[u8]) -> Result<Recovered, Error> {
    let corrupted = |offset: usize, reason: String| Error::Corrupted {
        path: path.to_path_buf(),
        offset: offset as u64,
        reason,
    };
    match format::check_header(bytes) {
        HeaderCheck::Ok => {}
        HeaderCheck::Foreign(reason) => {
            return Err(Error::NotABudgetFile {
                path: path.to_path_buf(),
                reason,
            });
        }
        HeaderCheck::Newer(found) => {
            return Err(Error::UnsupportedVersion {
                path: path.to_path_buf(),
                found,
                supported: format::VERSION,
            });
        }
        HeaderCheck::Damaged(reason) => return Err(corrupted(0, reason.to_owned())),
    }
    let mut replay = Replay::default();
    let mut offset = format::HEADER_LEN;
    let mut records = 0;
    loop {
        match format::read_frame(bytes, offset) {
            // Every file gets its name with a synced snapshot in it: a header alone is a cut
            // file (or a stale hard link cut off at compaction), not an empty budget.
            Frame::End if records == 0 => {
                return Err(corrupted(
                    offset,
                    "the file ends after its header, without the snapshot record every budget \
                     file starts with"
                        .into(),
                ));
            }
            Frame::End => break,
            Frame::Valid { payload, next } => {
                let op = format::decode(payload).map_err(|why| corrupted(offset, why.into()))?;
                if records == 0 && !matches!(op, Op::Snapshot { .. }) {
                    return Err(corrupted(
                        offset,
                        "the file does not start with a snapshot".into(),
                    ));
                }
                replay
                    .apply(op)
                    .map_err(|why| corrupted(offset, format!("record does not replay: {why}")))?;
                records += 1;
                offset = next;
            }
            Frame::Invalid(why) => {
                // The snapshot at the start is written and synced before the file gets its name,
                // so it is never torn; damage there is corruption.
                if records == 0 {
                    return Err(corrupted(offset, format!("{why} (the snapshot record)")));
                }
                // Appends only ever happen at the end: damage followed by any checksum-valid
                // record is corruption in the middle, never a torn tail.
                if let Some(valid) = tail::first_valid_frame(bytes, offset + 1).found {
                    return Err(corrupted(
                        offset,
                        format!("{why}, and a valid record follows at byte {valid}"),
                    ));
                }
                break;
            }
        }
    }
    Ok(Recovered {
        ledger: replay.finish().map_err(|why| corrupted(offset, why))?,
        records,
        torn_bytes: bytes.len() - offset,
    })
}

/// The ledger being rebuilt, and the ids the writer handed out mapped to the ids this ledger
/// gives the same nodes and holds.
#[derive(Default)]
struct Replay {
    ledger: Ledger,
    nodes: HashMap<NodeId, NodeId>,
    /// Holds whose replayed id differs from the writer's (same serial, another slot).
    holds: HashMap<HoldId, HoldId>,
}

impl Replay {
    fn node(&self, written: NodeId) -> Result<NodeId, String> {
        self.nodes
            .get(&written)
            .copied()
            .ok_or_else(|| format!("unknown node id {written}"))
    }

    fn hold(&self, written: HoldId) -> HoldId {
        self.holds.get(&written).copied().unwrap_or(written)
    }

    fn apply(&mut self, op: Op) -> Result<(), String> {
        match op {
            // The entry names holds by the ids the writer handed out, which the recovered
            // ledger keeps (see `finish`).
            Op::Keyed { key, entry, op } => {
                self.apply(*op)?;
                let hold = match entry.outcome {
                    Outcome::Reserved { hold, .. } => Some(hold),
                    _ => None,
                };
                self.ledger.restore_key(key, entry);
                // A reserve whose hold replays under another id: its end (a commit, release or
                // expiry later in the log) arrives under that id.
                if let Some(hold) = hold
                    && let Some(replayed) = self.holds.get(&hold)
                {
                    self.ledger.alias_key_hold(hold, *replayed);
                }
            }
            Op::Remember { key, entry } => self.ledger.restore_key(key, entry),
            Op::Snapshot { snapshot, node_ids } => {
                if node_ids.len() != snapshot.nodes.len() {
                    return Err("node id table does not match the nodes".into());
                }
                self.ledger = Ledger::from_snapshot(&snapshot).map_err(|e| e.to_string())?;
                self.holds.clear();
                self.nodes.clear();
                for (node, written) in snapshot.nodes.iter().zip(node_ids) {
                    let id = self.ledger.resolve(&node.path).map_err(|e| e.to_string())?;
                    self.nodes.insert(written, id);
                }
            }
            Op::CreateNode {
                parent,
                name,
                limits,
                id,
            } => {
                let parent = parent.map(|p| self.node(p)).transpose()?;
                let created = self
                    .ledger
                    .create_node(parent, &name, &limits)
                    .map_err(|e| e.to_string())?;
                self.nodes.insert(id, created);
            }
            Op::RemoveNode { node } => {
                self.ledger
                    .remove_node(self.node(node)?)
                    .map_err(|e| e.to_string())?;
                self.nodes.remove(&node);
            }
            Op::Reserve {
                node,
                cost,
                hold,
                expires,
            } => {
                let node = self.node(node)?;
                // The reclaims this reserve made were logged before it as expire records.
                let lease = Lease { now: None, expires };
                let granted = self
                    .ledger
                    .reserve_at(node, &cost, lease)
                    .map_err(|e| e.to_string())?;
                if granted.hold != hold {
                    if granted.hold.serial() != hold.serial() {
                        return Err(format!("hold {hold} replays as {}", granted.hold));
                    }
                    self.holds.insert(hold, granted.hold);
                }
            }
            Op::SetState { node, state } => {
                self.ledger
                    .set_state(self.node(node)?, state)
                    .map_err(|e| e.to_string())?;
            }
            Op::Expire { hold } => {
                // The mapping stays: a late commit of the reclaimed hold may follow.
                self.ledger
                    .expire(self.hold(hold))
                    .map_err(|e| e.to_string())?;
            }
            Op::Extend { hold, expires } => {
                self.ledger
                    .extend(self.hold(hold), expires)
                    .map_err(|e| e.to_string())?;
            }
            Op::Record { hold, partial } => {
                let id = self.hold(hold);
                self.ledger
                    .record(id, &partial)
                    .map_err(|e| e.to_string())?;
            }
            Op::Commit { hold, actual } => {
                let id = self.hold(hold);
                match self.ledger.commit(id, &actual) {
                    Ok(_) | Err(Error::OverageRejected { .. }) => {}
                    Err(e) => return Err(e.to_string()),
                }
                self.holds.remove(&hold);
            }
            Op::Release { hold } => {
                let id = self.hold(hold);
                if !self.ledger.release(id).map_err(|e| e.to_string())? {
                    return Err(format!("hold {hold} was not live"));
                }
                self.holds.remove(&hold);
            }
            Op::SetRateLimit { node, limit } => {
                self.ledger
                    .set_rate_limit(self.node(node)?, limit)
                    .map_err(|e| e.to_string())?;
            }
            Op::SetLimit { node, limit } => {
                self.ledger
                    .set_limit(self.node(node)?, limit)
                    .map_err(|e| e.to_string())?;
            }
            Op::RemoveLimit { node, unit } => {
                self.ledger
                    .remove_limit(self.node(node)?, unit)
                    .map_err(|e| e.to_string())?;
            }
            Op::Credit { node, amount } => {
                self.ledger
                    .credit(self.node(node)?, amount)
                    .map_err(|e| e.to_string())?;
            }
            Op::Debit { node, amount } => {
                self.ledger
                    .debit(self.node(node)?, amount)
                    .map_err(|e| e.to_string())?;
            }
            Op::Roll { now, node } => match node {
                // Rolls are pure functions of the books and `now`: replay repeats them exactly.
                None => {
                    self.ledger.roll_periods(now);
                }
                Some(node) => {
                    self.ledger.start_periods(self.node(node)?, now);
                }
            },
            Op::BurnWindow { node, window } => {
                self.ledger
                    .set_burn_window(self.node(node)?, window)
                    .map_err(|e| e.to_string())?;
            }
            Op::TopUpState { node, state } => {
                self.ledger
                    .restore_top_up(self.node(node)?, state)
                    .map_err(|e| e.to_string())?;
            }
            // Logged top-ups are applied as they happened; replay never evaluates a rule.
            Op::ToppedUp {
                node,
                added,
                at,
                armed,
                ..
            } => {
                self.ledger
                    .replay_top_up(self.node(node)?, added, at, armed)
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    /// The rebuilt ledger, with every live hold under the id its writer handed out.
    fn finish(mut self) -> Result<Ledger, String> {
        // Expiries replayed here were reported (or not) by the process that logged them.
        self.ledger.clear_reclaimed();
        // Threshold levels as a restore leaves them, whether or not the ledger is rebuilt from
        // a snapshot below (the file is rewritten as one snapshot after every open anyway).
        self.ledger.settle_alarms();
        if self.holds.is_empty() {
            return Ok(self.ledger);
        }
        let back: HashMap<HoldId, HoldId> = self.holds.iter().map(|(w, r)| (*r, *w)).collect();
        let keys = self.ledger.take_keys();
        let mut snapshot = self.ledger.snapshot();
        for hold in snapshot
            .holds
            .iter_mut()
            .chain(snapshot.expired_holds.iter_mut())
        {
            if let Some(written) = back.get(&hold.id) {
                hold.id = *written;
            }
        }
        let mut ledger = Ledger::from_snapshot(&snapshot).map_err(|e| e.to_string())?;
        ledger.put_keys(keys);
        Ok(ledger)
    }
}
