//! Budget files written by earlier builds still open with the same books (hardening issue 12
//! item 10).
//!
//! `tests/fixtures/` holds one budget file per on-disk format, each written by [`generate`]
//! (the same operations every time, on a [`ManualClock`]): a tree of six nodes with two units, a
//! daily period, a soft limit, committed spend, a debt, a credit, a live keyed hold and keyed
//! holds that ended, half of it in the snapshot record and half in log records after it. The
//! tests open a **copy** of each file (the committed fixture is never written) and check every
//! balance and every remembered key exactly.
//!
//! # Regenerating
//!
//! When the format changes, **keep the old fixtures and their expectations** and add one for the
//! new format: add a [`Fixture`] to [`FIXTURES`], then write its file with
//!
//! ```text
//! BG_FIXTURE=tests/fixtures/<new name>.bg cargo test --all-features --test format_fixtures -- --ignored generate_fixture
//! ```
//!
//! [`the_newest_fixture_is_what_this_build_writes`] fails until then: it is the reminder that the
//! bytes this build writes changed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use budget_guard::expiry::ReserveOptions;
use budget_guard::idempotency::{HoldEnd, IdempotencyKey, OpOptions};
use budget_guard::period::Period;
use budget_guard::{
    Amount, Budget, Cost, Error, FileStore, Limit, Limits, ManualClock, Store, Timestamp, Unit,
};

/// 2026-01-15T12:00:00Z: the generator's clock, and the clock the copies are opened with.
const START: Timestamp = Timestamp::from_unix_nanos(1_768_478_400_000_000_000);
/// 2026-01-16T00:00:00Z: the end of `org/team`'s daily period.
const NEXT_MIDNIGHT: Timestamp = Timestamp::from_unix_nanos(1_768_521_600_000_000_000);
/// The TTL of the hold that stays open.
const OPEN_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// One committed budget file and what differs between formats.
struct Fixture {
    /// File name under `tests/fixtures/`.
    file: &'static str,
    /// How a retry of the keyed reserve committed *before* the file's snapshot record learns that
    /// its hold ended: files written before the hold's end was recorded (outcome kind 5) cannot
    /// say.
    committed_before_snapshot: HoldEnd,
}

/// Oldest first; the last one is what this build writes.
const FIXTURES: &[Fixture] = &[
    Fixture {
        file: "budget-v1-before-hold-ends.bg",
        committed_before_snapshot: HoldEnd::Unrecorded,
    },
    Fixture {
        file: "budget-v1.bg",
        committed_before_snapshot: HoldEnd::Committed,
    },
];

fn usd(text: &str) -> Amount {
    Amount::usd(text).unwrap()
}

fn key(text: &str) -> IdempotencyKey {
    IdempotencyKey::new(text).unwrap()
}

fn fixture_path(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(file)
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("format_fixtures");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

fn open(path: &Path) -> Arc<FileStore> {
    Arc::new(
        FileStore::options()
            .clock(ManualClock::new(START))
            .open(path)
            .unwrap(),
    )
}

/// The keyed reserve that stays open: on `org/team/agent/task`, $1.25 and 500 tokens.
fn open_hold_request() -> (Cost, ReserveOptions) {
    let cost = Cost::from(usd("1.25")).with(Amount::tokens(500)).unwrap();
    let options = ReserveOptions::new()
        .idempotency_key(key("fixture/open"))
        .ttl(OPEN_TTL);
    (cost, options)
}

/// Writes the fixture's operations into a new budget file at `path`.
fn generate(path: &Path) {
    let store = open(path);
    let org = Budget::builder(
        "org",
        [
            Limit::hard(usd("100")),
            Limit::hard(Amount::tokens(1_000_000)),
        ],
    )
    .child("team", Limit::hard(usd("40")).per(Period::daily()))
    .child("team/agent", Limit::hard(usd("10")))
    .child("team/agent/task", Limits::none())
    .child("team/batch", Limit::hard(usd("2")))
    .child("ops", Limit::soft(usd("5")))
    .build_shared(store.clone())
    .unwrap();
    let agent = org.at("team/agent").unwrap();
    // A keyed reserve, committed below its estimate.
    let committed = ReserveOptions::new().idempotency_key(key("fixture/committed"));
    agent
        .reserve_with(usd("3"), &committed)
        .unwrap()
        .commit(usd("2.50"))
        .unwrap();
    // An overage rejected: $1 spent on batch, $0.20 of debt, $1.20 spent above it.
    let batch = org.at("team/batch").unwrap();
    assert!(
        batch
            .reserve(usd("1"))
            .unwrap()
            .commit(usd("1.20"))
            .is_err()
    );
    // Past a soft limit.
    let ops = org.at("ops").unwrap();
    ops.reserve(usd("6")).unwrap().commit(usd("6")).unwrap();
    org.credit(usd("10")).unwrap();
    // Everything so far goes into the snapshot record; the rest is logged after it.
    store.compact().unwrap();
    let task = org.at("team/agent/task").unwrap();
    let (cost, options) = open_hold_request();
    let open = store.reserve_with(task.id(), &cost, &options).unwrap();
    assert!(!open.replayed);
    let released = ReserveOptions::new().idempotency_key(key("fixture/released"));
    task.reserve_with(usd("0.75"), &released)
        .unwrap()
        .release()
        .unwrap();
    let commit = OpOptions::new().idempotency_key(key("fixture/commit"));
    agent
        .reserve(usd("0.40"))
        .unwrap()
        .commit_with(usd("0.40"), &commit)
        .unwrap();
}

/// Writes the fixture of this build's format to `$BG_FIXTURE` (see the module docs).
#[test]
#[ignore = "writes a fixture file; run by hand when the format changes"]
fn generate_fixture() {
    let target = std::env::var_os("BG_FIXTURE").expect("BG_FIXTURE=<path of the new fixture>");
    let target = PathBuf::from(target);
    assert!(
        !target.exists(),
        "{} exists: fixtures are never rewritten, add a new one",
        target.display()
    );
    let path = scratch("generated.bg");
    generate(&path);
    std::fs::copy(&path, &target).unwrap();
}

/// (limit, spent, reserved, debt) of `path` in `unit`.
fn figures(
    store: &Arc<FileStore>,
    path: &str,
    unit: Unit,
) -> (Option<Amount>, Amount, Amount, Amount) {
    let balance = store.balance(store.resolve(path).unwrap(), unit).unwrap();
    (
        balance.limit.map(|limit| limit.amount()),
        balance.spent,
        balance.reserved,
        balance.debt,
    )
}

fn retry(
    store: &Arc<FileStore>,
    node: &str,
    cost: Cost,
    options: &ReserveOptions,
) -> Result<budget_guard::Reservation, Error> {
    store.reserve_with(store.resolve(node).unwrap(), &cost, options)
}

fn ended(result: Result<budget_guard::Reservation, Error>) -> HoldEnd {
    match result {
        Err(Error::HoldEnded { how, .. }) => how,
        other => panic!("expected HoldEnded, got {other:?}"),
    }
}

/// Opens a copy of `fixture` and checks every figure the generator left.
fn check(fixture: &Fixture) {
    let committed = fixture_path(fixture.file);
    let bytes =
        std::fs::read(&committed).unwrap_or_else(|e| panic!("{}: {e}", committed.display()));
    let copy = scratch(fixture.file);
    std::fs::write(&copy, &bytes).unwrap();
    let store = open(&copy);
    let zero = Amount::zero(Unit::Usd);
    let tokens = |n| Amount::tokens(n);
    let expected = [
        ("org", Some(usd("110")), usd("10.10"), usd("1.25"), zero),
        ("org/team", Some(usd("40")), usd("4.10"), usd("1.25"), zero),
        (
            "org/team/agent",
            Some(usd("10")),
            usd("2.90"),
            usd("1.25"),
            zero,
        ),
        ("org/team/agent/task", None, zero, usd("1.25"), zero),
        (
            "org/team/batch",
            Some(usd("2")),
            usd("1"),
            zero,
            usd("0.20"),
        ),
        ("org/ops", Some(usd("5")), usd("6"), zero, zero),
    ];
    for (path, limit, spent, reserved, debt) in expected {
        assert_eq!(
            figures(&store, path, Unit::Usd),
            (limit, spent, reserved, debt),
            "{}: {path} in USD",
            fixture.file
        );
    }
    assert_eq!(
        figures(&store, "org", Unit::Tokens),
        (Some(tokens(1_000_000)), tokens(0), tokens(500), tokens(0)),
        "{}: org in tokens",
        fixture.file
    );
    let team = store
        .balance(store.resolve("org/team").unwrap(), Unit::Usd)
        .unwrap();
    assert_eq!(
        team.resets_at,
        Some(NEXT_MIDNIGHT),
        "{}: the daily period",
        fixture.file
    );
    assert!(matches!(
        store.reserve(
            store.resolve("org/team/batch").unwrap(),
            &Cost::from(usd("0.01"))
        ),
        Err(Error::InDebt { .. })
    ));
    // One live hold, answered to its key's retry; the ended ones say how they ended.
    let snapshot = store.snapshot().unwrap();
    assert_eq!(snapshot.holds.len(), 1, "{}", fixture.file);
    let (cost, options) = open_hold_request();
    let replay = retry(&store, "org/team/agent/task", cost, &options).unwrap();
    assert!(replay.replayed);
    assert_eq!(replay.hold, snapshot.holds[0].id);
    assert_eq!(replay.expires_at, START.saturating_add(OPEN_TTL));
    let committed_key = ReserveOptions::new().idempotency_key(key("fixture/committed"));
    assert_eq!(
        ended(retry(
            &store,
            "org/team/agent",
            Cost::from(usd("3")),
            &committed_key
        )),
        fixture.committed_before_snapshot,
        "{}",
        fixture.file
    );
    let released_key = ReserveOptions::new().idempotency_key(key("fixture/released"));
    assert_eq!(
        ended(retry(
            &store,
            "org/team/agent/task",
            Cost::from(usd("0.75")),
            &released_key
        )),
        HoldEnd::Released,
        "{}",
        fixture.file
    );
    assert_eq!(
        store.snapshot().unwrap(),
        snapshot,
        "{}: retries changed nothing",
        fixture.file
    );
    drop(store);
    assert_eq!(
        std::fs::read(&committed).unwrap(),
        bytes,
        "{}: the committed fixture was written",
        fixture.file
    );
}

#[test]
fn every_fixture_opens_with_its_books() {
    for fixture in FIXTURES {
        check(fixture);
    }
}

#[test]
fn the_newest_fixture_is_what_this_build_writes() {
    let newest = FIXTURES.last().unwrap();
    let path = scratch("newest.bg");
    generate(&path);
    assert!(
        std::fs::read(&path).unwrap() == std::fs::read(fixture_path(newest.file)).unwrap(),
        "this build writes other bytes than {}: keep it, add a fixture for the new format (module docs)",
        newest.file
    );
}
