//! Leased local budgets over a `RedisStore`: 4 processes (this test binary, started again with
//! `BG_REDIS_LEASE_WORKER` set) each lease $0.50 slices of one $5.00 node in Redis and spend
//! $0.10 per call from two threads. The total never exceeds $5.00, and once every process has
//! exited, cleanly or by kill -9 plus expiry, the node holds nothing.

mod redis_support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use budget_guard::{Amount, Budget, LeaseOptions, LeasedStore, Limit, RedisStore, Store, Unit};
use redis_support::RedisServer;

const PROCESSES: usize = 4;
const WORKER_ENV: &str = "BG_REDIS_LEASE_WORKER";

fn usd(text: &str) -> Amount {
    Amount::usd(text).unwrap()
}

/// `calls` times $0.10.
fn dimes(calls: u32) -> Amount {
    Amount::try_from_minor(i64::from(calls) * usd("0.10").minor_units(), Unit::Usd).unwrap()
}

/// One worker process: `mode` is `clean` (spend until denied, then exit, returning the lease on
/// drop) or `kill` (spend three calls, say so, and wait to be killed).
fn worker(spec: &str) {
    let mut parts = spec.split(' ');
    let (url, tree, mode) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let remote: Arc<dyn Store> = Arc::new(RedisStore::connect(url, tree).unwrap());
    let options = LeaseOptions::new(usd("0.50")).ttl(Duration::from_secs(2));
    let lease = match LeasedStore::new(remote, "team", options) {
        Ok(lease) => Arc::new(lease),
        // A late starter finds the cap spent or held by the others' slices.
        Err(error) if error.is_denial() && mode == "clean" => {
            println!("calls=0");
            return;
        }
        Err(other) => panic!("lease: {other}"),
    };
    let local = Budget::open(lease.clone(), lease.root_path()).unwrap();
    if mode == "kill" {
        for _ in 0..3 {
            local
                .reserve(usd("0.10"))
                .unwrap()
                .commit(usd("0.10"))
                .unwrap();
        }
        println!("calls=3");
        std::thread::sleep(Duration::from_secs(600));
        return;
    }
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let local = local.clone();
            std::thread::spawn(move || {
                let mut calls = 0u32;
                loop {
                    match local.reserve(usd("0.10")) {
                        Ok(guard) => {
                            guard.commit(usd("0.10")).unwrap();
                            calls += 1;
                        }
                        Err(error) if error.is_denial() => return calls,
                        Err(other) => panic!("unexpected error: {other}"),
                    }
                }
            })
        })
        .collect();
    let calls: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let stats = lease.close().unwrap();
    assert_eq!(stats.reported, dimes(calls));
    println!("calls={calls}");
}

fn spawn(exe: &std::path::Path, test: &str, spec: String) -> Child {
    Command::new(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(WORKER_ENV, spec)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The count a worker printed on its `calls=` line.
fn calls_in(lines: &mut impl Iterator<Item = std::io::Result<String>>) -> u32 {
    lines
        .find_map(|line| {
            line.unwrap()
                .split_once("calls=")
                .map(|(_, count)| count.trim().parse::<u32>().unwrap())
        })
        .expect("the worker prints its count")
}

fn team(server: &RedisServer, tree: &str) -> Budget {
    Budget::builder("team", Limit::hard(usd("5.00")))
        .build_in(server.store(tree))
        .unwrap()
}

#[test]
fn four_leasing_processes_never_pass_the_cap_and_return_everything() {
    if let Ok(spec) = std::env::var(WORKER_ENV) {
        worker(&spec);
        return;
    }
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    let team = team(&server, "clean");
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            spawn(
                &exe,
                "four_leasing_processes_never_pass_the_cap_and_return_everything",
                format!("{} clean clean", server.url()),
            )
        })
        .collect();
    let mut total = 0;
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "worker failed: {output:?}");
        total += calls_in(&mut output.stdout.lines());
    }
    let balance = team.balance(Unit::Usd).unwrap();
    eprintln!("{total} calls of $0.10 through leases on a $5.00 cap");
    assert!(total <= 50, "{total} calls: the leases passed the cap");
    // Every call was reported on close, and every slice returned.
    assert_eq!(balance.spent, dimes(total));
    assert_eq!(balance.reserved, Amount::zero(Unit::Usd));
}

#[test]
fn leases_of_killed_processes_come_back_by_expiry() {
    if std::env::var(WORKER_ENV).is_ok() {
        return; // only the first test's workers run here
    }
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    let team = team(&server, "killed");
    let exe = std::env::current_exe().unwrap();
    let mut children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            spawn(
                &exe,
                "four_leasing_processes_never_pass_the_cap_and_return_everything",
                format!("{} killed kill", server.url()),
            )
        })
        .collect();
    let mut total = 0;
    // Keep the pipes open until the kill, so no worker fails writing to them.
    let mut pipes = Vec::new();
    for child in &mut children {
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        total += calls_in(&mut lines);
        pipes.push(lines);
    }
    assert_eq!(total, 12);
    // Each process holds one $0.50 slice (its renewer keeps it alive); none reported anything.
    assert_eq!(team.balance(Unit::Usd).unwrap().reserved, usd("2.00"));
    for child in &mut children {
        child.kill().unwrap(); // SIGKILL: no close, no drop
        child.wait().unwrap();
    }
    // The slices come back once the server's clock passes their deadlines (2 s after the
    // last extension); the sweeper reclaims them.
    let mut reclaimed = 0;
    while reclaimed < PROCESSES {
        std::thread::sleep(Duration::from_millis(100));
        reclaimed += team.sweep().unwrap().len();
    }
    let balance = team.balance(Unit::Usd).unwrap();
    assert_eq!(balance.reserved, Amount::zero(Unit::Usd));
    // The bound on what a crash loses: the $1.20 spent was never reported (at most the
    // outstanding slices, $2.00), so the node shows nothing spent.
    assert_eq!(balance.spent, Amount::zero(Unit::Usd));
}
