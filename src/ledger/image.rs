//! The ledger's complete internal state as plain serde data ([`LedgerImage`]), so that the
//! budget file can store it and rebuild *exactly* the writer's ledger: node slots with their
//! serials and free list, accounts with their further caps, alarms and period ends, the hold
//! slab with serials, the tombstones, the remembered idempotency keys, rate-limit rings, burn
//! buckets, top-up rules and their counters, the cancellation epoch and the id serial.
//!
//! The public [`Snapshot`](crate::Snapshot) is a report, not the books: it renumbers nodes and
//! drops the internals above, so a log of operations replayed on a ledger rebuilt from it would
//! name other ids and could answer differently. The image is the books.
//!
//! The image is a mirror next to the ledger (a child module, so it reads private fields) rather
//! than serde derives on the ledger's own structs: the in-memory layout can change freely, and
//! [`Ledger::from_image`] checks every index, count and cross-reference of hostile bytes before
//! the ledger uses any of them.

mod checks;
mod keys;
#[cfg(test)]
mod tests;
mod top_ups;
pub(crate) mod values;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use self::checks::{check_figures, check_free, check_tree};
use self::keys::{EntryW, entry_from_image, entry_image};
use self::top_ups::{
    TopUpAppliedW, TopUpCappedW, applied_from_image, applied_image, capped_from_image, capped_image,
};
use self::values::{
    BurnWindowW, CostW, ExpiredHoldW, Invalid, LimitW, NodeStateW, RateLimitW, TopUpStateW, at,
    time,
};
use super::accounts::Accounts;
use super::expiry::Tombstone;
use super::rate::RateWindow;
use super::top_up::{BurnTracker, Timed};
use super::tree::MAX_NAME_LEN;
use super::tree::NodeExtras;
use super::{Account, Hold, HoldSlot, Ledger, Node, NodeSlot, period};
use crate::amount::Unit;
use crate::idempotency::IdempotencyKey;
use crate::ids::{HoldId, MAX_LIVE_HOLDS, NodeId};
use crate::node_state::NodeState;
use crate::threshold::Alarm;

/// Most node slots an image may carry (the id's index is a `u32`; this bounds what a hostile
/// file can make the reader allocate per node to what the writer could have made).
const MAX_NODE_SLOTS: usize = MAX_LIVE_HOLDS as usize;

/// Most further caps one unit of one node may have in an image (one per period kind is what
/// anyone sets; the bound only keeps a hostile image from allocating without end).
const MAX_FURTHER_CAPS: usize = 64;

/// The ledger's whole state as plain data (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LedgerImage {
    nodes: Vec<NodeSlotW>,
    free_nodes: Vec<u32>,
    holds: Vec<HoldSlotW>,
    free_holds: Vec<u32>,
    next_serial: u32,
    earliest_expiry: i64,
    reclaimed: Vec<ExpiredHoldW>,
    /// Oldest first.
    tombstones: Vec<(u64, TombstoneW)>,
    restricted: u32,
    epoch: u64,
    rate_limited: u32,
    periods: (i64, i64, u32),
    /// Oldest first.
    keys: Vec<(String, EntryW)>,
    timed: TimedW,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct NodeSlotW {
    serial: u32,
    node: Option<NodeW>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct NodeW {
    path: String,
    parent: Option<u32>,
    children: Vec<u32>,
    /// One per unit, in [`Unit::ALL`] order.
    accounts: Vec<AccountW>,
    live_holds: u32,
    state: NodeStateW,
    /// The limit, stamps and head of the ring.
    rate: Option<(RateLimitW, Vec<i64>, u64)>,
    /// The window, bucket width, buckets and head.
    burn: Option<(BurnWindowW, i64, Vec<Vec<i64>>, i64)>,
    top_up: Option<TopUpStateW>,
}

/// An account: its first cap, and the unit's further caps (which have none of their own, so
/// the type is not recursive and hostile bytes cannot nest it deeper than the stack).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct AccountW {
    cap: CapW,
    more: Option<Vec<CapW>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct CapW {
    limit: Option<LimitW>,
    spent: i64,
    reserved: i64,
    debt: i64,
    alarm: (u8, bool, i64),
    /// The integer caps are not stored: they follow from the limit and `extra`.
    extra: i64,
    period_end: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct HoldSlotW {
    serial: u32,
    /// Node index, held, recorded, deadline; `None` for a free slot.
    hold: Option<(u32, CostW, CostW, i64)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct TombstoneW {
    node: u64,
    held: CostW,
    recorded: CostW,
    expired_at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct TimedW {
    burn_nodes: u32,
    top_up_nodes: u32,
    unreported: Vec<TopUpAppliedW>,
    unreported_caps: Vec<TopUpCappedW>,
    caps_noted: Vec<(u32, i64)>,
    last_now: Option<i64>,
}

impl Ledger {
    /// The ledger's whole state as plain data.
    pub(crate) fn to_image(&self) -> LedgerImage {
        LedgerImage {
            nodes: self.nodes.iter().map(node_slot_image).collect(),
            free_nodes: self.free_nodes.clone(),
            holds: self
                .holds
                .iter()
                .map(|slot| HoldSlotW {
                    serial: slot.serial,
                    hold: slot.hold().map(|hold| {
                        (
                            hold.node,
                            (&hold.held).into(),
                            (&hold.recorded).into(),
                            time(hold.expires),
                        )
                    }),
                })
                .collect(),
            free_holds: self.free_holds.clone(),
            next_serial: self.next_serial,
            earliest_expiry: time(self.earliest_expiry),
            reclaimed: self.reclaimed.iter().map(ExpiredHoldW::from).collect(),
            tombstones: self
                .tombstones
                .iter()
                .map(|(id, tombstone)| {
                    let image = TombstoneW {
                        node: tombstone.node.into_raw(),
                        held: (&tombstone.held).into(),
                        recorded: (&tombstone.recorded).into(),
                        expired_at: time(tombstone.expired_at),
                    };
                    (id.into_raw(), image)
                })
                .collect(),
            restricted: self.restricted,
            epoch: self.epoch.load(Ordering::Acquire),
            rate_limited: self.rate_limited,
            periods: (
                time(self.periods.at),
                time(self.periods.next_end),
                self.periods.unstarted,
            ),
            keys: self
                .remembered_keys()
                .map(|(key, entry)| (key.as_str().to_owned(), entry_image(entry)))
                .collect(),
            timed: TimedW {
                burn_nodes: self.timed.burn_nodes,
                top_up_nodes: self.timed.top_up_nodes,
                unreported: self.timed.unreported.iter().map(applied_image).collect(),
                unreported_caps: self
                    .timed
                    .unreported_caps
                    .iter()
                    .map(capped_image)
                    .collect(),
                caps_noted: self.timed.caps_noted.clone(),
                last_now: self.timed.last_now.map(time),
            },
        }
    }

    /// Rebuilds the ledger an image was taken of, checking every index, count and reference
    /// first (an image may come from a damaged or hostile file).
    ///
    /// # Errors
    /// What is inconsistent, for `Error::Corrupted`.
    pub(crate) fn from_image(image: LedgerImage) -> Result<Ledger, Invalid> {
        let LedgerImage {
            nodes,
            free_nodes,
            holds,
            free_holds,
            next_serial,
            earliest_expiry,
            reclaimed,
            tombstones,
            restricted,
            epoch,
            rate_limited,
            periods,
            keys,
            timed,
        } = image;
        if nodes.len() > MAX_NODE_SLOTS {
            return Err(format!(
                "{} node slots (at most {MAX_NODE_SLOTS})",
                nodes.len()
            ));
        }
        if holds.len() > MAX_LIVE_HOLDS as usize {
            return Err(format!(
                "{} hold slots (at most {MAX_LIVE_HOLDS})",
                holds.len()
            ));
        }
        let mut ledger = Ledger::new();
        ledger.nodes = nodes.into_iter().map(node_slot).collect::<Result<_, _>>()?;
        check_tree(&ledger.nodes)?;
        for (index, slot) in ledger.nodes.iter().enumerate() {
            if let Some(node) = &slot.node {
                let id = NodeId::new(index as u32, slot.serial);
                if ledger.by_path.insert(node.path.clone(), id).is_some() {
                    return Err(format!("two nodes at path {:?}", node.path));
                }
            }
        }
        check_free(&free_nodes, ledger.nodes.len(), |i| {
            ledger.nodes[i].node.is_none()
        })?;
        ledger.free_nodes = free_nodes;
        let mut live = vec![0u32; ledger.nodes.len()];
        ledger.holds = holds
            .into_iter()
            .map(|slot| {
                let Some((node, held, recorded, expires)) = slot.hold else {
                    return Ok(HoldSlot::free(slot.serial));
                };
                let count = live
                    .get_mut(node as usize)
                    .filter(|_| ledger.nodes[node as usize].node.is_some())
                    .ok_or_else(|| format!("a hold on node slot {node}, which is not live"))?;
                *count += 1;
                let hold = Hold {
                    node,
                    held: held.into_cost()?,
                    recorded: recorded.into_cost()?,
                    expires: at(expires),
                };
                Ok(HoldSlot::live(slot.serial, &hold))
            })
            .collect::<Result<_, Invalid>>()?;
        for (slot, count) in ledger.nodes.iter().zip(&live) {
            if let Some(node) = &slot.node
                && node.live_holds != *count
            {
                return Err(format!(
                    "node {:?} counts the wrong number of holds",
                    node.path
                ));
            }
        }
        check_free(&free_holds, ledger.holds.len(), |i| {
            !ledger.holds[i].is_live()
        })?;
        check_figures(&ledger)?;
        ledger.free_holds = free_holds;
        ledger.next_serial = next_serial;
        ledger.earliest_expiry = at(earliest_expiry);
        ledger.reclaimed = reclaimed
            .into_iter()
            .map(ExpiredHoldW::into_expired)
            .collect::<Result<_, _>>()?;
        for (id, tombstone) in tombstones {
            let tombstone = Tombstone {
                node: NodeId::from_raw(tombstone.node),
                held: tombstone.held.into_cost()?,
                recorded: tombstone.recorded.into_cost()?,
                expired_at: at(tombstone.expired_at),
            };
            ledger.tombstones.insert(HoldId::from_raw(id), tombstone);
        }
        let counted = |test: fn(&Node) -> bool| {
            ledger
                .nodes
                .iter()
                .filter_map(|slot| slot.node.as_ref())
                .filter(|node| test(node))
                .count()
        };
        if restricted as usize != counted(|node| node.state != NodeState::Active)
            || rate_limited as usize != counted(|node| node.extras().rate.is_some())
            || timed.burn_nodes as usize != counted(|node| node.extras().burn.is_some())
            || timed.top_up_nodes as usize != counted(|node| node.extras().top_up.is_some())
        {
            return Err("node counters do not match the nodes".into());
        }
        ledger.restricted = restricted;
        ledger.rate_limited = rate_limited;
        ledger.epoch = Arc::new(AtomicU64::new(epoch));
        ledger.periods = period::Due {
            at: at(periods.0),
            next_end: at(periods.1),
            unstarted: periods.2,
        };
        for (key, entry) in keys {
            let key = IdempotencyKey::new(key).map_err(|e| e.to_string())?;
            ledger.restore_key(key, entry_from_image(entry)?);
        }
        ledger.timed = Timed {
            burn_nodes: timed.burn_nodes,
            top_up_nodes: timed.top_up_nodes,
            cell: Arc::new(AtomicU32::new(
                timed.burn_nodes.saturating_add(timed.top_up_nodes),
            )),
            unreported: timed
                .unreported
                .into_iter()
                .map(applied_from_image)
                .collect::<Result<_, _>>()?,
            unreported_caps: timed
                .unreported_caps
                .into_iter()
                .map(capped_from_image)
                .collect::<Result<_, _>>()?,
            caps_noted: timed.caps_noted,
            last_now: timed.last_now.map(at),
        };
        Ok(ledger)
    }
}

fn node_slot_image(slot: &NodeSlot) -> NodeSlotW {
    NodeSlotW {
        serial: slot.serial,
        node: slot.node.as_ref().map(|node| NodeW {
            path: node.path.to_string(),
            parent: node.parent,
            children: node.children().to_vec(),
            accounts: node.accounts.iter().map(account_image).collect(),
            live_holds: node.live_holds,
            state: node.state.into(),
            rate: node.extras().rate.as_deref().map(|rate| {
                let limit = (&rate.limit).into();
                (limit, rate.stamps.clone(), rate.head as u64)
            }),
            burn: node.extras().burn.as_deref().map(|burn| {
                let buckets = burn.buckets.iter().map(|bucket| bucket.to_vec()).collect();
                ((&burn.window).into(), burn.width, buckets, burn.head)
            }),
            top_up: node.extras().top_up.as_deref().map(TopUpStateW::from),
        }),
    }
}

fn account_image(account: &Account) -> AccountW {
    AccountW {
        cap: cap_image(account),
        more: account
            .more()
            .map(|more| more.iter().map(cap_image).collect()),
    }
}

fn cap_image(account: &Account) -> CapW {
    CapW {
        limit: account.limit().as_ref().map(LimitW::from),
        spent: account.spent,
        reserved: account.reserved,
        debt: account.debt,
        alarm: account.alarm.to_parts(),
        extra: account.extra(),
        period_end: time(account.period_end()),
    }
}

fn node_slot(slot: NodeSlotW) -> Result<NodeSlot, Invalid> {
    let Some(node) = slot.node else {
        return Ok(NodeSlot {
            serial: slot.serial,
            node: None,
        });
    };
    if node.path.is_empty() || node.path.split('/').any(|name| name.len() > MAX_NAME_LEN) {
        return Err(format!("bad node path {:?}", node.path));
    }
    if node.accounts.len() != Unit::COUNT {
        return Err(format!(
            "node {:?} has {} accounts",
            node.path,
            node.accounts.len()
        ));
    }
    let mut accounts = Unit::ALL.map(Account::unused);
    for ((slot, account), unit) in accounts.iter_mut().zip(node.accounts).zip(Unit::ALL) {
        *slot = account_from_image(account, unit)?;
    }
    let rate = node
        .rate
        .map(|(limit, stamps, head)| {
            let limit = limit.into_rate_limit()?;
            if stamps.len() != limit.requests() as usize || head >= stamps.len() as u64 {
                return Err(format!("bad rate-limit ring on {:?}", node.path));
            }
            Ok(Box::new(RateWindow {
                limit,
                stamps,
                head: head as usize,
            }))
        })
        .transpose()?;
    let burn = node
        .burn
        .map(|(window, width, buckets, head)| {
            let window = window.into_window()?;
            // The newest bucket is `i64::MIN` (none yet) or a time divided by the width, so
            // that bucket arithmetic with later times cannot overflow.
            let head_in_range = head == i64::MIN || head.unsigned_abs() <= (i64::MAX / 2) as u64;
            if width != window.width_nanos()
                || !head_in_range
                || buckets.len() != usize::from(window.buckets())
                || buckets.iter().any(|bucket| bucket.len() != Unit::COUNT)
            {
                return Err(format!("bad burn buckets on {:?}", node.path));
            }
            let buckets = buckets
                .into_iter()
                .map(|bucket| {
                    let mut row = [0; Unit::COUNT];
                    row.copy_from_slice(&bucket);
                    row
                })
                .collect();
            Ok(Box::new(BurnTracker {
                window,
                width,
                buckets,
                head,
            }))
        })
        .transpose()?;
    let top_up = node
        .top_up
        .map(|state| state.into_state().map(Box::new))
        .transpose()?;
    Ok(NodeSlot {
        serial: slot.serial,
        node: Some(Node {
            path: Arc::from(node.path),
            parent: node.parent,
            accounts: Accounts::new(accounts),
            live_holds: node.live_holds,
            state: node.state.into(),
            // Boxed only when there is something to keep, as a live node does.
            extras: (!node.children.is_empty()
                || rate.is_some()
                || burn.is_some()
                || top_up.is_some())
            .then(|| {
                Box::new(NodeExtras {
                    children: node.children,
                    rate,
                    burn,
                    top_up,
                })
            }),
        }),
    })
}

fn account_from_image(image: AccountW, unit: Unit) -> Result<Account, Invalid> {
    let mut account = cap_from_image(image.cap, unit)?;
    let more = match image.more {
        Some(more) if more.len() > MAX_FURTHER_CAPS => {
            return Err(format!("{} further caps on one unit", more.len()));
        }
        Some(more) => Some(
            more.into_iter()
                .map(|cap| cap_from_image(cap, unit))
                .collect::<Result<Box<[Account]>, _>>()?,
        ),
        None => None,
    };
    account.set_more(more);
    account.refresh_caps();
    Ok(account)
}

fn cap_from_image(image: CapW, unit: Unit) -> Result<Account, Invalid> {
    let (crossed, holds, up) = image.alarm;
    let limit = image.limit.map(LimitW::into_limit).transpose()?;
    if limit
        .as_ref()
        .is_some_and(|limit| limit.amount().unit() != unit)
    {
        return Err(format!("a limit in another unit on the {unit:?} account"));
    }
    let mut account = Account::unused(unit);
    account.set_limit(limit);
    account.set_extra(image.extra);
    account.set_period_end(at(image.period_end));
    account.spent = image.spent;
    account.reserved = image.reserved;
    account.debt = image.debt;
    account.alarm = Alarm::from_parts(crossed, holds, up);
    account.refresh_caps();
    Ok(account)
}
