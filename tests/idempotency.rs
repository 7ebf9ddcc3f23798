//! Idempotency keys (issue 5 item 3): retries apply once, mismatches are refused, keys expire
//! with a manual clock and are bounded in number, bad keys are typed errors, and a FileStore
//! remembers keys across a reopen (and a compaction), with key and effect durable together.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use budget_guard::expiry::ReserveOptions;
use budget_guard::idempotency::{IdempotencyKey, KeyRetention, OpOptions};
use budget_guard::top_up::TopUp;
use budget_guard::{
    Amount, Budget, Cost, Durability, Error, Event, FileStore, Limit, ManualClock, MemoryStore,
    OveragePolicy, Store, Timestamp, Unit,
};

#[path = "support/scratch.rs"]
mod scratch;
use scratch::fresh_path;

const START: Timestamp = Timestamp::from_unix_nanos(1_700_000_000_000_000_000);

fn usd(text: &str) -> Amount {
    Amount::usd(text).unwrap()
}

fn key(text: &str) -> IdempotencyKey {
    IdempotencyKey::new(text).unwrap()
}

fn op(text: &str) -> OpOptions {
    OpOptions::new().idempotency_key(key(text))
}

fn reserve_once(text: &str) -> ReserveOptions {
    ReserveOptions::new().idempotency_key(key(text))
}

fn retention(ttl_seconds: u64, max_keys: usize) -> KeyRetention {
    KeyRetention::new(
        Duration::from_secs(ttl_seconds),
        NonZeroUsize::new(max_keys).unwrap(),
    )
    .unwrap()
}

/// (limit, spent, reserved) in USD.
fn figures(budget: &Budget) -> (Amount, Amount, Amount) {
    let balance = budget.balance(Unit::Usd).unwrap();
    (
        balance.limit.unwrap().amount(),
        balance.spent,
        balance.reserved,
    )
}

#[test]
fn every_retried_operation_changes_the_books_once() {
    let run = Budget::builder("run", Limit::hard(usd("10")))
        .build()
        .unwrap();
    let first = run.reserve_with(usd("2"), &reserve_once("r")).unwrap();
    let retry = run.reserve_with(usd("2"), &reserve_once("r")).unwrap();
    assert_eq!(retry.id(), first.id());
    assert_eq!(figures(&run), (usd("10"), usd("0"), usd("2")));

    let hold = first.id();
    let committed = first.commit_with(usd("1.5"), &op("c")).unwrap();
    let again = run
        .store()
        .commit_with(hold, &Cost::from(usd("1.5")), &op("c"))
        .unwrap();
    assert_eq!(again.returned, committed.returned);
    assert!(again.replayed);
    // The replayed guard's commit is answered too, and its drop changes nothing.
    let replayed = retry.commit_with(usd("1.5"), &op("c")).unwrap();
    assert!(replayed.replayed);
    assert_eq!(figures(&run), (usd("10"), usd("1.5"), usd("0")));

    let guard = run.reserve(usd("3")).unwrap();
    let hold = guard.id();
    guard.release_with(&op("x")).unwrap();
    assert!(run.store().release_with(hold, &op("x")).unwrap());
    assert_eq!(figures(&run), (usd("10"), usd("1.5"), usd("0")));

    run.credit_with(usd("5"), &op("f+")).unwrap();
    run.credit_with(usd("5"), &op("f+")).unwrap();
    run.debit_with(usd("2"), &op("f-")).unwrap();
    run.debit_with(usd("2"), &op("f-")).unwrap();
    assert_eq!(figures(&run), (usd("13"), usd("1.5"), usd("0")));
}

#[test]
fn a_replay_delivers_no_event_twice() {
    // The early warning fires on the reserve (levels on plain spend fire at the commit).
    let early = Limit::hard(usd("10"))
        .with_thresholds([50])
        .with_threshold_basis(budget_guard::ThresholdBasis::SpentAndHeld);
    let run = Budget::builder("run", early).build().unwrap();
    let crossings = Arc::new(Mutex::new(0));
    let seen = crossings.clone();
    run.on_event(move |event| {
        if matches!(event, Event::ThresholdCrossed(_)) {
            *seen.lock().unwrap() += 1;
        }
    });
    let first = run.reserve_with(usd("6"), &reserve_once("big")).unwrap();
    let retry = run.reserve_with(usd("6"), &reserve_once("big")).unwrap();
    assert!(
        retry.crossings().is_empty(),
        "reported with the first result"
    );
    assert_eq!(*crossings.lock().unwrap(), 1);
    drop(retry);
    first.commit(usd("6")).unwrap();
    assert_eq!(*crossings.lock().unwrap(), 1);
}

#[test]
fn mismatch_names_the_key_and_changes_nothing() {
    let run = Budget::builder("run", Limit::hard(usd("10")))
        .build()
        .unwrap();
    run.credit_with(usd("1"), &op("pay-7")).unwrap();
    let err = run.credit_with(usd("2"), &op("pay-7")).unwrap_err();
    match &err {
        Error::IdempotencyMismatch {
            key,
            first,
            requested,
        } => assert_eq!((&**key, *first, *requested), ("pay-7", "credit", "credit")),
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("\"pay-7\""), "{err}");
    let err = run.debit_with(usd("1"), &op("pay-7")).unwrap_err();
    assert!(matches!(
        err,
        Error::IdempotencyMismatch {
            first: "credit",
            requested: "debit",
            ..
        }
    ));
    assert_eq!(figures(&run), (usd("11"), usd("0"), usd("0")));
    // A guard's commit refused as a mismatch hands the guard back; its hold is untouched.
    let guard = run.reserve(usd("1")).unwrap();
    let refused = guard.commit_with(usd("1"), &op("pay-7")).unwrap_err();
    assert!(matches!(refused.error(), Error::IdempotencyMismatch { .. }));
    assert_eq!(figures(&run), (usd("11"), usd("0"), usd("1")));
    let guard = refused.into_guard().expect("the hold is still live");
    guard.commit(usd("1")).unwrap();
    assert_eq!(figures(&run), (usd("11"), usd("1"), usd("0")));
}

#[test]
fn bad_keys_are_typed_errors() {
    for (bad, why) in [
        ("", "empty"),
        ("a\nb", "control"),
        (&"k".repeat(256) as &str, "255 bytes"),
    ] {
        match IdempotencyKey::new(bad) {
            Err(Error::InvalidIdempotencyKey { reason, .. }) => {
                assert!(reason.contains(why), "{reason}")
            }
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    // 255 bytes (multi-byte characters count in bytes) is the longest accepted.
    assert!(IdempotencyKey::new("k".repeat(255)).is_ok());
    assert!(IdempotencyKey::new("é".repeat(128)).is_err());
    assert!(IdempotencyKey::try_from("").is_err());
}

#[cfg(feature = "serde")]
#[test]
fn a_deserialized_key_is_validated() {
    let key: IdempotencyKey = serde_json::from_str("\"order-1\"").unwrap();
    assert_eq!(key.as_str(), "order-1");
    assert_eq!(serde_json::to_string(&key).unwrap(), "\"order-1\"");
    assert!(serde_json::from_str::<IdempotencyKey>("\"\"").is_err());
}

#[test]
fn keys_are_forgotten_after_their_ttl() {
    let clock = ManualClock::new(START);
    let store = MemoryStore::with_clock(clock.clone()).with_key_retention(retention(60, 100));
    let run = Budget::builder("run", Limit::hard(usd("10")))
        .build_in(store)
        .unwrap();
    let first = run
        .reserve_owned_with(usd("1"), &reserve_once("k"))
        .unwrap();
    clock.advance(Duration::from_secs(59));
    let retry = run
        .reserve_owned_with(usd("1"), &reserve_once("k"))
        .unwrap();
    assert_eq!(retry.id(), first.id(), "remembered for 59 s");
    clock.advance(Duration::from_secs(1));
    let fresh = run
        .reserve_owned_with(usd("1"), &reserve_once("k"))
        .unwrap();
    assert_ne!(
        fresh.id(),
        first.id(),
        "forgotten at 60 s: the reserve applies again"
    );
    assert!(!fresh.is_replay());
    assert_eq!(figures(&run).2, usd("2"));
    // The new use of the key is remembered from its own time on.
    clock.advance(Duration::from_secs(30));
    let again = run
        .reserve_owned_with(usd("1"), &reserve_once("k"))
        .unwrap();
    assert_eq!(again.id(), fresh.id());
    assert_eq!(figures(&run).2, usd("2"));
}

/// At most `max_keys` keys are remembered; the oldest go first.
fn check_the_bound(store: impl Store) {
    let run = Budget::builder("run", Limit::hard(usd("100")))
        .build_in(store)
        .unwrap();
    for n in 0..4 {
        run.credit_with(usd("1"), &op(&format!("k{n}"))).unwrap();
    }
    assert_eq!(figures(&run).0, usd("104"));
    // k1..k3 (the newest three) are remembered; retrying them changes nothing.
    for n in 1..4 {
        run.credit_with(usd("1"), &op(&format!("k{n}"))).unwrap();
    }
    assert_eq!(figures(&run).0, usd("104"));
    // k0 was forgotten to stay within three keys: its retry applies again.
    run.credit_with(usd("1"), &op("k0")).unwrap();
    assert_eq!(figures(&run).0, usd("105"));
    // ... and remembering k0 again pushed out k1, the oldest.
    run.credit_with(usd("1"), &op("k1")).unwrap();
    assert_eq!(figures(&run).0, usd("106"));
}

#[test]
fn remembered_keys_are_bounded_in_memory() {
    check_the_bound(MemoryStore::new().with_key_retention(retention(3_600, 3)));
}

#[test]
fn remembered_keys_are_bounded_in_a_file_store() {
    let store = FileStore::options()
        .key_retention(retention(3_600, 3))
        .durability(Durability::Unsynced)
        .open(fresh_path("bound"))
        .unwrap();
    check_the_bound(store);
}

#[test]
fn many_threads_with_one_key_hold_once_in_memory() {
    const THREADS: usize = 16;
    let run = Budget::builder("run", Limit::hard(usd("10")))
        .build()
        .unwrap();
    let guards: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let run = run.clone();
                scope.spawn(move || run.reserve_owned_with(usd("3"), &reserve_once("one")))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .collect()
    });
    assert!(guards.iter().all(|guard| guard.id() == guards[0].id()));
    assert_eq!(guards.iter().filter(|guard| !guard.is_replay()).count(), 1);
    assert_eq!(figures(&run).2, usd("3"), "exactly one hold of $3");
    drop(guards); // the owner's drop releases it, once
    assert_eq!(figures(&run).2, usd("0"));
}

#[test]
fn a_file_store_remembers_keys_across_a_reopen_and_a_compaction() {
    let path = fresh_path("reopen");
    let clock = ManualClock::new(START);
    let open = || {
        Arc::new(
            FileStore::options()
                .clock(clock.clone())
                .key_retention(retention(3_600, 1_000))
                .open(&path)
                .unwrap(),
        )
    };
    let store = open();
    let run = Budget::builder("run", Limit::hard(usd("10")))
        .build_shared(store.clone())
        .unwrap();
    let committed = run.reserve_with(usd("2"), &reserve_once("r1")).unwrap();
    let committed_id = committed.id();
    let first_commit = committed.commit_with(usd("1"), &op("c1")).unwrap();
    // The caller that "crashed" before it saw its hold:
    let node = store.resolve("run").unwrap();
    let live_id = store
        .reserve_with(node, &Cost::from(usd("3")), &reserve_once("r2"))
        .unwrap()
        .hold;
    let released = run.reserve(usd("1")).unwrap();
    let released_id = released.id();
    released.release_with(&op("x1")).unwrap();
    run.credit_with(usd("5"), &op("f1")).unwrap();
    run.debit_with(usd("1"), &op("d1")).unwrap();
    let before = store.snapshot().unwrap();
    drop(run);
    drop(store);

    for round in ["reopened", "compacted and reopened"] {
        let store = open();
        assert_eq!(store.snapshot().unwrap(), before, "{round}: the books");
        let run = Budget::open(store.clone(), "run").unwrap();
        let retry = run.reserve_with(usd("3"), &reserve_once("r2")).unwrap();
        assert_eq!(
            retry.id(),
            live_id,
            "{round}: the retry gets the first hold"
        );
        assert!(retry.is_replay());
        drop(retry);
        let again = store
            .commit_with(committed_id, &Cost::from(usd("1")), &op("c1"))
            .unwrap();
        assert!(again.replayed);
        assert_eq!(again.returned, first_commit.returned);
        assert!(store.release_with(released_id, &op("x1")).unwrap());
        run.credit_with(usd("5"), &op("f1")).unwrap();
        run.debit_with(usd("1"), &op("d1")).unwrap();
        let mismatch = run.credit_with(usd("6"), &op("f1")).unwrap_err();
        assert!(matches!(mismatch, Error::IdempotencyMismatch { .. }));
        assert_eq!(
            store.snapshot().unwrap(),
            before,
            "{round}: nothing applied twice"
        );
        if round == "reopened" {
            store.compact().unwrap();
        }
    }

    // Past the retention the reopened store forgets the keys: the credit applies again.
    clock.advance(Duration::from_secs(3_600));
    let store = open();
    let run = Budget::open(store.clone(), "run").unwrap();
    run.credit_with(usd("5"), &op("f1")).unwrap();
    assert_eq!(figures(&run).0, usd("19"));
}

#[test]
fn a_torn_keyed_record_loses_key_and_effect_together() {
    let path = fresh_path("torn");
    let store = Arc::new(
        FileStore::options()
            .durability(Durability::Unsynced)
            .open(&path)
            .unwrap(),
    );
    let run = Budget::builder("run", Limit::hard(usd("10")))
        .build_shared(store.clone())
        .unwrap();
    run.credit_with(usd("1"), &op("a")).unwrap();
    let durable = std::fs::metadata(&path).unwrap().len();
    run.credit_with(usd("2"), &op("b")).unwrap();
    drop(run);
    drop(store);
    // The crash tore the last record (credit "b" with its key) in the middle.
    let full = std::fs::metadata(&path).unwrap().len();
    assert!(full > durable + 8);
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(full - 5).unwrap();
    drop(file);

    let store = Arc::new(FileStore::open(&path).unwrap());
    let run = Budget::open(store, "run").unwrap();
    assert_eq!(figures(&run).0, usd("11"), "credit b vanished with its key");
    run.credit_with(usd("2"), &op("b")).unwrap(); // the caller's retry applies it, once
    run.credit_with(usd("2"), &op("b")).unwrap();
    run.credit_with(usd("1"), &op("a")).unwrap(); // "a" survived with its key
    assert_eq!(figures(&run).0, usd("13"));
}

/// A keyed commit runs the same rules as a plain one (here an auto top-up fires once), its
/// retry fires nothing, and a FileStore replays the keyed record to the same books.
fn check_a_keyed_commit_tops_up_once(store: Arc<dyn Store>) -> Budget {
    let limit = Limit::hard(usd("10")).with_overage(OveragePolicy::AllowIfAvailable);
    let run = Budget::builder("run", limit)
        .build_shared(store.clone())
        .unwrap();
    run.set_top_up(TopUp::when_below(usd("2")).adding(usd("5")))
        .unwrap();
    let guard = run.reserve(usd("5")).unwrap();
    assert!(guard.top_ups().is_empty());
    let hold = guard.id();
    // The overage takes remaining from $5 to $1, under the rule's $2: one top-up.
    let committed = guard.commit_with(usd("9"), &op("c")).unwrap();
    assert_eq!(
        committed.top_ups.len(),
        1,
        "remaining fell to $1: one top-up"
    );
    assert_eq!(figures(&run).0, usd("15"));
    let again = store
        .commit_with(hold, &Cost::from(usd("9")), &op("c"))
        .unwrap();
    assert!(again.replayed && again.top_ups.is_empty());
    assert_eq!(figures(&run), (usd("15"), usd("9"), usd("0")));
    run
}

#[test]
fn a_keyed_commit_runs_top_up_rules_once_in_memory() {
    let clock = ManualClock::new(START);
    check_a_keyed_commit_tops_up_once(Arc::new(MemoryStore::with_clock(clock)));
}

#[test]
fn a_keyed_commit_runs_top_up_rules_once_in_a_file_store() {
    let path = fresh_path("top-up");
    let clock = ManualClock::new(START);
    let open = scratch::reopener(&path, &clock);
    let store = open();
    let run = check_a_keyed_commit_tops_up_once(store.clone());
    let before = store.snapshot().unwrap();
    drop(run);
    drop(store);
    let store = open();
    assert_eq!(
        store.snapshot().unwrap(),
        before,
        "replay reproduces the top-up once"
    );
}

/// Hardening issue 12 item 9: a reserve retried after its hold ended gets `HoldEnded` saying how
/// (never a dead hold id that `commit` then refuses), from the log, after a compaction and after
/// `release_orphaned_holds` released the hold at open.
#[test]
fn a_retried_reserve_of_an_ended_hold_says_how_it_ended_across_reopens() {
    use budget_guard::idempotency::HoldEnd;
    let path = fresh_path("ended");
    let clock = ManualClock::new(START);
    let open = |release_orphans: bool| {
        Arc::new(
            FileStore::options()
                .clock(clock.clone())
                .release_orphaned_holds(release_orphans)
                .open(&path)
                .unwrap(),
        )
    };
    let store = open(false);
    let run = Budget::builder("run", Limit::hard(usd("10")))
        .build_shared(store.clone())
        .unwrap();
    let node = run.id();
    let reserve = |store: &FileStore, text: &str| {
        store.reserve_with(node, &Cost::from(usd("2")), &reserve_once(text))
    };
    let committed = reserve(&store, "committed").unwrap().hold;
    store.commit(committed, &Cost::from(usd("1.50"))).unwrap();
    let released = reserve(&store, "released").unwrap().hold;
    store.release(released).unwrap();
    let expiring = store
        .reserve_with(
            node,
            &Cost::from(usd("2")),
            &reserve_once("expired").ttl(Duration::from_secs(5)),
        )
        .unwrap()
        .hold;
    clock.advance(Duration::from_secs(5));
    assert_eq!(store.sweep().unwrap().len(), 1);
    // The caller that crashed before it saw its hold:
    let orphan = reserve(&store, "orphan").unwrap().hold;
    drop(run);
    drop(store);

    let ended =
        |store: &FileStore, text: &str, expected_hold, expected_how, round: &str| match store
            .reserve_with(
                node,
                &Cost::from(usd("2")),
                &if text == "expired" {
                    reserve_once(text).ttl(Duration::from_secs(5))
                } else {
                    reserve_once(text)
                },
            ) {
            Err(Error::HoldEnded { key, hold, how }) => {
                assert_eq!(&*key, text, "{round}");
                assert_eq!(
                    (hold, how),
                    (expected_hold, expected_how),
                    "{round}: {text}"
                );
            }
            other => panic!("{round}: retry of {text}: {other:?}"),
        };
    // Reopened with the orphan released: the log says how each hold ended.
    let store = open(true);
    let run = Budget::open(store.clone(), "run").unwrap();
    assert_eq!(figures(&run), (usd("10"), usd("1.50"), usd("0")));
    for round in ["after release_orphaned_holds", "compacted"] {
        ended(&store, "committed", committed, HoldEnd::Committed, round);
        ended(&store, "released", released, HoldEnd::Released, round);
        ended(&store, "expired", expiring, HoldEnd::Expired, round);
        ended(&store, "orphan", orphan, HoldEnd::Released, round);
        assert_eq!(figures(&run), (usd("10"), usd("1.50"), usd("0")), "{round}");
        if round == "after release_orphaned_holds" {
            store.compact().unwrap();
        }
    }
    // The real spend of the orphaned work is booked under a new key.
    let fresh = run
        .reserve_with(usd("2"), &reserve_once("orphan-2"))
        .unwrap();
    assert!(!fresh.is_replay());
    fresh.commit(usd("1.25")).unwrap();
    assert_eq!(figures(&run), (usd("10"), usd("2.75"), usd("0")));
    drop(run);
    drop(store);
    let store = open(false);
    ended(&store, "orphan", orphan, HoldEnd::Released, "last reopen");
    ended(
        &store,
        "committed",
        committed,
        HoldEnd::Committed,
        "last reopen",
    );
}
