//! [`Guard`]: the RAII handle of one reservation.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use crate::amount::Amount;
use crate::amount::Unit;
use crate::budget::Budget;
use crate::clock::Timestamp;
use crate::cost::Cost;
use crate::error::Error;
use crate::event::{Event, OverageEvent, ReleasedEvent};
use crate::idempotency::OpOptions;
use crate::ids::HoldId;
use crate::report::{Attribution, SpendOutcome, note_spend};
use crate::store::Committed;
use crate::threshold::Crossings;
use crate::top_up::{TopUpApplied, TopUpCapped};

mod cancel;
mod commit_error;
mod extras;

pub use self::commit_error::CommitError;
pub(crate) use self::extras::GrantReport;
use self::extras::{Extras, discard};

/// A live reservation (hold) on a budget node and all its ancestors.
///
/// A guard ends its hold exactly once: [`commit`](Guard::commit) records the actual cost and
/// returns the unused rest, [`release`](Guard::release) returns everything, and dropping the guard
/// releases too — on an early `return`, a `?`, or a panic. Both `commit` and `release` consume
/// the guard, so a second commit does not compile:
///
/// ```compile_fail
/// # use budget_guard::{Amount, Budget, Limit};
/// # let budget = Budget::builder("b", Limit::hard(Amount::usd("1").unwrap())).build().unwrap();
/// let guard = budget.reserve(Amount::usd("0.10").unwrap()).unwrap();
/// guard.commit(Amount::usd("0.05").unwrap()).unwrap();
/// guard.commit(Amount::usd("0.05").unwrap()).unwrap(); // error: use of moved value
/// ```
///
/// `Guard<'a>` borrows the [`Budget`] it came from, which keeps the reserve/commit path free of
/// reference counting; [`Budget::reserve_owned`] or [`Guard::into_owned`] give a `Guard<'static>`
/// to store or move across threads and tasks.
///
/// Dropping a guard while the thread is panicking still releases the hold; `Drop` never panics
/// (a store failure during the release is reported through `tracing`).
#[must_use = "dropping a Guard releases its hold at once"]
#[clippy::has_significant_drop]
pub struct Guard<'a> {
    budget: Cow<'a, Budget>,
    /// The hold in its store.
    hold: HoldId,
    /// What the reserve held.
    held: Cost,
    /// The rare parts: what the reserve reported besides the hold (a soft limit passed,
    /// crossings, top-ups; already delivered) and labels for reports. `None` (no allocation,
    /// one word) on nearly every reserve. The guard keeps only what its accessors read, not the
    /// whole [`Reservation`]: at 128 bytes it moves as register copies (issue 16).
    extras: Option<Box<Extras>>,
    /// Spend moved by `record`, per unit index (atomics keep `Guard: Sync` for `&Guard` across
    /// `.await`).
    recorded: [AtomicI64; Unit::COUNT],
    /// The deadline in Unix nanoseconds (atomic so `extend(&self)` keeps `Guard: Sync`).
    expires_at: AtomicI64,
    /// The store's cancel epoch at the last `cancellation` that found nothing (`u64::MAX`:
    /// never asked).
    clear_at: AtomicU64,
    /// The reserve was a replay of a keyed reserve ([`Guard::is_replay`]).
    replayed: bool,
    live: bool,
}

/// What [`Guard::crossings`] lends when the reserve crossed nothing.
static NO_CROSSINGS: Crossings = Crossings::new();

impl<'a> Guard<'a> {
    #[inline]
    pub(crate) fn new(
        budget: &'a Budget,
        hold: HoldId,
        held: Cost,
        expires_at: Timestamp,
        replayed: bool,
        report: GrantReport,
    ) -> Self {
        let GrantReport {
            over_soft_limit,
            events,
            top_ups,
            top_up_caps,
            expired, // delivered by the budget; not kept
        } = report;
        discard(expired);
        let extras = Extras::keep(over_soft_limit, events, top_ups, top_up_caps);
        Guard {
            budget: Cow::Borrowed(budget),
            hold,
            held,
            extras,
            expires_at: AtomicI64::new(expires_at.as_unix_nanos()),
            replayed,
            // A replayed reserve's guard is a second handle: the first guard releases on drop.
            live: !replayed,
            recorded: Default::default(),
            clear_at: AtomicU64::new(u64::MAX),
        }
    }

    /// `true` if this guard came from a reserve retried with an
    /// [idempotency key](crate::idempotency): it is a second handle on the first reserve's
    /// hold. It commits and releases like any guard, but dropping it does **not** release the
    /// hold (the first guard, or the hold's deadline, does).
    ///
    /// ```
    /// use budget_guard::expiry::ReserveOptions;
    /// use budget_guard::idempotency::IdempotencyKey;
    /// use budget_guard::{Amount, Budget, Limit, Unit};
    /// # fn main() -> budget_guard::Result<()> {
    /// let run = Budget::builder("run", Limit::hard(Amount::usd("1")?)).build()?;
    /// let once = ReserveOptions::new().idempotency_key(IdempotencyKey::new("call-1")?);
    /// let first = run.reserve_with(Amount::usd("0.30")?, &once)?;
    /// let retry = run.reserve_with(Amount::usd("0.30")?, &once)?;
    /// assert!(!first.is_replay() && retry.is_replay());
    /// retry.commit(Amount::usd("0.10")?)?; // either handle may end the hold
    /// drop(first); // its release finds the hold ended: a no-op
    /// assert_eq!(run.balance(Unit::Usd)?.spent, Amount::usd("0.10")?);
    /// # Ok(()) }
    /// ```
    pub fn is_replay(&self) -> bool {
        self.replayed
    }

    pub(crate) fn attribution(&self) -> Option<&Attribution> {
        self.extras.as_ref()?.attribution.as_ref()
    }

    pub(crate) fn attribution_mut(&mut self) -> &mut Attribution {
        let extras = self.extras.get_or_insert_with(Box::default);
        extras.attribution.get_or_insert_with(Attribution::default)
    }

    /// Adds this hold's spend to the report book (if reports are on).
    #[inline]
    fn report_spend(&self, spent: &Cost, outcome: SpendOutcome) {
        if self.budget.shared().reporting() {
            self.note_spend(spent, outcome);
        } // else one load on the usual commit, no call
    }

    /// [`report_spend`](Guard::report_spend) when reports are on. Out of line, so that the
    /// test above stays small enough to be inlined where the commit runs (issue 16).
    #[cold]
    fn note_spend(&self, spent: &Cost, outcome: SpendOutcome) {
        note_spend(&self.budget, self.id(), self.attribution(), spent, outcome);
    }

    /// The hold's id in its store.
    pub fn id(&self) -> HoldId {
        self.hold
    }

    /// What was held when the reservation was granted (for `reserve_up_to`, the amount granted).
    pub fn held(&self) -> Cost {
        self.held
    }

    /// The budget node the hold was reserved on.
    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// The path of a node whose *soft* limit this hold passes, if any. Soft limits let work
    /// through and report it here (and as a `tracing` warning).
    pub fn over_soft_limit(&self) -> Option<&str> {
        self.extras.as_ref()?.over_soft_limit.as_deref()
    }

    /// The hold's deadline in the store's clock: past it the store may reclaim the hold (see
    /// [`crate::expiry`]). [`extend`](Guard::extend) moves it.
    pub fn expires_at(&self) -> Timestamp {
        Timestamp::from_unix_nanos(self.expires_at.load(Ordering::Relaxed))
    }

    /// The heartbeat: the hold now expires `ttl` after the store's current time. Long work
    /// calls this periodically so that only a caller that died loses its hold.
    ///
    /// ```
    /// use std::time::Duration;
    /// use budget_guard::{Amount, Budget, Limit, ManualClock, MemoryStore, Timestamp};
    /// # fn main() -> budget_guard::Result<()> {
    /// let clock = ManualClock::new(Timestamp::EPOCH);
    /// let run = Budget::builder("run", Limit::hard(Amount::usd("1")?))
    ///     .build_in(MemoryStore::with_clock(clock.clone()))?;
    /// let guard = run.reserve(Amount::usd("0.50")?)?;
    /// clock.advance(Duration::from_secs(50));
    /// guard.extend(Duration::from_secs(60))?; // now due at 110 s
    /// clock.advance(Duration::from_secs(50));
    /// assert!(run.sweep()?.is_empty()); // still alive at 100 s
    /// guard.commit(Amount::usd("0.30")?)?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::ReservationExpired`] if the hold was already reclaimed (commit may still record
    /// the spend), [`Error::UnknownHold`] if it ended otherwise, [`Error::InvalidDuration`] for a
    /// zero `ttl`. Nothing changes on error.
    pub fn extend(&self, ttl: Duration) -> Result<Timestamp, Error> {
        let expires = self.budget.store().extend(self.id(), ttl)?;
        self.expires_at
            .store(expires.as_unix_nanos(), Ordering::Relaxed);
        Ok(expires)
    }

    /// Auto top-ups reported with the reserve (already delivered as
    /// [`Event::ToppedUp`](crate::Event::ToppedUp); see [`crate::top_up`]).
    pub fn top_ups(&self) -> &[TopUpApplied] {
        self.extras.as_ref().map_or(&[], |extras| &extras.top_ups)
    }

    /// Auto top-ups a cap refused, reported with the reserve (already delivered as
    /// [`Event::TopUpCapped`](crate::Event::TopUpCapped); see [`crate::top_up`]).
    pub fn top_up_caps(&self) -> &[TopUpCapped] {
        self.extras
            .as_ref()
            .map_or(&[], |extras| &extras.top_up_caps)
    }

    /// Threshold levels the reserve reported (already delivered as events to subscribers).
    /// Levels fire on committed spend by default, so this is usually empty; the early warning
    /// ([`ThresholdBasis::SpentAndHeld`](crate::ThresholdBasis::SpentAndHeld)) fires here.
    pub fn crossings(&self) -> &Crossings {
        self.extras
            .as_ref()
            .map_or(&NO_CROSSINGS, |extras| &extras.events)
    }

    /// What [`record`](Guard::record) has moved to spent so far, in the hold's units.
    pub fn recorded(&self) -> Cost {
        let mut recorded = Cost::new();
        for unit in self.held.units() {
            recorded.set(unit, self.recorded[unit.index()].load(Ordering::Relaxed));
        }
        recorded
    }

    /// The same guard, owning a clone of its budget handle instead of borrowing it.
    pub fn into_owned(mut self) -> Guard<'static> {
        self.take_owned()
    }

    /// What [`into_owned`](Guard::into_owned) returns, taken out of a guard that stays behind
    /// ended (`live` false, no extras): for a worker that has the guard by `&mut`.
    fn take_owned(&mut self) -> Guard<'static> {
        let live = std::mem::replace(&mut self.live, false);
        Guard {
            budget: Cow::Owned(self.budget.as_ref().clone()),
            hold: self.hold,
            held: self.held,
            extras: self.extras.take(),
            replayed: self.replayed,
            recorded: std::array::from_fn(|index| {
                AtomicI64::new(self.recorded[index].load(Ordering::Relaxed))
            }),
            expires_at: AtomicI64::new(self.expires_at.load(Ordering::Relaxed)),
            clear_at: AtomicU64::new(self.clear_at.load(Ordering::Relaxed)),
            live,
        }
    }

    /// Records `partial` spend on the live hold now (streaming: tokens as they arrive, seconds of
    /// sandbox time). Recorded spend counts as spent at once. If the running total would pass
    /// what is held, the hold grows first, provided every node on the path has room; if one does
    /// not, nothing is recorded and the caller should stop (zero grace at the cap).
    ///
    /// ```
    /// use budget_guard::{Amount, Budget, Limit, Unit};
    /// # fn main() -> budget_guard::Result<()> {
    /// let run = Budget::builder("run", Limit::hard(Amount::tokens(1_000))).build()?;
    /// let stream = run.reserve(Amount::tokens(400))?;
    /// stream.record(Amount::tokens(300))?;
    /// stream.record(Amount::tokens(300))?; // grows the hold to 600
    /// assert!(stream.record(Amount::tokens(500)).is_err()); // would pass 1,000: stop
    /// stream.commit(Amount::tokens(600))?; // commit takes the total
    /// assert_eq!(run.balance(Unit::Tokens)?.spent, Amount::tokens(600));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::BudgetExceeded`] or [`Error::InDebt`] when the hold cannot grow (nothing
    /// recorded); [`Error::UnitMismatch`] for a unit the hold does not have;
    /// [`Error::UnknownHold`] if the hold already ended.
    pub fn record(&self, partial: impl Into<Cost>) -> Result<(), Error> {
        let partial = partial.into();
        let outcome = self.budget.store().record(self.id(), &partial);
        tracing::debug!(
            target: "budget_guard",
            node = %self.budget.path(),
            hold = %self.id(),
            %partial,
            ok = outcome.is_ok(),
            "spend recorded on a live hold"
        );
        match &outcome {
            Ok(()) => {
                for unit in partial.units() {
                    self.recorded[unit.index()].fetch_add(partial.minor(unit), Ordering::Relaxed);
                }
            }
            // The cap cut the meter off (or the node was closed): `on_exceeded` subscribers hear
            // it as a denial; other errors are not refusals and are ignored there.
            Err(error) => self.budget.deliver_denial(error, &partial),
        }
        outcome
    }

    /// Ends the hold with its *total* actual cost (including anything [`record`](Guard::record)
    /// already counted). Below the hold, the rest returns to the budget; above it, the node's
    /// [`OveragePolicy`](crate::OveragePolicy) decides.
    ///
    /// `actual` names every unit the hold holds and may name more: a provider's reported dollar
    /// cost can be booked together with its token count on a dollar hold. A unit the hold did not
    /// hold counts as held at zero; where no node on the path limits it, it is simply recorded.
    ///
    /// ```
    /// use budget_guard::{Amount, Budget, Cost, Limit, Unit};
    /// # fn main() -> budget_guard::Result<()> {
    /// let team = Budget::builder("team", Limit::hard(Amount::usd("10")?)).build()?;
    /// let guard = team.reserve(Amount::usd("0.50")?)?;
    /// guard.commit(Cost::from(Amount::usd("0.031")?).with(Amount::tokens(1_200))?)?;
    /// assert_eq!(team.balance(Unit::Usd)?.spent, Amount::usd("0.031")?);
    /// assert_eq!(team.balance(Unit::Tokens)?.spent, Amount::tokens(1_200));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// What each error leaves behind:
    ///
    /// * [`Error::OverageRejected`]: the hold **has ended** and the spend **was recorded** (the
    ///   excess as debt where it did not fit). Nothing to retry; [`CommitError::into_guard`] is
    ///   `None`.
    /// * [`Error::UnitMismatch`] (a held unit missing from `actual`), [`Error::InvalidAmount`]
    ///   (below the recorded spend),
    ///   [`Error::Overflow`]: bad input; **nothing changed** and the hold is still live.
    ///   [`CommitError::into_guard`] hands the guard back to retry with a correct amount;
    ///   dropping it releases the hold as usual.
    /// * [`Error::ReservationExpired`]: the hold had been reclaimed after its deadline and the
    ///   spend above what was recorded did not fit without a hold: **nothing was recorded** (see
    ///   [`crate::expiry`]). When it fits, the commit succeeds with
    ///   [`Committed::expired`] set instead.
    /// * [`Error::UnknownHold`]: the hold had already ended (or was reclaimed too long ago to
    ///   be remembered).
    /// * [`Error::Store`]: the backend failed; the outcome is unknown until the store recovers
    ///   (commit with an idempotency key, [`commit_with`](Guard::commit_with), to retry it
    ///   safely).
    #[inline]
    pub fn commit(mut self, actual: impl Into<Cost>) -> Result<Committed, CommitError> {
        self.end_with_commit(&actual.into(), &OpOptions::DEFAULT)
    }

    /// As [`commit`](Guard::commit), with [`OpOptions`]: with an idempotency key, a retry of
    /// this commit (same key, hold and cost; through another guard on the hold or
    /// [`Store::commit_with`](crate::Store::commit_with) with [`id`](Guard::id), for example
    /// after a store failure left the outcome unknown) returns the first result with
    /// [`Committed::replayed`] set and records nothing; its guard delivers no events and reports
    /// no spend again (see [`crate::idempotency`]).
    ///
    /// ```
    /// use budget_guard::idempotency::{IdempotencyKey, OpOptions};
    /// use budget_guard::{Amount, Budget, Cost, Limit, Unit};
    /// # fn main() -> budget_guard::Result<()> {
    /// let run = Budget::builder("run", Limit::hard(Amount::usd("1")?)).build()?;
    /// let guard = run.reserve(Amount::usd("0.50")?)?;
    /// let hold = guard.id();
    /// let once = OpOptions::new().idempotency_key(IdempotencyKey::new("call-9/commit")?);
    /// let first = guard.commit_with(Amount::usd("0.20")?, &once)?;
    /// // The caller did not see `first` (say, a timeout) and retries through the store:
    /// let cost = Cost::from(Amount::usd("0.20")?);
    /// let again = run.store().commit_with(hold, &cost, &once)?;
    /// assert!(again.replayed && again.returned == first.returned);
    /// assert_eq!(run.balance(Unit::Usd)?.spent, Amount::usd("0.20")?); // recorded once
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`commit`](Guard::commit); [`Error::IdempotencyMismatch`] (the hold is unchanged and
    /// [`CommitError::into_guard`] returns the guard) if the key was used for another request.
    #[inline]
    pub fn commit_with(
        mut self,
        actual: impl Into<Cost>,
        options: &OpOptions,
    ) -> Result<Committed, CommitError> {
        self.end_with_commit(&actual.into(), options)
    }

    /// The work of [`commit_with`](Guard::commit_with) on the guard in place. The public
    /// methods take the guard by value (a second commit must not compile) but are inlined
    /// shims around this, so the caller's guard is not copied into a by-value argument (a
    /// 128-byte move read back with wide loads right after the reserve wrote it piecewise:
    /// store-forwarding stalls, issue 16). The guard is ended here (`live` false) unless the
    /// error hands it back, in which case its contents move into the [`CommitError`]; the
    /// shell the caller drops afterwards does nothing.
    fn end_with_commit(
        &mut self,
        actual: &Cost,
        options: &OpOptions,
    ) -> Result<Committed, CommitError> {
        let outcome = self.budget.store().commit_with(self.id(), actual, options);
        tracing::debug!(
            target: "budget_guard",
            node = %self.budget.path(),
            hold = %self.id(),
            held = %self.held,
            %actual,
            ok = outcome.is_ok(),
            "commit"
        );
        // The granted commit is looked at where the store left it and moved once, into the
        // caller's slot: a `match` that binds it by value first copied the 176-byte
        // `Committed` (a `memcpy`) before the report and the events (issue 16).
        if let Ok(committed) = &outcome {
            self.live = false;
            // A replay was reported and delivered by the first commit.
            if !committed.replayed {
                self.report_spend(&committed.spent, SpendOutcome::Committed);
                self.budget.deliver_crossings(&committed.events);
                self.budget.deliver_top_ups(&committed.top_ups);
                self.budget.deliver_top_up_caps(&committed.top_up_caps);
                if !committed.overage.iter().all(|amount| amount.is_zero()) {
                    self.deliver_overage(actual, None);
                }
            }
        }
        match outcome {
            Ok(committed) => Ok(committed),
            Err(error) => Err(self.commit_refused(error, actual)),
        }
    }

    /// A commit the store refused: reports what it recorded anyway and hands the guard back
    /// when the hold is unchanged. Out of line: the granted path stays small.
    #[cold]
    fn commit_refused(&mut self, error: Error, actual: &Cost) -> CommitError {
        match error {
            Error::OverageRejected { debt, .. } => {
                self.report_spend(actual, SpendOutcome::OverageRejected);
                self.deliver_overage(actual, Some(debt));
            }
            Error::ReservationExpired { .. } | Error::UnknownHold { .. } => {
                // Spend recorded before the reclaim stays spent.
                self.report_spend(&self.recorded(), SpendOutcome::Reclaimed);
            }
            _ => {}
        }
        let hold_unchanged = matches!(
            error,
            Error::UnitMismatch { .. }
                | Error::InvalidAmount { .. }
                | Error::Overflow { .. }
                | Error::IdempotencyMismatch { .. }
        );
        let guard = if hold_unchanged {
            Some(Box::new(self.take_owned()))
        } else {
            self.live = false;
            None
        };
        CommitError { error, guard }
    }

    /// Ends the hold, returning all of it that was not recorded as spent.
    ///
    /// # Errors
    /// Only store failures ([`Error::Store`]); releasing a hold that already ended (expired) is
    /// not an error.
    #[inline]
    pub fn release(mut self) -> Result<(), Error> {
        self.live = false;
        self.release_hold(false, &OpOptions::DEFAULT)
    }

    /// As [`release`](Guard::release), with [`OpOptions`]: with an idempotency key, a retry
    /// (same key and hold) returns the first answer and changes nothing (see
    /// [`crate::idempotency`]).
    ///
    /// ```
    /// use budget_guard::idempotency::{IdempotencyKey, OpOptions};
    /// use budget_guard::{Amount, Budget, Limit, Unit};
    /// # fn main() -> budget_guard::Result<()> {
    /// let run = Budget::builder("run", Limit::hard(Amount::usd("1")?)).build()?;
    /// let guard = run.reserve(Amount::usd("0.50")?)?;
    /// guard.release_with(&OpOptions::new().idempotency_key(IdempotencyKey::new("cancel-4")?))?;
    /// assert_eq!(run.balance(Unit::Usd)?.reserved, Amount::zero(Unit::Usd));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// Store failures ([`Error::Store`]); [`Error::IdempotencyMismatch`] if the key was used
    /// for another request (the hold is then left alone, to be reclaimed at its deadline).
    #[inline]
    pub fn release_with(mut self, options: &OpOptions) -> Result<(), Error> {
        self.live = false;
        self.release_hold(false, options)
    }

    /// Delivers an overage: [`Event::OverageRejected`] with the debt this commit recorded, or
    /// [`Event::OverageAllowed`] (`debt` is `None`).
    fn deliver_overage(&self, actual: &Cost, debt: Option<Amount>) {
        let shared = self.budget.shared();
        shared.wake_cancelled();
        if shared.listening() {
            let event = OverageEvent {
                node: self.budget.path_arc().clone(),
                held: self.held,
                actual: *actual,
                rejected: debt.is_some(),
                debt,
                at: shared.event_time(),
            };
            shared.deliver(&match debt {
                Some(_) => Event::OverageRejected(event),
                None => Event::OverageAllowed(event),
            });
        }
    }

    fn release_hold(&self, dropped: bool, options: &OpOptions) -> Result<(), Error> {
        let released = self.budget.store().release_with(self.id(), options);
        // (Reports off, the usual case: `recorded` is not even read.)
        if released.is_ok() && self.budget.shared().reporting() {
            // Recorded spend stays spent, whether this release or an expiry ended the hold.
            self.report_spend(&self.recorded(), SpendOutcome::Released);
        }
        let shared = self.budget.shared();
        if matches!(released, Ok(true)) && shared.listening() {
            shared.deliver(&Event::HoldReleased(ReleasedEvent {
                node: self.budget.path_arc().clone(),
                held: self.held,
                recorded: self.recorded(),
                dropped,
                at: shared.event_time(),
            }));
        }
        tracing::debug!(
            target: "budget_guard",
            node = %self.budget.path(),
            hold = %self.id(),
            held = %self.held,
            released = matches!(released, Ok(true)),
            "hold released"
        );
        released.map(|_| ())
    }
}

impl Guard<'_> {
    /// The release a drop of a live guard runs. Out of line: the drop itself is one test of
    /// `live` in the caller (after a commit, a release or an `into_owned`, nothing else runs).
    fn release_dropped(&mut self) {
        self.live = false;
        if let Err(error) = self.release_hold(true, &OpOptions::DEFAULT) {
            tracing::warn!(
                target: "budget_guard",
                hold = %self.id(),
                %error,
                "dropping a guard could not release its hold"
            );
        }
    }
}

impl Drop for Guard<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.live {
            self.release_dropped();
        }
    }
}

impl fmt::Debug for Guard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("node", &self.budget.path())
            .field("hold", &self.hold)
            .field("held", &self.held)
            .field("live", &self.live)
            .finish()
    }
}
