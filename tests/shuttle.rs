//! shuttle stays out of the dependency graph of crates that depend on budget-guard (hardening
//! issue 12 item 11).
//!
//! The randomized-schedule tests themselves are unit tests of the library
//! (`src/store/memory/shuttle_tests.rs`, run by `scripts/shuttle.sh`). They need shuttle only in
//! the library's own test build, so shuttle must be a dev-dependency: Cargo resolves a
//! dependency's dev-dependencies never, so they never reach a dependent's `Cargo.lock`, while a
//! `[target.'cfg(shuttle)'.dependencies]` entry (even one never built) put shuttle and its
//! dependencies into every dependent's lockfile.

use std::process::Command;

#[test]
fn every_shuttle_dependency_is_a_dev_dependency() {
    let output = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .arg("--manifest-path")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .output()
        .expect("run cargo metadata");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let package = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|package| package["name"] == "budget-guard")
        .expect("the budget-guard package");
    let dependencies = package["dependencies"].as_array().unwrap();
    let shuttle_only: Vec<_> = dependencies
        .iter()
        .filter(|dependency| {
            dependency["name"] == "shuttle"
                || dependency["target"]
                    .as_str()
                    .is_some_and(|target| target.contains("shuttle"))
        })
        .collect();
    assert!(!shuttle_only.is_empty(), "scripts/shuttle.sh needs shuttle");
    for dependency in shuttle_only {
        assert_eq!(
            dependency["kind"], "dev",
            "{} would reach the Cargo.lock of every crate that depends on budget-guard",
            dependency["name"]
        );
    }
}
