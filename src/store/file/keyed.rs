//! Keyed operations of the [`FileStore`]: each applies at most once per idempotency key, and
//! its key is logged in the same record as the operation (see `format/idempotency.rs`).

use super::format::Enc;
use super::{FileStore, push, push_top_ups, roll_logged};
use crate::amount::Amount;
use crate::clock::Timestamp;
use crate::cost::Cost;
use crate::error::{Error, Result};
use crate::idempotency::IdempotencyKey;
use crate::ids::{HoldId, NodeId};
use crate::ledger::{Fate, Keyed, Ledger, Remember, Request};
use crate::store::Committed;

/// Logs one operation record, prefixed with the entry of `key` when the operation remembered
/// it, so that the key and the effect are durable together.
pub(super) fn push_op(
    pending: &mut Vec<u8>,
    ledger: &Ledger,
    key: Option<&IdempotencyKey>,
    write: impl FnOnce(&mut Enc<'_>),
) {
    let entry = key.and_then(|key| ledger.remembered(key).map(|entry| (key, entry)));
    push(pending, |e| {
        if let Some((key, entry)) = entry {
            e.keyed(key, entry);
        }
        write(e);
    });
}

impl FileStore {
    /// The key of a keyed operation at `now`.
    pub(super) fn keyed<'a>(&'a self, key: &'a IdempotencyKey, now: Timestamp) -> Keyed<'a> {
        Keyed {
            key,
            now,
            retention: &self.retention,
        }
    }

    /// Runs `op` once per `key` (reading the clock once, outside the lock) and logs it:
    /// `write` with the key's entry when `logged` says the operation changed the books, the
    /// entry alone when it changed nothing but was remembered, nothing when it was answered
    /// from the remembered keys.
    fn once_logged<T: Remember>(
        &self,
        key: &IdempotencyKey,
        request: impl FnOnce(&Ledger) -> Result<Request>,
        op: impl FnOnce(&mut Ledger, Timestamp) -> Result<T>,
        logged: impl FnOnce(&Result<T>) -> bool,
        write: impl FnOnce(&mut Enc<'_>),
    ) -> Result<T> {
        let now = self.clock.now();
        let keyed = self.keyed(key, now);
        self.change(|ledger, pending| {
            roll_logged(ledger, pending, Some(now));
            let (result, fate) = ledger.once(Some(keyed), request, |ledger| op(ledger, now));
            // Top-ups the operation made, before (pre) and after (post) its own record.
            let (pre, post) = ledger.take_top_up_log().unwrap_or_default();
            push_top_ups(pending, &pre);
            let Fate::Ran { remembered } = fate else {
                return result; // answered from the remembered keys: nothing changed
            };
            let key = remembered.then_some(key);
            if logged(&result) {
                push_op(pending, ledger, key, write);
            } else if let Some(key) = key
                && let Some(entry) = ledger.remembered(key)
            {
                push(pending, |e| e.remember(key, entry));
            }
            push_top_ups(pending, &post);
            result
        })
    }

    pub(super) fn commit_keyed(
        &self,
        key: &IdempotencyKey,
        hold: HoldId,
        actual: &Cost,
    ) -> Result<Committed> {
        self.once_logged(
            key,
            |_| {
                Ok(Request::Commit {
                    hold,
                    actual: *actual,
                })
            },
            |ledger, now| ledger.commit_at(hold, actual, Some(now)),
            // An overage rejection ended the hold and recorded the spend: log it too.
            |outcome| matches!(outcome, Ok(_) | Err(Error::OverageRejected { .. })),
            |e| e.commit(hold, actual),
        )
    }

    pub(super) fn release_keyed(&self, key: &IdempotencyKey, hold: HoldId) -> Result<bool> {
        self.once_logged(
            key,
            |_| Ok(Request::Release { hold }),
            |ledger, _| ledger.release(hold),
            |released| matches!(released, Ok(true)),
            |e| e.release(hold),
        )
    }

    /// A keyed credit (`credit`) or debit.
    pub(super) fn fund_keyed(
        &self,
        key: &IdempotencyKey,
        node: NodeId,
        amount: Amount,
        credit: bool,
    ) -> Result<crate::balance::Balance> {
        self.once_logged(
            key,
            |ledger| match credit {
                true => Request::credit(ledger, node, amount),
                false => Request::debit(ledger, node, amount),
            },
            |ledger, _| match credit {
                true => ledger.credit(node, amount),
                false => ledger.debit(node, amount),
            },
            Result::is_ok,
            |e| match credit {
                true => e.credit(node, amount),
                false => e.debit(node, amount),
            },
        )
    }
}
