//! Ratios between benchmarks of one criterion run, printed at the end of a bench (included with
//! `#[path = "support/ratios.rs"] mod ratios;`).
//!
//! Criterion prints each benchmark on its own; the figures BENCHMARKS.md and issue 16 judge are
//! ratios to a baseline of the same run. After the group finishes, this reads back the estimates
//! criterion just wrote (`<target>/criterion/<group>/<bench>/new/estimates.json`, or under
//! `$CRITERION_HOME`) and prints `bench / baseline` for the pairs a bench names, so nobody has
//! to divide by hand. A benchmark filtered out of this run (its estimates are older than the
//! run's start, or absent) is reported as not measured, never taken from an earlier run.

// Each bench uses the part it needs.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::SystemTime;

/// Where criterion writes its results: `$CRITERION_HOME`, else `criterion/` in the target
/// directory, which is three levels above the bench binary (`<target>/release/deps/<bench>`).
fn criterion_home() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return Some(PathBuf::from(home));
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return Some(PathBuf::from(target).join("criterion"));
    }
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.parent()?.join("criterion"))
}

/// The time per iteration, in nanoseconds, criterion estimated for `group/bench` in the run that
/// started at `since`: the slope of time over iterations, the figure criterion prints as `time:`
/// (the mean where a run has no slope). Criterion replaces `/` in a benchmark id by `_` in the
/// directory name.
pub(crate) fn time_ns(group: &str, bench: &str, since: SystemTime) -> Option<f64> {
    let path = criterion_home()?
        .join(group)
        .join(bench.replace('/', "_"))
        .join("new")
        .join("estimates.json");
    if std::fs::metadata(&path).ok()?.modified().ok()? < since {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let estimates: serde_json::Value = serde_json::from_str(&text).ok()?;
    estimates["slope"]["point_estimate"]
        .as_f64()
        .or_else(|| estimates["mean"]["point_estimate"].as_f64())
}

/// How a ratio reads: "× slower" (time of the bench over time of the baseline) or "× the
/// throughput" (the inverse, for rows that compare operations per second).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Ratio {
    /// `time(bench) / time(baseline)`: 2.5 means the bench takes 2.5 times as long.
    Time,
    /// `time(baseline) / time(bench)`: 0.6 means the bench does 0.6 times the operations per
    /// second of the baseline.
    Throughput,
}

/// Prints one line per `(bench, baseline, kind, target)` of `group`, for the run that started
/// at `since`.
pub(crate) fn print(group: &str, since: SystemTime, rows: &[(&str, &str, Ratio, &str)]) {
    eprintln!("\nratios in group `{group}` (criterion's `time:` estimates of this run):");
    for &(bench, baseline, kind, target) in rows {
        match (
            time_ns(group, bench, since),
            time_ns(group, baseline, since),
        ) {
            (Some(bench_ns), Some(baseline_ns)) => {
                let (ratio, reads) = match kind {
                    Ratio::Time => (bench_ns / baseline_ns, "× the time of"),
                    Ratio::Throughput => (baseline_ns / bench_ns, "× the throughput of"),
                };
                let target = if target.is_empty() {
                    String::new()
                } else {
                    format!("; target {target}")
                };
                eprintln!(
                    "  {bench}: {ratio:.2}{reads} {baseline} ({bench_ns:.1} ns vs \
                     {baseline_ns:.1} ns per iteration){target}"
                );
            }
            _ => eprintln!("  {bench} vs {baseline}: not measured in this run"),
        }
    }
}
