//! The time seam. Everything time-based (periods, hold expiry, burn rate) reads time through a
//! [`Clock`], and the ledger receives time as an argument, so tests drive a [`ManualClock`]
//! instead of sleeping.

mod coarse;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

pub use self::coarse::CoarseClock;
#[cfg(not(unix))]
use std::time::{SystemTime, UNIX_EPOCH};

/// An instant as whole nanoseconds since the Unix epoch, UTC. Covers the years 1677 to 2262.
///
/// Arithmetic saturates instead of overflowing: a deadline "never" is `Timestamp::MAX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct Timestamp(i64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);
    /// The latest representable instant, used for "never".
    pub const MAX: Timestamp = Timestamp(i64::MAX);

    /// From nanoseconds since the Unix epoch.
    pub const fn from_unix_nanos(nanos: i64) -> Self {
        Timestamp(nanos)
    }

    /// Nanoseconds since the Unix epoch.
    pub const fn as_unix_nanos(self) -> i64 {
        self.0
    }

    /// `self + duration`, saturating at [`Timestamp::MAX`].
    pub fn saturating_add(self, duration: Duration) -> Self {
        let nanos = i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_add(nanos))
    }

    /// The time from `earlier` to `self`, or zero if `earlier` is later (never underflows).
    pub fn saturating_duration_since(self, earlier: Timestamp) -> Duration {
        let nanos = self.0.saturating_sub(earlier.0).max(0);
        Duration::from_nanos(nanos.unsigned_abs())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.0.div_euclid(1_000_000_000);
        let nanos = self.0.rem_euclid(1_000_000_000);
        write!(f, "{seconds}.{nanos:09}s since the Unix epoch")
    }
}

/// A source of the current time.
///
/// Implementations must be cheap (a store may read the clock once per operation) and should not
/// go backwards; if they do, durations computed from them saturate at zero rather than panic.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The operating system's wall clock ([`SystemTime`](std::time::SystemTime)).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    /// `CLOCK_REALTIME` through one `clock_gettime` on Unix (no `SystemTime` round trip: a third
    /// less time per read, and every reserve reads once); `SystemTime` elsewhere. Instants
    /// before the Unix epoch read as the epoch.
    #[inline]
    fn now(&self) -> Timestamp {
        #[cfg(unix)]
        {
            let now = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
            from_timespec(now.tv_sec, now.tv_nsec)
        }
        #[cfg(not(unix))]
        {
            let since_epoch = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or(Duration::ZERO);
            Timestamp(i64::try_from(since_epoch.as_nanos()).unwrap_or(i64::MAX))
        }
    }
}

/// A `clock_gettime` reading as a timestamp; instants before the Unix epoch read as the epoch.
/// `nanos` is a C `long` (32 bits on some Unix targets), hence the generic conversion.
#[cfg(unix)]
#[inline]
fn from_timespec(seconds: i64, nanos: impl Into<i64>) -> Timestamp {
    if seconds < 0 {
        return Timestamp::EPOCH;
    }
    Timestamp(
        seconds
            .saturating_mul(1_000_000_000)
            .saturating_add(nanos.into()),
    )
}

/// A clock that moves only when told to: clones share one time, so a test keeps one clone and
/// hands another to the store.
///
/// ```
/// use std::time::Duration;
/// use budget_guard::{Clock, ManualClock, Timestamp};
///
/// let clock = ManualClock::new(Timestamp::from_unix_nanos(1_700_000_000_000_000_000));
/// let shared = clock.clone();
/// clock.advance(Duration::from_secs(90));
/// assert_eq!(shared.now().as_unix_nanos(), 1_700_000_090_000_000_000);
/// ```
#[derive(Clone, Default)]
pub struct ManualClock {
    nanos: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock {
            nanos: Arc::new(AtomicI64::new(start.0)),
        }
    }

    /// Moves every clone of this clock forward by `duration` (saturating).
    pub fn advance(&self, duration: Duration) {
        let step = i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX);
        // fetch_update never fails with a closure that always returns Some.
        let _ = self
            .nanos
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                Some(now.saturating_add(step))
            });
    }

    /// Sets every clone of this clock to `time` (which may move it backwards, to test that).
    pub fn set(&self, time: Timestamp) {
        self.nanos.store(time.0, Ordering::Release);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.nanos.load(Ordering::Acquire))
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ManualClock({})", self.now())
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_clones_share_time_and_saturate() {
        let clock = ManualClock::new(Timestamp::from_unix_nanos(10));
        let other = clock.clone();
        other.advance(Duration::from_nanos(5));
        assert_eq!(clock.now(), Timestamp::from_unix_nanos(15));
        clock.advance(Duration::MAX);
        assert_eq!(other.now(), Timestamp::MAX);
        clock.set(Timestamp::EPOCH);
        assert_eq!(
            Timestamp::from_unix_nanos(15).saturating_duration_since(other.now()),
            Duration::from_nanos(15)
        );
        assert_eq!(
            Timestamp::EPOCH.saturating_duration_since(Timestamp::from_unix_nanos(15)),
            Duration::ZERO
        );
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now() > Timestamp::from_unix_nanos(1_577_836_800_000_000_000));
    }

    /// Unix nanoseconds of `SystemTime::now()`, the clock `SystemClock` reads by another road.
    fn system_time_nanos() -> i64 {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        i64::try_from(since.as_nanos()).unwrap()
    }

    #[test]
    fn system_clock_reads_the_same_wall_clock_as_system_time_in_nanoseconds() {
        for _ in 0..1_000 {
            let before = system_time_nanos();
            let now = SystemClock.now().as_unix_nanos();
            let after = system_time_nanos();
            assert!(
                (before..=after).contains(&now),
                "{before} <= {now} <= {after}"
            );
        }
    }
}
