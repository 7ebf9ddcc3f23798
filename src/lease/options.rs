//! [`LeaseOptions`] and [`LeaseStats`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::amount::Amount;
use crate::clock::{Clock, SystemClock};
use crate::error::{AmountError, Error, Result};

/// How a [`LeasedStore`](crate::LeasedStore) leases its slices.
///
/// ```
/// use std::time::Duration;
/// use budget_guard::{Amount, LeaseOptions};
/// # fn main() -> budget_guard::Result<()> {
/// let options = LeaseOptions::new(Amount::usd("1")?)
///     .low_water(Amount::usd("0.20")?)
///     .ttl(Duration::from_secs(30))
///     .renew_margin(Duration::from_secs(10));
/// options.validate()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct LeaseOptions {
    /// What one lease takes from the remote node (a reserve needing more leases what it
    /// needs). The unit of the lease.
    pub slice: Amount,
    /// The background renewer leases the next slice once the local room falls below this.
    /// Default: a quarter of the slice.
    pub low_water: Amount,
    /// The time to live of every remote hold: how long after a crash the slices come back to
    /// the remote budget. Default 30 s.
    pub ttl: Duration,
    /// A remote hold is extended once less than this is left of its TTL. Default: a third of
    /// the TTL.
    pub renew_margin: Duration,
    /// Run a background thread that extends the remote holds, reports spend and tops the
    /// slice up at the low-water mark. Default `true`. Without it the same work is done
    /// in the calling thread, by the first reserve that finds it due.
    pub background: bool,
    /// The clock that times the remote holds' deadlines (and the local store's holds).
    /// Default the [`SystemClock`].
    pub clock: Arc<dyn Clock>,
}

impl fmt::Debug for LeaseOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaseOptions")
            .field("slice", &self.slice)
            .field("low_water", &self.low_water)
            .field("ttl", &self.ttl)
            .field("renew_margin", &self.renew_margin)
            .field("background", &self.background)
            .finish_non_exhaustive()
    }
}

impl LeaseOptions {
    /// The default TTL of a remote hold.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(30);

    /// Options leasing `slice` at a time, with the defaults above.
    pub fn new(slice: Amount) -> Self {
        let low_water = Amount::try_from_minor(slice.minor_units() / 4, slice.unit())
            .unwrap_or(Amount::zero(slice.unit()));
        LeaseOptions {
            slice,
            low_water,
            ttl: Self::DEFAULT_TTL,
            renew_margin: Self::DEFAULT_TTL / 3,
            background: true,
            clock: Arc::new(SystemClock),
        }
    }

    /// Sets [`LeaseOptions::low_water`].
    #[must_use]
    pub fn low_water(mut self, low_water: Amount) -> Self {
        self.low_water = low_water;
        self
    }

    /// Sets [`LeaseOptions::ttl`] and a renew margin of a third of it.
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self.renew_margin = ttl / 3;
        self
    }

    /// Sets [`LeaseOptions::renew_margin`].
    #[must_use]
    pub fn renew_margin(mut self, margin: Duration) -> Self {
        self.renew_margin = margin;
        self
    }

    /// Sets [`LeaseOptions::background`].
    #[must_use]
    pub fn background(mut self, background: bool) -> Self {
        self.background = background;
        self
    }

    /// Sets [`LeaseOptions::clock`] (a [`ManualClock`](crate::ManualClock) in tests).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Checks the options.
    ///
    /// # Errors
    /// [`Error::InvalidAmount`] for a slice that is not above zero or a low-water mark that is
    /// negative, in another unit, or not below the slice; [`Error::InvalidDuration`] for a zero
    /// TTL or a renew margin that is zero or not below the TTL.
    pub fn validate(&self) -> Result<()> {
        let amount_error = |what: &str, reason| Error::InvalidAmount {
            input: what.to_owned(),
            reason,
        };
        if self.slice.minor_units() <= 0 {
            return Err(amount_error(
                &format!("lease slice {}", self.slice),
                AmountError::Zero,
            ));
        }
        if self.low_water.minor_units() < 0 || self.low_water.unit() != self.slice.unit() {
            return Err(amount_error(
                &format!("lease low water {}", self.low_water),
                AmountError::Negative,
            ));
        }
        if self.low_water.minor_units() >= self.slice.minor_units() {
            return Err(amount_error(
                &format!(
                    "lease low water {} not below the slice {}",
                    self.low_water, self.slice
                ),
                AmountError::EmptyRange,
            ));
        }
        if self.ttl.is_zero() {
            return Err(Error::InvalidDuration {
                what: "lease ttl",
                reason: "must be longer than zero",
            });
        }
        if self.renew_margin.is_zero() || self.renew_margin >= self.ttl {
            return Err(Error::InvalidDuration {
                what: "lease renew margin",
                reason: "must be above zero and below the lease ttl",
            });
        }
        Ok(())
    }
}

/// What a [`LeasedStore`](crate::LeasedStore) has done so far (counters since it opened) and
/// what it holds now.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseStats {
    /// Slices leased (remote holds opened).
    pub opened: u64,
    /// Remote hold deadlines extended.
    pub renewed: u64,
    /// Slices ended on the remote node (committed with their spend, or released).
    pub returned: u64,
    /// Slices held on the remote node now.
    pub slices: usize,
    /// What those slices hold on the remote node now: at most this is stranded if the
    /// process dies (until the holds expire).
    pub outstanding: Amount,
    /// Local spend reported to the remote node so far.
    pub reported: Amount,
    /// Local spend not reported yet (at most `outstanding`): what a crash now would never
    /// charge to the remote node.
    pub unreported: Amount,
    /// Spend that was never charged to the remote node because its slice expired before it was
    /// reported (a process stalled past the TTL), or was committed locally after
    /// [`close`](crate::LeasedStore::close).
    pub lost: Amount,
}
