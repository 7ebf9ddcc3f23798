//! [`RedisStore`]: a budget tree kept in Redis, one server-side Lua script per operation.

mod check;
mod client;
mod codec;
mod fail_open;
mod keys;
mod ops;
mod periods;
mod scripts;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock, Timestamp};
use crate::error::{Error, Result};
use crate::op::{Answer, Applied, Op, OpKind, Query};
use crate::store::Store;

use self::client::Client;
pub use self::fail_open::{FailOpen, LetThrough};
use self::keys::Namespace;
use self::periods::Periods;
use self::scripts::Scripts;

/// How a [`RedisStore`] connects and names its keys.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RedisOptions {
    /// The first part of the hash tag `{prefix:tree}` of every key. Default `budget-guard`.
    pub prefix: String,
    /// How long to wait to connect, and for each reply. Default 2 s.
    pub timeout: Duration,
    /// Time from this clock instead of the server's `TIME` (tests that move time by hand).
    /// Default `None`: the server's clock.
    pub clock: Option<Arc<dyn Clock>>,
    /// Let reserves, commits, releases and extends through when the server cannot answer,
    /// reporting each one (see [`FailOpen`]). Default `None`: fail closed.
    pub fail_open: Option<FailOpen>,
    /// Testing only: the client estimates the server's time (to send the period bounds of
    /// periodic limits) from this clock instead of from the server's replies, as a client
    /// whose clock is off would. The scripts still check every period against their own time,
    /// so this changes nothing but the number of round trips.
    #[doc(hidden)]
    pub estimate_clock: Option<Arc<dyn Clock>>,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            prefix: "budget-guard".to_owned(),
            timeout: Duration::from_secs(2),
            clock: None,
            fail_open: None,
            estimate_clock: None,
        }
    }
}

impl RedisOptions {
    /// The default options.
    pub fn new() -> Self {
        RedisOptions::default()
    }

    /// Sets [`RedisOptions::prefix`].
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets [`RedisOptions::timeout`].
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Fails **open** with `policy`: a reserve, commit, release or extend that fails because
    /// the server cannot answer (unreachable, timed out, read-only: a transient or
    /// outcome-unknown [`StoreError`](crate::StoreError)) succeeds without the server, and is counted and reported
    /// to the policy's callback as a [`LetThrough`]. A reserve let through holds nothing
    /// anywhere: no cap is enforced for it. Refusals by the budget, bad input and every other
    /// operation still fail closed.
    #[must_use]
    pub fn fail_open(mut self, policy: FailOpen) -> Self {
        self.fail_open = Some(policy);
        self
    }

    /// Sets [`RedisOptions::clock`].
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Testing only: sets `RedisOptions::estimate_clock`.
    #[doc(hidden)]
    #[must_use]
    pub fn estimate_clock(mut self, clock: impl Clock) -> Self {
        self.estimate_clock = Some(Arc::new(clock));
        self
    }
}

/// The money core of a budget tree kept in Redis and shared by every process
/// and machine that connects to it (feature `redis`).
///
/// Each operation is **one server-side Lua script** (run with `EVALSHA`, reloaded on
/// `NOSCRIPT`), so it is atomic on the server: a reserve checks and holds on the whole path, in
/// every unit, or does nothing, whatever number of clients race it.
///
/// # What it supports
///
/// The same rules as the ledger ([`MemoryStore`](crate::MemoryStore)), proven the same by the
/// shared conformance suite and by a reference-model property test that runs random operation
/// sequences on both and compares every result and balance after every step
/// (`tests/redis_model.rs`).
///
/// | Operation ([`Store::supports`]) | On Redis |
/// |---|---|
/// | `CreateNode`, `RemoveNode`, `SetState` | yes |
/// | `Reserve`, `ReserveUpTo`, `Extend`, `Sweep`, `Record`, `Release` | yes |
/// | `Commit`, within the hold and above it | yes: every [`OveragePolicy`](crate::OveragePolicy), debt, late commits of reclaimed holds |
/// | `Credit`, `Debit`, `SetLimit`, `RemoveLimit` | yes: hard and soft limits, threshold levels |
/// | `SetRateLimit` | yes: the ledger's sliding window, on the server's clock |
/// | idempotency keys (reserve, reserve-up-to, commit, release, credit, debit) | yes, kept 24 h |
/// | limits with a [`Period`](crate::period::Period), every [`Rollover`](crate::period::Rollover) | yes, on the server's clock (see below); windows of at least 1 µs |
/// | a second limit in one unit of a node (daily *and* monthly USD) | no: `CreateNode` returns [`Error::Unsupported`]; put the caps on a two-node path instead (below) |
/// | `SetBurnWindow`, `SetTopUp`, `Restore` | no: [`Error::Unsupported`] |
///
/// Reads: `Resolve`, `Check` (the reserve's dry run), `Balance`, `NodeInfo`, `Snapshot` (nodes,
/// rate limits and live holds; reclaimed holds are not listed) and `Cancellation`.
///
/// **Periods** roll lazily on the server, as in the ledger: the first operation that touches
/// a periodic account after its period ended (a reserve, commit, release or record on its
/// path, a credit, debit or limit change on its node, a read of it, a reclaimed hold on its
/// path; a snapshot touches every node) rolls it first, with the ledger's rules: the unused
/// rest carries under the rollover's cap, never less than what live holds occupy beyond the
/// allocation, each idle period in between carries its allocation the same way, spend starts
/// from zero and threshold levels re-arm. Credits and debits change the current period's
/// allowance only. A node keeps one limit per unit on Redis (periodic or not; `SetLimit` with
/// another period replaces it, as in the ledger).
///
/// **Several caps of one unit** ("$10 a day *and* $200 a month") go on a path: the monthly
/// cap on a parent node, the daily one on the child the work reserves on. A reserve on the
/// child must fit both, exactly as it must fit both caps of one ledger node holding them, and
/// what it spends counts in both periods; a refusal names the node whose cap said no, with that cap's period and
/// figures (`tests/redis_periods.rs` runs two clients over 21 days and a month boundary and
/// matches every grant and refusal against one ledger node with both caps). What differs from
/// one node with both caps: each node reports its own cap in [`Balance`](crate::Balance)
/// (the ledger lists the further cap in `further_limits`), and overage policy, debt and
/// threshold levels are per node (the ledger keeps them on the unit's first cap only).
///
/// Period boundaries follow the server's clock. Lua has no calendar, so each call carries,
/// for every period in use in the tree, the number, first and end microsecond of the period
/// containing the client's estimate of the server's time (the time the server last sent it,
/// plus the time elapsed since; nothing before that, so a client's first call on a tree with
/// periods takes one more round trip). The script checks them against its own `TIME` before
/// it writes anything; a missing or wrong one makes it answer with its time and the periods
/// it needs, changing nothing, and the client sends the call again with the periods computed
/// at exactly that time (at most three attempts, then a [`StoreErrorKind::Transient`] error).
/// So a client whose clock or estimate is hours off costs one more round trip, never a reset
/// at the wrong time; a client that never saw a limit being set learns its period from the
/// server. On a tree without periodic limits no period is sent and the scripts find the
/// list of periods in use empty, and then neither read the clock for periods nor roll
/// anything; a tree keeps that list of
/// every period it ever used, so calls keep carrying a period whose last limit was removed
/// (a few bytes).
///
/// **What a call costs the server.** A script reads each node of the path once (one
/// `HGETALL`, kept in step with its own writes) and writes each node it changes once per
/// unit: a reserve on a two-node path runs 10 Redis commands inside its script (the period
/// list, the clock, the two nodes, the hold's number, the two nodes' holds, the hold, the
/// deadline set, the unreported expiries) and a commit 9. `examples/redis_script_cost.rs`
/// prints these figures for a running server; BENCHMARKS.md has the measured times.
///
/// **Threshold levels** (and a soft limit's implicit 100 % level) are kept with the limit on
/// the server, with the set of levels already fired, so each level fires **once across every
/// process** sharing the tree; the crossing comes back in the result of the reserve or commit
/// that reached it ([`Reservation::events`](crate::Reservation::events),
/// [`Committed::events`](crate::Committed::events)), exactly as the ledger reports it.
///
/// # Exact money
///
/// Amounts cross as decimal strings of integer minor units. Lua numbers are doubles, exact for
/// integers up to 2^53, so every amount sent is checked to be at most
/// [`RedisStore::MAX_EXACT_MINOR`] (2^53 − 1) in magnitude ([`Error::TooLarge`] beyond), and every sum the
/// scripts compute (spent + reserved + request, a raised limit, a deadline) is checked against
/// the same bound before anything is written ([`Error::Overflow`] beyond). In dollars that is
/// about $9,007,199.25 per node in nano-dollars. A periodic limit whose allocation plus
/// rollover cap (the most one period can offer) passes the bound is refused with
/// [`Error::TooLarge`] when it is set.
///
/// # One clock for the fleet
///
/// Hold deadlines, rate-limit windows and period boundaries are computed inside the scripts
/// from the server's `TIME` (in microseconds), never from a client's clock, so a client whose
/// clock is hours off neither keeps a hold alive late, nor reclaims one early, nor escapes a
/// rate limit, nor resets a period early. [`RedisStore::now`](Store::now) reads the server's time too.
/// [`RedisOptions::clock`] replaces the server's time with a [`Clock`] for tests that need to
/// move time by hand (the conformance suite's expiry checks); do not use it in a fleet.
///
/// # Keys
///
/// One store serves one tree namespace: every key starts with the hash tag `{prefix:tree}`
/// ([`RedisOptions::prefix`], default `budget-guard`), so each script touches one Redis Cluster
/// slot and several trees or applications can share one Redis.
///
/// # Failures
///
/// The store fails closed. A server that cannot be reached is [`StoreErrorKind::Transient`]
/// (the operation was not sent; retry). A connection lost or timed out after the request went
/// out is [`StoreErrorKind::OutcomeUnknown`]: the script may have run, so retry only with the
/// same idempotency key. A failed connection is dropped and the next call reconnects. A pooled
/// connection that sat idle for a moment (250 ms) is checked with a `PING` before a request
/// goes out on it, so the first call after a server restart reconnects and succeeds instead of
/// failing on its stale connection; a connection that dies between that check and the reply
/// still gives `OutcomeUnknown`.
///
/// # In async code
///
/// The store talks to Redis over blocking connections (the [`Store`] trait is synchronous),
/// so each `Budget` call on it holds its thread for one round trip (about 0.1 ms on a local
/// network). In a tokio application that is usually fine on the multi-threaded runtime; where
/// it is not, put a [`LeasedStore`](crate::LeasedStore) in front: reserves and commits are then
/// served in process from a leased slice, and Redis is called only to lease, renew and return
/// slices (with the lease's background thread on, it tops the slice up before it runs dry, so
/// a reserve seldom waits for Redis).
///
/// # Durability
///
/// The store acknowledges what Redis acknowledged. With `appendonly yes` and
/// `appendfsync always`, nothing acknowledged is lost when the server is killed; with the
/// default `appendfsync everysec` a crash of the server's machine may lose about the last
/// second of acknowledged operations (spend that happened, holds that were granted); without
/// persistence a server restart starts from empty books.
///
/// [`StoreErrorKind::Transient`]: crate::StoreErrorKind::Transient
/// [`StoreErrorKind::OutcomeUnknown`]: crate::StoreErrorKind::OutcomeUnknown
///
/// ```no_run
/// use std::sync::Arc;
/// use budget_guard::{Amount, Budget, Limit, RedisStore};
/// # fn main() -> budget_guard::Result<()> {
/// // Once, when the tree is set up:
/// let store = RedisStore::connect("redis://127.0.0.1:6379", "acme")?;
/// Budget::builder("acme", Limit::hard(Amount::usd("100")?)).build_in(store)?;
///
/// // In every worker process, on any machine:
/// let store = RedisStore::connect("redis://127.0.0.1:6379", "acme")?;
/// let team = Budget::open(Arc::new(store), "acme")?;
/// let guard = team.reserve(Amount::usd("0.10")?)?;
/// guard.commit(Amount::usd("0.07")?)?;
/// # Ok(()) }
/// ```
pub struct RedisStore {
    client: Client,
    namespace: Namespace,
    scripts: Scripts,
    clock: Option<Arc<dyn Clock>>,
    fail_open: Option<FailOpen>,
    periods: Periods,
    estimate_clock: Option<Arc<dyn Clock>>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("namespace", &self.namespace.as_str())
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// The largest magnitude of minor units the store keeps exact: 2^53 − 1 (the integers a
    /// Lua double holds exactly). Larger amounts are refused with [`Error::TooLarge`].
    pub const MAX_EXACT_MINOR: i64 = codec::MAX_EXACT_MINOR;

    /// A store for the tree namespace `tree` on the Redis at `url` (`redis://host:port/db`),
    /// with the default [`RedisOptions`]. No connection is opened until the first operation.
    ///
    /// # Errors
    /// [`Error::InvalidName`] for an unusable tree name; a permanent [`Error::Store`] for a
    /// malformed URL.
    pub fn connect(url: &str, tree: &str) -> Result<Self> {
        RedisStore::with_options(url, tree, RedisOptions::default())
    }

    /// As [`connect`](RedisStore::connect), with `options`.
    ///
    /// # Errors
    /// As [`connect`](RedisStore::connect); [`Error::InvalidDuration`] for a zero timeout.
    pub fn with_options(url: &str, tree: &str, options: RedisOptions) -> Result<Self> {
        if options.timeout.is_zero() {
            return Err(Error::InvalidDuration {
                what: "RedisStore timeout",
                reason: "must be longer than zero",
            });
        }
        Ok(RedisStore {
            client: Client::new(url, options.timeout)?,
            namespace: Namespace::new(&options.prefix, tree)?,
            scripts: Scripts::new(),
            clock: options.clock,
            fail_open: options.fail_open,
            periods: Periods::default(),
            estimate_clock: options.estimate_clock,
        })
    }

    /// The first argument of every script: the time (empty for the server's `TIME`, else the
    /// test clock's time in microseconds), then the bounds of every period the client knows to
    /// be in use, at `estimate_us` (see `periods.rs`).
    fn time_arg(&self, estimate_us: Option<i64>) -> Result<String> {
        let time = self
            .clock
            .as_ref()
            .map(|clock| clock.now().as_unix_nanos().div_euclid(1_000));
        let lines = self.periods.lines(estimate_us)?;
        Ok(time.map(|micros| micros.to_string()).unwrap_or_default() + &lines)
    }

    /// Runs `script` with the time, idempotency key and fingerprint arguments first. A script
    /// that needs the bounds of periods the call did not carry (or carried for another time
    /// than the server's) changed nothing and answers with the server's time; the call is sent
    /// again with the periods computed at that time, whatever the client's estimate said.
    fn run(
        &self,
        script: &redis::Script,
        key: Option<&crate::idempotency::IdempotencyKey>,
        fingerprint: &str,
        args: Vec<String>,
    ) -> Result<Vec<String>> {
        let mut all = Vec::with_capacity(args.len() + 3);
        all.push(String::new());
        all.push(key.map(|key| key.as_str().to_owned()).unwrap_or_default());
        all.push(fingerprint.to_owned());
        all.extend(args);
        let estimate = self.estimate_clock.as_deref().or(self.clock.as_deref());
        let mut estimate_us = self.periods.estimate_us(estimate);
        for _ in 0..periods::ATTEMPTS {
            all[0] = self.time_arg(estimate_us)?;
            let reply = self.client.run(script, self.namespace.as_str(), &all)?;
            if reply.first().map(String::as_str) != Some("need") {
                return Ok(reply);
            }
            estimate_us = Some(self.periods.needed(&reply)?);
        }
        Err(crate::error::StoreError::transient(format!(
            "redis: period boundaries kept passing between the server's replies ({} attempts); \
             nothing was applied",
            periods::ATTEMPTS
        ))
        .into())
    }
}

/// The operations the scripts implement.
const SUPPORTED: [OpKind; 15] = [
    OpKind::CreateNode,
    OpKind::RemoveNode,
    OpKind::Reserve,
    OpKind::ReserveUpTo,
    OpKind::Extend,
    OpKind::Sweep,
    OpKind::Record,
    OpKind::Commit,
    OpKind::Release,
    OpKind::Credit,
    OpKind::Debit,
    OpKind::SetState,
    OpKind::SetRateLimit,
    OpKind::SetLimit,
    OpKind::RemoveLimit,
];

impl Store for RedisStore {
    /// Refuses, without a round trip, what the scripts cannot keep exactly: a second limit in
    /// one unit, a window shorter than a microsecond, amounts beyond 2^53 − 1 minor units.
    fn validate_limits(&self, limits: &crate::policy::Limits) -> Result<()> {
        codec::node_limit_args(limits, &mut Vec::new())
    }

    fn apply(&self, op: &Op) -> Result<Applied> {
        if let Some(policy) = &self.fail_open {
            return policy.apply(op, |op| self.apply_closed(op));
        }
        self.apply_closed(op)
    }

    fn read(&self, query: &Query) -> Result<Answer> {
        self.read_supported(query)
    }

    fn supports(&self, kind: OpKind) -> bool {
        SUPPORTED.contains(&kind)
    }

    fn now(&self) -> Timestamp {
        if let Some(clock) = &self.clock {
            return clock.now();
        }
        self.client
            .server_time_us()
            .map(|micros| Timestamp::from_unix_nanos(micros.saturating_mul(1_000)))
            .unwrap_or_else(|_| SystemClock.now())
    }
}
