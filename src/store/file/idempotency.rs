//! The bytes of remembered idempotency keys (record tags 18 and 19; see `docs/file-format.md`).
//!
//! A keyed operation is logged as **one** record: tag 18, the key's entry, then the
//! operation's own record payload (tag included). Key and effect are therefore durable
//! together or not at all: a crash can never leave an applied operation whose key was lost
//! (a retry would apply it twice) or a key without its operation. Tag 19 is an entry alone:
//! after a snapshot record (compaction carries the remembered keys over) and for a keyed
//! operation that changed nothing but is remembered (releasing a hold that had already ended).

use super::{Dec, Decoded, Enc, Op};
use crate::clock::Timestamp;
use crate::idempotency::{HoldEnd, IdempotencyKey};
use crate::ledger::{Entry, Outcome, Request};

/// A keyed operation: the entry, then the operation's record.
pub(super) const TAG_KEYED: u8 = 18;
/// A remembered key on its own.
pub(super) const TAG_REMEMBER: u8 = 19;

impl Enc<'_> {
    /// Starts a keyed record; the operation's own record (`e.commit(..)`, ...) must follow.
    pub(in crate::store::file) fn keyed(&mut self, key: &IdempotencyKey, entry: &Entry) {
        self.u8(TAG_KEYED);
        self.entry(key, entry);
    }

    /// A remembered key on its own.
    pub(in crate::store::file) fn remember(&mut self, key: &IdempotencyKey, entry: &Entry) {
        self.u8(TAG_REMEMBER);
        self.entry(key, entry);
    }

    fn entry(&mut self, key: &IdempotencyKey, entry: &Entry) {
        self.str(key.as_str());
        self.time(entry.at);
        match &entry.request {
            Request::Reserve {
                node,
                cost,
                ttl_nanos,
            } => {
                self.u8(0);
                self.str(node);
                self.cost(cost);
                self.u64(*ttl_nanos);
            }
            Request::ReserveUpTo {
                node,
                min,
                max,
                ttl_nanos,
            } => {
                self.u8(1);
                self.str(node);
                self.amount(*min);
                self.amount(*max);
                self.u64(*ttl_nanos);
            }
            Request::Commit { hold, actual } => {
                self.u8(2);
                self.u64(hold.into_raw());
                self.cost(actual);
            }
            Request::Release { hold } => {
                self.u8(3);
                self.u64(hold.into_raw());
            }
            Request::Credit { node, amount } => {
                self.u8(4);
                self.str(node);
                self.amount(*amount);
            }
            Request::Debit { node, amount } => {
                self.u8(5);
                self.str(node);
                self.amount(*amount);
            }
        }
        match &entry.outcome {
            Outcome::Reserved {
                hold,
                held,
                over_soft_limit,
                expires_at,
                ended,
            } => {
                // Kind 5 (format version 2) is kind 0 plus how the hold ended; a live hold's entry
                // is written as in version 1.
                self.u8(if ended.is_some() { 5 } else { 0 });
                self.u64(hold.into_raw());
                self.cost(held);
                match over_soft_limit {
                    Some(node) => {
                        self.u8(1);
                        self.str(node);
                    }
                    None => self.u8(0),
                }
                self.time(*expires_at);
                if let Some(how) = ended {
                    self.u8(match how {
                        HoldEnd::Committed => 0,
                        HoldEnd::Released => 1,
                        HoldEnd::Expired => 2,
                        HoldEnd::Unrecorded => 3,
                    });
                }
            }
            Outcome::Committed {
                spent,
                returned,
                overage,
                expired,
            } => {
                self.u8(1);
                self.cost(spent);
                self.cost(returned);
                self.cost(overage);
                self.u8(u8::from(*expired));
            }
            Outcome::OverageRejected {
                node,
                held,
                actual,
                debt,
            } => {
                self.u8(2);
                self.str(node);
                self.amount(*held);
                self.amount(*actual);
                self.amount(*debt);
            }
            Outcome::Released(released) => {
                self.u8(3);
                self.u8(u8::from(*released));
            }
            Outcome::Funded => self.u8(4),
        }
    }
}

impl Dec<'_> {
    fn flag(&mut self) -> Decoded<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err("bad flag in an idempotency record"),
        }
    }

    fn entry(&mut self) -> Decoded<(IdempotencyKey, Entry)> {
        let key = IdempotencyKey::new(self.str()?).map_err(|_| "invalid idempotency key")?;
        let at: Timestamp = self.time()?;
        let request = match self.u8()? {
            0 => Request::Reserve {
                node: self.str()?.into(),
                cost: self.cost()?,
                ttl_nanos: self.u64()?,
            },
            1 => Request::ReserveUpTo {
                node: self.str()?.into(),
                min: self.amount()?,
                max: self.amount()?,
                ttl_nanos: self.u64()?,
            },
            2 => Request::Commit {
                hold: self.hold()?,
                actual: self.cost()?,
            },
            3 => Request::Release { hold: self.hold()? },
            4 => Request::Credit {
                node: self.str()?.into(),
                amount: self.amount()?,
            },
            5 => Request::Debit {
                node: self.str()?.into(),
                amount: self.amount()?,
            },
            _ => return Err("unknown idempotent request"),
        };
        let outcome = match self.u8()? {
            kind @ (0 | 5) => Outcome::Reserved {
                hold: self.hold()?,
                held: self.cost()?,
                over_soft_limit: match self.flag()? {
                    true => Some(self.str()?.into()),
                    false => None,
                },
                expires_at: self.time()?,
                ended: match kind {
                    0 => None,
                    _ => Some(match self.u8()? {
                        0 => HoldEnd::Committed,
                        1 => HoldEnd::Released,
                        2 => HoldEnd::Expired,
                        3 => HoldEnd::Unrecorded,
                        _ => return Err("unknown hold end in an idempotency record"),
                    }),
                },
            },
            1 => Outcome::Committed {
                spent: self.cost()?,
                returned: self.cost()?,
                overage: self.cost()?,
                expired: self.flag()?,
            },
            2 => Outcome::OverageRejected {
                node: self.str()?.into(),
                held: self.amount()?,
                actual: self.amount()?,
                debt: self.amount()?,
            },
            3 => Outcome::Released(self.flag()?),
            4 => Outcome::Funded,
            _ => return Err("unknown idempotent outcome"),
        };
        Ok((
            key,
            Entry {
                at,
                request,
                outcome,
            },
        ))
    }

    /// The rest of a tag-18 record: the entry, then the operation it belongs to.
    pub(super) fn keyed(&mut self) -> Decoded<Op> {
        let (key, entry) = self.entry()?;
        let op = self.op()?;
        if matches!(
            op,
            Op::Snapshot { .. } | Op::Keyed { .. } | Op::Remember { .. }
        ) {
            return Err("an idempotency key wraps a record that cannot carry one");
        }
        Ok(Op::Keyed {
            key,
            entry,
            op: Box::new(op),
        })
    }

    /// The rest of a tag-19 record.
    pub(super) fn remember(&mut self) -> Decoded<Op> {
        let (key, entry) = self.entry()?;
        Ok(Op::Remember { key, entry })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Frame, decode, push_record, read_frame};
    use super::*;
    use crate::amount::{Amount, Unit};
    use crate::cost::Cost;
    use crate::ids::{HoldId, NodeId};

    fn round_trip(write: impl FnOnce(&mut Enc<'_>)) -> Op {
        let mut buf = Vec::new();
        push_record(&mut buf, write);
        match read_frame(&buf, 0) {
            Frame::Valid { payload, .. } => decode(payload).expect("decodes"),
            other => panic!("bad frame {other:?}"),
        }
    }

    #[test]
    fn every_entry_kind_round_trips() {
        let key = IdempotencyKey::new("k-1").unwrap();
        let hold = HoldId::new(2, 5);
        let cost = Cost::from(Amount::from_minor(7, Unit::Usd))
            .with(Amount::tokens(9))
            .unwrap();
        let usd = Amount::from_minor(3, Unit::Usd);
        let at = Timestamp::from_unix_nanos(1_700_000_000_000_000_000);
        let entries = [
            (
                Request::Reserve {
                    node: "a/b".into(),
                    cost,
                    ttl_nanos: u64::MAX,
                },
                Outcome::Reserved {
                    hold,
                    held: cost,
                    over_soft_limit: Some("a".into()),
                    expires_at: Timestamp::MAX,
                    ended: None,
                },
            ),
            (
                Request::ReserveUpTo {
                    node: "a".into(),
                    min: usd,
                    max: usd,
                    ttl_nanos: 5,
                },
                Outcome::Reserved {
                    hold,
                    held: Cost::from(usd),
                    over_soft_limit: None,
                    expires_at: at,
                    ended: Some(HoldEnd::Released),
                },
            ),
            (
                Request::Reserve {
                    node: "a".into(),
                    cost,
                    ttl_nanos: 1,
                },
                Outcome::Reserved {
                    hold,
                    held: cost,
                    over_soft_limit: Some("a".into()),
                    expires_at: at,
                    ended: Some(HoldEnd::Committed),
                },
            ),
            (
                Request::Reserve {
                    node: "a".into(),
                    cost,
                    ttl_nanos: 1,
                },
                Outcome::Reserved {
                    hold,
                    held: cost,
                    over_soft_limit: Some("a".into()),
                    expires_at: at,
                    ended: Some(HoldEnd::Expired),
                },
            ),
            (
                Request::Reserve {
                    node: "a".into(),
                    cost,
                    ttl_nanos: 1,
                },
                Outcome::Reserved {
                    hold,
                    held: cost,
                    over_soft_limit: Some("a".into()),
                    expires_at: at,
                    ended: Some(HoldEnd::Unrecorded),
                },
            ),
            (
                Request::Commit { hold, actual: cost },
                Outcome::Committed {
                    spent: cost,
                    returned: cost,
                    overage: cost,
                    expired: true,
                },
            ),
            (
                Request::Commit { hold, actual: cost },
                Outcome::OverageRejected {
                    node: "a".into(),
                    held: usd,
                    actual: usd,
                    debt: usd,
                },
            ),
            (Request::Release { hold }, Outcome::Released(false)),
            (
                Request::Credit {
                    node: "a".into(),
                    amount: usd,
                },
                Outcome::Funded,
            ),
            (
                Request::Debit {
                    node: "a".into(),
                    amount: usd,
                },
                Outcome::Funded,
            ),
        ];
        for (request, outcome) in entries {
            let entry = Entry {
                at,
                request,
                outcome,
            };
            assert_eq!(
                round_trip(|e| e.remember(&key, &entry)),
                Op::Remember {
                    key: key.clone(),
                    entry: entry.clone()
                }
            );
            let node = NodeId::new(1, 1);
            assert_eq!(
                round_trip(|e| {
                    e.keyed(&key, &entry);
                    e.credit(node, usd);
                }),
                Op::Keyed {
                    key: key.clone(),
                    entry,
                    op: Box::new(Op::Credit { node, amount: usd }),
                }
            );
        }
    }

    #[test]
    fn a_keyed_record_cannot_wrap_a_snapshot_or_another_key() {
        let key = IdempotencyKey::new("k").unwrap();
        let entry = Entry {
            at: Timestamp::EPOCH,
            request: Request::Release {
                hold: HoldId::new(0, 1),
            },
            outcome: Outcome::Released(true),
        };
        let mut buf = Vec::new();
        push_record(&mut buf, |e| {
            e.keyed(&key, &entry);
            e.remember(&key, &entry);
        });
        let Frame::Valid { payload, .. } = read_frame(&buf, 0) else {
            panic!("frame");
        };
        assert!(decode(payload).is_err());
    }
}
