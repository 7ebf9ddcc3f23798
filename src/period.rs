//! Periodic limits: a limit's amount is an *allocation* per period (a day, a week, a month on
//! calendar boundaries in an IANA time zone, or fixed-length windows), and spend resets at every
//! boundary.
//!
//! ```
//! use std::time::Duration;
//! use budget_guard::period::Period;
//! use budget_guard::{Amount, Budget, Limit, ManualClock, MemoryStore, Timestamp, Unit};
//! # fn main() -> budget_guard::Result<()> {
//! // 2026-01-31T12:00:00Z
//! let clock = ManualClock::new(Timestamp::from_unix_nanos(1_769_860_800_000_000_000));
//! let team = Budget::builder("team", Limit::hard(Amount::usd("500")?).per(Period::monthly()))
//!     .build_in(MemoryStore::with_clock(clock.clone()))?;
//! team.reserve(Amount::usd("400")?)?.commit(Amount::usd("400")?)?;
//! assert!(team.reserve(Amount::usd("200")?).is_err()); // January has $100 left
//!
//! clock.advance(Duration::from_secs(12 * 3600)); // February 1st, 00:00 UTC
//! let balance = team.balance(Unit::Usd)?;
//! assert_eq!(balance.spent, Amount::zero(Unit::Usd)); // a new month, a new $500
//! assert_eq!(balance.resets_at, Some(Timestamp::from_unix_nanos(1_772_323_200_000_000_000))); // March 1st
//! # Ok(()) }
//! ```
//!
//! # How a period works
//!
//! * **Lazy resets.** No thread runs at the boundary. Every store operation that reads or
//!   changes balances first rolls the periods that ended (the store reads its [`Clock`] outside
//!   its lock and passes the time in); while no period has ended that costs one integer compare.
//!   [`Balance::resets_at`](crate::Balance::resets_at) says when the current period ends.
//! * **What resets.** `spent` starts again from zero. Live holds **stay reserved** across the
//!   boundary, and a hold's commit counts to the period in which it is *committed* (a hold taken
//!   on January 31st and committed on February 1st is February's spend; its money was set aside
//!   in January, so with a rollover it carries into February with it). `debt` (an overrun beyond
//!   the limit, see [`OveragePolicy`](crate::OveragePolicy)) is **not** forgiven by a reset: the
//!   node keeps refusing reserves until someone credits it. Threshold levels re-arm as spend
//!   falls back to zero, so the 50 % alert fires again next month.
//! * **Rollover** ([`Rollover`]): by default the unused rest of a period is lost; a rollover
//!   carries it into the next period, capped. The *allowance* of a period
//!   ([`Balance::allowance`](crate::Balance::allowance)) is its allocation plus what was
//!   carried in.
//! * **Funds.** On a periodic limit, [`Budget::credit`](crate::Budget::credit) and
//!   [`Budget::debit`](crate::Budget::debit) change the *current period's* allowance only (a
//!   top-up for this month); [`Budget::set_limit`](crate::Budget::set_limit) changes the
//!   allocation of every period. Replacing a limit with one of the same period keeps the current
//!   period and what it carried; a different period starts afresh at the time of the change
//!   (the spend so far counts in the new period).
//! * **Several periods at once.** A limit has at most one period; a node may have one limit per
//!   unit *and period*, so "daily $25 *and* monthly $500" is one node with
//!   `Limits::from([Limit::hard(daily).per(Period::daily()), Limit::hard(monthly).per(Period::monthly())])`,
//!   checked together in one atomic step (two limits of the same period in one unit are
//!   refused). Every reserve must also fit every node on its path, which is how a per-task cap
//!   sits under a per-month team cap.
//! * **Every unit can be periodic.** USD, tokens and requests are all counts of consumption that
//!   can be metered per window ("10,000 requests per day" is a quota; a
//!   [`RateLimit`](crate::rate::RateLimit) is the sliding-window pacing), so no unit refuses a
//!   period.
//!
//! # Calendar periods and time zones
//!
//! [`Period::daily`], [`Period::weekly`] (weeks start on Monday, ISO 8601) and
//! [`Period::monthly`] start at local midnight in their time zone (UTC unless
//! [`Period::in_zone`] says otherwise; on a day whose midnight is skipped by a DST change, the
//! day starts at its first instant). Days are therefore 23 or 25 hours long across DST changes,
//! and months 28 to 31 days. The arithmetic is done by [jiff](https://docs.rs/jiff) with its
//! bundled copy of the IANA time zone database, so boundaries are the same on every machine
//! (with or without `/usr/share/zoneinfo`) for one build of this crate.
//!
//! [`Period::every`] makes fixed-length windows (every 5 hours), counted from the Unix epoch or
//! from the anchor given to [`Period::every_from`]; time zones do not apply to them.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use jiff::ToSpan;
use jiff::tz::{TimeZone, TimeZoneDatabase};
use parking_lot::Mutex;

use crate::amount::Amount;
use crate::clock::Timestamp;
use crate::error::Error;

#[cfg(doc)]
use crate::clock::Clock;

/// How a periodic limit's window is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Daily,
    Weekly,
    Monthly,
    /// Fixed windows of `nanos`, starting at `anchor` (Unix nanoseconds).
    Every {
        nanos: i64,
        anchor: i64,
    },
}

/// The period of a limit: its allocation is per day, week or month in a time zone, or per
/// fixed-length window. Attach it with [`Limit::per`](crate::Limit::per); see [the module
/// docs](crate::period) for what resets and when.
///
/// ```
/// use std::time::Duration;
/// use budget_guard::period::Period;
/// use budget_guard::Timestamp;
/// # fn main() -> budget_guard::Result<()> {
/// let berlin = Period::daily().in_zone("Europe/Berlin")?;
/// assert_eq!(berlin.zone(), "Europe/Berlin");
/// let five_hours = Period::every(Duration::from_secs(5 * 3600))?;
/// // 2026-03-08T12:00:00Z lies in the window 10:00..15:00 (windows count from the epoch).
/// let (start, end) = five_hours.bounds_at(Timestamp::from_unix_nanos(1_772_971_200_000_000_000));
/// assert_eq!(end.as_unix_nanos() - start.as_unix_nanos(), 5 * 3_600_000_000_000);
/// assert!(Period::every(Duration::ZERO).is_err());
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Period {
    kind: Kind,
    /// The interned IANA name; `None` is UTC.
    zone: Option<&'static str>,
}

impl Period {
    /// Calendar days, midnight to midnight (UTC unless [`in_zone`](Period::in_zone)).
    pub const fn daily() -> Period {
        Period {
            kind: Kind::Daily,
            zone: None,
        }
    }

    /// Calendar weeks, Monday 00:00 to Monday 00:00 (ISO 8601).
    pub const fn weekly() -> Period {
        Period {
            kind: Kind::Weekly,
            zone: None,
        }
    }

    /// Calendar months, from the first day's midnight to the next month's.
    pub const fn monthly() -> Period {
        Period {
            kind: Kind::Monthly,
            zone: None,
        }
    }

    /// Fixed windows of `window`, counted from the Unix epoch (`every(1 hour)` windows start
    /// on the hour, UTC). See [`every_from`](Period::every_from) for another anchor.
    ///
    /// # Errors
    /// [`Error::InvalidDuration`] for a zero window or one too long to count in `i64`
    /// nanoseconds (about 292 years).
    pub fn every(window: Duration) -> Result<Period, Error> {
        Period::every_from(window, Timestamp::EPOCH)
    }

    /// Fixed windows of `window`, one of which starts at `anchor` (earlier and later windows
    /// follow back to back).
    ///
    /// ```
    /// use std::time::Duration;
    /// use budget_guard::period::Period;
    /// use budget_guard::Timestamp;
    /// # fn main() -> budget_guard::Result<()> {
    /// let anchor = Timestamp::from_unix_nanos(1_000);
    /// let period = Period::every_from(Duration::from_nanos(100), anchor)?;
    /// let at = Timestamp::from_unix_nanos(1_250);
    /// assert_eq!(
    ///     period.bounds_at(at),
    ///     (Timestamp::from_unix_nanos(1_200), Timestamp::from_unix_nanos(1_300))
    /// );
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`every`](Period::every).
    pub fn every_from(window: Duration, anchor: Timestamp) -> Result<Period, Error> {
        let nanos = i64::try_from(window.as_nanos()).map_err(|_| Error::InvalidDuration {
            what: "a period's window",
            reason: "longer than i64 nanoseconds (about 292 years)",
        })?;
        if nanos == 0 {
            return Err(Error::InvalidDuration {
                what: "a period's window",
                reason: "a window must be longer than zero",
            });
        }
        Ok(Period {
            kind: Kind::Every {
                nanos,
                anchor: anchor.as_unix_nanos(),
            },
            zone: None,
        })
    }

    /// The same calendar period in the IANA time zone `name` (`"Europe/Berlin"`,
    /// `"America/New_York"`; matched without regard to case). `"UTC"` is the default.
    ///
    /// ```
    /// use budget_guard::period::Period;
    /// use budget_guard::Error;
    /// let err = Period::monthly().in_zone("Mars/Olympus_Mons").unwrap_err();
    /// assert!(matches!(err, Error::UnknownTimeZone { .. }));
    /// ```
    ///
    /// # Errors
    /// [`Error::UnknownTimeZone`] for a name the bundled time zone database does not know;
    /// [`Error::InvalidPeriod`] on a fixed-length window (its boundaries are instants, not
    /// local times).
    pub fn in_zone(self, name: &str) -> Result<Period, Error> {
        if let Kind::Every { .. } = self.kind {
            return Err(Error::InvalidPeriod {
                period: self.to_string(),
                reason: "fixed-length windows do not depend on a time zone; anchor them with Period::every_from",
            });
        }
        let zone = zones::intern(name)?;
        Ok(Period {
            zone: (zone != "UTC").then_some(zone),
            ..self
        })
    }

    /// The IANA name of the time zone calendar boundaries are computed in (`"UTC"` by default
    /// and for fixed-length windows).
    pub fn zone(&self) -> &'static str {
        self.zone.unwrap_or("UTC")
    }

    /// The length of a fixed window; `None` for calendar periods, whose length varies.
    pub fn window(&self) -> Option<Duration> {
        match self.kind {
            Kind::Every { nanos, .. } => Some(Duration::from_nanos(nanos.unsigned_abs())),
            _ => None,
        }
    }

    /// The period containing `at`: its first instant and the first instant of the next one
    /// (`start <= at < end`). Saturates at the ends of [`Timestamp`]'s range.
    ///
    /// ```
    /// use budget_guard::period::Period;
    /// use budget_guard::Timestamp;
    /// # fn main() -> budget_guard::Result<()> {
    /// // 2026-03-08T12:00:00Z: in New York the day has 23 hours (DST starts at 2 am).
    /// let at = Timestamp::from_unix_nanos(1_772_971_200_000_000_000);
    /// let (start, end) = Period::daily().in_zone("America/New_York")?.bounds_at(at);
    /// assert_eq!(end.as_unix_nanos() - start.as_unix_nanos(), 23 * 3_600_000_000_000);
    /// # Ok(()) }
    /// ```
    pub fn bounds_at(&self, at: Timestamp) -> (Timestamp, Timestamp) {
        match self.kind {
            Kind::Every { nanos, anchor } => {
                let (len, anchor, at) = (
                    i128::from(nanos),
                    i128::from(anchor),
                    i128::from(at.as_unix_nanos()),
                );
                let start = anchor + (at - anchor).div_euclid(len) * len;
                (saturate(start), saturate(start + len))
            }
            _ => self.calendar_bounds(at).unwrap_or((at, Timestamp::MAX)),
        }
    }

    /// The first boundary strictly after `at` (the end of the period containing it).
    pub(crate) fn end_after(&self, at: Timestamp) -> Timestamp {
        self.bounds_at(at).1
    }

    fn calendar_bounds(&self, at: Timestamp) -> Option<(Timestamp, Timestamp)> {
        let tz = match self.zone {
            None => TimeZone::UTC,
            Some(name) => zones::get(name)?,
        };
        let instant = jiff::Timestamp::from_nanosecond(i128::from(at.as_unix_nanos())).ok()?;
        let date = instant.to_zoned(tz.clone()).date();
        let (first, next) = match self.kind {
            Kind::Daily => (date, date.tomorrow().ok()?),
            Kind::Weekly => {
                let back = i64::from(date.weekday().to_monday_zero_offset());
                let monday = date.checked_sub(back.days()).ok()?;
                (monday, monday.checked_add(7.days()).ok()?)
            }
            Kind::Monthly => {
                let first = date.first_of_month();
                (first, first.checked_add(1.month()).ok()?)
            }
            Kind::Every { .. } => return None,
        };
        let instant_of = |day: jiff::civil::Date| -> Option<Timestamp> {
            let zoned = day.to_zoned(tz.clone()).ok()?;
            Some(saturate(zoned.timestamp().as_nanosecond()))
        };
        Some((
            instant_of(first)?,
            instant_of(next).unwrap_or(Timestamp::MAX),
        ))
    }
}

fn saturate(nanos: i128) -> Timestamp {
    Timestamp::from_unix_nanos(i64::try_from(nanos).unwrap_or(if nanos < 0 {
        i64::MIN
    } else {
        i64::MAX
    }))
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.kind {
            Kind::Daily => "daily",
            Kind::Weekly => "weekly",
            Kind::Monthly => "monthly",
            Kind::Every { nanos, anchor } => {
                let window = Duration::from_nanos(nanos.unsigned_abs());
                return if anchor == 0 {
                    write!(f, "every {window:?}")
                } else {
                    write!(
                        f,
                        "every {window:?} from {}",
                        Timestamp::from_unix_nanos(anchor)
                    )
                };
            }
        };
        write!(f, "{name} ({})", self.zone())
    }
}

impl fmt::Debug for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Period({self})")
    }
}

/// What happens to the unused rest of a period at its end (see [`Limit::with_rollover`]).
///
/// *Unused* is the period's allowance minus its spend: money still held by live holds counts as
/// unused, because those holds carry their money into the next period, where their commits
/// count. Whatever the rollover, a period never starts with less room than its live holds
/// occupy. Periods that pass with no operation on the node roll one by one by the same rule,
/// so a node's books after a quiet stretch do not depend on whether other nodes were busy.
///
/// ```
/// use std::time::Duration;
/// use budget_guard::period::{Period, Rollover};
/// use budget_guard::{Amount, Budget, Limit, ManualClock, MemoryStore, Timestamp, Unit};
/// # fn main() -> budget_guard::Result<()> {
/// let clock = ManualClock::new(Timestamp::EPOCH);
/// let limit = Limit::hard(Amount::usd("10")?)
///     .per(Period::daily())
///     .with_rollover(Rollover::CarryForward { cap: Amount::usd("5")? });
/// let agent = Budget::builder("agent", limit).build_in(MemoryStore::with_clock(clock.clone()))?;
/// agent.reserve(Amount::usd("3")?)?.commit(Amount::usd("3")?)?; // $7 unused today
/// clock.advance(Duration::from_secs(86_400));
/// let balance = agent.balance(Unit::Usd)?;
/// assert_eq!(balance.allowance, Some(Amount::usd("15")?)); // $10 + $5 carried (capped)
/// # Ok(()) }
/// ```
///
/// [`Limit::with_rollover`]: crate::Limit::with_rollover
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Rollover {
    /// Each period starts with its allocation; the unused rest is lost.
    #[default]
    None,
    /// The unused rest carries into the next period, at most `cap` (in the limit's unit).
    /// Periods without any operation carry their whole allocation, so a quiet week fills the
    /// carry up to its cap.
    CarryForward {
        /// The most one period carries into the next.
        cap: Amount,
    },
    /// As `CarryForward` with the cap equal to the allocation: a period offers at most twice
    /// its allocation. Follows the limit when its amount changes.
    CapAtAllocation,
}

impl Rollover {
    /// `true` for [`Rollover::None`].
    pub const fn is_none(&self) -> bool {
        matches!(self, Rollover::None)
    }

    /// The most a period may carry into the next, in minor units, for an allocation.
    pub(crate) fn cap_minor(&self, allocation: i64) -> i64 {
        match self {
            Rollover::None => 0,
            Rollover::CarryForward { cap } => cap.minor_units(),
            Rollover::CapAtAllocation => allocation,
        }
    }
}

/// Time zones by interned name. Periods are `Copy`, so they carry a `&'static str`; each zone
/// name the bundled database knows is leaked at most once (a few hundred names at most).
mod zones;

#[cfg(feature = "serde")]
mod serde_repr;

/// Encoding helpers for the file format: a calendar period's kind code and zone name, or a
/// window and anchor.
pub(crate) mod codec;

/// Consecutive period numbers and the canonical text of a period, for stores that roll
/// periods lazily on a server (the Redis store).
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) mod ordinal;

#[cfg(test)]
mod tests;
