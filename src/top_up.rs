//! Auto top-up: a per-node rule that adds funds when the node runs low.
//!
//! # The rule
//!
//! [`TopUp::when_below(x).adding(y)`](TopUp::when_below) means: when the node's `remaining`
//! (`limit − spent − reserved`, in `x`'s unit) falls below `x`, add `y`. Optional caps:
//! [`at_most(n)`](TopUp::at_most) top-ups and [`at_most_total(m)`](TopUp::at_most_total) added,
//! either in total or, with [`per(window)`](TopUp::per), per fixed window of time (windows are
//! aligned to the Unix epoch: `per(24 h)` counts per UTC day), or with
//! [`per_period(period)`](TopUp::per_period) per calendar [`Period`] (monthly in a time zone,
//! say). Without caps a rule tops up without end: give one.
//!
//! In predictive mode ([`predictive(h)`](TopUp::predictive)), the rule also fires when the
//! node's `remaining` is projected, at its current [burn rate](crate::burn), to fall below `x`
//! within `h` (spending $15/day with $20 left, a $10 threshold and a 24 h horizon tops up now:
//! $10 is reached in 16 h). The node must track its burn rate ([`Budget::set_burn_window`]).
//!
//! # When a cap says no
//!
//! A top-up that a cap refuses is reported as [`Event::TopUpCapped`](crate::Event::TopUpCapped)
//! ("recharge cap reached"), with the cap, the window's counters and when the window ends:
//! once per window while the rule stays refused (again after a top-up or a re-arm). These
//! notices are not part of the books: a reopened file store may report a refusal it had
//! reported before the restart once more.
//!
//! # A top-up is a credit
//!
//! A top-up does exactly what [`Budget::credit`] does, inside the same atomic store operation
//! that crossed the level: it raises the node's limit in that unit by `y`, repaying debt first.
//! Ancestors are not changed (an ancestor's hard limit still caps the subtree). The limit grows
//! by the sum of all top-ups, so the books stay conserved: every limit equals its initial
//! amount plus credits plus top-ups minus debits.
//!
//! # Exactly once per crossing
//!
//! The rule is evaluated by the store **inside** each reserve, record and commit on the node or
//! below it, under the same lock, before and after the operation's own effect (so a reserve
//! that needs the top-up sees it). It fires when the condition holds and the rule is *armed*; a
//! top-up disarms it, and it re-arms once an evaluation finds the condition false again (right
//! after the top-up, when `y` lifted `remaining` back to `x` or more). So each crossing tops up
//! at most once, however many threads race on the node. A top-up that a cap refuses leaves the
//! rule armed: it fires at the first evaluation that the caps allow (the next window).
//! Releases, credits and limit changes do not evaluate rules; the next reserve, record or commit
//! on the path does.
//!
//! Each top-up is reported with the operation that made it
//! ([`Reservation::top_ups`](crate::Reservation::top_ups),
//! [`Committed::top_ups`](crate::Committed::top_ups); a top-up made by a denied reserve or by
//! `record` is reported by the next reserve or commit) and delivered as
//! [`Event::ToppedUp`](crate::Event::ToppedUp).
//!
//! # Persistence
//!
//! The rule, its counters and whether it is armed are part of the books:
//! [`Snapshot`](crate::Snapshot)s carry them
//! ([`NodeSnapshot::top_up`](crate::NodeSnapshot::top_up)) and the file store logs the rule, every
//! top-up with its timestamp, and every re-arm, so a reopened store continues with the same
//! counters and replays no top-up twice.
//!
//! ```
//! use std::time::Duration;
//! use budget_guard::top_up::TopUp;
//! use budget_guard::{Amount, Budget, Event, Limit, ManualClock, MemoryStore, Timestamp, Unit};
//! # fn main() -> budget_guard::Result<()> {
//! let clock = ManualClock::new(Timestamp::EPOCH);
//! let wallet = Budget::builder("wallet", Limit::hard(Amount::usd("10")?))
//!     .build_in(MemoryStore::with_clock(clock.clone()))?;
//! wallet.set_top_up(
//!     TopUp::when_below(Amount::usd("2")?)
//!         .adding(Amount::usd("5")?)
//!         .at_most(2)
//!         .per(Duration::from_secs(86_400)),
//! )?;
//! let (_id, events) = wallet.subscribe();
//! wallet.reserve(Amount::usd("9")?)?.commit(Amount::usd("9")?)?; // $1 left: +$5
//! assert_eq!(wallet.balance(Unit::Usd)?.limit.unwrap().amount(), Amount::usd("15")?);
//! assert!(matches!(events.try_recv(), Ok(Event::ToppedUp(t)) if t.added == Amount::usd("5")?));
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::amount::{Amount, Unit};
use crate::budget::Budget;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::period::Period;

/// An auto top-up rule for one node (see [`crate::top_up`]). Build it with
/// [`TopUp::when_below`] and [`TopUp::adding`]; the store checks it when it is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TopUp {
    below: Amount,
    add: Amount,
    max_count: Option<u32>,
    max_total: Option<Amount>,
    period: Option<Duration>,
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    calendar: Option<Period>,
    horizon: Option<Duration>,
}

impl TopUp {
    /// A rule that fires when `remaining` falls below `threshold` (and adds nothing until
    /// [`adding`](TopUp::adding) says how much).
    ///
    /// ```
    /// use budget_guard::top_up::TopUp;
    /// use budget_guard::Amount;
    /// # fn main() -> budget_guard::Result<()> {
    /// let rule = TopUp::when_below(Amount::usd("1")?).adding(Amount::usd("10")?).at_most(3);
    /// assert_eq!(rule.threshold(), Amount::usd("1")?);
    /// assert_eq!(rule.amount(), Amount::usd("10")?);
    /// assert_eq!(rule.max_count(), Some(3));
    /// # Ok(()) }
    /// ```
    pub fn when_below(threshold: Amount) -> TopUp {
        TopUp {
            below: threshold,
            add: Amount::zero(threshold.unit()),
            max_count: None,
            max_total: None,
            period: None,
            calendar: None,
            horizon: None,
        }
    }

    /// Configures the rule to add `amount` per top-up (same unit as the threshold).
    pub fn adding(mut self, amount: Amount) -> TopUp {
        self.add = amount;
        self
    }

    /// The old name of [`adding`](TopUp::adding), which read like arithmetic.
    #[deprecated(since = "0.2.0", note = "renamed to `TopUp::adding`")]
    #[allow(clippy::should_implement_trait)]
    pub fn add(self, amount: Amount) -> TopUp {
        self.adding(amount)
    }

    /// At most `count` top-ups (per [`per`](TopUp::per) window, or ever without one).
    pub fn at_most(mut self, count: u32) -> TopUp {
        self.max_count = Some(count);
        self
    }

    /// At most `total` added by top-ups (per window, or ever without one). A top-up that would
    /// pass it does not happen.
    pub fn at_most_total(mut self, total: Amount) -> TopUp {
        self.max_total = Some(total);
        self
    }

    /// Counts the caps per fixed `window` of time, aligned to the Unix epoch (replaces a
    /// [`per_period`](TopUp::per_period)).
    pub fn per(mut self, window: Duration) -> TopUp {
        self.period = Some(window);
        self.calendar = None;
        self
    }

    /// Counts the caps per window of `period`: a calendar day, week or month in its time zone,
    /// or fixed windows from its anchor (replaces a [`per`](TopUp::per)).
    ///
    /// ```
    /// use budget_guard::period::Period;
    /// use budget_guard::top_up::TopUp;
    /// use budget_guard::usd;
    /// # fn main() -> budget_guard::Result<()> {
    /// // At most $300 of top-ups per calendar month, New York time.
    /// let rule = TopUp::when_below(usd!("10"))
    ///     .adding(usd!("100"))
    ///     .at_most_total(usd!("300"))
    ///     .per_period(Period::monthly().in_zone("America/New_York")?);
    /// assert_eq!(rule.calendar_period(), Some(Period::monthly().in_zone("America/New_York")?));
    /// assert_eq!(rule.period(), None);
    /// # Ok(()) }
    /// ```
    pub fn per_period(mut self, period: Period) -> TopUp {
        self.calendar = Some(period);
        self.period = None;
        self
    }

    /// Also fires when the node's projected depletion at its burn rate is within `horizon`.
    pub fn predictive(mut self, horizon: Duration) -> TopUp {
        self.horizon = Some(horizon);
        self
    }

    /// The level `remaining` must fall below.
    pub fn threshold(&self) -> Amount {
        self.below
    }

    /// What one top-up adds.
    pub fn amount(&self) -> Amount {
        self.add
    }

    /// The unit of the rule.
    pub fn unit(&self) -> Unit {
        self.below.unit()
    }

    /// The cap on the number of top-ups, if any.
    pub fn max_count(&self) -> Option<u32> {
        self.max_count
    }

    /// The cap on the amount added, if any.
    pub fn max_total(&self) -> Option<Amount> {
        self.max_total
    }

    /// The fixed window the caps count in, if any ([`per`](TopUp::per)).
    pub fn period(&self) -> Option<Duration> {
        self.period
    }

    /// The period whose windows the caps count in, if any ([`per_period`](TopUp::per_period)).
    pub fn calendar_period(&self) -> Option<Period> {
        self.calendar
    }

    /// The predictive horizon, if any.
    pub fn horizon(&self) -> Option<Duration> {
        self.horizon
    }

    /// Checks the rule on its own (the store also checks it against the node).
    ///
    /// ```
    /// use std::time::Duration;
    /// use budget_guard::top_up::TopUp;
    /// use budget_guard::{Amount, Error};
    /// # fn main() -> budget_guard::Result<()> {
    /// let no_amount = TopUp::when_below(Amount::usd("1")?);
    /// assert!(matches!(no_amount.validate(), Err(Error::InvalidTopUp { .. })));
    /// let mixed = TopUp::when_below(Amount::usd("1")?).adding(Amount::tokens(5));
    /// assert!(matches!(mixed.validate(), Err(Error::UnitMismatch { .. })));
    /// let zero_window = TopUp::when_below(Amount::usd("1")?).adding(Amount::usd("2")?).per(Duration::ZERO);
    /// assert!(matches!(zero_window.validate(), Err(Error::InvalidDuration { .. })));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidTopUp`] for a zero threshold, amount or count, or a total cap below one
    /// top-up; [`Error::UnitMismatch`] when the amounts differ in unit;
    /// [`Error::InvalidDuration`] for a zero or too long window or horizon.
    pub fn validate(&self) -> Result<()> {
        self.below.same_unit(self.add, "a top-up rule's amount")?;
        if let Some(total) = self.max_total {
            self.below.same_unit(total, "a top-up rule's total cap")?;
        }
        let invalid = |reason| Err(Error::InvalidTopUp { reason });
        if self.below.is_zero() {
            return invalid("the threshold must be above zero (remaining never falls below zero)");
        }
        if self.add.is_zero() {
            return invalid("the amount to add must be above zero (set it with TopUp::adding)");
        }
        if self.max_count == Some(0) {
            return invalid("at_most(0) would never top up; remove the rule instead");
        }
        if self
            .max_total
            .is_some_and(|total| total.minor_units() < self.add.minor_units())
        {
            return invalid("the total cap is below one top-up, so none could happen");
        }
        for (what, duration) in [
            ("a top-up window", self.period),
            ("a top-up horizon", self.horizon),
        ] {
            if let Some(duration) = duration {
                let reason = if duration.is_zero() {
                    Some("must be longer than zero")
                } else if i64::try_from(duration.as_nanos()).is_err() {
                    Some("must fit in i64 nanoseconds (292 years)")
                } else {
                    None
                };
                if let Some(reason) = reason {
                    return Err(Error::InvalidDuration { what, reason });
                }
            }
        }
        Ok(())
    }

    pub(crate) fn period_nanos(&self) -> Option<i64> {
        self.period
            .map(|period| i64::try_from(period.as_nanos()).unwrap_or(i64::MAX))
    }

    /// The caps' window at `at`, as a number that grows with time: `floor(at / window)` for a
    /// fixed window, the window's start in Unix nanoseconds for a period, 0 without either.
    pub(crate) fn window_at(&self, at: Timestamp) -> i64 {
        if let Some(period) = self.calendar {
            return period.bounds_at(at).0.as_unix_nanos();
        }
        self.period_nanos()
            .map_or(0, |period| at.as_unix_nanos().div_euclid(period))
    }

    /// When the caps' window containing `at` ends (`None` for caps that never reset).
    pub(crate) fn window_end(&self, at: Timestamp) -> Option<Timestamp> {
        if let Some(period) = self.calendar {
            return Some(period.bounds_at(at).1);
        }
        let period = self.period_nanos()?;
        let end = (at.as_unix_nanos().div_euclid(period) + 1).checked_mul(period)?;
        Some(Timestamp::from_unix_nanos(end))
    }

    pub(crate) fn horizon_nanos(&self) -> Option<i64> {
        self.horizon
            .map(|horizon| i64::try_from(horizon.as_nanos()).unwrap_or(i64::MAX))
    }
}

impl fmt::Display for TopUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "add {} when below {}", self.add, self.below)?;
        if let Some(count) = self.max_count {
            write!(f, ", at most {count} times")?;
        }
        if let Some(total) = self.max_total {
            write!(f, ", at most {total} in total")?;
        }
        if let Some(period) = self.period {
            write!(f, " per {period:?}")?;
        }
        if let Some(period) = self.calendar {
            write!(f, " per {period}")?;
        }
        if let Some(horizon) = self.horizon {
            write!(
                f,
                ", or when projected below the threshold within {horizon:?}"
            )?;
        }
        Ok(())
    }
}

/// Why a top-up fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum TopUpReason {
    /// `remaining` fell below the threshold.
    Below,
    /// `remaining` was projected to fall below the threshold within the horizon (predictive
    /// mode).
    Projected,
}

impl TopUpReason {
    pub(crate) fn code(self) -> u8 {
        match self {
            TopUpReason::Below => 0,
            TopUpReason::Projected => 1,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<TopUpReason> {
        match code {
            0 => Some(TopUpReason::Below),
            1 => Some(TopUpReason::Projected),
            _ => None,
        }
    }
}

/// One top-up a store applied, as reported with the operation that made it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct TopUpApplied {
    /// Full path of the node topped up.
    pub node: Arc<str>,
    /// What was added to its limit.
    pub added: Amount,
    /// The limit after the top-up.
    pub limit: Amount,
    /// `limit − spent − reserved` after the top-up, floored at zero.
    pub remaining: Amount,
    /// Why it fired.
    pub reason: TopUpReason,
    /// The store's time of the operation that made it.
    pub applied_at: Timestamp,
    /// How many top-ups the rule has made in the current window (or ever), this one included.
    pub count: u32,
}

/// Which cap of a rule refused a top-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum TopUpCap {
    /// [`at_most(max)`](TopUp::at_most) top-ups were already made.
    Count {
        /// The cap.
        max: u32,
    },
    /// One more top-up would pass [`at_most_total(max)`](TopUp::at_most_total).
    Total {
        /// The cap.
        max: Amount,
    },
}

/// A top-up a rule wanted to make and a cap refused ("recharge cap reached"), as reported with
/// the operation that met it and delivered as [`Event::TopUpCapped`](crate::Event::TopUpCapped).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct TopUpCapped {
    /// Full path of the node.
    pub node: Arc<str>,
    /// The cap that refused.
    pub cap: TopUpCap,
    /// Why the rule wanted to fire.
    pub reason: TopUpReason,
    /// What the top-up would have added.
    pub wanted: Amount,
    /// Top-ups made in the current window (or ever).
    pub count: u32,
    /// Added by those top-ups.
    pub total: Amount,
    /// The node's `limit − spent − reserved` now, floored at zero.
    pub remaining: Amount,
    /// When the window ends and the caps count from zero again (`None`: they never do).
    pub window_ends_at: Option<Timestamp>,
    /// The store's time of the operation that met the cap.
    pub capped_at: Timestamp,
}

/// [`Event::TopUpCapped`](crate::Event::TopUpCapped): a cap refused a top-up.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct TopUpCappedEvent {
    /// What was refused.
    pub capped: TopUpCapped,
    /// When the event was delivered.
    pub at: std::time::SystemTime,
}

/// A node's top-up rule and its counters, in a [`Snapshot`](crate::Snapshot).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct TopUpSnapshot {
    /// The rule.
    pub rule: TopUp,
    /// Top-ups made in window `window` (or ever, without a window).
    pub count: u32,
    /// Added by those top-ups, in the rule's unit.
    pub total: Amount,
    /// The window the counters are for (`floor(time / window)` for [`TopUp::per`], the
    /// window's start in Unix nanoseconds for [`TopUp::per_period`]; 0 without either).
    pub window: i64,
    /// Whether the rule may fire at the next crossing (see [`crate::top_up`]).
    pub armed: bool,
}

impl TopUpSnapshot {
    /// A fresh rule: no top-ups yet, armed.
    pub fn new(rule: TopUp) -> Self {
        TopUpSnapshot {
            rule,
            count: 0,
            total: Amount::zero(rule.unit()),
            window: 0,
            armed: true,
        }
    }
}

/// Auto top-up.
impl Budget {
    /// Sets this node's auto top-up rule (replacing any previous one, whose counters are
    /// dropped) and returns the previous rule. See [`crate::top_up`] for when it fires.
    ///
    /// ```
    /// use budget_guard::top_up::TopUp;
    /// use budget_guard::{Amount, Budget, Limit, Unit};
    /// # fn main() -> budget_guard::Result<()> {
    /// let agent = Budget::builder("agent", Limit::hard(Amount::usd("1")?)).build()?;
    /// agent.set_top_up(TopUp::when_below(Amount::usd("0.25")?).adding(Amount::usd("1")?).at_most(1))?;
    /// let guard = agent.reserve(Amount::usd("0.90")?)?; // $0.10 left: topped up to $2
    /// assert_eq!(agent.balance(Unit::Usd)?.remaining, Some(Amount::usd("1.10")?));
    /// # drop(guard);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`TopUp::validate`]; [`Error::UnitNotBudgeted`] when the node has no limit in the
    /// rule's unit; [`Error::InvalidTopUp`] for a predictive rule on a node that does not track
    /// its burn rate; [`Error::UnknownNode`]. Nothing changes on error.
    pub fn set_top_up(&self, rule: TopUp) -> Result<Option<TopUp>> {
        self.store().set_top_up(self.id(), Some(rule))
    }

    /// Removes this node's auto top-up rule; returns it.
    ///
    /// # Errors
    /// [`Error::UnknownNode`]; store failures.
    pub fn remove_top_up(&self) -> Result<Option<TopUp>> {
        self.store().set_top_up(self.id(), None)
    }

    /// Delivers the top-ups a store operation reported.
    #[inline]
    pub(crate) fn deliver_top_ups(&self, top_ups: &[TopUpApplied]) {
        if top_ups.is_empty() {
            return;
        }
        self.deliver_top_ups_slow(top_ups);
    }

    /// Delivers the refused top-ups a store operation reported.
    #[inline]
    pub(crate) fn deliver_top_up_caps(&self, capped: &[TopUpCapped]) {
        if capped.is_empty() {
            return;
        }
        self.deliver_top_up_caps_slow(capped);
    }

    #[cold]
    fn deliver_top_up_caps_slow(&self, capped: &[TopUpCapped]) {
        let at = std::time::SystemTime::now();
        for refused in capped {
            tracing::warn!(
                target: "budget_guard",
                node = %refused.node,
                cap = ?refused.cap,
                remaining = %refused.remaining,
                "auto top-up refused: recharge cap reached"
            );
            if self.shared().listening() {
                self.shared()
                    .deliver(&crate::event::Event::TopUpCapped(TopUpCappedEvent {
                        capped: refused.clone(),
                        at,
                    }));
            }
        }
    }

    #[cold]
    fn deliver_top_ups_slow(&self, top_ups: &[TopUpApplied]) {
        self.shared().wake_cancelled();
        let at = self.shared().event_time();
        for top_up in top_ups {
            tracing::info!(
                target: "budget_guard",
                node = %top_up.node,
                added = %top_up.added,
                limit = %top_up.limit,
                count = top_up.count,
                "auto top-up"
            );
            if self.shared().listening() {
                self.shared().deliver(&crate::event::Event::ToppedUp(
                    crate::event::TopUpEvent::new(top_up, at),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests;
