//! A fixed Redis workload for measuring what the server-side scripts cost: 2,000 reserves of
//! $0.05 on `team/agent`, then their 2,000 commits of $0.031, with a hard USD limit on each node
//! and threshold levels (50/80/95 %) on `team`. For each phase the example reads the server's
//! `INFO commandstats` before and after and prints what one script cost: `EVALSHA` µs per call
//! and each inner command's count per call.
//!
//! ```text
//! redis-server --port 6390 --save '' --appendonly no --daemonize yes
//! REDIS_URL=redis://127.0.0.1:6390 cargo run --example redis_script_cost --features redis
//! ```
//!
//! Without `REDIS_URL` the example starts its own `redis-server` on a free loopback port.

#[path = "../tests/redis_support/mod.rs"]
mod redis_support;

use std::collections::BTreeMap;
use std::sync::Arc;

use budget_guard::{Amount, Budget, Limit, RedisStore};

const PAIRS: u64 = 2_000;

/// Prints what one phase of `PAIRS` scripts cost the server: the `evalsha` time per call and
/// each inner command's count per script.
fn report(
    phase: &str,
    before: &BTreeMap<String, (u64, u64)>,
    after: &BTreeMap<String, (u64, u64)>,
) {
    let mut inner = 0;
    let mut lines = Vec::new();
    for (name, &(calls, usec)) in after {
        let (calls_before, usec_before) = before.get(name).copied().unwrap_or((0, 0));
        let (calls, usec) = (calls - calls_before, usec - usec_before);
        if calls == 0 || name == "info" {
            continue;
        }
        if name == "evalsha" {
            lines.insert(
                0,
                format!(
                    "{phase}: evalsha {calls} calls, {:.1} usec per call (inner commands included)",
                    usec as f64 / calls as f64
                ),
            );
        } else {
            inner += calls;
            lines.push(format!(
                "  {name}: {:.2} per {phase}, {:.2} usec each",
                calls as f64 / PAIRS as f64,
                usec as f64 / calls as f64
            ));
        }
    }
    for line in lines {
        println!("{line}");
    }
    println!(
        "  inner commands per {phase}: {:.2}",
        inner as f64 / PAIRS as f64
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (url, server) = redis_support::url_from_env_or_start();
    let tree = format!("cost-{}", std::process::id());
    let top = Limit::hard(Amount::usd("1000000")?).with_thresholds([50, 80, 95]);
    Budget::builder("team", top)
        .child("agent", Limit::hard(Amount::usd("500000")?))
        .build_in(RedisStore::connect(&url, &tree)?)?;
    let agent = Budget::open(Arc::new(RedisStore::connect(&url, &tree)?), "team/agent")?;
    let (hold, cost) = (Amount::usd("0.05")?, Amount::usd("0.031")?);
    // Warm up (script load, connection) outside the measured window.
    agent.reserve(hold)?.commit(cost)?;
    let mut connection = redis::Client::open(url.as_str())?.get_connection()?;
    // Reserves first (the guards kept), then their commits: each phase's figures are one
    // script's.
    let before = redis_support::commandstats(&mut connection);
    let mut guards = Vec::with_capacity(PAIRS as usize);
    for _ in 0..PAIRS {
        guards.push(agent.reserve(hold)?);
    }
    let reserved = redis_support::commandstats(&mut connection);
    for guard in guards {
        guard.commit(cost)?;
    }
    let committed = redis_support::commandstats(&mut connection);
    report("reserve", &before, &reserved);
    report("commit", &reserved, &committed);
    drop(server);
    Ok(())
}
