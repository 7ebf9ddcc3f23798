//! Request rate limits (issue 8, item 6): the window boundary with a manual clock, the exact
//! `retry_after`, budget and rate denials taking nothing from each other, 8 threads never
//! passing N per window, bad inputs, persistence in the file store.

use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

use budget_guard::expiry::DEFAULT_HOLD_TTL;
use budget_guard::rate::{MAX_RATE_REQUESTS, RateLimit};
use budget_guard::{
    Amount, Budget, Error, FileStore, Limit, ManualClock, MemoryStore, Store, Timestamp, Unit,
    Verdict,
};

#[path = "support/scratch.rs"]
mod scratch;
use scratch::fresh_path;

fn usd(text: &str) -> Amount {
    Amount::usd(text).unwrap()
}

const START: Timestamp = Timestamp::from_unix_nanos(1_700_000_000_000_000_000);

fn agent(clock: &ManualClock, limit: &str) -> Budget {
    Budget::builder("org", Limit::hard(usd("100")))
        .child("agent", Limit::hard(usd(limit)))
        .build_in(MemoryStore::with_clock(clock.clone()))
        .unwrap()
        .at("agent")
        .unwrap()
}

#[test]
fn exactly_n_per_window_then_the_exact_retry_after_then_allowed_again() {
    let clock = ManualClock::new(START);
    let agent = agent(&clock, "100");
    agent
        .set_rate_limit(Some(RateLimit::new(5, Duration::from_secs(60)).unwrap()))
        .unwrap();
    // Five requests spread over 40 s: all allowed.
    for _ in 0..5 {
        agent
            .reserve(usd("0.01"))
            .unwrap()
            .commit(usd("0.01"))
            .unwrap();
        clock.advance(Duration::from_secs(10));
    }
    // At 50 s the sixth is refused until the first (at 0 s) leaves the window at 60 s.
    let denied = agent.reserve(usd("0.01")).unwrap_err();
    match &denied {
        Error::RateLimited {
            node,
            limit,
            window,
            retry_after,
        } => {
            assert_eq!(&**node, "org/agent");
            assert_eq!(*limit, 5);
            assert_eq!(*window, Duration::from_secs(60));
            assert_eq!(*retry_after, Duration::from_secs(10));
        }
        other => panic!("expected RateLimited, got {other}"),
    }
    assert_eq!(denied.retry_after(), Some(Duration::from_secs(10)));
    assert!(!denied.is_denial(), "a rate limit is not a money denial");
    assert_eq!(agent.balance(Unit::Usd).unwrap().reserved, usd("0"));
    // One nanosecond early: still refused, with one nanosecond to go.
    clock.advance(Duration::from_secs(10) - Duration::from_nanos(1));
    assert_eq!(
        agent.reserve(usd("0.01")).unwrap_err().retry_after(),
        Some(Duration::from_nanos(1))
    );
    clock.advance(Duration::from_nanos(1));
    agent
        .reserve(usd("0.01"))
        .unwrap()
        .commit(usd("0.01"))
        .unwrap();
    // The next slot is the request made at 10 s: free at 70 s, i.e. now + 10 s.
    assert_eq!(
        agent.reserve(usd("0.01")).unwrap_err().retry_after(),
        Some(Duration::from_secs(10))
    );
    assert_eq!(agent.balance(Unit::Usd).unwrap().spent, usd("0.06"));
}

#[test]
fn a_budget_denial_takes_no_slot_and_a_rate_denial_holds_no_money() {
    let clock = ManualClock::new(START);
    let agent = agent(&clock, "1");
    agent
        .set_rate_limit(Some(RateLimit::per_minute(2).unwrap()))
        .unwrap();
    for _ in 0..10 {
        assert!(matches!(
            agent.reserve(usd("5")),
            Err(Error::BudgetExceeded(_))
        ));
    }
    let first = agent.reserve(usd("0.5")).unwrap();
    let second = agent.reserve(usd("0.5")).unwrap();
    let before = agent.balance(Unit::Usd).unwrap();
    let org = agent.parent().unwrap().unwrap();
    let org_before = org.balance(Unit::Usd).unwrap();
    assert!(matches!(
        agent.reserve(usd("0.01")),
        Err(Error::RateLimited { .. })
    ));
    assert_eq!(agent.balance(Unit::Usd).unwrap(), before);
    assert_eq!(org.balance(Unit::Usd).unwrap(), org_before);
    drop((first, second));
    // An ancestor's rate limit applies to its subtree; reserve_up_to counts as a request too.
    org.set_rate_limit(Some(RateLimit::per_second(1).unwrap()))
        .unwrap();
    clock.advance(Duration::from_secs(60));
    let _held = org.reserve_up_to(usd("0.01"), usd("1")).unwrap();
    assert!(matches!(
        agent.reserve(usd("0.01")),
        Err(Error::RateLimited { node, .. }) if &*node == "org"
    ));
}

#[test]
fn a_check_reports_the_rate_limit_and_takes_no_slot() {
    let clock = ManualClock::new(START);
    let agent = agent(&clock, "100");
    agent
        .set_rate_limit(Some(RateLimit::new(1, Duration::from_secs(60)).unwrap()))
        .unwrap();
    // Checks take no slot: after any number of them the one allowed reserve still passes.
    for _ in 0..3 {
        assert!(agent.check(usd("0.01")).unwrap().fits());
    }
    agent.reserve(usd("0.01")).unwrap().release().unwrap();
    clock.advance(Duration::from_secs(15));
    let check = agent.check(usd("0.01")).unwrap();
    assert!(!check.fits());
    match check.verdict {
        Verdict::RateLimited {
            node,
            limit,
            window,
            retry_after,
        } => {
            assert_eq!(&*node, "org/agent");
            assert_eq!((limit, window), (1, Duration::from_secs(60)));
            assert_eq!(retry_after, Duration::from_secs(45));
        }
        other => panic!("expected a rate-limit verdict, got {other:?}"),
    }
    clock.advance(Duration::from_secs(45));
    assert!(agent.check(usd("0.01")).unwrap().fits());
    // The node's info shows its own rate limit; the parent has none.
    assert_eq!(
        agent.info().unwrap().rate_limit,
        Some(RateLimit::new(1, Duration::from_secs(60)).unwrap())
    );
    assert_eq!(
        agent.parent().unwrap().unwrap().info().unwrap().rate_limit,
        None
    );
}

#[test]
fn eight_threads_never_pass_n_per_window() {
    const N: usize = 10;
    let clock = ManualClock::new(START);
    let agent = agent(&clock, "1000");
    agent
        .set_rate_limit(Some(
            RateLimit::new(N as u32, Duration::from_secs(1)).unwrap(),
        ))
        .unwrap();
    let granted = Arc::new(Mutex::new(Vec::new()));
    let barrier = Arc::new(Barrier::new(8));
    let workers: Vec<_> = (0..8)
        .map(|t| {
            let (agent, clock, granted, barrier) = (
                agent.clone(),
                clock.clone(),
                granted.clone(),
                barrier.clone(),
            );
            thread::spawn(move || {
                barrier.wait();
                for i in 0..400u64 {
                    if t == 0 && i % 4 == 0 {
                        clock.advance(Duration::from_millis(37)); // time moves under the others
                    }
                    if let Ok(guard) = agent.reserve(usd("0.001")) {
                        // The store's time of the reserve: the hold's deadline minus its TTL.
                        let stamp =
                            guard.expires_at().as_unix_nanos() - DEFAULT_HOLD_TTL.as_nanos() as i64;
                        granted.lock().unwrap().push(stamp);
                        guard.commit(usd("0.001")).unwrap();
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let mut granted = granted.lock().unwrap().clone();
    granted.sort_unstable();
    assert!(
        granted.len() > N,
        "time moved on, so more than one window filled"
    );
    // No interval of 1 s holds more than N granted reserves.
    let window = 1_000_000_000i64;
    for (i, start) in granted.iter().enumerate() {
        let inside = granted[i..]
            .iter()
            .take_while(|t| **t < start + window)
            .count();
        assert!(inside <= N, "{inside} requests within one window");
    }
    assert_eq!(
        agent.balance(Unit::Usd).unwrap().spent.minor_units(),
        granted.len() as i64 * 1_000_000
    );
}

#[test]
fn bad_rate_limits_are_typed_errors() {
    for (requests, window) in [
        (0, Duration::from_secs(1)),
        (1, Duration::ZERO),
        (MAX_RATE_REQUESTS + 1, Duration::from_secs(1)),
        (1, Duration::MAX),
    ] {
        let error = RateLimit::new(requests, window).unwrap_err();
        assert!(
            matches!(error, Error::InvalidRateLimit { requests: r, window: w, .. } if r == requests && w == window),
            "{error}"
        );
    }
    assert!(RateLimit::per_minute(0).is_err());
    let limit = RateLimit::per_hour(MAX_RATE_REQUESTS).unwrap();
    assert_eq!(limit.to_string(), "65536 requests per 3600s");
}

#[test]
fn the_file_store_keeps_rate_limits_across_reopen_and_compaction() {
    let path = fresh_path("reopen");
    let limit = RateLimit::per_minute(3).unwrap();
    {
        let store = Arc::new(FileStore::open(&path).unwrap());
        let org = Budget::builder("org", Limit::hard(usd("1")))
            .child("a", Limit::hard(usd("1")))
            .child("b", Limit::hard(usd("1")))
            .build_shared(store.clone())
            .unwrap();
        org.at("a").unwrap().set_rate_limit(Some(limit)).unwrap();
        org.at("b").unwrap().set_rate_limit(Some(limit)).unwrap();
        org.at("b").unwrap().set_rate_limit(None).unwrap();
    }
    let rate_of = |store: &FileStore, path: &str| {
        store
            .snapshot()
            .unwrap()
            .nodes
            .into_iter()
            .find(|node| &*node.path == path)
            .unwrap()
            .rate_limit
    };
    let store = FileStore::open(&path).unwrap();
    assert_eq!(rate_of(&store, "org/a"), Some(limit));
    assert_eq!(rate_of(&store, "org/b"), None);
    store.compact().unwrap();
    drop(store);
    let store = FileStore::open(&path).unwrap();
    assert_eq!(rate_of(&store, "org/a"), Some(limit));
    // Enforced after reopen.
    let a = Budget::open(Arc::new(store), "org/a").unwrap();
    for _ in 0..3 {
        a.reserve(usd("0.01")).unwrap().commit(usd("0.01")).unwrap();
    }
    assert!(matches!(
        a.reserve(usd("0.01")),
        Err(Error::RateLimited { .. })
    ));
}

#[cfg(feature = "serde")]
#[test]
fn rate_limits_round_trip_through_serde_and_reject_bad_values() {
    let limit = RateLimit::per_second(7).unwrap();
    let json = serde_json::to_string(&limit).unwrap();
    assert_eq!(serde_json::from_str::<RateLimit>(&json).unwrap(), limit);
    let bad = json.replace("7", "0");
    assert!(serde_json::from_str::<RateLimit>(&bad).is_err());
}
