//! Several workers, each with its own Redis connection (as separate processes or machines
//! would have), share one team budget kept in Redis. Each worker spends $0.10 per call until
//! the team's $2.00 cap says no; exactly 20 calls get through, whoever makes them. One more
//! worker runs on a *leased* local budget: it leases $0.30 slices of the team budget and
//! serves its calls in process, calling Redis only to lease, renew and return slices.
//!
//! ```text
//! redis-server --port 6379 --save '' --appendonly no &
//! REDIS_URL=redis://127.0.0.1:6379 cargo run --example redis_fleet --features redis
//! ```
//!
//! Without `REDIS_URL` the example starts its own `redis-server` on a free loopback port (with
//! the same helper as the tests, `tests/redis_support`).

// One copy of the server-spawn code for the tests, the benchmark and this example.
#[path = "../tests/redis_support/mod.rs"]
mod redis_support;

use std::sync::Arc;

use budget_guard::{
    Amount, Budget, Error, LeaseOptions, LeasedStore, Limit, Limits, RedisStore, Store, Unit,
};

const WORKERS: usize = 4;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (url, server) = redis_support::url_from_env_or_start();
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
    let leased = {
        let (url, tree) = (url.clone(), tree.clone());
        std::thread::spawn(move || -> budget_guard::Result<u32> {
            let remote: Arc<dyn Store> = Arc::new(RedisStore::connect(&url, &tree)?);
            let options = LeaseOptions::new(Amount::usd("0.30")?);
            let lease = match LeasedStore::new(remote, "team/workers", options) {
                Ok(lease) => Arc::new(lease),
                Err(error) if error.is_denial() => return Ok(0), // the others spent it all
                Err(other) => return Err(other),
            };
            let local = Budget::open(lease.clone(), lease.root_path())?;
            let mut calls = 0;
            loop {
                match local.reserve(Amount::usd("0.10")?) {
                    Ok(guard) => {
                        guard.commit(Amount::usd("0.10")?)?; // in process: no round trip
                        calls += 1;
                    }
                    Err(error) if error.is_denial() => break,
                    Err(other) => return Err(other),
                }
            }
            let stats = lease.close()?; // spend reported, unused rest returned
            println!(
                "leased worker: {calls} calls, {} slices leased, {} reported to the team",
                stats.opened, stats.reported
            );
            Ok(calls)
        })
    };
    let mut total = 0;
    for worker in workers {
        total += worker.join().expect("worker panicked")?;
    }
    total += leased.join().expect("leased worker panicked")?;
    let team = Budget::open(Arc::new(RedisStore::connect(&url, &tree)?), "team")?;
    let balance = team.balance(Unit::Usd)?;
    println!(
        "{total} calls, spent {} of {}",
        balance.spent,
        Amount::usd("2.00")?
    );
    assert_eq!(total, 20);
    assert_eq!(balance.reserved, Amount::zero(Unit::Usd));
    drop(server); // stops the server this example started
    Ok(())
}
