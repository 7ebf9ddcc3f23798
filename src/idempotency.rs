//! Idempotency keys: retrying an operation whose outcome the caller did not see applies it once.
//!
//! Reserve ([`ReserveOptions::idempotency_key`](crate::expiry::ReserveOptions::idempotency_key)),
//! commit, release, credit and debit ([`OpOptions::idempotency_key`], through
//! [`Guard::commit_with`](crate::Guard::commit_with),
//! [`Guard::release_with`](crate::Guard::release_with),
//! [`Budget::credit_with`](crate::Budget::credit_with),
//! [`Budget::debit_with`](crate::Budget::debit_with) or the `*_with` methods of
//! [`Store`](crate::Store)) take an optional [`IdempotencyKey`]. The store checks and remembers
//! keys inside the same atomic step as the operation itself:
//!
//! * **New key:** the operation runs. If it succeeds, the store remembers the key with the
//!   request and its result.
//! * **Same key, same request:** the first result is returned again and **nothing changes**: no
//!   second hold, no second spend, no second credit, no rate-limit slot. A retried reserve
//!   returns the *same* [`HoldId`](crate::HoldId) (with
//!   [`Reservation::replayed`](crate::Reservation::replayed) set); a retried commit returns the
//!   first [`Committed`](crate::Committed) (with `replayed` set); a retried release returns
//!   the first answer. Replayed results carry no threshold crossings or reclaimed holds: those
//!   were reported with the first result. A retried credit or debit answers with the node's
//!   [`Balance`](crate::Balance) *at the time of the retry* (a balance is a reading of the
//!   books, not part of the operation's effect; a store need not keep old readings).
//! * **Same key, different request** (another operation, node, hold, amount or TTL):
//!   [`Error::IdempotencyMismatch`] naming the key; nothing changes. Use one key per logical
//!   operation (`"order-42/reserve"`, `"order-42/commit"`).
//!
//! Only operations that **changed the books** are remembered: successes, and a commit that ended
//! in [`Error::OverageRejected`] (the spend was recorded, so a retry gets the same error and
//! records nothing again). Any other error changed nothing, so a retry with the same key simply
//! runs again (a reserve denied for lack of money may succeed later).
//!
//! Keys are scoped to the store (all trees in it), not to a node: use unique keys such as UUIDs.
//!
//! # Retention
//!
//! A store remembers a key for [`KeyRetention::ttl`] after the operation (default
//! [`DEFAULT_KEY_TTL`], 24 hours, read from the store's [`Clock`](crate::Clock)); after that the
//! key is forgotten and the same key applies the operation again. At most
//! [`KeyRetention::max_keys`] keys are remembered (default [`DEFAULT_MAX_KEYS`]); past that the
//! oldest are forgotten first, so memory stays bounded whatever callers send. Set them with
//! [`MemoryStore::with_key_retention`](crate::MemoryStore::with_key_retention) or
//! [`FileStoreOptions::key_retention`](crate::FileStoreOptions::key_retention).
//!
//! A [`FileStore`](crate::FileStore) logs each key in the same record as its operation, so a
//! retry after a crash and reopen is still recognised; compaction carries the remembered keys
//! over. [`Store::restore`](crate::Store::restore) replaces the books and forgets every key.
//!
//! # A retried reserve whose hold has ended
//!
//! A retried reserve answers with its hold only while that hold is live. Once the hold has ended,
//! the retry gets [`Error::HoldEnded`] carrying the key, the hold and [how](HoldEnd) it ended, and
//! nothing changes; a replayed hold id that can no longer be committed would hide that the spend is
//! already booked (committed) or that a new reserve is needed (released, for example by
//! [`FileStoreOptions::release_orphaned_holds`](crate::FileStoreOptions::release_orphaned_holds)
//! after a crash, or expired). The key stays bound to its first request, as with Stripe: to hold
//! again after a release or expiry, reserve with a **new** key. How the hold ended is part of the
//! remembered result, so MemoryStore and FileStore answer alike, also after a reopen.
//!
//! ```
//! use budget_guard::expiry::ReserveOptions;
//! use budget_guard::idempotency::{HoldEnd, IdempotencyKey};
//! use budget_guard::{Amount, Budget, Error, Limit};
//! # fn main() -> budget_guard::Result<()> {
//! let run = Budget::builder("run", Limit::hard(Amount::usd("1")?)).build()?;
//! let options = ReserveOptions::new().idempotency_key(IdempotencyKey::new("job-8/reserve")?);
//! let guard = run.reserve_with(Amount::usd("0.40")?, &options)?;
//! let hold = guard.id();
//! guard.commit(Amount::usd("0.30")?)?;
//! match run.reserve_with(Amount::usd("0.40")?, &options) {
//!     Err(Error::HoldEnded { hold: ended, how, .. }) => {
//!         assert_eq!((ended, how), (hold, HoldEnd::Committed)); // already booked
//!     }
//!     other => panic!("{other:?}"),
//! }
//! # Ok(()) }
//! ```
//!
//! # Guards of a retried reserve
//!
//! A retried reserve returns a second [`Guard`](crate::Guard) on the **same** hold. That guard
//! ([`Guard::is_replay`](crate::Guard::is_replay)) commits and releases like any other, but
//! dropping it does **not** release the hold: the release-on-drop duty stays with the guard of
//! the first reserve (or, if that caller died, with the hold's deadline). So a duplicate guard
//! can never end a hold that its first guard is still using. Event delivery follows the result:
//! a replayed reserve or commit delivers no events and adds nothing to reports; a replayed
//! release or `OverageRejected` cannot be told apart from the first and is delivered again.
//!
//! ```
//! use budget_guard::expiry::ReserveOptions;
//! use budget_guard::idempotency::{IdempotencyKey, OpOptions};
//! use budget_guard::{Amount, Budget, Limit, Unit};
//! # fn main() -> budget_guard::Result<()> {
//! let run = Budget::builder("run", Limit::hard(Amount::usd("1")?)).build()?;
//! let key = IdempotencyKey::new("job-7/reserve")?;
//! let options = ReserveOptions::new().idempotency_key(key);
//! let first = run.reserve_with(Amount::usd("0.40")?, &options)?;
//! let retry = run.reserve_with(Amount::usd("0.40")?, &options)?; // e.g. after a timeout
//! assert_eq!(retry.id(), first.id()); // the same hold, held once
//! assert!(retry.is_replay());
//! assert_eq!(run.balance(Unit::Usd)?.reserved, Amount::usd("0.40")?);
//! drop(retry); // does not release: the first guard still owns the hold
//! assert_eq!(run.balance(Unit::Usd)?.reserved, Amount::usd("0.40")?);
//!
//! let commit = OpOptions::new().idempotency_key(IdempotencyKey::new("job-7/commit")?);
//! first.commit_with(Amount::usd("0.25")?, &commit)?;
//! assert_eq!(run.balance(Unit::Usd)?.spent, Amount::usd("0.25")?);
//!
//! // The same key for a different request is refused:
//! let err = run.reserve_with(Amount::usd("0.10")?, &options).unwrap_err();
//! assert!(matches!(err, budget_guard::Error::IdempotencyMismatch { .. }));
//! # Ok(()) }
//! ```

use std::borrow::Borrow;
use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;
use crate::expiry::validate_ttl;

/// How a hold ended, as [`Error::HoldEnded`] reports it to a retried reserve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum HoldEnd {
    /// Committed: its spend is booked (also a late commit after it expired). Do not book it
    /// again.
    Committed,
    /// Released without spending (its guard was released or dropped, or the store released
    /// orphaned holds at open). Reserve again with a new key if the work still needs money.
    Released,
    /// Reclaimed at its deadline. Reserve again with a new key if the work still needs money.
    Expired,
    /// Ended before the store recorded how holds end: a reserve remembered in a budget file of
    /// format version 1 whose hold had ended before that file was last opened. Check the books
    /// before booking the spend again.
    Unrecorded,
}

impl fmt::Display for HoldEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HoldEnd::Committed => "committed",
            HoldEnd::Released => "released",
            HoldEnd::Expired => "expired",
            HoldEnd::Unrecorded => "ended (how was not recorded)",
        })
    }
}

/// Longest idempotency key accepted, in bytes.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// How long a store remembers a key by default: 24 hours.
pub const DEFAULT_KEY_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// How many keys a store remembers at most by default.
pub const DEFAULT_MAX_KEYS: usize = 65_536;

/// A validated idempotency key: 1 to [`MAX_IDEMPOTENCY_KEY_LEN`] bytes of UTF-8 without
/// control characters. Cheap to clone (shared text).
///
/// ```
/// use budget_guard::idempotency::IdempotencyKey;
/// use budget_guard::Error;
/// # fn main() -> budget_guard::Result<()> {
/// let key = IdempotencyKey::new("3f2b6c1e-order-42")?;
/// assert_eq!(key.as_str(), "3f2b6c1e-order-42");
/// assert!(matches!(IdempotencyKey::new(""), Err(Error::InvalidIdempotencyKey { .. })));
/// assert!(IdempotencyKey::new("x".repeat(256)).is_err());
/// # Ok(()) }
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "String", into = "String"))]
pub struct IdempotencyKey(Arc<str>);

impl IdempotencyKey {
    /// Checks `key` and makes it a key.
    ///
    /// # Errors
    /// [`Error::InvalidIdempotencyKey`] for an empty key, one longer than
    /// [`MAX_IDEMPOTENCY_KEY_LEN`] bytes, or one with control characters.
    pub fn new(key: impl AsRef<str>) -> Result<Self, Error> {
        let key = key.as_ref();
        let reason = if key.is_empty() {
            Some("keys cannot be empty")
        } else if key.len() > MAX_IDEMPOTENCY_KEY_LEN {
            Some("keys are at most 255 bytes")
        } else if key.chars().any(char::is_control) {
            Some("keys cannot contain control characters")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(Error::InvalidIdempotencyKey {
                key: key.chars().take(MAX_IDEMPOTENCY_KEY_LEN).collect(),
                reason,
            }),
            None => Ok(IdempotencyKey(key.into())),
        }
    }

    /// The key's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn text(&self) -> &Arc<str> {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl Borrow<str> for IdempotencyKey {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for IdempotencyKey {
    type Error = Error;

    fn try_from(key: String) -> Result<Self, Error> {
        IdempotencyKey::new(key)
    }
}

impl TryFrom<&str> for IdempotencyKey {
    type Error = Error;

    fn try_from(key: &str) -> Result<Self, Error> {
        IdempotencyKey::new(key)
    }
}

impl From<IdempotencyKey> for String {
    fn from(key: IdempotencyKey) -> String {
        key.0.to_string()
    }
}

/// Options of one commit, release, credit or debit: for now, an optional idempotency key (see
/// [the module docs](self)).
///
/// ```
/// use budget_guard::idempotency::{IdempotencyKey, OpOptions};
/// use budget_guard::{Amount, Budget, Limit, Unit};
/// # fn main() -> budget_guard::Result<()> {
/// let wallet = Budget::builder("wallet", Limit::hard(Amount::usd("5")?)).build()?;
/// let top_up = OpOptions::new().idempotency_key(IdempotencyKey::new("invoice-981")?);
/// wallet.credit_with(Amount::usd("10")?, &top_up)?;
/// wallet.credit_with(Amount::usd("10")?, &top_up)?; // a retry: credited once
/// assert_eq!(wallet.balance(Unit::Usd)?.remaining, Some(Amount::usd("15")?));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpOptions {
    /// Apply the operation once per key (see [the module docs](self)).
    pub idempotency_key: Option<IdempotencyKey>,
}

impl OpOptions {
    /// No options: the operation is not deduplicated.
    pub const DEFAULT: OpOptions = OpOptions {
        idempotency_key: None,
    };

    /// No options ([`OpOptions::DEFAULT`]).
    pub const fn new() -> Self {
        Self::DEFAULT
    }

    /// Sets the idempotency key.
    #[must_use]
    pub fn idempotency_key(mut self, key: IdempotencyKey) -> Self {
        self.idempotency_key = Some(key);
        self
    }
}

/// How long and how many idempotency keys a store remembers (see [the module docs](self)).
///
/// ```
/// use std::num::NonZeroUsize;
/// use std::time::Duration;
/// use budget_guard::idempotency::KeyRetention;
/// use budget_guard::MemoryStore;
/// # fn main() -> budget_guard::Result<()> {
/// let retention = KeyRetention::new(Duration::from_secs(3_600), NonZeroUsize::new(10_000).unwrap())?;
/// let store = MemoryStore::new().with_key_retention(retention);
/// # drop(store);
/// assert!(KeyRetention::new(Duration::ZERO, NonZeroUsize::MIN).is_err());
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyRetention {
    ttl: Duration,
    max_keys: NonZeroUsize,
}

impl KeyRetention {
    /// [`DEFAULT_KEY_TTL`] and [`DEFAULT_MAX_KEYS`].
    pub const DEFAULT: KeyRetention = KeyRetention {
        ttl: DEFAULT_KEY_TTL,
        max_keys: NonZeroUsize::new(DEFAULT_MAX_KEYS).expect("the default is above zero"),
    };

    /// Keys are remembered for `ttl` after their operation, and at most `max_keys` at once
    /// (the oldest are forgotten first).
    ///
    /// # Errors
    /// [`Error::InvalidDuration`] for a zero `ttl`.
    pub fn new(ttl: Duration, max_keys: NonZeroUsize) -> Result<Self, Error> {
        validate_ttl(ttl, "an idempotency key's ttl")?;
        Ok(KeyRetention { ttl, max_keys })
    }

    /// How long a key is remembered after its operation.
    pub const fn ttl(&self) -> Duration {
        self.ttl
    }

    /// How many keys are remembered at most.
    pub const fn max_keys(&self) -> usize {
        self.max_keys.get()
    }
}

impl Default for KeyRetention {
    fn default() -> Self {
        Self::DEFAULT
    }
}
