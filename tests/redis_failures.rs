//! RedisStore fails closed: a server that cannot be reached, or dies mid-run, gives a typed
//! `StoreError` that says whether the operation may have happened, never a silent allow.

mod redis_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use budget_guard::expiry::ReserveOptions;
use budget_guard::{
    Amount, Cost, Error, Limit, RedisOptions, RedisStore, Store, StoreErrorKind, Unit,
};
use redis_support::{RedisServer, free_port};

fn kind(error: &Error) -> Option<StoreErrorKind> {
    match error {
        Error::Store(store) => Some(store.kind()),
        _ => None,
    }
}

#[test]
fn an_unreachable_server_is_transient_nothing_was_sent() {
    let url = format!("redis://127.0.0.1:{}", free_port());
    let options = RedisOptions::new().timeout(Duration::from_millis(300));
    let store = RedisStore::with_options(&url, "t", options).unwrap();
    let error = store
        .create_node(None, "acme", &Limit::hard(Amount::usd("1").unwrap()).into())
        .unwrap_err();
    assert_eq!(kind(&error), Some(StoreErrorKind::Transient), "{error}");
    assert!(error.is_transient());
}

#[test]
fn a_server_killed_mid_run_fails_closed_then_reconnects() {
    let Some(mut server) = RedisServer::start_or_skip() else {
        return;
    };
    let store = server.store("t");
    let root = store
        .create_node(None, "acme", &Limit::hard(Amount::usd("1").unwrap()).into())
        .unwrap();
    let one_cent = Cost::from(Amount::usd("0.01").unwrap());
    store.reserve(root, &one_cent).unwrap();
    server.kill();
    // The pooled connection is dead: the request may have gone out, so the outcome is unknown
    // (or, if the write itself failed at once, transient). Never an Ok.
    let error = store.reserve(root, &one_cent).unwrap_err();
    assert!(
        matches!(
            kind(&error),
            Some(StoreErrorKind::OutcomeUnknown | StoreErrorKind::Transient)
        ),
        "{error}"
    );
    // The failed connection was dropped; the next call tries to reconnect and cannot.
    let error = store.reserve(root, &one_cent).unwrap_err();
    assert_eq!(kind(&error), Some(StoreErrorKind::Transient), "{error}");
    // A new (empty, non-persistent) server on the same port: the store reconnects and loads
    // its scripts again (NOSCRIPT), and answers from the new server's books.
    let port = server.port;
    drop(server);
    let _restarted = RedisServer::start_on(port);
    assert!(matches!(
        store.reserve(root, &one_cent),
        Err(Error::UnknownNode { .. })
    ));
    store
        .create_node(None, "acme", &Limit::hard(Amount::usd("1").unwrap()).into())
        .unwrap();
}

#[test]
fn a_bad_tree_name_or_timeout_is_refused_up_front() {
    assert!(matches!(
        RedisStore::connect("redis://127.0.0.1:1", "a{b}"),
        Err(Error::InvalidName { .. })
    ));
    assert!(matches!(
        RedisStore::with_options(
            "redis://127.0.0.1:1",
            "t",
            RedisOptions::new().timeout(Duration::ZERO)
        ),
        Err(Error::InvalidDuration { .. })
    ));
}

const HOLDER_ENV: &str = "BG_REDIS_HOLDER";

/// A client killed with SIGKILL while it holds money: its hold comes back at its deadline (on
/// the server's clock), through the next sweep. The client is this test binary, started
/// again with `BG_REDIS_HOLDER` set: it reserves $4 of $5, says so, and waits to be killed.
#[test]
fn a_killed_clients_hold_comes_back_by_expiry() {
    if let Ok(url) = std::env::var(HOLDER_ENV) {
        let store = RedisStore::connect(&url, "t").unwrap();
        let root = store.resolve("acme").unwrap();
        let options = ReserveOptions::new().ttl(Duration::from_millis(500));
        let held = store
            .reserve_with(root, &Cost::from(Amount::usd("4").unwrap()), &options)
            .unwrap();
        println!("\nheld until {}", held.expires_at.as_unix_nanos());
        std::thread::sleep(Duration::from_secs(600));
        return;
    }
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    let store = server.store("t");
    let root = store
        .create_node(None, "acme", &Limit::hard(Amount::usd("5").unwrap()).into())
        .unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_killed_clients_hold_comes_back_by_expiry",
            "--nocapture",
        ])
        .env(HOLDER_ENV, server.url())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline_ns: i64 = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .find_map(|line| {
            line.split_once("held until ")
                .map(|(_, at)| at.trim().parse().unwrap())
        })
        .expect("the holder reports its hold");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        store.balance(root, Unit::Usd).unwrap().reserved,
        Amount::usd("4").unwrap()
    );
    while server.time_us() * 1_000 <= deadline_ns {
        std::thread::sleep(Duration::from_millis(20));
    }
    store.sweep().unwrap();
    let balance = store.balance(root, Unit::Usd).unwrap();
    assert_eq!(balance.reserved, Amount::zero(Unit::Usd));
    assert_eq!(balance.remaining, Some(Amount::usd("5").unwrap()));
}

/// Redis with `appendfsync always`, killed with SIGKILL after 30 acknowledged reserve+commit
/// pairs and restarted on the same file: every acknowledged spend is there, and the store
/// carries on (it reconnects and reloads its scripts). With `everysec` the last second of
/// acknowledged writes may be lost (see the RedisStore docs).
#[test]
fn nothing_acknowledged_is_lost_across_a_kill_and_restart_with_appendfsync_always() {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!(
        "budget-guard-redis-aof-{}-{port}",
        std::process::id()
    ));
    if !redis_support::available() {
        return;
    }
    let mut server = RedisServer::start_durable(port, &dir);
    let store = server.store("t");
    let root = store
        .create_node(None, "acme", &Limit::hard(Amount::usd("5").unwrap()).into())
        .unwrap();
    let ten_cents = Cost::from(Amount::usd("0.10").unwrap());
    for _ in 0..30 {
        let hold = store.reserve(root, &ten_cents).unwrap().hold;
        store.commit(hold, &ten_cents).unwrap();
    }
    let live = store.reserve(root, &ten_cents).unwrap().hold;
    server.kill();
    let _restarted = RedisServer::start_durable(port, &dir);
    // The pooled connection died with the old server: the first call fails closed (a store
    // error, never an answer) and drops it; the next one reconnects.
    assert!(matches!(
        store.balance(root, Unit::Usd),
        Err(Error::Store(_))
    ));
    let balance = store.balance(root, Unit::Usd).unwrap();
    assert_eq!(balance.spent, Amount::usd("3.00").unwrap());
    assert_eq!(balance.reserved, Amount::usd("0.10").unwrap());
    store.commit(live, &ten_cents).unwrap();
    assert_eq!(
        store.balance(root, Unit::Usd).unwrap().spent,
        Amount::usd("3.10").unwrap()
    );
    drop(_restarted);
    let _ = std::fs::remove_dir_all(&dir);
}
