//! Hold expiry: how long a reservation lives without a heartbeat, and what a reclaimed hold
//! looks like.
//!
//! Every hold has a deadline, [`DEFAULT_HOLD_TTL`] after the reserve unless
//! [`ReserveOptions::ttl`] says otherwise. [`Guard::extend`](crate::Guard::extend) is the
//! heartbeat that moves it. A hold past its deadline stays live (and commits normally) until a
//! store *reclaims* it, which returns its outstanding part to the budget:
//!
//! * lazily, when a reserve would be denied: the store first reclaims expired holds, then checks
//!   again (so a crashed caller's holds never block anyone for longer than their TTL);
//! * on [`Store::sweep`](crate::Store::sweep) / [`Budget::sweep`](crate::Budget::sweep), or the
//!   background sweeper of [`Budget::spawn_sweeper`](crate::Budget::spawn_sweeper) (feature
//!   `tokio`).
//!
//! Each reclaimed hold is reported once, as an [`ExpiredHold`] (and an
//! [`Event::HoldExpired`](crate::Event::HoldExpired)): by the reserve that reclaimed it when that
//! reserve succeeds, otherwise by the next successful reserve or sweep.
//!
//! # Committing after expiry
//!
//! * **Expired, not yet reclaimed:** the hold is still live; the commit records normally.
//! * **Reclaimed:** the hold's reservation was already returned, so `actual − recorded` is new
//!   spend with no hold behind it. It is recorded as spent on the node and every ancestor when it
//!   fits under every hard limit on the path (or within the governing node's overdraft, under
//!   [`OveragePolicy::AllowWithOverdraft`](crate::OveragePolicy::AllowWithOverdraft), the excess
//!   becoming debt); the commit then returns `Ok` with
//!   [`Committed::expired`](crate::Committed::expired) set and nothing returned. Otherwise
//!   **nothing** is recorded and the commit fails with
//!   [`Error::ReservationExpired`]. Spend moved earlier by
//!   [`Guard::record`](crate::Guard::record) stays spent either way.
//!
//! Stores remember the last [`EXPIRED_HOLDS_REMEMBERED`] reclaimed holds for such late commits;
//! an older one commits as [`Error::UnknownHold`].

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Timestamp;
use crate::cost::Cost;
use crate::error::Error;
use crate::idempotency::IdempotencyKey;
use crate::ids::HoldId;

/// How long a hold lives without [`Guard::extend`](crate::Guard::extend): 60 seconds.
pub const DEFAULT_HOLD_TTL: Duration = Duration::from_secs(60);

/// How often [`Guard::cancelled`](crate::Guard::cancelled) asks the store again when nothing
/// woke it (feature `tokio`): changes made outside its tree's handles are noticed this late.
pub const CANCEL_POLL: Duration = Duration::from_secs(1);

/// How many reclaimed holds a store remembers so that a late commit can still record its spend.
pub const EXPIRED_HOLDS_REMEMBERED: usize = 4096;

/// Options of one reserve ([`Budget::reserve_with`](crate::Budget::reserve_with)).
///
/// ```
/// use std::time::Duration;
/// use budget_guard::expiry::ReserveOptions;
/// use budget_guard::{Amount, Budget, Limit};
/// # fn main() -> budget_guard::Result<()> {
/// let run = Budget::builder("run", Limit::hard(Amount::usd("1")?)).build()?;
/// let options = ReserveOptions::new().ttl(Duration::from_secs(300));
/// let guard = run.reserve_with(Amount::usd("0.50")?, &options)?;
/// guard.commit(Amount::usd("0.20")?)?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReserveOptions {
    /// Time to live: the hold expires this long after the reserve (or the last
    /// [`extend`](crate::Guard::extend)). Must be above zero.
    pub ttl: Duration,
    /// Hold at most once per key: a retry with the same key and request returns the first
    /// hold (see [`crate::idempotency`]). The TTL is part of the request.
    pub idempotency_key: Option<IdempotencyKey>,
}

impl ReserveOptions {
    /// The defaults: a TTL of [`DEFAULT_HOLD_TTL`].
    pub const DEFAULT: ReserveOptions = ReserveOptions {
        ttl: DEFAULT_HOLD_TTL,
        idempotency_key: None,
    };

    /// The defaults ([`ReserveOptions::DEFAULT`]).
    pub const fn new() -> Self {
        Self::DEFAULT
    }

    /// Sets the time to live.
    #[must_use]
    pub const fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Sets the idempotency key: a retried reserve with the same key, node, cost and TTL
    /// returns the first hold instead of holding again (see [`crate::idempotency`]).
    ///
    /// ```
    /// use budget_guard::expiry::ReserveOptions;
    /// use budget_guard::idempotency::IdempotencyKey;
    /// use budget_guard::{Amount, Budget, Limit};
    /// # fn main() -> budget_guard::Result<()> {
    /// let run = Budget::builder("run", Limit::hard(Amount::usd("1")?)).build()?;
    /// let once = ReserveOptions::new().idempotency_key(IdempotencyKey::new("step-3")?);
    /// let guard = run.reserve_with(Amount::usd("0.50")?, &once)?;
    /// let again = run.reserve_with(Amount::usd("0.50")?, &once)?;
    /// assert_eq!(again.id(), guard.id());
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn idempotency_key(mut self, key: IdempotencyKey) -> Self {
        self.idempotency_key = Some(key);
        self
    }

    /// Checks the options.
    ///
    /// # Errors
    /// [`Error::InvalidDuration`] for a zero TTL.
    pub fn validate(&self) -> Result<(), Error> {
        validate_ttl(self.ttl, "a hold's ttl")
    }
}

impl Default for ReserveOptions {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Checks a time to live or heartbeat duration.
pub(crate) fn validate_ttl(ttl: Duration, what: &'static str) -> Result<(), Error> {
    if ttl.is_zero() {
        return Err(Error::InvalidDuration {
            what,
            reason: "must be above zero",
        });
    }
    Ok(())
}

/// A hold a store reclaimed because it passed its deadline: its outstanding part went back to
/// the budget; what [`Guard::record`](crate::Guard::record) had moved stays spent.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct ExpiredHold {
    /// The hold.
    pub hold: HoldId,
    /// Path of the node it was reserved on.
    pub node: Arc<str>,
    /// What it held.
    pub held: Cost,
    /// What had been recorded as spent on it (it stays spent).
    pub recorded: Cost,
    /// Its deadline.
    pub expired_at: Timestamp,
}

impl ExpiredHold {
    /// The part that went back to the budget: `held − recorded`, per unit.
    pub fn returned(&self) -> Cost {
        let mut returned = Cost::new();
        for unit in self.held.units() {
            returned.set(unit, self.held.minor(unit) - self.recorded.minor(unit));
        }
        returned
    }
}
