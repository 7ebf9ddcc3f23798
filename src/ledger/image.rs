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

pub(crate) mod values;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use self::values::{
    AmountW, BurnWindowW, CostW, ExpiredHoldW, Invalid, LimitW, NodeStateW, RateLimitW,
    TopUpStateW, at, time,
};
use super::expiry::Tombstone;
use super::idempotency::{Entry, Outcome, Request};
use super::rate::RateWindow;
use super::top_up::{BurnTracker, Timed};
use super::{Account, Hold, HoldSlot, Ledger, MAX_NAME_LEN, Node, NodeSlot, period};
use crate::amount::Unit;
use crate::idempotency::{HoldEnd, IdempotencyKey};
use crate::ids::{HoldId, MAX_LIVE_HOLDS, NodeId};
use crate::node_state::NodeState;
use crate::threshold::Alarm;
use crate::top_up::{TopUpApplied, TopUpCap, TopUpCapped, TopUpReason};

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
struct EntryW {
    at: i64,
    request: RequestW,
    outcome: OutcomeW,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum RequestW {
    Reserve(String, CostW, u64),
    ReserveUpTo(String, AmountW, AmountW, u64),
    Commit(u64, CostW),
    Release(u64),
    Credit(String, AmountW),
    Debit(String, AmountW),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum HoldEndW {
    Committed,
    Released,
    Expired,
    Unrecorded,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum OutcomeW {
    Reserved {
        hold: u64,
        held: CostW,
        over_soft_limit: Option<String>,
        expires_at: i64,
        ended: Option<HoldEndW>,
    },
    Committed {
        spent: CostW,
        returned: CostW,
        overage: CostW,
        expired: bool,
    },
    OverageRejected {
        node: String,
        held: AmountW,
        actual: AmountW,
        debt: AmountW,
    },
    Released(bool),
    Funded,
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum ReasonW {
    Below,
    Projected,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct TopUpAppliedW {
    node: String,
    added: AmountW,
    limit: AmountW,
    remaining: AmountW,
    reason: ReasonW,
    applied_at: i64,
    count: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum TopUpCapW {
    Count(u32),
    Total(AmountW),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct TopUpCappedW {
    node: String,
    cap: TopUpCapW,
    reason: ReasonW,
    wanted: AmountW,
    count: u32,
    total: AmountW,
    remaining: AmountW,
    window_ends_at: Option<i64>,
    capped_at: i64,
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
            || rate_limited as usize != counted(|node| node.rate.is_some())
            || timed.burn_nodes as usize != counted(|node| node.burn.is_some())
            || timed.top_up_nodes as usize != counted(|node| node.top_up.is_some())
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
            children: node.children.clone(),
            accounts: node.accounts.iter().map(account_image).collect(),
            live_holds: node.live_holds,
            state: node.state.into(),
            rate: node.rate.as_deref().map(|rate| {
                let limit = (&rate.limit).into();
                (limit, rate.stamps.clone(), rate.head as u64)
            }),
            burn: node.burn.as_deref().map(|burn| {
                let buckets = burn.buckets.iter().map(|bucket| bucket.to_vec()).collect();
                ((&burn.window).into(), burn.width, buckets, burn.head)
            }),
            top_up: node.top_up.as_deref().map(TopUpStateW::from),
        }),
    }
}

fn account_image(account: &Account) -> AccountW {
    AccountW {
        cap: cap_image(account),
        more: account
            .more
            .as_deref()
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
        extra: account.extra,
        period_end: time(account.period_end),
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
    let mut accounts: [Account; Unit::COUNT] = Default::default();
    for (slot, account) in accounts.iter_mut().zip(node.accounts) {
        *slot = account_from_image(account)?;
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
            if width != window.width_nanos()
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
            children: node.children,
            accounts,
            live_holds: node.live_holds,
            state: node.state.into(),
            rate,
            burn,
            top_up,
        }),
    })
}

fn account_from_image(image: AccountW) -> Result<Account, Invalid> {
    let mut account = cap_from_image(image.cap)?;
    account.more = match image.more {
        Some(more) if more.len() > MAX_FURTHER_CAPS => {
            return Err(format!("{} further caps on one unit", more.len()));
        }
        Some(more) => Some(
            more.into_iter()
                .map(cap_from_image)
                .collect::<Result<Box<[Account]>, _>>()?,
        ),
        None => None,
    };
    Ok(account)
}

fn cap_from_image(image: CapW) -> Result<Account, Invalid> {
    let (crossed, holds, up) = image.alarm;
    let mut account = Account {
        limit_box: image
            .limit
            .map(LimitW::into_limit)
            .transpose()?
            .map(Box::new),
        spent: image.spent,
        reserved: image.reserved,
        debt: image.debt,
        alarm: Alarm::from_parts(crossed, holds, up),
        extra: image.extra,
        period_end: at(image.period_end),
        ..Account::default()
    };
    account.refresh_caps();
    Ok(account)
}

/// What the holds reserve on each node and unit (every hold reserves its outstanding part on
/// its node and every ancestor) must be what the accounts say, on every cap; and each account's
/// figures must pass the checks a restore makes.
fn check_figures(ledger: &Ledger) -> Result<(), Invalid> {
    let mut expected = vec![[0i64; Unit::COUNT]; ledger.nodes.len()];
    for hold in ledger.holds.iter().filter_map(HoldSlot::hold) {
        for unit in hold.held.units() {
            let (held, recorded) = (hold.held.minor(unit), hold.recorded.minor(unit));
            if recorded < 0 || recorded > held || !hold.recorded.units().all(|u| hold.held.has(u)) {
                return Err(format!("a hold records {recorded} of {held} {unit}"));
            }
            let mut at = Some(hold.node);
            while let Some(index) = at {
                let sum = &mut expected[index as usize][unit.index()];
                *sum = sum
                    .checked_add(held - recorded)
                    .ok_or("holds reserve more than an i64")?;
                at = ledger.nodes[index as usize]
                    .node
                    .as_ref()
                    .and_then(|node| node.parent);
            }
        }
    }
    for (slot, expected) in ledger.nodes.iter().zip(&expected) {
        let Some(node) = &slot.node else { continue };
        for unit in Unit::ALL {
            let account = &node.accounts[unit.index()];
            let reserved = expected[unit.index()];
            if account.caps().any(|cap| cap.reserved != reserved) {
                return Err(format!(
                    "{} reserves {} {unit} but its holds add up to {reserved}",
                    node.path, account.reserved
                ));
            }
            super::snapshot::check_account(&node.path, unit, account).map_err(|e| e.to_string())?;
            if account
                .extras()
                .iter()
                .any(|cap| cap.spent < 0 || cap.limit().is_none())
            {
                return Err(format!("{}: a bad further {unit} cap", node.path));
            }
        }
    }
    Ok(())
}

/// Every parent and child index names a live node, each child names its parent back, and
/// following parents always ends at a root.
fn check_tree(nodes: &[NodeSlot]) -> Result<(), Invalid> {
    let live = |index: u32| {
        nodes
            .get(index as usize)
            .and_then(|slot| slot.node.as_ref())
    };
    // Every child names its parent back (below), so equal totals leave no room for a child
    // listed twice.
    let live_nodes = nodes.iter().filter_map(|slot| slot.node.as_ref());
    let children: usize = live_nodes.clone().map(|node| node.children.len()).sum();
    if children != live_nodes.filter(|node| node.parent.is_some()).count() {
        return Err("a child is listed twice, or a node is missing from its parent".into());
    }
    for (index, slot) in nodes.iter().enumerate() {
        let Some(node) = &slot.node else { continue };
        if let Some(parent) = node.parent {
            let parent =
                live(parent).ok_or_else(|| format!("{:?} has a dead parent", node.path))?;
            if !parent.children.contains(&(index as u32)) {
                return Err(format!(
                    "{:?} is not among its parent's children",
                    node.path
                ));
            }
        }
        for child in &node.children {
            let child = live(*child).ok_or_else(|| format!("{:?} has a dead child", node.path))?;
            if child.parent != Some(index as u32) {
                return Err(format!("a child of {:?} names another parent", node.path));
            }
        }
        // A cycle never reaches a root: give up after as many steps as there are slots.
        let mut at = node.parent;
        let mut steps = 0;
        while let Some(parent) = at {
            steps += 1;
            if steps > nodes.len() {
                return Err(format!("{:?} is its own ancestor", node.path));
            }
            at = live(parent).and_then(|parent| parent.parent);
        }
    }
    Ok(())
}

/// A free list names distinct free slots within `len`.
fn check_free(free: &[u32], len: usize, is_free: impl Fn(usize) -> bool) -> Result<(), Invalid> {
    let mut seen = vec![false; len];
    for index in free {
        let index = *index as usize;
        if index >= len || !is_free(index) || std::mem::replace(&mut seen[index], true) {
            return Err(format!("bad free-list entry {index}"));
        }
    }
    Ok(())
}

fn entry_image(entry: &Entry) -> EntryW {
    EntryW {
        at: time(entry.at),
        request: match &entry.request {
            Request::Reserve {
                node,
                cost,
                ttl_nanos,
            } => RequestW::Reserve(node.to_string(), cost.into(), *ttl_nanos),
            Request::ReserveUpTo {
                node,
                min,
                max,
                ttl_nanos,
            } => RequestW::ReserveUpTo(node.to_string(), (*min).into(), (*max).into(), *ttl_nanos),
            Request::Commit { hold, actual } => RequestW::Commit(hold.into_raw(), actual.into()),
            Request::Release { hold } => RequestW::Release(hold.into_raw()),
            Request::Credit { node, amount } => {
                RequestW::Credit(node.to_string(), (*amount).into())
            }
            Request::Debit { node, amount } => RequestW::Debit(node.to_string(), (*amount).into()),
        },
        outcome: match &entry.outcome {
            Outcome::Reserved {
                hold,
                held,
                over_soft_limit,
                expires_at,
                ended,
            } => OutcomeW::Reserved {
                hold: hold.into_raw(),
                held: held.into(),
                over_soft_limit: over_soft_limit.as_deref().map(str::to_owned),
                expires_at: time(*expires_at),
                ended: ended.map(|how| match how {
                    HoldEnd::Committed => HoldEndW::Committed,
                    HoldEnd::Released => HoldEndW::Released,
                    HoldEnd::Expired => HoldEndW::Expired,
                    _ => HoldEndW::Unrecorded,
                }),
            },
            Outcome::Committed {
                spent,
                returned,
                overage,
                expired,
            } => OutcomeW::Committed {
                spent: spent.into(),
                returned: returned.into(),
                overage: overage.into(),
                expired: *expired,
            },
            Outcome::OverageRejected {
                node,
                held,
                actual,
                debt,
            } => OutcomeW::OverageRejected {
                node: node.to_string(),
                held: (*held).into(),
                actual: (*actual).into(),
                debt: (*debt).into(),
            },
            Outcome::Released(released) => OutcomeW::Released(*released),
            Outcome::Funded => OutcomeW::Funded,
        },
    }
}

fn entry_from_image(entry: EntryW) -> Result<Entry, Invalid> {
    let request = match entry.request {
        RequestW::Reserve(node, cost, ttl_nanos) => Request::Reserve {
            node: Arc::from(node),
            cost: cost.into_cost()?,
            ttl_nanos,
        },
        RequestW::ReserveUpTo(node, min, max, ttl_nanos) => Request::ReserveUpTo {
            node: Arc::from(node),
            min: min.into_amount()?,
            max: max.into_amount()?,
            ttl_nanos,
        },
        RequestW::Commit(hold, actual) => Request::Commit {
            hold: HoldId::from_raw(hold),
            actual: actual.into_cost()?,
        },
        RequestW::Release(hold) => Request::Release {
            hold: HoldId::from_raw(hold),
        },
        RequestW::Credit(node, amount) => Request::Credit {
            node: Arc::from(node),
            amount: amount.into_amount()?,
        },
        RequestW::Debit(node, amount) => Request::Debit {
            node: Arc::from(node),
            amount: amount.into_amount()?,
        },
    };
    let outcome = match entry.outcome {
        OutcomeW::Reserved {
            hold,
            held,
            over_soft_limit,
            expires_at,
            ended,
        } => Outcome::Reserved {
            hold: HoldId::from_raw(hold),
            held: held.into_cost()?,
            over_soft_limit: over_soft_limit.map(Arc::from),
            expires_at: at(expires_at),
            ended: ended.map(|how| match how {
                HoldEndW::Committed => HoldEnd::Committed,
                HoldEndW::Released => HoldEnd::Released,
                HoldEndW::Expired => HoldEnd::Expired,
                HoldEndW::Unrecorded => HoldEnd::Unrecorded,
            }),
        },
        OutcomeW::Committed {
            spent,
            returned,
            overage,
            expired,
        } => Outcome::Committed {
            spent: spent.into_cost()?,
            returned: returned.into_cost()?,
            overage: overage.into_cost()?,
            expired,
        },
        OutcomeW::OverageRejected {
            node,
            held,
            actual,
            debt,
        } => Outcome::OverageRejected {
            node: Arc::from(node),
            held: held.into_amount()?,
            actual: actual.into_amount()?,
            debt: debt.into_amount()?,
        },
        OutcomeW::Released(released) => Outcome::Released(released),
        OutcomeW::Funded => Outcome::Funded,
    };
    Ok(Entry {
        at: at(entry.at),
        request,
        outcome,
    })
}

fn reason_image(reason: TopUpReason) -> ReasonW {
    match reason {
        TopUpReason::Below => ReasonW::Below,
        _ => ReasonW::Projected,
    }
}

fn reason(image: ReasonW) -> TopUpReason {
    match image {
        ReasonW::Below => TopUpReason::Below,
        ReasonW::Projected => TopUpReason::Projected,
    }
}

fn applied_image(applied: &TopUpApplied) -> TopUpAppliedW {
    TopUpAppliedW {
        node: applied.node.to_string(),
        added: applied.added.into(),
        limit: applied.limit.into(),
        remaining: applied.remaining.into(),
        reason: reason_image(applied.reason),
        applied_at: time(applied.applied_at),
        count: applied.count,
    }
}

fn applied_from_image(image: TopUpAppliedW) -> Result<TopUpApplied, Invalid> {
    Ok(TopUpApplied {
        node: Arc::from(image.node),
        added: image.added.into_amount()?,
        limit: image.limit.into_amount()?,
        remaining: image.remaining.into_amount()?,
        reason: reason(image.reason),
        applied_at: at(image.applied_at),
        count: image.count,
    })
}

fn capped_image(capped: &TopUpCapped) -> TopUpCappedW {
    TopUpCappedW {
        node: capped.node.to_string(),
        cap: match capped.cap {
            TopUpCap::Count { max } => TopUpCapW::Count(max),
            TopUpCap::Total { max } => TopUpCapW::Total(max.into()),
        },
        reason: reason_image(capped.reason),
        wanted: capped.wanted.into(),
        count: capped.count,
        total: capped.total.into(),
        remaining: capped.remaining.into(),
        window_ends_at: capped.window_ends_at.map(time),
        capped_at: time(capped.capped_at),
    }
}

fn capped_from_image(image: TopUpCappedW) -> Result<TopUpCapped, Invalid> {
    Ok(TopUpCapped {
        node: Arc::from(image.node),
        cap: match image.cap {
            TopUpCapW::Count(max) => TopUpCap::Count { max },
            TopUpCapW::Total(max) => TopUpCap::Total {
                max: max.into_amount()?,
            },
        },
        reason: reason(image.reason),
        wanted: image.wanted.into_amount()?,
        count: image.count,
        total: image.total.into_amount()?,
        remaining: image.remaining.into_amount()?,
        window_ends_at: image.window_ends_at.map(at),
        capped_at: at(image.capped_at),
    })
}

#[cfg(test)]
mod tests {
    //! `Ledger -> image -> postcard bytes -> image -> Ledger` rebuilds the books exactly: the
    //! same further operations give the same results and the same books as on the original.

    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;
    use crate::amount::Amount;
    use crate::burn::BurnWindow;
    use crate::clock::Timestamp;
    use crate::cost::Cost;
    use crate::idempotency::{IdempotencyKey, KeyRetention};
    use crate::ids::HoldId;
    use crate::op::{Op, Query};
    use crate::period::Period;
    use crate::policy::{Limit, Limits};
    use crate::rate::RateLimit;
    use crate::top_up::TopUp;

    fn cents(n: i64) -> Amount {
        Amount::from_minor(n * 10_000_000, Unit::Usd)
    }

    /// One step of a random run: an operation, a query, or time passing.
    #[derive(Clone, Debug)]
    enum Step {
        Reserve {
            node: u8,
            cents: i64,
            ttl: u8,
            key: Option<u8>,
        },
        Commit {
            hold: u8,
            cents: i64,
            key: Option<u8>,
        },
        Release {
            hold: u8,
        },
        Record {
            hold: u8,
            cents: i64,
        },
        Extend {
            hold: u8,
            ttl: u8,
        },
        Credit {
            node: u8,
            cents: i64,
            key: Option<u8>,
        },
        Debit {
            node: u8,
            cents: i64,
        },
        Freeze {
            node: u8,
            frozen: bool,
        },
        Child {
            node: u8,
            cents: i64,
        },
        Remove {
            node: u8,
        },
        Sweep,
        Check {
            node: u8,
            cents: i64,
        },
        Advance {
            secs: u16,
        },
    }

    fn step() -> impl Strategy<Value = Step> {
        let node = 0u8..6;
        let amount = 1i64..400;
        let key = proptest::option::of(0u8..4);
        prop_oneof![
            4 => (node.clone(), amount.clone(), 1u8..30, key.clone())
                .prop_map(|(node, cents, ttl, key)| Step::Reserve { node, cents, ttl, key }),
            3 => (any::<u8>(), amount.clone(), key.clone())
                .prop_map(|(hold, cents, key)| Step::Commit { hold, cents, key }),
            1 => any::<u8>().prop_map(|hold| Step::Release { hold }),
            1 => (any::<u8>(), amount.clone()).prop_map(|(hold, cents)| Step::Record { hold, cents }),
            1 => (any::<u8>(), 1u8..30).prop_map(|(hold, ttl)| Step::Extend { hold, ttl }),
            1 => (node.clone(), amount.clone(), key)
                .prop_map(|(node, cents, key)| Step::Credit { node, cents, key }),
            1 => (node.clone(), amount.clone()).prop_map(|(node, cents)| Step::Debit { node, cents }),
            1 => (node.clone(), any::<bool>()).prop_map(|(node, frozen)| Step::Freeze { node, frozen }),
            1 => (node.clone(), amount.clone()).prop_map(|(node, cents)| Step::Child { node, cents }),
            1 => node.clone().prop_map(|node| Step::Remove { node }),
            1 => Just(Step::Sweep),
            1 => (node, amount).prop_map(|(node, cents)| Step::Check { node, cents }),
            2 => (1u16..7_200).prop_map(|secs| Step::Advance { secs }),
        ]
    }

    /// Drives one ledger: the nodes and holds the run knows, and its clock.
    struct Run {
        ledger: Ledger,
        nodes: Vec<NodeId>,
        holds: Vec<HoldId>,
        now: Timestamp,
        retention: KeyRetention,
    }

    impl Run {
        /// A tree with every kind of state an image carries: a daily and a five-minute cap on
        /// one unit, thresholds, a soft limit, a rate limit, a burn window and a top-up rule.
        fn new() -> Self {
            let mut run = Run {
                ledger: Ledger::new(),
                nodes: Vec::new(),
                holds: Vec::new(),
                now: Timestamp::from_unix_nanos(1_768_478_400_000_000_000),
                retention: KeyRetention::new(
                    Duration::from_secs(3_600),
                    std::num::NonZeroUsize::new(3).unwrap(),
                )
                .unwrap(),
            };
            let minutes = Period::every(Duration::from_secs(300)).unwrap();
            let root_limits = Limits::from(vec![
                Limit::hard(cents(5_000)).per(Period::daily()),
                Limit::hard(cents(1_500)).per(minutes),
                Limit::hard(Amount::tokens(1_000_000)),
            ]);
            let specs: [(Option<usize>, &str, Limits); 4] = [
                (None, "org", root_limits),
                (
                    Some(0),
                    "team",
                    Limits::from(Limit::hard(cents(2_000)).with_thresholds([50, 80])),
                ),
                (Some(1), "a", Limits::from(Limit::soft(cents(600)))),
                (Some(1), "b", Limits::from(Limit::hard(cents(900)))),
            ];
            for (parent, name, limits) in specs {
                let parent = parent.map(|index| run.nodes[index]);
                let op = Op::CreateNode {
                    parent,
                    name: name.into(),
                    limits,
                };
                let id = run.apply(&op).unwrap().into_node().unwrap();
                run.nodes.push(id);
            }
            let (team, a, b) = (run.nodes[1], run.nodes[2], run.nodes[3]);
            let setup = [
                Op::SetRateLimit {
                    node: a,
                    limit: Some(RateLimit::per_minute(5).unwrap()),
                },
                Op::SetBurnWindow {
                    node: team,
                    window: Some(BurnWindow::new(Duration::from_secs(600)).unwrap()),
                },
                Op::SetTopUp {
                    node: b,
                    rule: Some(
                        TopUp::when_below(cents(200))
                            .adding(cents(300))
                            .at_most(2)
                            .per(Duration::from_secs(3_600)),
                    ),
                },
            ];
            for op in &setup {
                run.apply(op).unwrap();
            }
            run
        }

        fn apply(&mut self, op: &Op) -> crate::error::Result<crate::op::Applied> {
            self.ledger.apply(op, Some(self.now), &self.retention)
        }

        fn node(&self, index: u8) -> NodeId {
            self.nodes[usize::from(index) % self.nodes.len()]
        }

        fn hold(&self, index: u8) -> HoldId {
            match self.holds.len() {
                0 => HoldId::from_raw(u64::from(index)),
                n => self.holds[usize::from(index) % n],
            }
        }

        /// Runs `step` and returns its result as text (results carry no process-local data).
        fn step(&mut self, step: &Step) -> String {
            let key = |k: &Option<u8>| k.map(|k| IdempotencyKey::new(format!("k{k}")).unwrap());
            let usd = |n: i64| Cost::from(cents(n));
            let op = match step {
                Step::Reserve {
                    node,
                    cents,
                    ttl,
                    key: k,
                } => Op::Reserve {
                    node: self.node(*node),
                    cost: usd(*cents),
                    ttl: Duration::from_secs(u64::from(*ttl) * 60),
                    idempotency_key: key(k),
                },
                Step::Commit {
                    hold,
                    cents,
                    key: k,
                } => Op::Commit {
                    hold: self.hold(*hold),
                    actual: usd(*cents),
                    idempotency_key: key(k),
                },
                Step::Release { hold } => Op::Release {
                    hold: self.hold(*hold),
                    idempotency_key: None,
                },
                Step::Record { hold, cents } => Op::Record {
                    hold: self.hold(*hold),
                    partial: usd(*cents),
                },
                Step::Extend { hold, ttl } => Op::Extend {
                    hold: self.hold(*hold),
                    ttl: Duration::from_secs(u64::from(*ttl) * 60),
                },
                Step::Credit {
                    node,
                    cents: n,
                    key: k,
                } => Op::Credit {
                    node: self.node(*node),
                    amount: cents(*n),
                    idempotency_key: key(k),
                },
                Step::Debit { node, cents: n } => Op::Debit {
                    node: self.node(*node),
                    amount: cents(*n),
                    idempotency_key: None,
                },
                Step::Freeze { node, frozen } => Op::SetState {
                    node: self.node(*node),
                    state: if *frozen {
                        NodeState::Frozen
                    } else {
                        NodeState::Active
                    },
                },
                Step::Child { node, cents: n } => Op::CreateNode {
                    parent: Some(self.node(*node)),
                    name: format!("c{}", self.nodes.len()),
                    limits: Limits::from(Limit::hard(cents(*n))),
                },
                Step::Remove { node } => Op::RemoveNode {
                    node: self.node(*node),
                },
                Step::Sweep => Op::Sweep,
                Step::Check { node, cents } => {
                    let query = Query::Check {
                        node: self.node(*node),
                        cost: usd(*cents),
                    };
                    let (answer, _) = self.ledger.read_noting(&query, Some(self.now));
                    return format!("{answer:?}");
                }
                Step::Advance { secs } => {
                    self.now = self
                        .now
                        .saturating_add(Duration::from_secs(u64::from(*secs)));
                    return String::new();
                }
            };
            let result = self.apply(&op);
            match &result {
                Ok(crate::op::Applied::Reserved(granted)) => self.holds.push(granted.hold),
                Ok(crate::op::Applied::Node(id)) => self.nodes.push(*id),
                _ => {}
            }
            format!("{result:?}")
        }

        /// This run's books, written to postcard bytes and read back into a new run.
        fn through_bytes(&self) -> Run {
            let bytes = postcard::to_stdvec(&self.ledger.to_image()).unwrap();
            let image: LedgerImage = postcard::from_bytes(&bytes).unwrap();
            Run {
                ledger: Ledger::from_image(image).unwrap(),
                nodes: self.nodes.clone(),
                holds: self.holds.clone(),
                now: self.now,
                retention: self.retention,
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(
            std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256)
        ))]

        #[test]
        fn a_ledger_rebuilt_from_its_image_continues_exactly_like_the_original(
            steps in proptest::collection::vec(step(), 1..60),
            cut in 0usize..60,
        ) {
            let cut = cut.min(steps.len());
            let mut original = Run::new();
            for step in &steps[..cut] {
                original.step(step);
            }
            let mut rebuilt = original.through_bytes();
            prop_assert_eq!(rebuilt.ledger.to_image(), original.ledger.to_image());
            for (i, step) in steps[cut..].iter().enumerate() {
                let expected = original.step(step);
                let actual = rebuilt.step(step);
                prop_assert_eq!(actual, expected, "step {} after the cut: {:?}", i, step);
            }
            prop_assert_eq!(rebuilt.ledger.to_image(), original.ledger.to_image());
            prop_assert_eq!(rebuilt.ledger.snapshot(), original.ledger.snapshot());
        }
    }

    #[test]
    fn an_image_with_a_child_that_names_another_parent_is_refused() {
        let mut run = Run::new();
        run.step(&Step::Reserve {
            node: 2,
            cents: 5,
            ttl: 5,
            key: None,
        });
        let mut image = run.ledger.to_image();
        // `a` (slot 2, parent `team`) moved to the children of `org` (slot 0).
        let team = image.nodes[1].node.as_mut().unwrap();
        team.children.retain(|child| *child != 2);
        image.nodes[0].node.as_mut().unwrap().children.push(2);
        let error = Ledger::from_image(image.clone()).unwrap_err();
        assert!(error.contains("names another parent"), "{error}");
        // Listed under both: one child too many.
        image.nodes[1].node.as_mut().unwrap().children.push(2);
        let error = Ledger::from_image(image).unwrap_err();
        assert!(error.contains("listed twice"), "{error}");
    }

    #[test]
    fn an_image_whose_accounts_reserve_other_than_their_holds_is_refused() {
        let mut run = Run::new();
        run.step(&Step::Reserve {
            node: 2,
            cents: 5,
            ttl: 5,
            key: None,
        });
        let mut image = run.ledger.to_image();
        // `team` (slot 1) holds the $0.05 of its child's hold; claim $0.06.
        let team = image.nodes[1].node.as_mut().unwrap();
        team.accounts[0].cap.reserved += 10_000_000;
        let error = Ledger::from_image(image).unwrap_err();
        assert!(error.contains("holds add up to 50000000"), "{error}");
    }

    #[test]
    fn an_image_whose_node_counts_its_holds_wrong_is_refused() {
        let mut run = Run::new();
        run.step(&Step::Reserve {
            node: 2,
            cents: 5,
            ttl: 5,
            key: None,
        });
        let mut image = run.ledger.to_image();
        image.nodes[2].node.as_mut().unwrap().live_holds = 7;
        let error = Ledger::from_image(image).unwrap_err();
        assert!(error.contains("wrong number of holds"), "{error}");
    }
}
