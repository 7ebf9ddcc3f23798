//! Reserving: guards, dry runs, expired holds.

use crate::amount::Amount;
use crate::check::Check;
use crate::cost::Cost;
use crate::error::Result;
use crate::event::{Event, ExpiredEvent};
use crate::expiry::{ExpiredHold, ReserveOptions};
use crate::guard::{GrantReport, Guard};
use crate::store::{Reservation, Store};

use super::Budget;

impl Budget {
    /// Holds `cost` on this node and every ancestor, atomically, and returns the guard that ends
    /// the hold: [`Guard::commit`] with the actual cost, [`Guard::release`], or drop.
    ///
    /// ```
    /// use budget_guard::{Amount, Budget, Error, Limit};
    /// # fn main() -> budget_guard::Result<()> {
    /// let task = Budget::builder("task", Limit::hard(Amount::usd("1")?)).build()?;
    /// let first = task.reserve(Amount::usd("0.75")?)?;
    /// let denied = task.reserve(Amount::usd("0.50")?).unwrap_err();
    /// let details = denied.exceeded().expect("a BudgetExceeded error");
    /// assert_eq!(details.node.as_ref(), "task");
    /// assert_eq!(details.remaining(), Amount::usd("0.25")?);
    /// drop(first); // releases the 0.75
    /// assert!(task.reserve(Amount::usd("0.50")?).is_ok());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::BudgetExceeded`](crate::Error::BudgetExceeded) naming the node (and
    /// [period](crate::Exceeded::period)) whose hard limit would be passed (nothing is held
    /// anywhere), [`Error::InDebt`](crate::Error::InDebt),
    /// [`Error::InvalidAmount`](crate::Error::InvalidAmount) for a zero or empty cost,
    /// [`Error::UnknownNode`](crate::Error::UnknownNode); a unit no node on the path limits is held
    /// and recorded, never refused; [`Error::ApprovalDenied`](crate::Error::ApprovalDenied) when an
    /// approval rule on this node or an ancestor applies and its approver says no,
    /// [`Error::AsyncApprovalRequired`](crate::Error::AsyncApprovalRequired) when that approver is
    /// async (see [`crate::approval`]).
    pub fn reserve(&self, cost: impl Into<Cost>) -> Result<Guard<'_>> {
        let cost = cost.into();
        self.approve(&cost)?;
        self.reserve_approved(&cost)
    }

    /// [`reserve`](Budget::reserve) after its approval ([`crate::approval`]).
    #[inline]
    pub(crate) fn reserve_approved(&self, cost: &Cost) -> Result<Guard<'_>> {
        let reservation = self.shared.store.reserve(self.node, cost);
        self.granted(reservation, cost)
    }

    /// As [`reserve`](Budget::reserve), with [`ReserveOptions`]: how long the hold lives
    /// without a heartbeat ([`Guard::extend`]). Past its deadline a hold may be reclaimed (see
    /// [`crate::expiry`] for what a later commit records).
    ///
    /// ```
    /// use std::time::Duration;
    /// use budget_guard::expiry::ReserveOptions;
    /// use budget_guard::{Amount, Budget, Limit, ManualClock, MemoryStore, Timestamp};
    /// # fn main() -> budget_guard::Result<()> {
    /// let clock = ManualClock::new(Timestamp::EPOCH);
    /// let run = Budget::builder("run", Limit::hard(Amount::usd("1")?))
    ///     .build_in(MemoryStore::with_clock(clock.clone()))?;
    /// let short = ReserveOptions::new().ttl(Duration::from_secs(5));
    /// let stuck = run.reserve_with(Amount::usd("0.80")?, &short)?; // a caller that hangs
    /// clock.advance(Duration::from_secs(6));
    /// // The next reserve that would be denied reclaims the expired hold first:
    /// let fresh = run.reserve(Amount::usd("0.50")?)?;
    /// fresh.commit(Amount::usd("0.40")?)?;
    /// # drop(stuck);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`reserve`](Budget::reserve); [`Error::InvalidDuration`](crate::Error::InvalidDuration)
    /// for a zero TTL.
    pub fn reserve_with(
        &self,
        cost: impl Into<Cost>,
        options: &ReserveOptions,
    ) -> Result<Guard<'_>> {
        let cost = cost.into();
        self.approve(&cost)?;
        let reservation = self.shared.store.reserve_with(self.node, &cost, options);
        self.granted(reservation, &cost)
    }

    /// The dry run: whether [`reserve`](Budget::reserve) of `cost` would be granted now and, if
    /// not, which node would refuse it with its numbers ([`Check`]). Nothing is held, no
    /// [`Event::ReserveDenied`] is delivered for a refusal, and a later reserve may still be
    /// denied (others reserve in between). Holds past their deadline that the check reclaimed
    /// are delivered as [`Event::HoldExpired`].
    ///
    /// ```
    /// use budget_guard::{Amount, Budget, Limit, NodeState, Verdict};
    /// # fn main() -> budget_guard::Result<()> {
    /// let org = Budget::builder("org", Limit::hard(Amount::usd("10")?))
    ///     .child("agent", Limit::hard(Amount::usd("1")?))
    ///     .build()?;
    /// let agent = org.at("agent")?;
    /// assert!(agent.check(Amount::usd("0.80")?)?.fits());
    /// org.set_state(NodeState::Frozen)?;
    /// let check = agent.check(Amount::usd("0.80")?)?;
    /// assert!(matches!(&check.verdict, Verdict::Frozen { node } if &**node == "org"));
    /// assert_eq!(check.denied_by(), Some("org"));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidAmount`](crate::Error::InvalidAmount) for a zero or empty cost,
    /// [`Error::UnknownNode`](crate::Error::UnknownNode). A unit no node on the path limits always
    /// fits (it is tracked). Refusals (exceeded, in debt, frozen, closed) are [`Check::verdict`]s,
    /// not errors. Approval rules that a reserve would ask are listed in [`Check::approvals`]
    /// (nobody is asked).
    pub fn check(&self, cost: impl Into<Cost>) -> Result<Check> {
        let cost = cost.into();
        let mut check = self.named(self.shared.store.check(self.node, &cost))?;
        self.deliver_expired(&check.expired);
        check.approvals = self.approvals_needed(&cost);
        Ok(check)
    }

    /// As [`reserve_with`](Budget::reserve_with), returning a `Guard<'static>` as
    /// [`reserve_owned`](Budget::reserve_owned) does.
    ///
    /// # Errors
    /// As [`reserve_with`](Budget::reserve_with).
    pub fn reserve_owned_with(
        &self,
        cost: impl Into<Cost>,
        options: &ReserveOptions,
    ) -> Result<Guard<'static>> {
        self.reserve_with(cost, options).map(Guard::into_owned)
    }

    /// Reclaims every hold of this store past its deadline, delivers an
    /// [`Event::HoldExpired`] for each reclaimed hold not reported before, and returns them.
    /// Reserves reclaim lazily when they would be denied; call this (or run
    /// [`spawn_sweeper`](Budget::spawn_sweeper)) to return crashed callers' holds sooner.
    ///
    /// # Errors
    /// Only store failures.
    pub fn sweep(&self) -> Result<Vec<ExpiredHold>> {
        let expired = self.shared.store.sweep()?;
        self.deliver_expired(&expired);
        Ok(expired)
    }

    /// Runs [`sweep`](Budget::sweep) every `every` on the current tokio runtime until the
    /// returned task is aborted (feature `tokio`). The task owns a clone of this handle, so
    /// expiry events reach this tree's subscribers; a failing sweep is logged and retried at the
    /// next tick.
    ///
    /// ```
    /// use std::time::Duration;
    /// use budget_guard::{Amount, Budget, Limit};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> budget_guard::Result<()> {
    /// let org = Budget::builder("org", Limit::hard(Amount::usd("10")?)).build()?;
    /// let sweeper = org.spawn_sweeper(Duration::from_secs(5))?;
    /// // ... holds of callers that died come back within their TTL plus 5 s ...
    /// sweeper.abort();
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidDuration`](crate::Error::InvalidDuration) for a zero interval.
    ///
    /// # Panics
    /// Outside a tokio runtime (as `tokio::spawn`).
    #[cfg(feature = "tokio")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub fn spawn_sweeper(&self, every: std::time::Duration) -> Result<tokio::task::JoinHandle<()>> {
        crate::expiry::validate_ttl(every, "a sweep interval")?;
        let budget = self.clone();
        Ok(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await; // the first tick is immediate
            loop {
                ticks.tick().await;
                if let Err(error) = budget.sweep() {
                    tracing::warn!(target: "budget_guard", %error, "background sweep failed");
                }
            }
        }))
    }

    /// Delivers the expiries a store operation reported.
    #[inline]
    pub(crate) fn deliver_expired(&self, expired: &[ExpiredHold]) {
        if expired.is_empty() {
            return;
        }
        self.deliver_expired_slow(expired);
    }

    #[cold]
    pub(super) fn deliver_expired_slow(&self, expired: &[ExpiredHold]) {
        self.shared.wake_cancelled();
        let at = self.shared.event_time();
        for hold in expired {
            tracing::info!(
                target: "budget_guard",
                node = %hold.node,
                hold = %hold.hold,
                held = %hold.held,
                expired_at = %hold.expired_at,
                "hold expired and was reclaimed"
            );
            if self.shared.listening() {
                self.shared
                    .deliver(&Event::HoldExpired(ExpiredEvent::new(hold, at)));
            }
        }
    }

    /// As [`reserve`](Budget::reserve), but the guard owns a clone of this handle, so it can be
    /// stored or moved to another thread or task (`Guard<'static>`).
    ///
    /// # Errors
    /// As [`reserve`](Budget::reserve).
    pub fn reserve_owned(&self, cost: impl Into<Cost>) -> Result<Guard<'static>> {
        self.reserve(cost).map(Guard::into_owned)
    }

    /// Holds as much of one unit as the whole path has room for, at least `min` and at most
    /// `max`: for streaming callers that can stop early.
    ///
    /// ```
    /// use budget_guard::{Amount, Budget, Limit};
    /// # fn main() -> budget_guard::Result<()> {
    /// let run = Budget::builder("run", Limit::hard(Amount::tokens(1_000))).build()?;
    /// let _busy = run.reserve(Amount::tokens(700))?;
    /// let stream = run.reserve_up_to(Amount::tokens(100), Amount::tokens(500))?;
    /// assert_eq!(stream.held().get(budget_guard::Unit::Tokens), Some(Amount::tokens(300)));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`reserve`](Budget::reserve) when not even `min` fits;
    /// [`Error::InvalidAmount`](crate::Error::InvalidAmount) when `min > max` or `min` is zero;
    /// [`Error::UnitMismatch`](crate::Error::UnitMismatch) when they differ in unit.
    pub fn reserve_up_to(&self, min: Amount, max: Amount) -> Result<Guard<'_>> {
        self.approve_up_to(min, max)?;
        let reservation = self.shared.store.reserve_up_to(self.node, min, max);
        self.granted(reservation, &Cost::from(max))
    }

    /// The guard for a granted reserve, or the refusal (named and reported).
    ///
    /// The store's answer is taken apart field by field where it lies, never moved as a whole:
    /// a 168-byte [`Reservation`] moved is a `memcpy` whose wide loads read back what the store
    /// just wrote piecewise (a store-forwarding stall each time, issue 16).
    #[inline]
    pub(super) fn granted(
        &self,
        reservation: Result<Reservation>,
        asked: &Cost,
    ) -> Result<Guard<'_>> {
        match reservation {
            Ok(Reservation {
                hold,
                held,
                over_soft_limit,
                events,
                expires_at,
                replayed,
                top_ups,
                top_up_caps,
                expired,
            }) => {
                self.deliver_expired(&expired);
                self.deliver_top_ups(&top_ups);
                self.deliver_top_up_caps(&top_up_caps);
                self.deliver_crossings(&events);
                tracing::debug!(
                    target: "budget_guard",
                    node = %self.path,
                    %held,
                    %hold,
                    "reserve granted"
                );
                if let Some(node) = &over_soft_limit {
                    tracing::warn!(
                        target: "budget_guard",
                        node = %self.path,
                        soft_limit_at = %node,
                        %held,
                        "reserve passes a soft limit"
                    );
                }
                let report = GrantReport {
                    over_soft_limit,
                    events,
                    top_ups,
                    top_up_caps,
                    expired,
                };
                Ok(Guard::new(self, hold, held, expires_at, replayed, report))
            }
            Err(error) => Err(self.denied(self.named_error(error), asked)),
        }
    }

    /// Reports a refused reserve (a `tracing` line and the denial event) and hands its error
    /// back. Out of line: the granted path stays small enough to inline.
    #[cold]
    fn denied(&self, error: crate::Error, asked: &Cost) -> crate::Error {
        tracing::debug!(
            target: "budget_guard",
            node = %self.path,
            requested = %asked,
            %error,
            "reserve denied"
        );
        self.deliver_denial(&error, asked);
        error
    }
}
