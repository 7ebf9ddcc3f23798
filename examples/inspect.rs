//! Print the budget tree stored in a file, with balances, without locking or changing it (the
//! file may be open in a running process).
//!
//! Run with `cargo run --example inspect -- FILE`. Without an argument it writes a small demo
//! file to the temp directory first and inspects that.

use std::path::PathBuf;
use std::sync::Arc;

use budget_guard::{Amount, Budget, FileStore, Limit, Snapshot};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (path, demo) = match std::env::args_os().nth(1) {
        Some(path) => (PathBuf::from(path), false),
        None => (demo_file()?, true),
    };
    let snapshot = FileStore::inspect(&path)?;
    println!("{}", path.display());
    for root in snapshot.nodes.iter().filter(|n| !n.path.contains('/')) {
        print_node(&snapshot, &root.path);
    }
    if demo {
        std::fs::remove_file(&path)?;
        std::fs::remove_file(path.with_extension("bg.lock"))?;
    }
    Ok(())
}

/// Prints `path` and its subtree, depth first.
fn print_node(snapshot: &Snapshot, path: &str) {
    if let Some(node) = snapshot.nodes.iter().find(|n| &*n.path == path) {
        let depth = node.path.matches('/').count();
        let name = node.path.rsplit('/').next().unwrap_or(&node.path);
        let holds = snapshot
            .holds
            .iter()
            .filter(|h| h.node == node.path)
            .count();
        println!(
            "{:indent$}{name}  ({holds} live holds)",
            "",
            indent = 2 * depth
        );
        for account in &node.accounts {
            let limit = account.limit.map_or_else(
                || "no limit".to_owned(),
                |l| format!("{:?} limit {}", l.kind(), l.amount()),
            );
            println!(
                "{:indent$}  {}: {limit}, spent {}, reserved {}, debt {}",
                "",
                account.unit,
                account.spent,
                account.reserved,
                account.debt,
                indent = 2 * depth
            );
        }
    }
    let children = snapshot.nodes.iter().filter(|n| {
        n.path
            .rsplit_once('/')
            .is_some_and(|(parent, _)| parent == path)
    });
    for child in children {
        print_node(snapshot, &child.path);
    }
}

/// A small tree with spend and one live hold, in a fresh file.
fn demo_file() -> Result<PathBuf, Box<dyn std::error::Error>> {
    let path = std::env::temp_dir().join(format!("budget-guard-inspect-{}.bg", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let store = Arc::new(FileStore::open(&path)?);
    let org = Budget::builder("acme", Limit::hard(Amount::usd("100")?))
        .child("support", Limit::hard(Amount::usd("40")?))
        .child("support/agent-7", Limit::hard(Amount::usd("5")?))
        .child("research", Limit::soft(Amount::tokens(1_000_000)))
        .build_shared(store)?;
    org.at("support/agent-7")?
        .reserve(Amount::usd("0.40")?)?
        .commit(Amount::usd("0.31")?)?;
    org.at("research")?
        .reserve(Amount::tokens(20_000))?
        .commit(Amount::tokens(12_345))?;
    let live = org.at("support")?.reserve_owned(Amount::usd("1.50")?)?;
    std::mem::forget(live); // a hold still open when the process ends: it stays in the file
    Ok(path)
}
