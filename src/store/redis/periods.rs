//! Period bounds for the scripts, on the server's clock.
//!
//! A periodic limit's state on the server is the number of its current period
//! ([`Period::id_at`]), the period's end, and the usual figures. The scripts roll a period
//! lazily, when an operation touches its account after the end, so they need to know which
//! period contains the server's *now*. Lua has no calendar, so the client computes it: every
//! call carries, for each period in use in the tree that the client knows of, the period
//! containing the client's *estimate* of the server's time (its number, first microsecond, end
//! microsecond and end in nanoseconds). The script checks each against its own `TIME`; if one is
//! missing or does not contain the server's now, the script changes nothing and answers
//! `need`, with the server's now and the periods it lacks, and the client computes them at
//! exactly that time and calls again. The estimate only saves a round trip: exactness comes
//! from the server's check, so a client whose estimate is hours off still rolls on the
//! server's boundaries.

use std::collections::HashMap;
use std::time::Instant;

use parking_lot::Mutex;

use crate::clock::{Clock, Timestamp};
use crate::error::{Error, Result, StoreError};
use crate::period::Period;
use crate::period::ordinal::{from_spec, spec};

use crate::amount::Unit;
use crate::period::Rollover;
use crate::policy::Limit;

use super::codec::{MAX_EXACT_MINOR, amount, bad_reply, minor};

/// How many times a call is sent when its script keeps answering `need` (a new period was
/// learned, or a boundary passed between the reply and the next call).
pub(super) const ATTEMPTS: usize = 3;

/// The shortest window a `RedisStore` rolls exactly: the server counts time in microseconds.
const SHORTEST_WINDOW_NANOS: u128 = 1_000;

/// One period as the scripts read it.
#[derive(Clone, Copy, Debug)]
struct Bounds {
    id: i64,
    /// First and end microsecond, rounded up: the server's `now_us` lies in the period exactly
    /// when `start_us <= now_us < end_us`.
    start_us: i64,
    end_us: i64,
    /// The end as the ledger reports it ([`Balance::resets_at`](crate::Balance::resets_at)).
    end_ns: i64,
}

/// What a store knows about the periods of its tree.
#[derive(Debug, Default)]
pub(super) struct Periods {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Every period this client has used or was told about, by spec.
    known: HashMap<String, (Period, Option<Bounds>)>,
    /// The server's time at its last `need` reply and when it arrived.
    server: Option<(i64, Instant)>,
}

/// Microseconds of `nanos`, rounded up, within the range the scripts keep exact.
fn micros_ceil(nanos: i64) -> i64 {
    let micros = i128::from(nanos).div_euclid(1_000) + i128::from(nanos.rem_euclid(1_000) != 0);
    let bound = i128::from(MAX_EXACT_MINOR);
    micros.clamp(-bound, bound) as i64
}

/// Checks that the store can roll `period` exactly.
///
/// # Errors
/// [`Error::InvalidPeriod`] for a window shorter than a microsecond.
pub(super) fn validate(period: &Period) -> Result<()> {
    if period
        .window()
        .is_some_and(|window| window.as_nanos() < SHORTEST_WINDOW_NANOS)
    {
        return Err(Error::InvalidPeriod {
            period: period.to_string(),
            reason: "a RedisStore counts the server's time in microseconds: windows shorter than \
                     1 µs are not supported",
        });
    }
    Ok(())
}

/// The `period, rollover` arguments of `limit` (the period as its spec, empty for none; the
/// rollover `''`, `alloc` or `carry:<minor>`).
///
/// # Errors
/// [`Error::InvalidPeriod`] for a window the store cannot roll exactly ([`validate`]);
/// [`Error::TooLarge`] when the allocation plus the rollover cap (the most a period can allow)
/// passes 2^53 − 1 minor units.
pub(super) fn limit_args(limit: &Limit, args: &mut Vec<String>) -> Result<()> {
    let Some(period) = limit.period() else {
        args.extend([String::new(), String::new()]);
        return Ok(());
    };
    validate(&period)?;
    args.push(spec(&period));
    let allocation = limit.amount().minor_units();
    let cap = limit.rollover().cap_minor(allocation);
    let most = allocation.saturating_add(cap);
    if most > MAX_EXACT_MINOR {
        return Err(Error::TooLarge {
            what: "a periodic limit's allocation plus its rollover cap in minor units for a \
                   RedisStore (exact up to 2^53 - 1)",
            size: most.unsigned_abs(),
            limit: MAX_EXACT_MINOR as u64,
        });
    }
    args.push(match limit.rollover() {
        Rollover::None => String::new(),
        Rollover::CapAtAllocation => "alloc".to_owned(),
        Rollover::CarryForward { cap } => format!("carry:{}", minor(cap)?),
    });
    Ok(())
}

/// A period spec from a script, as a [`Period`] (`None` for `''`).
pub(super) fn period(text: &str) -> Result<Option<Period>> {
    if text.is_empty() {
        return Ok(None);
    }
    from_spec(text).map(Some).map_err(|_| bad_reply("period"))
}

/// A limit's rollover as the scripts keep it (`''`, `alloc`, `carry:<minor>`).
pub(super) fn rollover(text: &str, unit: Unit) -> Result<Rollover> {
    Ok(match text {
        "" => Rollover::None,
        "alloc" => Rollover::CapAtAllocation,
        _ => Rollover::CarryForward {
            cap: amount(
                text.strip_prefix("carry:")
                    .ok_or_else(|| bad_reply("rollover"))?,
                unit,
            )?,
        },
    })
}

impl Periods {
    /// Remembers `period` as in use (before a call that sets a limit with it).
    pub(super) fn learn(&self, period: Period) {
        self.state
            .lock()
            .known
            .entry(spec(&period))
            .or_insert((period, None));
    }

    /// The client's estimate of the server's time, in microseconds: from `estimate` if given
    /// (the store's manual clock, or a test's skewed client clock), else the server's time at
    /// its last `need` reply plus the time elapsed here since; `None` before the first reply.
    pub(super) fn estimate_us(&self, estimate: Option<&dyn Clock>) -> Option<i64> {
        if let Some(clock) = estimate {
            return Some(clock.now().as_unix_nanos().div_euclid(1_000));
        }
        let (server, at) = self.state.lock().server?;
        let elapsed = i64::try_from(at.elapsed().as_micros()).unwrap_or(i64::MAX);
        Some(server.saturating_add(elapsed))
    }

    /// The period lines appended to the time argument: for every known period, the one
    /// containing `now_us`, as `\n spec \t id \t start_us \t end_us \t end_ns`. Empty without an
    /// estimate (the script then says which periods it needs, and when).
    ///
    /// # Errors
    /// [`Error::TooLarge`] for a period number beyond what the scripts keep exact.
    pub(super) fn lines(&self, now_us: Option<i64>) -> Result<String> {
        let Some(now_us) = now_us else {
            return Ok(String::new());
        };
        let mut state = self.state.lock();
        let mut out = String::new();
        for (text, (period, cached)) in &mut state.known {
            let bounds = match cached {
                Some(bounds) if bounds.start_us <= now_us && now_us < bounds.end_us => *bounds,
                _ => {
                    let at = Timestamp::from_unix_nanos(now_us.saturating_mul(1_000));
                    let (id, start, end) = period.id_at(at);
                    if id.unsigned_abs() > MAX_EXACT_MINOR as u64 {
                        return Err(Error::TooLarge {
                            what: "period number for a RedisStore (exact up to 2^53 - 1)",
                            size: id.unsigned_abs(),
                            limit: MAX_EXACT_MINOR as u64,
                        });
                    }
                    let bounds = Bounds {
                        id,
                        start_us: micros_ceil(start.as_unix_nanos()),
                        end_us: micros_ceil(end.as_unix_nanos()),
                        end_ns: end.as_unix_nanos(),
                    };
                    *cached = Some(bounds);
                    bounds
                }
            };
            out.push_str(&format!(
                "\n{text}\t{}\t{}\t{}\t{}",
                bounds.id, bounds.start_us, bounds.end_us, bounds.end_ns
            ));
        }
        Ok(out)
    }

    /// Takes a script's `need` reply (`need`, the server's now in microseconds, the specs it
    /// lacks): learns the periods and the server's time, and returns that time (the time to
    /// compute the periods of the next attempt at).
    ///
    /// # Errors
    /// A permanent [`Error::Store`] for a malformed reply or a spec this build cannot read (a
    /// time zone its database lacks).
    pub(super) fn needed(&self, reply: &[String]) -> Result<i64> {
        let now: i64 = reply
            .get(1)
            .and_then(|now| now.parse().ok())
            .ok_or_else(|| bad_reply("need periods"))?;
        let mut state = self.state.lock();
        for text in reply.get(2..).unwrap_or_default() {
            if !state.known.contains_key(text) {
                let period = from_spec(text).map_err(|reason| {
                    Error::from(StoreError::permanent(format!(
                        "redis: the tree uses a period this client cannot compute ({text}: {reason})"
                    )))
                })?;
                state.known.insert(text.clone(), (period, None));
            }
        }
        state.server = Some((now, Instant::now()));
        Ok(now)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn bounds_round_up_to_whole_microseconds() {
        assert_eq!(micros_ceil(1_000), 1);
        assert_eq!(micros_ceil(1_001), 2);
        assert_eq!(micros_ceil(-1_500), -1);
        assert_eq!(micros_ceil(i64::MAX), MAX_EXACT_MINOR);
    }

    #[test]
    fn lines_carry_the_period_containing_the_estimate() {
        let periods = Periods::default();
        assert_eq!(periods.lines(Some(5)).unwrap(), "");
        let hourly = Period::every(Duration::from_secs(3_600)).unwrap();
        periods.learn(hourly);
        assert_eq!(periods.lines(None).unwrap(), "");
        // 01:30 UTC on day 0: window 1, 01:00 to 02:00.
        let line = periods.lines(Some(5_400_000_000)).unwrap();
        assert_eq!(
            line,
            "\ne::3600000000000:0\t1\t3600000000\t7200000000\t7200000000000"
        );
        assert!(validate(&Period::every(Duration::from_nanos(999)).unwrap()).is_err());
        assert!(validate(&Period::every(Duration::from_micros(1)).unwrap()).is_ok());
    }

    #[test]
    fn a_need_reply_teaches_periods_and_the_server_time() {
        let periods = Periods::default();
        let reply = ["need", "86400000000", "d:Europe/Berlin:0:0"].map(String::from);
        periods.needed(&reply).unwrap();
        assert!(periods.estimate_us(None).unwrap() >= 86_400_000_000);
        // 1970-01-02T00:00:00Z is 01:00 in Berlin: day 1 started at 23:00Z the day before.
        let line = periods.lines(Some(86_400_000_000)).unwrap();
        assert_eq!(
            line,
            "\nd:Europe/Berlin:0:0\t1\t82800000000\t169200000000\t169200000000000"
        );
        let bad = ["need", "0", "d:Mars/Base:0:0"].map(String::from);
        assert!(periods.needed(&bad).is_err());
        assert!(periods.needed(&["need".to_owned()]).is_err());
    }
}
