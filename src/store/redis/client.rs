//! Connections and failure mapping. A small pool of synchronous connections: a call takes one
//! (or opens one), runs one script, and puts it back only if it answered; a connection that
//! failed is dropped, so the next call reconnects.
//!
//! A pooled connection may have died while it sat idle (the server restarted). Sending on it
//! would fail only after the request went out, which is `OutcomeUnknown`: on TCP the first
//! write to a dead peer succeeds and the reply read fails, so the failure cannot tell "never
//! arrived" from "ran, then the server died". So a connection that sat idle for
//! [`IDLE_CHECK_AFTER`] is checked with a `PING` before the request is sent; a failed check
//! sent nothing that changes state, so the call reconnects and sends the request once on the
//! fresh connection. A failure after the request was sent stays `OutcomeUnknown`.

use std::time::{Duration, Instant};

use parking_lot::Mutex;
use redis::{Connection, ConnectionLike, ErrorKind, RedisError, Script};

use crate::error::{Result, StoreError};

/// How many idle connections are kept for reuse.
const MAX_IDLE: usize = 16;

/// A pooled connection idle for this long is checked with a `PING` before use. Shorter than
/// any server restart takes in practice, long enough that a busy pool (connections reused
/// within microseconds) never pays the extra round trip.
pub(super) const IDLE_CHECK_AFTER: Duration = Duration::from_millis(250);

/// A pooled connection and when it was last used.
struct Idle {
    connection: Connection,
    since: Instant,
}

pub(super) struct Client {
    client: redis::Client,
    timeout: Duration,
    idle: Mutex<Vec<Idle>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("timeout", &self.timeout)
            .field("idle", &self.idle.lock().len())
            .finish_non_exhaustive()
    }
}

impl Client {
    pub(super) fn new(url: &str, timeout: Duration) -> Result<Self> {
        let client = redis::Client::open(url)
            .map_err(|error| StoreError::permanent(format!("redis: bad url: {error}")))?;
        Ok(Client {
            client,
            timeout,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// A connection ready to send on: a pooled one that answered recently or answers a `PING`,
    /// else a fresh one. Nothing that changes state has been sent when this returns.
    fn connection(&self) -> Result<Connection> {
        loop {
            let Some(Idle {
                mut connection,
                since,
            }) = self.idle.lock().pop()
            else {
                return self.open();
            };
            if since.elapsed() < IDLE_CHECK_AFTER || connection.check_connection() {
                return Ok(connection);
            }
            // It died while idle (a server restart kills every pooled connection at once):
            // the others are stale too.
            drop(connection);
            self.idle.lock().clear();
        }
    }

    /// Puts a connection that answered back into the pool.
    fn give_back(&self, connection: Connection) {
        let mut idle = self.idle.lock();
        if idle.len() < MAX_IDLE {
            idle.push(Idle {
                connection,
                since: Instant::now(),
            });
        }
    }

    /// Opens a new connection. Nothing was sent yet: any failure here is transient.
    fn open(&self) -> Result<Connection> {
        let connection = self
            .client
            .get_connection_with_timeout(self.timeout)
            .map_err(|error| StoreError::transient(format!("redis: cannot connect: {error}")))?;
        for set in [Connection::set_read_timeout, Connection::set_write_timeout] {
            set(&connection, Some(self.timeout))
                .map_err(|error| StoreError::transient(format!("redis: {error}")))?;
        }
        Ok(connection)
    }

    /// Runs `script` with the namespace as its one key and `args`, and returns its reply: a
    /// flat list of strings.
    pub(super) fn run(&self, script: &Script, key: &str, args: &[String]) -> Result<Vec<String>> {
        let mut connection = self.connection()?;
        let mut invocation = script.key(key);
        for arg in args {
            invocation.arg(arg);
        }
        let reply: Vec<String> = invocation.invoke(&mut connection).map_err(classify)?;
        self.give_back(connection);
        Ok(reply)
    }

    /// The server's clock (`TIME`), in microseconds since the Unix epoch.
    pub(super) fn server_time_us(&self) -> Result<i64> {
        let mut connection = self.connection()?;
        let (secs, micros): (i64, i64) = redis::cmd("TIME")
            .query(&mut connection)
            .map_err(classify)?;
        self.give_back(connection);
        Ok(secs.saturating_mul(1_000_000).saturating_add(micros))
    }
}

/// What a failed call means for the operation: a server that refused it before running the
/// script (read-only replica, loading, busy, out of memory, cluster redirection) did not apply
/// it; a lost or timed-out connection after the request went out may have; a script error
/// (our own overflow guard, a bug) did not apply anything the script had not checked first.
fn classify(error: RedisError) -> crate::Error {
    let message = format!("redis: {error}");
    if message.contains("BG_OVERFLOW") {
        return crate::Error::Overflow {
            operation: "keep an amount exact below 2^53 minor units in a RedisStore script",
        };
    }
    match error.kind() {
        ErrorKind::ReadOnly
        | ErrorKind::BusyLoadingError
        | ErrorKind::TryAgain
        | ErrorKind::MasterDown
        | ErrorKind::ClusterDown
        | ErrorKind::Moved
        | ErrorKind::Ask => StoreError::transient(message).into(),
        _ if error.is_io_error() || error.is_timeout() || error.is_connection_dropped() => {
            StoreError::outcome_unknown(message).into()
        }
        _ if message.contains("OOM") || message.contains("BUSY") => {
            StoreError::transient(message).into()
        }
        _ => StoreError::permanent(message).into(),
    }
}
