//! A private `redis-server` per test: a random free loopback port, a fresh temp dir, no
//! persistence, killed when dropped.
//!
//! A missing `redis-server` is a failure in CI, never a skip: `.ci/run` installs it and sets
//! `BUDGET_GUARD_REQUIRE_REDIS=1`. Elsewhere (the README's `cargo test --all-features` on a
//! machine with only Rust installed) a test that needs a server says on stderr that it was not
//! run and returns, so the command still passes; install `redis-server` to run them.

#![allow(dead_code)] // each test binary uses a different part

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use budget_guard::{RedisOptions, RedisStore};

pub(crate) struct RedisServer {
    child: Child,
    pub(crate) port: u16,
    /// The temp dir to remove on drop (`None` when the caller owns the dir).
    dir: Option<PathBuf>,
}

/// Set by `.ci/run`: a missing `redis-server` fails the test instead of skipping it.
const REQUIRE_ENV: &str = "BUDGET_GUARD_REQUIRE_REDIS";

/// Whether a `redis-server` binary can be run here.
fn installed() -> bool {
    Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// `false` (after saying so on stderr) when `redis-server` is not installed and this is not a
/// CI run, so the calling test returns without running; panics in CI.
pub(crate) fn available() -> bool {
    if installed() {
        return true;
    }
    assert!(
        std::env::var_os(REQUIRE_ENV).is_none(),
        "redis-server must be installed ({REQUIRE_ENV} is set; .ci/run installs it with apt-get)"
    );
    eprintln!("not run: redis-server is not installed (apt-get install redis-server)");
    false
}

impl RedisServer {
    /// A started server, or `None` when [`available`] says to skip.
    pub(crate) fn start_or_skip() -> Option<RedisServer> {
        available().then(RedisServer::start)
    }

    /// Starts `redis-server` and waits until it answers `PING`.
    pub(crate) fn start() -> RedisServer {
        RedisServer::start_on(free_port())
    }

    /// Starts `redis-server` on `port` (a restart on the port of a killed one).
    pub(crate) fn start_on(port: u16) -> RedisServer {
        let dir =
            std::env::temp_dir().join(format!("budget-guard-redis-{}-{port}", std::process::id()));
        let mut server = RedisServer::spawn(port, &dir, &["--appendonly", "no"]);
        server.dir = Some(dir);
        server
    }

    /// Starts `redis-server` on `port` with an append-only file in `dir` synced on every write
    /// (`appendfsync always`); `dir` stays when the server is dropped, so a restart on it
    /// reads the file back.
    pub(crate) fn start_durable(port: u16, dir: &std::path::Path) -> RedisServer {
        RedisServer::spawn(
            port,
            dir,
            &["--appendonly", "yes", "--appendfsync", "always"],
        )
    }

    fn spawn(port: u16, dir: &std::path::Path, persistence: &[&str]) -> RedisServer {
        std::fs::create_dir_all(dir).expect("temp dir");
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(persistence)
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (.ci/run installs it with apt-get)");
        let server = RedisServer {
            child,
            port,
            dir: None,
        };
        server.wait_until_ready();
        server
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(client) = redis::Client::open(self.url())
                && let Ok(mut connection) = client.get_connection()
                && redis::cmd("PING").query::<String>(&mut connection).is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A store on this server for tree `tree`.
    pub(crate) fn store(&self, tree: &str) -> RedisStore {
        RedisStore::connect(&self.url(), tree).expect("store")
    }

    pub(crate) fn store_with(&self, tree: &str, options: RedisOptions) -> RedisStore {
        RedisStore::with_options(&self.url(), tree, options).expect("store")
    }

    /// A raw connection (to read the server's `TIME`, for example).
    pub(crate) fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// The server's clock in microseconds.
    pub(crate) fn time_us(&self) -> i64 {
        let (secs, micros): (i64, i64) = redis::cmd("TIME").query(&mut self.connection()).unwrap();
        secs * 1_000_000 + micros
    }

    /// Kills the server (SIGKILL) and waits for it to exit.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A loopback port nobody listens on right now.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// Per command name, the calls and the server microseconds Redis counted since the last
/// `CONFIG RESETSTAT` (`INFO commandstats`). Scripts' inner commands are counted under their
/// own names, the scripts themselves under `evalsha`.
pub(crate) fn commandstats(
    connection: &mut redis::Connection,
) -> std::collections::BTreeMap<String, (u64, u64)> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(connection)
        .expect("INFO commandstats");
    let mut stats = std::collections::BTreeMap::new();
    for line in info.lines() {
        let Some((name, rest)) = line
            .strip_prefix("cmdstat_")
            .and_then(|line| line.split_once(':'))
        else {
            continue;
        };
        let field = |key: &str| -> u64 {
            rest.split(',')
                .find_map(|part| part.strip_prefix(key))
                .and_then(|value| value.parse().ok())
                .unwrap_or(0)
        };
        stats.insert(name.to_owned(), (field("calls="), field("usec=")));
    }
    stats
}

/// Whether `name` (from [`commandstats`]) is a script's inner command rather than the script
/// call itself or the measuring code's own `INFO` / `CONFIG`.
pub(crate) fn is_inner_command(name: &str) -> bool {
    name != "evalsha" && name != "info" && !name.starts_with("config")
}

/// The server the examples use: `REDIS_URL` if set, else a private one started here (kept
/// alive by the returned handle).
pub(crate) fn url_from_env_or_start() -> (String, Option<RedisServer>) {
    match std::env::var("REDIS_URL") {
        Ok(url) => (url, None),
        Err(_) => {
            let server = RedisServer::start();
            (server.url(), Some(server))
        }
    }
}
