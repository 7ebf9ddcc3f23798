//! Several workers, each with its own Redis connection (as separate processes or machines
//! would have), share one team budget kept in Redis. Each worker spends $0.10 per call until
//! the team's $2.00 cap says no; exactly 20 calls get through, whoever makes them.
//!
//! ```text
//! redis-server --port 6379 --save '' --appendonly no &
//! REDIS_URL=redis://127.0.0.1:6379 cargo run --example redis_fleet --features redis
//! ```
//!
//! Without `REDIS_URL` the example starts its own `redis-server` on a free loopback port.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use budget_guard::{Amount, Budget, Error, Limit, Limits, RedisStore, Unit};

const WORKERS: usize = 4;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (url, server) = match std::env::var("REDIS_URL") {
        Ok(url) => (url, None),
        Err(_) => start_server()?,
    };
    let tree = format!("fleet-{}", std::process::id());
    Budget::builder("team", Limit::hard(Amount::usd("2.00")?))
        .child("workers", Limits::none())
        .build_in(RedisStore::connect(&url, &tree)?)?;

    let workers: Vec<_> = (0..WORKERS)
        .map(|worker| {
            let (url, tree) = (url.clone(), tree.clone());
            std::thread::spawn(move || -> budget_guard::Result<u32> {
                let store: Arc<dyn budget_guard::Store> =
                    Arc::new(RedisStore::connect(&url, &tree)?);
                let budget = Budget::open(store.clone(), "team/workers")?;
                let team = Budget::open(store, "team")?;
                let mut calls = 0;
                loop {
                    match budget.reserve(Amount::usd("0.10")?) {
                        Ok(guard) => {
                            // ... the metered call would run here ...
                            guard.commit(Amount::usd("0.10")?)?;
                            calls += 1;
                            let left = team
                                .balance(Unit::Usd)?
                                .remaining
                                .unwrap_or(Amount::zero(Unit::Usd));
                            println!("worker {worker}: call {calls} done, team has {left} left");
                        }
                        Err(Error::BudgetExceeded(exceeded)) => {
                            println!(
                                "worker {worker}: stopped: {}",
                                Error::BudgetExceeded(exceeded)
                            );
                            return Ok(calls);
                        }
                        Err(other) => return Err(other),
                    }
                }
            })
        })
        .collect();
    let mut total = 0;
    for worker in workers {
        total += worker.join().expect("worker panicked")?;
    }
    let team = Budget::open(Arc::new(RedisStore::connect(&url, &tree)?), "team")?;
    let balance = team.balance(Unit::Usd)?;
    println!(
        "{total} calls, spent {} of {}",
        balance.spent,
        Amount::usd("2.00")?
    );
    assert_eq!(total, 20);
    if let Some(mut child) = server {
        child.kill()?;
        child.wait()?;
    }
    Ok(())
}

/// Starts `redis-server` on a free loopback port and waits until it accepts connections.
fn start_server() -> Result<(String, Option<Child>), Box<dyn std::error::Error>> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let dir = std::env::temp_dir();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .spawn()?;
    let url = format!("redis://127.0.0.1:{port}");
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok((url, Some(child)));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Err("redis-server did not start".into())
}
