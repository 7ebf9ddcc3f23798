//! One $5.00 cap in Redis, spent at $0.10 a call by 4 processes × 8 threads, each thread with
//! its own connection: exactly 50 calls succeed, in each of 20 runs. The processes are this
//! test binary itself, started again with `BG_REDIS_WORKER` set.

mod redis_support;

use std::process::Command;
use std::sync::Arc;

use budget_guard::{Amount, Budget, Error, Limit, Limits, RedisStore, Unit};
use redis_support::RedisServer;

const PROCESSES: usize = 4;
const THREADS: usize = 8;
const RUNS: usize = 20;
const WORKER_ENV: &str = "BG_REDIS_WORKER";

/// One worker process: `THREADS` threads spend until the cap says no; prints how many calls
/// got through.
fn worker(spec: &str) {
    let (url, tree) = spec.split_once(' ').expect("url and tree");
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (url, tree) = (url.to_owned(), tree.to_owned());
            std::thread::spawn(move || {
                let store = RedisStore::connect(&url, &tree).unwrap();
                let agent = Budget::open(Arc::new(store), "team/agent").unwrap();
                let mut calls = 0u32;
                loop {
                    match agent.reserve(Amount::usd("0.10").unwrap()) {
                        Ok(guard) => {
                            guard.commit(Amount::usd("0.10").unwrap()).unwrap();
                            calls += 1;
                        }
                        Err(Error::BudgetExceeded(_)) => return calls,
                        Err(other) => panic!("unexpected error: {other}"),
                    }
                }
            })
        })
        .collect();
    let calls: u32 = threads
        .into_iter()
        .map(|thread| thread.join().unwrap())
        .sum();
    println!("\ncalls={calls}");
}

#[test]
fn four_processes_of_eight_threads_spend_a_five_dollar_cap_exactly() {
    if let Ok(spec) = std::env::var(WORKER_ENV) {
        worker(&spec);
        return;
    }
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    let exe = std::env::current_exe().unwrap();
    for run in 0..RUNS {
        let tree = format!("run-{run}");
        let team = Budget::builder("team", Limit::hard(Amount::usd("5.00").unwrap()))
            .child("agent", Limits::none())
            .build_in(server.store(&tree))
            .unwrap();
        let children: Vec<_> = (0..PROCESSES)
            .map(|_| {
                Command::new(&exe)
                    .args([
                        "--exact",
                        "four_processes_of_eight_threads_spend_a_five_dollar_cap_exactly",
                        "--nocapture",
                        "--test-threads=1",
                    ])
                    .env(WORKER_ENV, format!("{} {tree}", server.url()))
                    .output_async()
            })
            .collect();
        let mut total = 0;
        for child in children {
            let output = child.wait_with_output().unwrap();
            assert!(output.status.success(), "worker failed: {output:?}");
            let stdout = String::from_utf8_lossy(&output.stdout);
            let line = stdout
                .lines()
                .find_map(|line| line.split_once("calls=").map(|(_, count)| count))
                .expect("the worker prints its count");
            total += line.trim().parse::<u32>().unwrap();
        }
        assert_eq!(
            total, 50,
            "run {run}: a $5.00 cap lets exactly 50 $0.10 calls through"
        );
        let balance = team.balance(Unit::Usd).unwrap();
        assert_eq!(balance.spent, Amount::usd("5.00").unwrap());
        assert_eq!(balance.reserved, Amount::zero(Unit::Usd));
    }
}

/// `Command::spawn` with captured output, so the four workers run at the same time.
trait SpawnCaptured {
    fn output_async(&mut self) -> std::process::Child;
}

impl SpawnCaptured for Command {
    fn output_async(&mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }
}
