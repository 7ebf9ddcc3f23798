//! Request rate limits: at most N reserves per sliding window on a node, checked in the same
//! atomic step as the budget.
//!
//! # Algorithm: an exact sliding-window log
//!
//! A node with [`RateLimit`] `N per W` keeps the times of its last `N` granted reserves in a
//! ring. A reserve at `now` is allowed when fewer than `N` were granted in `(now - W, now]`,
//! which is one comparison against the oldest entry of the ring; granting overwrites that entry.
//! So a check is O(1), the state is `N` × 8 bytes per rate-limited node (allocated when the
//! limit is set, never on the reserve path), and the limit is exact: **no interval of length
//! `W` ever holds more than `N` granted reserves**, and a denial's `retry_after` is exact (the
//! moment the oldest of the last `N` leaves the window).
//!
//! GCRA (one integer per node) was the alternative. It is cheaper in memory but enforces a
//! *rate* `N / W` with a burst of `N`: a full burst followed by the steady rate lets up to
//! `2N - 1` requests into one window, which breaks the promise "100 per minute" users read.
//! Counts are capped at [`MAX_RATE_REQUESTS`] to keep the ring small; a longer-term cap on
//! request counts is a budget in [`Unit::Requests`](crate::Unit::Requests).
//!
//! # With the budget, atomically
//!
//! The store checks the rate limits of the node and every ancestor together with the budget,
//! inside one ledger step: a reserve the budget refuses takes no rate slot, and a reserve a rate
//! limit refuses ([`Error::RateLimited`]) holds no money. Each granted
//! [`reserve`](crate::Budget::reserve) or [`reserve_up_to`](crate::Budget::reserve_up_to) is one
//! request on every rate-limited node of its path; commits, records and releases are not.
//!
//! Time is the store's [`Clock`](crate::Clock) (a [`ManualClock`](crate::ManualClock) in tests).
//! The configuration is part of the books (snapshots, the file store's log); the ring is not:
//! after a restore or a reopen, windows start empty.
//!
//! ```
//! use std::time::Duration;
//! use budget_guard::rate::RateLimit;
//! use budget_guard::{Amount, Budget, Error, Limit, ManualClock, MemoryStore, Timestamp};
//! # fn main() -> budget_guard::Result<()> {
//! let clock = ManualClock::new(Timestamp::EPOCH);
//! let agent = Budget::builder("agent", Limit::hard(Amount::usd("10")?))
//!     .build_in(MemoryStore::with_clock(clock.clone()))?;
//! agent.set_rate_limit(Some(RateLimit::per_minute(2)?))?;
//! agent.reserve(Amount::usd("0.01")?)?.commit(Amount::usd("0.01")?)?;
//! clock.advance(Duration::from_secs(20));
//! agent.reserve(Amount::usd("0.01")?)?.commit(Amount::usd("0.01")?)?;
//! let denied = agent.reserve(Amount::usd("0.01")?).unwrap_err();
//! // The first request leaves the window 60 s after it was made, 40 s from now.
//! assert_eq!(denied.retry_after(), Some(Duration::from_secs(40)));
//! clock.advance(Duration::from_secs(40));
//! assert!(agent.reserve(Amount::usd("0.01")?).is_ok());
//! # Ok(()) }
//! ```

use std::fmt;
use std::time::Duration;

use crate::budget::Budget;
use crate::error::{Error, Result};

/// Largest request count a [`RateLimit`] accepts (its ring takes 8 bytes per request).
pub const MAX_RATE_REQUESTS: u32 = 1 << 16;

/// At most `requests` reserves per sliding `window` on a node (see [`crate::rate`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(try_from = "RateLimitRepr", into = "RateLimitRepr")
)]
pub struct RateLimit {
    requests: u32,
    window: Duration,
}

impl RateLimit {
    /// `requests` per `window`.
    ///
    /// # Errors
    /// [`Error::InvalidRateLimit`] for zero requests, more than [`MAX_RATE_REQUESTS`], a zero
    /// window, or a window longer than `i64` nanoseconds (292 years).
    pub fn new(requests: u32, window: Duration) -> Result<RateLimit> {
        let reason = if requests == 0 {
            Some("a rate limit allows at least one request")
        } else if requests > MAX_RATE_REQUESTS {
            Some("at most 65536 requests per window (use a Requests budget for larger counts)")
        } else if window.is_zero() {
            Some("the window must be longer than zero")
        } else if i64::try_from(window.as_nanos()).is_err() {
            Some("the window must fit in i64 nanoseconds (292 years)")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(Error::InvalidRateLimit {
                requests,
                window,
                reason,
            }),
            None => Ok(RateLimit { requests, window }),
        }
    }

    /// `requests` per second.
    ///
    /// # Errors
    /// As [`new`](RateLimit::new).
    pub fn per_second(requests: u32) -> Result<RateLimit> {
        RateLimit::new(requests, Duration::from_secs(1))
    }

    /// `requests` per minute.
    ///
    /// # Errors
    /// As [`new`](RateLimit::new).
    pub fn per_minute(requests: u32) -> Result<RateLimit> {
        RateLimit::new(requests, Duration::from_secs(60))
    }

    /// `requests` per hour.
    ///
    /// # Errors
    /// As [`new`](RateLimit::new).
    pub fn per_hour(requests: u32) -> Result<RateLimit> {
        RateLimit::new(requests, Duration::from_secs(3600))
    }

    /// Requests allowed per window.
    pub const fn requests(&self) -> u32 {
        self.requests
    }

    /// The window.
    pub const fn window(&self) -> Duration {
        self.window
    }

    pub(crate) fn window_nanos(&self) -> i64 {
        i64::try_from(self.window.as_nanos()).unwrap_or(i64::MAX)
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} requests per {:?}", self.requests, self.window)
    }
}

#[cfg(feature = "serde")]
#[derive(serde::Serialize, serde::Deserialize)]
struct RateLimitRepr {
    requests: u32,
    window: Duration,
}

#[cfg(feature = "serde")]
impl From<RateLimit> for RateLimitRepr {
    fn from(limit: RateLimit) -> Self {
        RateLimitRepr {
            requests: limit.requests,
            window: limit.window,
        }
    }
}

#[cfg(feature = "serde")]
impl TryFrom<RateLimitRepr> for RateLimit {
    type Error = Error;
    fn try_from(repr: RateLimitRepr) -> Result<Self> {
        RateLimit::new(repr.requests, repr.window)
    }
}

impl Error {
    /// How long until a retry can pass the rate limit, for [`Error::RateLimited`].
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}

/// Rate limits.
impl Budget {
    /// Sets (`Some`) or removes (`None`) this node's request rate limit and returns the previous
    /// one. Changing the limit keeps the most recent requests that fit the new ring.
    ///
    /// # Errors
    /// [`Error::UnknownNode`] if this node was removed; store failures.
    pub fn set_rate_limit(&self, limit: Option<RateLimit>) -> Result<Option<RateLimit>> {
        self.store().set_rate_limit(self.id(), limit)
    }
}
