//! The bytes of a unit's further limits (several limits of one unit on one node, each with its
//! own period): the snapshot section of tag 8, the tag of the set-limit record (see
//! `docs/file-format.md`). Records need nothing new: a create-node or set-limit record already
//! carries any number of (periodic) limits, and replay routes each to its cap.
//!
//! Section 8: `count u32`, then per further limit `node position u32, unit u8, periodic limit,
//! spent i64, allowance i64 (i64::MIN: none), resets_at i64 (i64::MIN: none)`, in the order of
//! the account's further limits.

use super::{Dec, Decoded, Enc, TAG_SET_LIMIT};
use crate::amount::Amount;
use crate::balance::{CapSnapshot, NodeSnapshot, Snapshot};
use crate::clock::Timestamp;

impl Enc<'_> {
    /// The snapshot section of tag 8 (written only when some account has further limits).
    pub(super) fn further_limits_section(&mut self, snapshot: &Snapshot) {
        if !has_further_limits(snapshot) {
            return;
        }
        let entries: Vec<(u32, &CapSnapshot)> = (0u32..)
            .zip(&snapshot.nodes)
            .flat_map(|(position, node)| {
                node.accounts
                    .iter()
                    .flat_map(|account| &account.further_limits)
                    .map(move |cap| (position, cap))
            })
            .collect();
        self.u8(TAG_SET_LIMIT);
        let length_at = self.0.len();
        self.u32(0);
        self.u32(u32::try_from(entries.len()).expect("below 2^32 limits"));
        for (position, cap) in entries {
            self.u32(position);
            self.unit(cap.limit.unit());
            self.periodic_limit(&cap.limit);
            self.i64(cap.spent.minor_units());
            self.i64(cap.allowance.map_or(i64::MIN, Amount::minor_units));
            self.i64(cap.resets_at.map_or(i64::MIN, Timestamp::as_unix_nanos));
        }
        let length = u32::try_from(self.0.len() - length_at - 4).expect("below 4 GiB");
        self.0[length_at..length_at + 4].copy_from_slice(&length.to_le_bytes());
    }
}

impl Dec<'_> {
    /// Reads section 8 into the accounts the main part of the snapshot decoded.
    pub(super) fn further_limits_section(&mut self, nodes: &mut [NodeSnapshot]) -> Decoded<()> {
        for _ in 0..self.u32()? {
            let position = self.u32()? as usize;
            let unit = self.unit()?;
            let limit = self.periodic_limit()?;
            let spent = self.i64()?;
            let allowance = self.i64()?;
            let resets_at = self.i64()?;
            if limit.unit() != unit {
                return Err("further limit in another unit");
            }
            let account = nodes
                .get_mut(position)
                .ok_or("bad further-limit node")?
                .accounts
                .iter_mut()
                .find(|account| account.unit == unit)
                .ok_or("further limit of a missing account")?;
            account.further_limits.push(CapSnapshot {
                limit,
                spent: Amount::from_minor(spent, unit),
                allowance: match allowance {
                    i64::MIN => None,
                    minor if minor >= 0 => Some(Amount::from_minor(minor, unit)),
                    _ => return Err("negative allowance"),
                },
                resets_at: (resets_at != i64::MIN).then_some(Timestamp::from_unix_nanos(resets_at)),
            });
        }
        Ok(())
    }
}

/// Whether a snapshot needs the tag-8 section.
pub(super) fn has_further_limits(snapshot: &Snapshot) -> bool {
    snapshot
        .nodes
        .iter()
        .flat_map(|node| &node.accounts)
        .any(|account| !account.further_limits.is_empty())
}
