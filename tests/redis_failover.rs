//! Failures of the fleet around a `RedisStore`: a client killed while holding money (its holds
//! come back by expiry), the server killed and restarted with an append-only file (nothing
//! acknowledged is lost), and the explicit fail-open policy (every operation let through is
//! counted and reported). Each test starts its own `redis-server` on a free port.

mod redis_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use budget_guard::expiry::ReserveOptions;
use budget_guard::{
    Amount, Budget, Cost, Error, FailOpen, LetThrough, Limit, OpKind, RedisOptions, RedisStore,
    Store, StoreErrorKind, Unit,
};
use redis_support::{RedisServer, free_port};

const CLIENT_ENV: &str = "BG_REDIS_HOLDING_CLIENT";

fn usd(text: &str) -> Amount {
    Amount::usd(text).unwrap()
}

fn spent_and_held(budget: &Budget) -> (Amount, Amount) {
    let balance = budget.balance(Unit::Usd).unwrap();
    (balance.spent, balance.reserved)
}

/// The child process: holds $1.50 (TTL 2 s) in two holds, says so, and waits to be killed.
fn holding_client(spec: &str) {
    let (url, tree) = spec.split_once(' ').unwrap();
    let team = Budget::open(Arc::new(RedisStore::connect(url, tree).unwrap()), "team").unwrap();
    let ttl = ReserveOptions::new().ttl(Duration::from_secs(2));
    let first = team.reserve_with(usd("1"), &ttl).unwrap();
    let second = team.reserve_with(usd("0.50"), &ttl).unwrap();
    println!("holding");
    std::thread::sleep(Duration::from_secs(600));
    drop((first, second));
}

#[test]
fn a_client_killed_while_holding_money_gives_it_back_by_expiry() {
    if let Ok(spec) = std::env::var(CLIENT_ENV) {
        holding_client(&spec);
        return;
    }
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    let team = Budget::builder("team", Limit::hard(usd("5")))
        .build_in(server.store("killed"))
        .unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_client_killed_while_holding_money_gives_it_back_by_expiry",
            "--nocapture",
        ])
        .env(CLIENT_ENV, format!("{} killed", server.url()))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(lines.any(|line| line.unwrap().contains("holding")));
    child.kill().unwrap(); // SIGKILL: no destructor runs, nothing is released
    child.wait().unwrap();
    assert_eq!(spent_and_held(&team), (usd("0"), usd("1.50")));
    assert_eq!(
        team.balance(Unit::Usd).unwrap().remaining,
        Some(usd("3.50"))
    );

    // The sweeper reclaims them once the server's clock passes their deadline (2 s).
    let mut reclaimed = Vec::new();
    while reclaimed.len() < 2 {
        std::thread::sleep(Duration::from_millis(100));
        reclaimed.extend(team.sweep().unwrap());
    }
    let mut amounts: Vec<_> = reclaimed
        .iter()
        .map(|hold| hold.held.get(Unit::Usd).unwrap())
        .collect();
    amounts.sort();
    assert_eq!(amounts, [usd("0.50"), usd("1")]);
    assert_eq!(spent_and_held(&team), (usd("0"), usd("0")));
    assert_eq!(team.balance(Unit::Usd).unwrap().remaining, Some(usd("5")));
}

/// What the workers of the restart test saw.
#[derive(Default)]
struct Tally {
    /// Commits acknowledged by the server, in minor units.
    acknowledged: AtomicU64,
    /// Commits whose outcome is unknown (the connection broke after sending).
    unknown: AtomicU64,
    /// Operations refused because the server was down (did not happen).
    refused: AtomicU64,
}

#[test]
fn a_server_restarted_from_its_append_only_file_loses_nothing_acknowledged() {
    if !redis_support::available() {
        return;
    }
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("budget-guard-aof-{}-{port}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut server = RedisServer::start_durable(port, &dir);
    let url = server.url();
    let team = Budget::builder("team", Limit::hard(usd("1000")))
        .build_in(RedisStore::connect(&url, "aof").unwrap())
        .unwrap();
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let cost = usd("0.01");
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (url, tally, stop) = (url.clone(), tally.clone(), stop.clone());
            std::thread::spawn(move || {
                let options = RedisOptions::new().timeout(Duration::from_millis(500));
                let store = RedisStore::with_options(&url, "aof", options).unwrap();
                let team = Budget::open(Arc::new(store), "team").unwrap();
                while !stop.load(Ordering::Relaxed) {
                    let guard = match team.reserve(cost) {
                        Ok(guard) => guard,
                        Err(Error::Store(_)) => {
                            tally.refused.fetch_add(1, Ordering::Relaxed);
                            std::thread::sleep(Duration::from_millis(20));
                            continue;
                        }
                        Err(other) => panic!("unexpected: {other}"),
                    };
                    match guard.commit(cost) {
                        Ok(_) => tally.acknowledged.fetch_add(1, Ordering::Relaxed),
                        Err(error) if error.error().outcome_unknown() => {
                            tally.unknown.fetch_add(1, Ordering::Relaxed)
                        }
                        Err(_) => tally.refused.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    let wait_for = |count: u64| {
        while tally.acknowledged.load(Ordering::Relaxed) < count {
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    wait_for(200);
    server.kill(); // SIGKILL mid-run
    let before_restart = tally.acknowledged.load(Ordering::Relaxed);
    server = RedisServer::start_durable(port, &dir);
    wait_for(before_restart + 200);
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().unwrap();
    }

    let acknowledged = tally.acknowledged.load(Ordering::Relaxed) as i64;
    let unknown = tally.unknown.load(Ordering::Relaxed) as i64;
    // A fresh connection: `team`'s pooled one died with the first server.
    let after = Budget::open(Arc::new(server.store("aof")), "team").unwrap();
    let spent = after.balance(Unit::Usd).unwrap().spent.minor_units();
    drop(team);
    eprintln!(
        "acknowledged {acknowledged}, unknown {unknown}, refused {}, spent {spent} nano-USD",
        tally.refused.load(Ordering::Relaxed)
    );
    // Every acknowledged commit survived the kill; only commits whose outcome the client
    // could not know may be there or not.
    assert!(spent >= acknowledged * cost.minor_units());
    assert!(spent <= (acknowledged + unknown) * cost.minor_units());
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn fail_open_lets_operations_through_a_dead_server_and_reports_each_one() {
    let Some(mut server) = RedisServer::start_or_skip() else {
        return;
    };
    let seen: Arc<Mutex<Vec<LetThrough>>> = Arc::default();
    let sink = seen.clone();
    let policy = FailOpen::new().on_let_through(move |op| sink.lock().unwrap().push(op.clone()));
    let options = RedisOptions::new()
        .timeout(Duration::from_millis(500))
        .fail_open(policy.clone());
    let open_store = Arc::new(server.store_with("open", options));
    let team = Budget::builder("team", Limit::hard(usd("1")))
        .build_shared(open_store.clone())
        .unwrap();
    let closed = Budget::open(Arc::new(server.store("open")), "team").unwrap();

    // While the server answers, fail-open changes nothing: the cap still says no.
    team.reserve(usd("0.40"))
        .unwrap()
        .commit(usd("0.40"))
        .unwrap();
    assert!(team.reserve(usd("0.70")).unwrap_err().is_denial());
    let live = team.reserve(usd("0.10")).unwrap();
    let live_hold = live.id();
    assert_eq!(policy.count(), 0);

    server.kill();
    // Fail-closed: a typed error that says whether the operation may have happened.
    let err = closed.reserve(usd("0.10")).unwrap_err();
    let Error::Store(store_error) = &err else {
        panic!("{err}")
    };
    assert_ne!(store_error.kind(), StoreErrorKind::Permanent);

    // Fail-open: a reserve above what is left is let through (no server to ask), its commit
    // and the commit of a hold the server granted before are let through too.
    let guard = team.reserve(usd("0.70")).unwrap();
    assert!(FailOpen::is_open_hold(guard.id()));
    guard.commit(usd("0.65")).unwrap();
    live.commit(usd("0.10")).unwrap();
    // Reads and other operations still fail closed.
    assert!(matches!(team.balance(Unit::Usd), Err(Error::Store(_))));
    assert!(matches!(team.credit(usd("1")), Err(Error::Store(_))));

    assert_eq!(policy.count(), 3);
    let seen = seen.lock().unwrap();
    let summary: Vec<_> = seen
        .iter()
        .map(|op| (op.op, op.amount.and_then(|cost| cost.get(Unit::Usd))))
        .collect();
    assert_eq!(
        summary,
        [
            (OpKind::Reserve, Some(usd("0.70"))),
            (OpKind::Commit, Some(usd("0.65"))),
            (OpKind::Commit, Some(usd("0.10"))),
        ]
    );
    assert!(
        seen[0].failure.is_some(),
        "the reserve reached for the server"
    );
    assert!(
        seen[1].failure.is_none(),
        "the open hold's commit never did"
    );
    assert_eq!(
        seen[2].hold, live_hold,
        "a real hold, its spend not recorded by the server"
    );
    drop(seen);

    // The direct Store API goes the same way.
    let direct = open_store
        .reserve(team.id(), &Cost::from(usd("5")))
        .unwrap();
    assert!(FailOpen::is_open_hold(direct.hold));
    assert!(open_store.release(direct.hold).unwrap());
    assert_eq!(policy.count(), 5);
}

#[test]
fn the_first_call_after_a_server_restart_reconnects_and_succeeds() {
    if !redis_support::available() {
        return;
    }
    let port = free_port();
    let dir = std::env::temp_dir().join(format!(
        "budget-guard-restart-{}-{port}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let mut server = RedisServer::start_durable(port, &dir);
    let team = Budget::builder("team", Limit::hard(usd("10")))
        .build_in(RedisStore::connect(&server.url(), "restart").unwrap())
        .unwrap();
    // Leaves a pooled connection to the first server process.
    team.reserve(usd("1")).unwrap().commit(usd("1")).unwrap();

    server.kill();
    server = RedisServer::start_durable(port, &dir);
    // Idle long enough for the pool to check the connection before it sends on it.
    std::thread::sleep(Duration::from_millis(300));

    let guard = team.reserve(usd("2")).unwrap();
    guard.commit(usd("2")).unwrap();
    let (spent, held) = spent_and_held(&team);
    assert_eq!((spent, held), (usd("3"), usd("0")));
    drop(team);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
