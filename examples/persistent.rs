//! Budgets that survive restarts: run this twice and watch the spend accumulate.
//!
//! Run with `cargo run --example persistent` (the file goes to the system temp directory) or
//! `cargo run --example persistent -- my-budgets.bg`. Inspect the file with
//! `cargo run --example inspect -- <file>`.

use std::path::PathBuf;
use std::sync::Arc;

use budget_guard::{Amount, Budget, Error, FileStore, Limit, Store, Unit};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let chosen = std::env::args_os().nth(1).map(PathBuf::from);
    let path = chosen
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("budget-guard-persistent.bg"));

    // Every acknowledged commit is on disk (fdatasync) before `commit` returns.
    let store: Arc<dyn Store> = Arc::new(match FileStore::open(&path) {
        Ok(store) => store,
        // The demo's own file in the temp directory, left by a pre-release build whose format
        // this one no longer reads: set it aside and start over. A file you named is yours,
        // and is never moved.
        Err(Error::ObsoleteVersion { .. }) if chosen.is_none() => {
            let aside = path.with_extension("bg.obsolete");
            std::fs::rename(&path, &aside)?;
            println!(
                "an older build's demo file was moved to {}",
                aside.display()
            );
            FileStore::open(&path)?
        }
        Err(other) => return Err(other.into()),
    });
    let org = match Budget::open(store.clone(), "acme") {
        Ok(org) => org, // a later run: the tree and its spend came back from the file
        Err(_) => Budget::builder("acme", Limit::hard(Amount::usd("10")?))
            .child("support", Limit::hard(Amount::usd("4")?))
            .child("support/agent-7", Limit::hard(Amount::usd("1")?))
            .build_shared(store)?,
    };
    let agent = org.at("support/agent-7")?;

    match agent.reserve(Amount::usd("0.10")?) {
        Ok(guard) => {
            let cost = Amount::usd("0.075")?; // what the model call really cost
            guard.commit(cost)?;
            println!("committed {cost} on {}", agent.path());
        }
        Err(denied) if denied.is_denial() => println!("denied: {denied}"),
        Err(other) => return Err(other.into()),
    }

    let balance = agent.balance(Unit::Usd)?;
    println!(
        "{}: {} spent across all runs, {} remaining (file {})",
        agent.path(),
        balance.spent,
        balance.remaining.expect("agent-7 has a limit"),
        path.display()
    );
    Ok(())
}
