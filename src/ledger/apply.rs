//! The one interpreter: [`Ledger::apply`] runs an [`Op`], [`Ledger::read`] answers a [`Query`].
//!
//! Everything a store used to orchestrate around the ledger lives here: rolling ended periods
//! before an operation, starting the periods of new periodic limits, hold deadlines from the
//! store's time plus the TTL, and the idempotency wrapper. Both functions are deterministic:
//! they read no clock and do no I/O, so the same books, operation and `now` always give the same
//! result and the same books afterwards (`tests/determinism.rs`).

use std::time::Duration;

use super::{Keyed, Lease, Ledger, Remember, Request};
use crate::clock::Timestamp;
use crate::cost::Cost;
use crate::error::{Error, Result, StoreError};
use crate::expiry::validate_ttl;
use crate::idempotency::{IdempotencyKey, KeyRetention};
use crate::ids::{HoldId, NodeId};
use crate::op::{Answer, Applied, Op, Query};
use crate::store::{Committed, Reservation};

/// The error for an operation that needs the store's time but was given none: a bug in the
/// store that called [`Ledger::apply`], so it is permanent.
fn needs_time(what: &'static str) -> Error {
    StoreError::permanent(format!(
        "{what} needs the store's time; the store passed none"
    ))
    .into()
}

/// The version of the rules [`Ledger::apply`] and [`Ledger::read`] implement, as a durable
/// store records it next to each logged command.
///
/// Bump it whenever a rule changes what an operation or query returns or does to the books
/// (a new check, another rounding, a different expiry or period rule): a budget file replays
/// its commands through this interpreter at open, and a command logged by another version
/// whose replayed result differs is reported with both versions instead of silently giving
/// other books.
pub(crate) const INTERPRETER_VERSION: u32 = 2;

impl Ledger {
    /// Applies `op` at the store's time `now` and returns its result.
    ///
    /// `now` is `None` when the store did not read its clock: allowed for every operation that
    /// does not [`need`](Op::needs_clock) it, and the store's choice while no limit has a period
    /// and no node a burn window or top-up rule (nothing would use it). When `Some`, ended
    /// periods roll first (for every operation that [`uses`](Op::uses_clock) the time).
    /// `retention` says how long and how many idempotency keys are remembered.
    ///
    /// # Errors
    /// As the typed [`Store`](crate::Store) method of the same operation; a
    /// [`Store`](Error::Store) error if `op` needs the time and `now` is `None`.
    pub(crate) fn apply(
        &mut self,
        op: &Op,
        now: Option<Timestamp>,
        retention: &KeyRetention,
    ) -> Result<Applied> {
        if op.uses_clock() {
            self.roll_periods_at(now);
        }
        match op {
            Op::CreateNode {
                parent,
                name,
                limits,
            } => {
                let id = self.create_node(*parent, name, limits)?;
                self.start_new_periods(id, now);
                Ok(Applied::Node(id))
            }
            Op::RemoveNode { node } => self.remove_node(*node).map(|()| Applied::Removed),
            Op::Reserve {
                node,
                cost,
                ttl,
                idempotency_key,
            } => self
                .reserve_op(*node, cost, *ttl, idempotency_key.as_ref(), now, retention)
                .map(Applied::Reserved),
            Op::ReserveUpTo {
                node,
                min,
                max,
                ttl,
                idempotency_key,
            } => {
                let (lease, now) = lease(*ttl, now)?;
                let keyed = keyed(idempotency_key.as_ref(), now, retention);
                let request =
                    |ledger: &Ledger| Request::reserve_up_to(ledger, *node, *min, *max, *ttl);
                let reserve =
                    |ledger: &mut Ledger| ledger.reserve_up_to_at(*node, *min, *max, lease);
                self.once(keyed, request, reserve).0.map(Applied::Reserved)
            }
            Op::Extend { hold, ttl } => {
                validate_ttl(*ttl, "a heartbeat's ttl")?;
                let now = now.ok_or_else(|| needs_time("extend"))?;
                self.extend(*hold, now.saturating_add(*ttl))
                    .map(Applied::Extended)
            }
            Op::Sweep => {
                let now = now.ok_or_else(|| needs_time("sweep"))?;
                Ok(Applied::Swept(self.sweep(now)))
            }
            Op::Record { hold, partial } => self
                .record_at(*hold, partial, now)
                .map(|()| Applied::Recorded),
            Op::Commit {
                hold,
                actual,
                idempotency_key,
            } => self
                .commit_op(*hold, actual, idempotency_key.as_ref(), now, retention)
                .map(Applied::Committed),
            Op::Release {
                hold,
                idempotency_key,
            } => self
                .release_op(*hold, idempotency_key.as_ref(), now, retention)
                .map(Applied::Released),
            Op::Credit {
                node,
                amount,
                idempotency_key,
            } => {
                let request = |ledger: &Ledger| Request::credit(ledger, *node, *amount);
                self.keyed_op(idempotency_key.as_ref(), now, retention, request, |l, _| {
                    l.credit(*node, *amount)
                })
                .map(|balance| Applied::Balance(Box::new(balance)))
            }
            Op::Debit {
                node,
                amount,
                idempotency_key,
            } => {
                let request = |ledger: &Ledger| Request::debit(ledger, *node, *amount);
                self.keyed_op(idempotency_key.as_ref(), now, retention, request, |l, _| {
                    l.debit(*node, *amount)
                })
                .map(|balance| Applied::Balance(Box::new(balance)))
            }
            Op::SetState { node, state } => self.set_state(*node, *state).map(Applied::State),
            Op::SetLimit { node, limit } => {
                self.set_limit(*node, *limit)?;
                self.start_new_periods(*node, now);
                // Read after the start: the balance before it has no `resets_at` yet.
                self.balance(*node, limit.unit())
                    .map(|balance| Applied::Balance(Box::new(balance)))
            }
            Op::RemoveLimit { node, unit } => self
                .remove_limit(*node, *unit)
                .map(|balance| Applied::Balance(Box::new(balance))),
            Op::SetRateLimit { node, limit } => {
                self.set_rate_limit(*node, *limit).map(Applied::RateLimit)
            }
            Op::SetBurnWindow { node, window } => self
                .set_burn_window(*node, *window)
                .map(Applied::BurnWindow),
            Op::SetTopUp { node, rule } => self.set_top_up(*node, *rule).map(Applied::TopUp),
            Op::Restore { snapshot } => {
                let mut restored = Ledger::from_snapshot(snapshot)?;
                restored.adopt_epoch(self);
                *self = restored;
                Ok(Applied::Restored)
            }
        }
    }

    /// Answers `query` at the store's time `now` (`None` as in [`apply`](Ledger::apply)).
    ///
    /// # Errors
    /// As the typed [`Store`](crate::Store) method of the same query; a
    /// [`Store`](Error::Store) error for a [`Query::Check`] without `now`.
    #[cfg(test)]
    pub(crate) fn read(&mut self, query: &Query, now: Option<Timestamp>) -> Result<Answer> {
        self.read_noting(query, now).0
    }

    /// [`read`](Ledger::read), and whether the read changed the books: it rolled an ended
    /// period, or it is a check that reclaimed expired holds, handed over holds reclaimed
    /// earlier, or made the earliest-deadline bound exact. A durable store logs exactly those
    /// reads.
    pub(crate) fn read_noting(
        &mut self,
        query: &Query,
        now: Option<Timestamp>,
    ) -> (Result<Answer>, bool) {
        let mut changed = false;
        if query.uses_clock()
            && let Some(now) = now
        {
            changed = self.roll_periods(now);
        }
        if !matches!(query, Query::Check { .. }) {
            return (self.answer(query, now), changed);
        }
        // Only a check changes the books beyond rolling periods: every reclaim frees a hold
        // slot, a scan sets the bound, and handing over reclaimed holds empties `reclaimed`.
        let before = (
            self.earliest_expiry,
            self.free_holds.len(),
            self.reclaimed.len(),
        );
        let answer = self.answer(query, now);
        let after = (
            self.earliest_expiry,
            self.free_holds.len(),
            self.reclaimed.len(),
        );
        (answer, changed || before != after)
    }

    fn answer(&mut self, query: &Query, now: Option<Timestamp>) -> Result<Answer> {
        match query {
            Query::Resolve { path } => self.resolve(path).map(Answer::Node),
            Query::Check { node, cost } => {
                let now = now.ok_or_else(|| needs_time("check"))?;
                self.check_at(*node, cost, Some(now)).map(Answer::Check)
            }
            Query::Balance { node, unit } => {
                self.balance_now(*node, *unit, now).map(Answer::Balance)
            }
            Query::NodeInfo { node } => self.node_info_now(*node, now).map(Answer::NodeInfo),
            Query::Snapshot => Ok(Answer::Snapshot(Box::new(self.snapshot()))),
            Query::Cancellation { hold } => Ok(Answer::Cancellation(self.cancellation(*hold))),
        }
    }

    /// [`Op::Reserve`] as [`apply`](Ledger::apply) runs it, without the `Op` and the
    /// [`Applied`] around it: an in-process store's typed `reserve` calls this directly, so the
    /// hot path neither builds an operation nor moves its result through an enum (issue 16).
    /// The caller rolls ended periods first, as `apply` does ([`Ledger::roll_periods_at`]).
    #[inline]
    pub(crate) fn reserve_op(
        &mut self,
        node: NodeId,
        cost: &Cost,
        ttl: Duration,
        idempotency_key: Option<&IdempotencyKey>,
        now: Option<Timestamp>,
        retention: &KeyRetention,
    ) -> Result<Reservation> {
        let (lease, now) = lease(ttl, now)?;
        if idempotency_key.is_none() {
            // Straight to the rules: `once` would hand the result back inside a tuple, a copy.
            return self.reserve_at(node, cost, lease);
        }
        let keyed = keyed(idempotency_key, now, retention);
        let request = |ledger: &Ledger| Request::reserve(ledger, node, cost, ttl);
        let reserve = |ledger: &mut Ledger| ledger.reserve_at(node, cost, lease);
        self.once(keyed, request, reserve).0
    }

    /// [`Op::Commit`] as [`apply`](Ledger::apply) runs it (see [`Ledger::reserve_op`]).
    #[inline]
    pub(crate) fn commit_op(
        &mut self,
        hold: HoldId,
        actual: &Cost,
        idempotency_key: Option<&IdempotencyKey>,
        now: Option<Timestamp>,
        retention: &KeyRetention,
    ) -> Result<Committed> {
        if idempotency_key.is_none() {
            return self.commit_at(hold, actual, now); // as `keyed_op` would, without its frame
        }
        let request = |_: &Ledger| {
            Ok(Request::Commit {
                hold,
                actual: *actual,
            })
        };
        self.keyed_op(idempotency_key, now, retention, request, |l, now| {
            l.commit_at(hold, actual, now)
        })
    }

    /// [`Op::Release`] as [`apply`](Ledger::apply) runs it (see [`Ledger::reserve_op`]).
    #[inline]
    pub(crate) fn release_op(
        &mut self,
        hold: HoldId,
        idempotency_key: Option<&IdempotencyKey>,
        now: Option<Timestamp>,
        retention: &KeyRetention,
    ) -> Result<bool> {
        if idempotency_key.is_none() {
            return self.release(hold); // as `keyed_op` would, without its frame
        }
        let request = |_: &Ledger| Ok(Request::Release { hold });
        self.keyed_op(idempotency_key, now, retention, request, |l, _| {
            l.release(hold)
        })
    }

    /// Rolls the periods that ended at `now`, if given: what [`apply`](Ledger::apply) does
    /// first for every operation that [`uses`](Op::uses_clock) the time.
    #[inline]
    pub(crate) fn roll_periods_at(&mut self, now: Option<Timestamp>) {
        if let Some(now) = now {
            self.roll_periods(now); // one compare while no period ended
        }
    }

    /// Starts node `id`'s new periodic limits at `now` (nothing without a time: a store passes
    /// none only while no limit has a period, and gives the time to an op that adds one).
    fn start_new_periods(&mut self, id: NodeId, now: Option<Timestamp>) {
        if let Some(now) = now {
            self.start_periods(id, now);
        }
    }

    /// Runs a commit, release, credit or debit: once per key if it has one (then it needs the
    /// time, for the key's retention, and `op` gets it), directly otherwise.
    fn keyed_op<T: Remember>(
        &mut self,
        key: Option<&IdempotencyKey>,
        now: Option<Timestamp>,
        retention: &KeyRetention,
        request: impl FnOnce(&Ledger) -> Result<Request>,
        op: impl FnOnce(&mut Ledger, Option<Timestamp>) -> Result<T>,
    ) -> Result<T> {
        let Some(key) = key else {
            return op(self, now);
        };
        let now = now.ok_or_else(|| needs_time("an operation with an idempotency key"))?;
        let keyed = Keyed {
            key,
            now,
            retention,
        };
        self.once(Some(keyed), request, |ledger| op(ledger, Some(now)))
            .0
    }
}

/// The lease of a reserve with `ttl` at `now` (checked: a TTL above zero, a time given).
fn lease(ttl: Duration, now: Option<Timestamp>) -> Result<(Lease, Timestamp)> {
    validate_ttl(ttl, "a hold's ttl")?;
    let now = now.ok_or_else(|| needs_time("a reserve"))?;
    let lease = Lease {
        now: Some(now),
        expires: now.saturating_add(ttl),
    };
    Ok((lease, now))
}

/// The key of a keyed reserve at `now`, if it has one.
fn keyed<'a>(
    key: Option<&'a IdempotencyKey>,
    now: Timestamp,
    retention: &'a KeyRetention,
) -> Option<Keyed<'a>> {
    key.map(|key| Keyed {
        key,
        now,
        retention,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::amount::Amount;
    use crate::cost::Cost;
    use crate::op::Query;
    use crate::policy::{Limit, Limits};

    fn usd(text: &str) -> Amount {
        Amount::usd(text).unwrap()
    }

    /// A ledger with one root `acme` ($10 hard).
    fn acme() -> (Ledger, NodeId) {
        let mut ledger = Ledger::new();
        let create = Op::CreateNode {
            parent: None,
            name: "acme".into(),
            limits: Limits::from(Limit::hard(usd("10"))),
        };
        let node = ledger
            .apply(&create, None, &KeyRetention::DEFAULT)
            .unwrap()
            .into_node()
            .unwrap();
        (ledger, node)
    }

    #[test]
    fn an_op_that_needs_the_time_without_it_is_a_permanent_error_that_changes_nothing() {
        let (mut ledger, node) = acme();
        let before = ledger.snapshot();
        let key = Some(IdempotencyKey::new("once").unwrap());
        let timeless = [
            Op::Reserve {
                node,
                cost: Cost::from(usd("1")),
                ttl: Duration::from_secs(60),
                idempotency_key: None,
            },
            Op::Sweep,
            Op::Credit {
                node,
                amount: usd("1"),
                idempotency_key: key,
            },
        ];
        for op in &timeless {
            assert!(op.needs_clock());
            let error = ledger.apply(op, None, &KeyRetention::DEFAULT).unwrap_err();
            let Error::Store(error) = &error else {
                panic!("{error:?}");
            };
            assert_eq!(error.kind(), crate::error::StoreErrorKind::Permanent);
            assert!(
                error.message().contains("needs the store's time"),
                "{error}"
            );
        }
        let check = Query::Check {
            node,
            cost: Cost::from(usd("1")),
        };
        assert!(ledger.read(&check, None).is_err());
        assert_eq!(ledger.snapshot(), before);
    }

    #[test]
    fn a_reserve_expires_its_ttl_after_the_given_time() {
        let (mut ledger, node) = acme();
        let now = Timestamp::from_unix_nanos(1_000);
        let reserve = Op::Reserve {
            node,
            cost: Cost::from(usd("4")),
            ttl: Duration::from_nanos(500),
            idempotency_key: None,
        };
        let granted = ledger
            .apply(&reserve, Some(now), &KeyRetention::DEFAULT)
            .unwrap()
            .into_reservation()
            .unwrap();
        assert_eq!(granted.expires_at, Timestamp::from_unix_nanos(1_500));
        let zero_ttl = Op::Reserve {
            node,
            cost: Cost::from(usd("4")),
            ttl: Duration::ZERO,
            idempotency_key: None,
        };
        assert!(matches!(
            ledger.apply(&zero_ttl, Some(now), &KeyRetention::DEFAULT),
            Err(Error::InvalidDuration { .. })
        ));
        let balance = ledger.read(
            &Query::Balance {
                node,
                unit: crate::amount::Unit::Usd,
            },
            None,
        );
        assert_eq!(balance.unwrap().into_balance().unwrap().reserved, usd("4"));
    }
}
