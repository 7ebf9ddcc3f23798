//! Burn rate: how fast a node spends, measured over a sliding window, and when its limit will
//! run out at that pace.
//!
//! # Algorithm: a ring of time buckets
//!
//! A node that tracks its burn rate ([`Budget::set_burn_window`]) keeps a ring of `buckets`
//! counters per unit, each covering `window / buckets` of time (rounded up to whole
//! nanoseconds), aligned to the Unix epoch. Every spend on the node **or below it** (a commit, a
//! [`record`](crate::Guard::record) on a live hold, a late commit of a reclaimed hold) adds its
//! amount to the bucket of the operation's time: one integer add, after clearing the buckets
//! that aged out (at most `buckets` of them). Memory is fixed: `buckets × 3 × 8` bytes per
//! tracking node, allocated when tracking is set, never on the commit path.
//!
//! The rate at time `t` is the spend in the buckets that overlap `(t - window, t]`, over the
//! time they cover: the full window once the node has tracked that long, else the time since
//! tracking started. It is exact money ([`BurnRate::spent`] is an [`Amount`], the span a
//! [`Duration`]) and accurate to within one bucket of time. The projection
//! ([`Balance::depletes_at`](crate::Balance::depletes_at)) is
//! `now + remaining × span / spent` in integer nanoseconds (rounded down: never later than the
//! pace says).
//!
//! # Cost
//!
//! Stores read their clock on commit and record only while some node of the store tracks a
//! burn rate or has an auto top-up rule ([`crate::top_up`]); until then the commit path is the
//! same as before (one relaxed atomic load). With tracking on, each spend walks the path once
//! more and adds to the buckets of the tracking nodes on it.
//!
//! # Persistence
//!
//! The window is part of the books (snapshots, the file store's log); the buckets are not, like
//! a rate limit's recent requests: after a restore or a reopen, measuring starts again from
//! nothing. Spend made by an operation racing the call that switches tracking on may not be
//! counted.
//!
//! ```
//! use std::time::Duration;
//! use budget_guard::burn::BurnWindow;
//! use budget_guard::{Amount, Budget, Limit, ManualClock, MemoryStore, Timestamp, Unit};
//! # fn main() -> budget_guard::Result<()> {
//! let clock = ManualClock::new(Timestamp::EPOCH);
//! let agent = Budget::builder("agent", Limit::hard(Amount::usd("10")?))
//!     .build_in(MemoryStore::with_clock(clock.clone()))?;
//! agent.set_burn_window(Some(BurnWindow::new(Duration::from_secs(3600))?))?;
//! for _ in 0..4 {
//!     clock.advance(Duration::from_secs(900));
//!     agent.reserve(Amount::usd("1")?)?.commit(Amount::usd("0.50")?)?;
//! }
//! let balance = agent.balance(Unit::Usd)?;
//! let rate = balance.burn_rate.expect("tracked");
//! assert_eq!(rate.spent(), Amount::usd("2")?); // $2 over the last hour
//! assert_eq!(rate.over(), Duration::from_secs(3600));
//! // $8 left at $2 an hour: empty in four hours.
//! let empty = Timestamp::EPOCH.saturating_add(Duration::from_secs(3600 + 4 * 3600));
//! assert_eq!(balance.depletes_at, Some(empty));
//! # Ok(()) }
//! ```

use std::fmt;
use std::time::Duration;

use rust_decimal::Decimal;

use crate::amount::{Amount, Unit};
use crate::budget::Budget;
use crate::clock::Timestamp;
use crate::error::{Error, Result};

/// Most buckets a [`BurnWindow`] may have.
pub const MAX_BURN_BUCKETS: u16 = 1024;

/// Buckets of a window made with [`BurnWindow::new`].
pub const DEFAULT_BURN_BUCKETS: u16 = 60;

/// The sliding window a node measures its burn rate over, split into `buckets` time buckets
/// (see [`crate::burn`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(try_from = "BurnWindowRepr", into = "BurnWindowRepr")
)]
pub struct BurnWindow {
    window: Duration,
    buckets: u16,
}

impl BurnWindow {
    /// A window of `window` in [`DEFAULT_BURN_BUCKETS`] buckets.
    ///
    /// ```
    /// use std::time::Duration;
    /// use budget_guard::burn::BurnWindow;
    /// let hour = BurnWindow::new(Duration::from_secs(3600)).unwrap();
    /// assert_eq!(hour.bucket_width(), Duration::from_secs(60));
    /// assert!(BurnWindow::new(Duration::ZERO).is_err());
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidBurnWindow`] for a window shorter than one nanosecond per bucket or longer
    /// than `i64` nanoseconds (292 years).
    pub fn new(window: Duration) -> Result<BurnWindow> {
        BurnWindow::with_buckets(window, DEFAULT_BURN_BUCKETS)
    }

    /// A window of `window` in `buckets` buckets (more buckets: finer, more memory).
    ///
    /// ```
    /// use std::time::Duration;
    /// use budget_guard::burn::BurnWindow;
    /// let day = BurnWindow::with_buckets(Duration::from_secs(86_400), 24).unwrap();
    /// assert_eq!(day.bucket_width(), Duration::from_secs(3600));
    /// assert!(BurnWindow::with_buckets(Duration::from_secs(60), 0).is_err());
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidBurnWindow`] for zero buckets or more than [`MAX_BURN_BUCKETS`], and as
    /// [`new`](BurnWindow::new).
    pub fn with_buckets(window: Duration, buckets: u16) -> Result<BurnWindow> {
        let reason = if buckets == 0 || buckets > MAX_BURN_BUCKETS {
            Some("a burn window has 1 to 1024 buckets")
        } else if window.is_zero() {
            Some("the window must be longer than zero")
        } else if i64::try_from(window.as_nanos()).is_err() {
            Some("the window must fit in i64 nanoseconds (292 years)")
        } else if window.as_nanos() < u128::from(buckets) {
            Some("each bucket must cover at least one nanosecond")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(Error::InvalidBurnWindow {
                window,
                buckets,
                reason,
            }),
            None => Ok(BurnWindow { window, buckets }),
        }
    }

    /// The window's length.
    pub const fn window(&self) -> Duration {
        self.window
    }

    /// How many buckets it is split into.
    pub const fn buckets(&self) -> u16 {
        self.buckets
    }

    /// The time one bucket covers: `window / buckets`, rounded up to whole nanoseconds.
    pub fn bucket_width(&self) -> Duration {
        Duration::from_nanos(self.width_nanos().unsigned_abs())
    }

    pub(crate) fn width_nanos(&self) -> i64 {
        let window = self.window_nanos();
        let buckets = i64::from(self.buckets);
        (window + buckets - 1) / buckets
    }

    pub(crate) fn window_nanos(&self) -> i64 {
        i64::try_from(self.window.as_nanos()).unwrap_or(i64::MAX)
    }
}

impl fmt::Display for BurnWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} in {} buckets", self.window, self.buckets)
    }
}

#[cfg(feature = "serde")]
#[derive(serde::Serialize, serde::Deserialize)]
struct BurnWindowRepr {
    window: Duration,
    buckets: u16,
}

#[cfg(feature = "serde")]
impl From<BurnWindow> for BurnWindowRepr {
    fn from(window: BurnWindow) -> Self {
        BurnWindowRepr {
            window: window.window,
            buckets: window.buckets,
        }
    }
}

#[cfg(feature = "serde")]
impl TryFrom<BurnWindowRepr> for BurnWindow {
    type Error = Error;
    fn try_from(repr: BurnWindowRepr) -> Result<Self> {
        BurnWindow::with_buckets(repr.window, repr.buckets)
    }
}

/// A measured burn rate: `spent` over the last `over` (see [`crate::burn`]). Exact: the amount
/// and the span are kept as they are; [`per_second`](BurnRate::per_second) and
/// [`per`](BurnRate::per) divide in decimal or integer arithmetic, never in floating point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct BurnRate {
    spent: Amount,
    over: Duration,
}

impl BurnRate {
    pub(crate) fn new(spent: Amount, over: Duration) -> Self {
        BurnRate { spent, over }
    }

    /// Spent on the node and below it during [`over`](BurnRate::over).
    pub fn spent(&self) -> Amount {
        self.spent
    }

    /// The time measured: the window, or less while the node has tracked for less than one.
    pub fn over(&self) -> Duration {
        self.over
    }

    /// The unit of the rate.
    pub fn unit(&self) -> Unit {
        self.spent.unit()
    }

    /// The rate per second as an exact decimal (28 significant digits).
    ///
    /// ```
    /// use std::time::Duration;
    /// use budget_guard::burn::BurnWindow;
    /// use budget_guard::{Amount, Budget, Limit, ManualClock, MemoryStore, Timestamp, Unit};
    /// # fn main() -> budget_guard::Result<()> {
    /// let clock = ManualClock::new(Timestamp::EPOCH);
    /// let run = Budget::builder("run", Limit::hard(Amount::usd("10")?))
    ///     .build_in(MemoryStore::with_clock(clock.clone()))?;
    /// run.set_burn_window(Some(BurnWindow::new(Duration::from_secs(60))?))?;
    /// clock.advance(Duration::from_secs(60));
    /// run.reserve(Amount::usd("3")?)?.commit(Amount::usd("3")?)?;
    /// let rate = run.balance(Unit::Usd)?.burn_rate.unwrap();
    /// assert_eq!(rate.per_second().to_string(), "0.05"); // $3 over 60 s
    /// assert_eq!(rate.per(Duration::from_secs(3600)), Amount::usd("180")?);
    /// # Ok(()) }
    /// ```
    pub fn per_second(&self) -> Decimal {
        let nanos = Decimal::from_i128_with_scale(self.over.as_nanos() as i128, 9);
        if nanos.is_zero() {
            return Decimal::ZERO;
        }
        (self.spent.to_decimal() / nanos).normalize()
    }

    /// The amount spent in `period` at this rate, rounded **up** to the unit's minor units
    /// (`spent × period / over`, integer math); saturates at the largest amount.
    pub fn per(&self, period: Duration) -> Amount {
        let over = self.over.as_nanos();
        if over == 0 {
            return Amount::from_minor(0, self.unit());
        }
        let product = u128::from(self.spent.minor_units().unsigned_abs()) * period.as_nanos();
        let minor = product.div_ceil(over);
        Amount::from_minor(i64::try_from(minor).unwrap_or(i64::MAX), self.unit())
    }

    /// When `remaining` runs out at this rate, counting from `now`: `now + remaining × over /
    /// spent`, rounded down to the nanosecond. `now` if nothing remains; `None` if nothing is
    /// being spent or the moment is past the year 2262.
    pub fn depletes_at(&self, remaining: Amount, now: Timestamp) -> Option<Timestamp> {
        depletes_at(
            remaining.minor_units(),
            self.spent.minor_units(),
            i64::try_from(self.over.as_nanos()).unwrap_or(i64::MAX),
            now,
        )
    }
}

impl fmt::Display for BurnRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} per {:?}", self.spent, self.over)
    }
}

/// `now + remaining × span / spent` (see [`BurnRate::depletes_at`]).
pub(crate) fn depletes_at(
    remaining: i64,
    spent: i64,
    span: i64,
    now: Timestamp,
) -> Option<Timestamp> {
    if remaining <= 0 {
        return Some(now);
    }
    if spent <= 0 || span <= 0 {
        return None;
    }
    let nanos = i128::from(remaining) * i128::from(span) / i128::from(spent);
    let at = i128::from(now.as_unix_nanos()) + nanos;
    i64::try_from(at).ok().map(Timestamp::from_unix_nanos)
}

/// Burn rates.
impl Budget {
    /// Starts (`Some`) or stops (`None`) measuring this node's burn rate over `window`, and
    /// returns the previous window. Changing the window starts the measurement over. The rate
    /// and the projection appear in [`Balance::burn_rate`](crate::Balance::burn_rate),
    /// [`Balance::depletes_at`](crate::Balance::depletes_at) and in threshold events
    /// ([`ThresholdEvent::projected_depletion`](crate::ThresholdEvent::projected_depletion)).
    /// See [`crate::burn`] for the algorithm and its cost.
    ///
    /// ```
    /// use std::time::Duration;
    /// use budget_guard::burn::BurnWindow;
    /// use budget_guard::{Amount, Budget, Limit, Unit};
    /// # fn main() -> budget_guard::Result<()> {
    /// let org = Budget::builder("org", Limit::hard(Amount::usd("10")?)).build()?;
    /// assert_eq!(org.set_burn_window(Some(BurnWindow::new(Duration::from_secs(60))?))?, None);
    /// assert!(org.balance(Unit::Usd)?.burn_rate.is_some());
    /// org.set_burn_window(None)?;
    /// assert!(org.balance(Unit::Usd)?.burn_rate.is_none());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::UnknownNode`] if this node was removed; store failures.
    pub fn set_burn_window(&self, window: Option<BurnWindow>) -> Result<Option<BurnWindow>> {
        self.store().set_burn_window(self.id(), window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_divide_exactly() {
        let rate = BurnRate::new(Amount::usd("3").unwrap(), Duration::from_secs(60));
        assert_eq!(rate.per_second(), Decimal::new(5, 2));
        assert_eq!(
            rate.per(Duration::from_secs(1)),
            Amount::usd("0.05").unwrap()
        );
        let odd = BurnRate::new(Amount::from_minor(1, Unit::Usd), Duration::from_secs(3));
        assert_eq!(
            odd.per(Duration::from_secs(1)),
            Amount::from_minor(1, Unit::Usd)
        );
        assert_eq!(
            rate.depletes_at(Amount::usd("6").unwrap(), Timestamp::EPOCH),
            Some(Timestamp::EPOCH.saturating_add(Duration::from_secs(120)))
        );
        assert_eq!(
            rate.depletes_at(Amount::zero(Unit::Usd), Timestamp::EPOCH),
            Some(Timestamp::EPOCH)
        );
        let idle = BurnRate::new(Amount::zero(Unit::Usd), Duration::from_secs(3));
        assert_eq!(
            idle.depletes_at(Amount::usd("1").unwrap(), Timestamp::EPOCH),
            None
        );
    }

    #[test]
    fn windows_validate() {
        assert!(BurnWindow::with_buckets(Duration::from_nanos(59), 60).is_err());
        assert!(BurnWindow::with_buckets(Duration::from_secs(1), 1025).is_err());
        let odd = BurnWindow::with_buckets(Duration::from_nanos(100), 3).unwrap();
        assert_eq!(odd.width_nanos(), 34);
    }
}
