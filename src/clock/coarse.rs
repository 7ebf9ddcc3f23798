//! [`CoarseClock`]: the wall clock at the kernel's tick resolution, for stores that read the
//! clock on every reserve and can live with a few milliseconds.

use std::time::Duration;

use super::{Clock, Timestamp};

/// The wall clock as of the kernel's last scheduler tick: `CLOCK_REALTIME_COARSE` on Linux and
/// FreeBSD, [`SystemClock`](crate::SystemClock) elsewhere.
///
/// Reading it does not read the CPU's time-stamp counter, so it costs a fraction of
/// [`SystemClock`](crate::SystemClock) (≈ 7 ns against ≈ 50 ns on the CI VM; see BENCHMARKS.md). Every reserve reads
/// its store's clock once for the hold's deadline, so a store built with this clock reserves
/// faster. The price is precision: a reading lags the wall clock by up to one tick
/// ([`CoarseClock::resolution`], 1–4 ms on Linux). Deadlines, period boundaries, rate-limit
/// windows and event times are then exact to within that lag: a hold may be reclaimed up to one
/// tick before or after its time-to-live, a daily period may roll up to one tick late. Use it
/// where a hold's time-to-live is seconds, not milliseconds; keep [`SystemClock`](crate::SystemClock) (the default)
/// otherwise.
///
/// ```
/// use budget_guard::{Amount, Budget, CoarseClock, Limit, MemoryStore};
/// # fn main() -> budget_guard::Result<()> {
/// let store = MemoryStore::with_clock(CoarseClock);
/// let agent = Budget::builder("agent", Limit::hard(Amount::usd("5")?)).build_in(store)?;
/// agent.reserve(Amount::usd("0.25")?)?.commit(Amount::usd("0.20")?)?;
/// assert!(CoarseClock::resolution() <= std::time::Duration::from_millis(20));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct CoarseClock;

impl CoarseClock {
    /// How far a reading may lag the wall clock: the coarse clock's resolution where there is
    /// one (a scheduler tick), else zero (the precise clock is read).
    pub fn resolution() -> Duration {
        #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
        {
            let tick = rustix::time::clock_getres(rustix::time::ClockId::RealtimeCoarse);
            // `tv_nsec` is a C `long`: 32 bits on some targets.
            #[allow(clippy::useless_conversion)]
            let nanos = u32::try_from(i64::from(tick.tv_nsec)).unwrap_or(0);
            Duration::new(u64::try_from(tick.tv_sec).unwrap_or(0), nanos)
        }
        #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
        {
            Duration::ZERO
        }
    }
}

impl Clock for CoarseClock {
    #[inline]
    fn now(&self) -> Timestamp {
        #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
        {
            let now = rustix::time::clock_gettime(rustix::time::ClockId::RealtimeCoarse);
            super::from_timespec(now.tv_sec, now.tv_nsec)
        }
        #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
        {
            crate::SystemClock.now()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SystemClock;

    #[test]
    fn a_coarse_reading_lags_the_wall_clock_by_at_most_a_few_ticks() {
        let resolution = CoarseClock::resolution();
        assert!(resolution <= Duration::from_millis(20), "{resolution:?}");
        // A tickless kernel may update the coarse time late on an idle CPU: allow a few ticks.
        let allowed = i64::try_from((resolution * 5).as_nanos()).unwrap() + 5_000_000;
        for _ in 0..1_000 {
            let before = SystemClock.now().as_unix_nanos();
            let coarse = CoarseClock.now().as_unix_nanos();
            let after = SystemClock.now().as_unix_nanos();
            assert!(
                coarse <= after,
                "coarse {coarse} after the wall clock {after}"
            );
            assert!(
                before - coarse <= allowed,
                "coarse {coarse} lags {before} by more than {allowed} ns"
            );
        }
    }
}
