//! Idempotency keys inside the ledger: the table of remembered keys, and running an operation
//! at most once per key. Time and retention come in as arguments; the ledger never reads a
//! clock. The public rules are documented in `crate::idempotency`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use super::Ledger;
use crate::amount::Amount;
use crate::balance::Balance;
use crate::clock::Timestamp;
use crate::cost::Cost;
use crate::error::Error;
use crate::idempotency::{HoldEnd, IdempotencyKey, KeyRetention};
use crate::ids::{HoldId, NodeId};
use crate::store::{Committed, Reservation};
use crate::threshold::Crossings;

/// What a keyed operation asked for, in a form that outlives node ids (nodes by path).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Request {
    Reserve {
        node: Arc<str>,
        cost: Cost,
        /// The hold's TTL in nanoseconds (saturating).
        ttl_nanos: u64,
    },
    ReserveUpTo {
        node: Arc<str>,
        min: Amount,
        max: Amount,
        ttl_nanos: u64,
    },
    Commit {
        hold: HoldId,
        actual: Cost,
    },
    Release {
        hold: HoldId,
    },
    Credit {
        node: Arc<str>,
        amount: Amount,
    },
    Debit {
        node: Arc<str>,
        amount: Amount,
    },
}

impl Request {
    pub(crate) fn reserve(
        ledger: &Ledger,
        node: NodeId,
        cost: &Cost,
        ttl: Duration,
    ) -> Result<Request, Error> {
        Ok(Request::Reserve {
            node: ledger.request_node(node)?,
            cost: *cost,
            ttl_nanos: ttl_nanos(ttl),
        })
    }

    pub(crate) fn reserve_up_to(
        ledger: &Ledger,
        node: NodeId,
        min: Amount,
        max: Amount,
        ttl: Duration,
    ) -> Result<Request, Error> {
        Ok(Request::ReserveUpTo {
            node: ledger.request_node(node)?,
            min,
            max,
            ttl_nanos: ttl_nanos(ttl),
        })
    }

    pub(crate) fn credit(ledger: &Ledger, node: NodeId, amount: Amount) -> Result<Request, Error> {
        Ok(Request::Credit {
            node: ledger.request_node(node)?,
            amount,
        })
    }

    pub(crate) fn debit(ledger: &Ledger, node: NodeId, amount: Amount) -> Result<Request, Error> {
        Ok(Request::Debit {
            node: ledger.request_node(node)?,
            amount,
        })
    }

    /// The operation's name, for [`Error::IdempotencyMismatch`].
    pub(crate) fn operation(&self) -> &'static str {
        match self {
            Request::Reserve { .. } => "reserve",
            Request::ReserveUpTo { .. } => "reserve_up_to",
            Request::Commit { .. } => "commit",
            Request::Release { .. } => "release",
            Request::Credit { .. } => "credit",
            Request::Debit { .. } => "debit",
        }
    }
}

/// A TTL as the nanoseconds a request fingerprint compares.
pub(crate) fn ttl_nanos(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_nanos()).unwrap_or(u64::MAX)
}

/// The first result of a keyed operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Reserved {
        hold: HoldId,
        held: Cost,
        over_soft_limit: Option<Arc<str>>,
        expires_at: Timestamp,
        /// How the hold ended, once it has: a retry then gets [`Error::HoldEnded`] instead of a
        /// hold id that can no longer be used.
        ended: Option<HoldEnd>,
    },
    Committed {
        spent: Cost,
        returned: Cost,
        overage: Cost,
        expired: bool,
    },
    /// A commit whose overage was rejected: the spend was recorded.
    OverageRejected {
        node: Arc<str>,
        held: Amount,
        actual: Amount,
        debt: Amount,
    },
    Released(bool),
    /// A credit or debit applied. Its retry answers with the node's balance at the time of the
    /// retry (a balance is a reading of the books, not part of the operation's effect).
    Funded,
}

/// A remembered key: when its operation ran, what it asked for, and what it returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) at: Timestamp,
    pub(crate) request: Request,
    pub(crate) outcome: Outcome,
}

impl Entry {
    fn expired(&self, now: Timestamp, retention: &KeyRetention) -> bool {
        self.at.saturating_add(retention.ttl()) <= now
    }
}

#[derive(Debug)]
pub(super) struct Slot {
    /// Insertion number, to tell this entry's place in `order` from a replaced one's.
    pub(super) seq: u64,
    pub(super) entry: Entry,
}

/// The remembered keys, oldest first.
#[derive(Debug, Default)]
pub(crate) struct KeyTable {
    pub(super) map: HashMap<IdempotencyKey, Slot>,
    pub(super) order: VecDeque<(IdempotencyKey, u64)>,
    pub(super) next_seq: u64,
    /// The key of each remembered reserve, by the ledger's id of its hold, so that the hold's end
    /// can be written into the entry ([`KeyTable::hold_ended`]).
    pub(super) holds: HashMap<HoldId, IdempotencyKey>,
}

/// The hold of a remembered reserve.
fn reserved_hold(entry: &Entry) -> Option<HoldId> {
    match entry.outcome {
        Outcome::Reserved { hold, .. } => Some(hold),
        _ => None,
    }
}

impl KeyTable {
    /// Forgets `key`'s entry, and its hold's place in the index.
    fn remove(&mut self, key: &str) {
        if let Some(slot) = self.map.remove(key)
            && let Some(hold) = reserved_hold(&slot.entry)
            && self.holds.get(&hold).is_some_and(|k| k.as_str() == key)
        {
            self.holds.remove(&hold);
        }
    }

    /// Records in the entry of the reserve that created hold `id` (if it is remembered) that the
    /// hold ended, and how. One emptiness check when no keyed reserve is remembered.
    #[inline]
    pub(crate) fn hold_ended(&mut self, id: HoldId, how: HoldEnd) {
        if self.holds.is_empty() {
            return;
        }
        let Some(key) = self.holds.get(&id) else {
            return;
        };
        if let Some(Slot {
            entry:
                Entry {
                    outcome: Outcome::Reserved { ended, .. },
                    ..
                },
            ..
        }) = self.map.get_mut(key.as_str())
        {
            *ended = Some(how);
        }
    }

    /// Rebuilds the hold index from the entries (after the ledger's hold ids were put back to
    /// the ids the entries carry).
    fn reindex(&mut self) {
        self.holds = self
            .map
            .iter()
            .filter_map(|(key, slot)| Some((reserved_hold(&slot.entry)?, key.clone())))
            .collect();
    }

    /// Forgets keys from the oldest while `forget` says so.
    fn forget_oldest(&mut self, mut forget: impl FnMut(&Entry, usize) -> bool) {
        while let Some((key, seq)) = self.order.front() {
            match self.map.get(key) {
                Some(slot) if slot.seq == *seq => {
                    if !forget(&slot.entry, self.map.len()) {
                        break;
                    }
                    let key = key.clone();
                    self.remove(key.as_str());
                }
                _ => {} // replaced or already forgotten: a stale place in the order
            }
            self.order.pop_front();
        }
    }

    /// Forgets keys whose retention passed at `now` (oldest first; amortized O(1)).
    fn prune(&mut self, now: Timestamp, retention: &KeyRetention) {
        self.forget_oldest(|entry, _| entry.expired(now, retention));
    }

    /// Remembers `key` (replacing an older entry for it), forgetting the oldest keys first so
    /// that at most `max` are remembered.
    pub(crate) fn insert(&mut self, key: IdempotencyKey, entry: Entry, max: usize) {
        self.remove(key.as_str());
        self.forget_oldest(|_, len| len >= max);
        if self.order.len() >= max.max(self.map.len()).max(16).saturating_mul(2) {
            let map = &self.map;
            self.order
                .retain(|(key, seq)| map.get(key).is_some_and(|slot| slot.seq == *seq));
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.order.push_back((key.clone(), seq));
        if let Some(hold) = reserved_hold(&entry) {
            self.holds.insert(hold, key.clone());
        }
        self.map.insert(key, Slot { seq, entry });
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Entry> {
        self.map.get(key).map(|slot| &slot.entry)
    }

    /// Every remembered key, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&IdempotencyKey, &Entry)> + '_ {
        self.order.iter().filter_map(|(key, seq)| {
            self.map
                .get(key)
                .filter(|slot| slot.seq == *seq)
                .map(|slot| (key, &slot.entry))
        })
    }
}

/// A key given with an operation, the time of the operation (read by the store, outside its
/// lock) and the store's retention.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Keyed<'a> {
    pub(crate) key: &'a IdempotencyKey,
    pub(crate) now: Timestamp,
    pub(crate) retention: &'a KeyRetention,
}

/// What [`Ledger::once`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Answered from the table (a replay or a mismatch): nothing changed.
    Answered,
    /// The operation ran; `remembered` if its key is now in the table.
    Ran { remembered: bool },
}

/// A result that can be remembered and given again.
pub(crate) trait Remember: Sized {
    /// What to remember of `result`; `None` for a result that changed nothing.
    fn remember(result: &Result<Self, Error>) -> Option<Outcome>;
    /// The remembered result of `entry` (remembered for `key`), marked as a replay; `None` if
    /// the entry is another operation's.
    fn replay(key: &IdempotencyKey, entry: &Entry, ledger: &Ledger) -> Option<Result<Self, Error>>;
}

impl Remember for Reservation {
    fn remember(result: &Result<Self, Error>) -> Option<Outcome> {
        let granted = result.as_ref().ok()?;
        Some(Outcome::Reserved {
            hold: granted.hold,
            held: granted.held,
            over_soft_limit: granted.over_soft_limit.clone(),
            expires_at: granted.expires_at,
            ended: None,
        })
    }

    fn replay(key: &IdempotencyKey, entry: &Entry, ledger: &Ledger) -> Option<Result<Self, Error>> {
        match &entry.outcome {
            Outcome::Reserved {
                hold,
                held,
                over_soft_limit,
                expires_at,
                ended,
            } => Some(match ended.or_else(|| ledger.hold_end(*hold)) {
                Some(how) => Err(Error::HoldEnded {
                    key: key.text().clone(),
                    hold: *hold,
                    how,
                }),
                None => Ok(Reservation {
                    hold: *hold,
                    held: *held,
                    over_soft_limit: over_soft_limit.clone(),
                    events: Crossings::new(),
                    expires_at: *expires_at,
                    expired: Vec::new(),
                    replayed: true,
                    top_ups: Vec::new(),
                    top_up_caps: Vec::new(),
                }),
            }),
            _ => None,
        }
    }
}

impl Remember for Committed {
    fn remember(result: &Result<Self, Error>) -> Option<Outcome> {
        match result {
            Ok(committed) => Some(Outcome::Committed {
                spent: committed.spent,
                returned: committed.returned,
                overage: committed.overage,
                expired: committed.expired,
            }),
            Err(Error::OverageRejected {
                node,
                held,
                actual,
                debt,
            }) => Some(Outcome::OverageRejected {
                node: node.clone(),
                held: *held,
                actual: *actual,
                debt: *debt,
            }),
            Err(_) => None,
        }
    }

    fn replay(_: &IdempotencyKey, entry: &Entry, _: &Ledger) -> Option<Result<Self, Error>> {
        match &entry.outcome {
            Outcome::Committed {
                spent,
                returned,
                overage,
                expired,
            } => Some(Ok(Committed {
                spent: *spent,
                returned: *returned,
                overage: *overage,
                events: Crossings::new(),
                expired: *expired,
                replayed: true,
                top_ups: Vec::new(),
                top_up_caps: Vec::new(),
            })),
            Outcome::OverageRejected {
                node,
                held,
                actual,
                debt,
            } => Some(Err(Error::OverageRejected {
                node: node.clone(),
                held: *held,
                actual: *actual,
                debt: *debt,
            })),
            _ => None,
        }
    }
}

impl Remember for bool {
    fn remember(result: &Result<Self, Error>) -> Option<Outcome> {
        result
            .as_ref()
            .ok()
            .map(|released| Outcome::Released(*released))
    }

    fn replay(_: &IdempotencyKey, entry: &Entry, _: &Ledger) -> Option<Result<Self, Error>> {
        match &entry.outcome {
            Outcome::Released(released) => Some(Ok(*released)),
            _ => None,
        }
    }
}

impl Remember for Balance {
    fn remember(result: &Result<Self, Error>) -> Option<Outcome> {
        result.as_ref().ok().map(|_| Outcome::Funded)
    }

    fn replay(_: &IdempotencyKey, entry: &Entry, ledger: &Ledger) -> Option<Result<Self, Error>> {
        let (Outcome::Funded, Request::Credit { node, amount } | Request::Debit { node, amount }) =
            (&entry.outcome, &entry.request)
        else {
            return None;
        };
        let node = match ledger.resolve(node) {
            Ok(node) => node,
            Err(error) => return Some(Err(error)),
        };
        Some(ledger.balance(node, amount.unit()))
    }
}

impl Ledger {
    /// The path of a live node, for request fingerprints.
    pub(crate) fn request_node(&self, id: NodeId) -> Result<Arc<str>, Error> {
        Ok(self.node(self.live(id)?).path.clone())
    }

    /// Runs `op` at most once per key: without a key it just runs. With one, a remembered key
    /// with the same request returns the first result and changes nothing; with another
    /// request it is [`Error::IdempotencyMismatch`]; an unknown (or expired) key runs `op` and
    /// remembers its result if it changed the books. `request` describes the operation (it may
    /// fail for an unknown node, which changes nothing).
    pub(crate) fn once<T: Remember>(
        &mut self,
        keyed: Option<Keyed<'_>>,
        request: impl FnOnce(&Ledger) -> Result<Request, Error>,
        op: impl FnOnce(&mut Ledger) -> Result<T, Error>,
    ) -> (Result<T, Error>, Fate) {
        let Some(keyed) = keyed else {
            return (op(self), Fate::Ran { remembered: false });
        };
        let request = match request(self) {
            Ok(request) => request,
            Err(error) => return (Err(error), Fate::Answered),
        };
        self.keys.prune(keyed.now, keyed.retention);
        // An expired entry the front-pruning did not reach (a clock that went back) counts as
        // forgotten; remembering the key again replaces it.
        if let Some(entry) = self.keys.get(keyed.key.as_str())
            && !entry.expired(keyed.now, keyed.retention)
        {
            let answer = if entry.request == request {
                T::replay(keyed.key, entry, self)
            } else {
                None
            };
            let answer = answer.unwrap_or_else(|| {
                Err(Error::IdempotencyMismatch {
                    key: keyed.key.text().clone(),
                    first: entry.request.operation(),
                    requested: request.operation(),
                })
            });
            return (answer, Fate::Answered);
        }
        let result = op(self);
        let remembered = match T::remember(&result) {
            Some(outcome) => {
                let entry = Entry {
                    at: keyed.now,
                    request,
                    outcome,
                };
                self.keys
                    .insert(keyed.key.clone(), entry, keyed.retention.max_keys());
                true
            }
            None => false,
        };
        (result, Fate::Ran { remembered })
    }

    /// The entry remembered for `key`, if any (a store that logs operations logs it).
    pub(crate) fn remembered(&self, key: &IdempotencyKey) -> Option<&Entry> {
        self.keys.get(key.as_str())
    }

    /// Every remembered key, oldest first (for snapshots of the file store).
    pub(crate) fn remembered_keys(&self) -> impl Iterator<Item = (&IdempotencyKey, &Entry)> + '_ {
        self.keys.iter()
    }

    /// Remembers `key` as logged (replay): no retention applies until the next keyed operation.
    pub(crate) fn restore_key(&mut self, key: IdempotencyKey, entry: Entry) {
        self.keys.insert(key, entry, usize::MAX);
    }

    /// Moves the remembered keys out (to carry them into a ledger rebuilt from a snapshot).
    pub(crate) fn take_keys(&mut self) -> KeyTable {
        std::mem::take(&mut self.keys)
    }

    /// Puts keys taken with [`Ledger::take_keys`] back; the holds of remembered reserves are
    /// looked up by the ids their entries carry.
    pub(crate) fn put_keys(&mut self, mut keys: KeyTable) {
        keys.reindex();
        self.keys = keys;
    }

    /// During recovery: hold `written` (as a remembered reserve names it) is live in this ledger
    /// as `replayed`, so its end is reported under that id until the ids are put back.
    pub(crate) fn alias_key_hold(&mut self, written: HoldId, replayed: HoldId) {
        if let Some(key) = self.keys.holds.remove(&written) {
            self.keys.holds.insert(replayed, key);
        }
    }

    /// How hold `id` ended, if it is not live: for a remembered reserve whose entry does not say
    /// (one restored from a version-1 budget file, which did not record it).
    fn hold_end(&self, id: HoldId) -> Option<HoldEnd> {
        if self.hold(id).is_ok() {
            None
        } else if self.tombstones.get(id).is_some() {
            Some(HoldEnd::Expired)
        } else {
            Some(HoldEnd::Unrecorded)
        }
    }
}

#[cfg(test)]
mod tests;
