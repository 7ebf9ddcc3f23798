//! Leased local budgets over a `MemoryStore` remote (no Redis needed): slices, renewal,
//! reporting, return on close and drop, expiry after a crash, and the stranded-funds bound.

use std::sync::Arc;
use std::time::Duration;

use budget_guard::{
    Amount, Budget, Error, LeaseOptions, LeasedStore, Limit, ManualClock, MemoryStore, Store,
    Timestamp, Unit,
};

fn usd(text: &str) -> Amount {
    Amount::usd(text).unwrap()
}

/// A $`cap` remote team budget on `clock`, and the remote store.
fn remote(cap: &str, clock: &ManualClock) -> (Arc<dyn Store>, Budget) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::with_clock(clock.clone()));
    let team = Budget::builder("team", Limit::hard(usd(cap)))
        .build_shared(store.clone())
        .unwrap();
    (store, team)
}

fn options(slice: &str, clock: &ManualClock) -> LeaseOptions {
    LeaseOptions::new(usd(slice))
        .ttl(Duration::from_secs(30))
        .background(false)
        .clock(clock.clone())
}

/// Reserves `estimate` on `budget` and commits `actual`.
fn spend(budget: &Budget, estimate: &str, actual: &str) {
    budget
        .reserve(usd(estimate))
        .unwrap()
        .commit(usd(actual))
        .unwrap();
}

fn spent_and_held(team: &Budget) -> (Amount, Amount) {
    let balance = team.balance(Unit::Usd).unwrap();
    (balance.spent, balance.reserved)
}

#[test]
fn slices_are_leased_as_spent_and_the_unused_rest_returns_on_close() {
    let clock = ManualClock::new(Timestamp::EPOCH);
    let (store, team) = remote("100", &clock);
    let lease = Arc::new(LeasedStore::new(store, "team", options("1", &clock)).unwrap());
    assert_eq!(spent_and_held(&team), (usd("0"), usd("1")));
    let local = Budget::open(lease.clone(), lease.root_path()).unwrap();
    for _ in 0..25 {
        spend(&local, "0.10", "0.07");
    }
    // $1.75 spent. The 14th reserve ($0.91 spent) did not fit the first $1 slice: a second
    // slice was leased and the first one retired with its $0.91 charged, $0.09 returned.
    let stats = lease.stats().unwrap();
    assert_eq!(stats.opened, 2);
    assert_eq!(stats.returned, 1);
    assert_eq!(stats.slices, 1);
    assert_eq!(stats.reported, usd("0.91"));
    assert_eq!(stats.unreported, usd("0.84"));
    assert_eq!(stats.outstanding, usd("1"));
    assert_eq!(spent_and_held(&team), (usd("0.91"), usd("1")));

    let closed = lease.close().unwrap();
    assert_eq!(closed.slices, 0);
    assert_eq!(closed.reported, usd("1.75"));
    assert_eq!(spent_and_held(&team), (usd("1.75"), usd("0")));
    let err = local.reserve(usd("0.10")).unwrap_err();
    assert!(matches!(err, Error::Closed { .. }), "{err}");
}

#[test]
fn dropping_the_last_handle_returns_the_lease() {
    let clock = ManualClock::new(Timestamp::EPOCH);
    let (store, team) = remote("10", &clock);
    let lease: Arc<dyn Store> =
        Arc::new(LeasedStore::new(store, "team", options("2", &clock)).unwrap());
    let local = Budget::open(lease, "team").unwrap();
    spend(&local, "0.40", "0.40");
    let guard = local.reserve(usd("0.30")).unwrap();
    guard.commit(usd("0.25")).unwrap();
    assert_eq!(spent_and_held(&team), (usd("0"), usd("2")));
    drop(local);
    assert_eq!(spent_and_held(&team), (usd("0.65"), usd("0")));
}

#[test]
fn a_reserve_larger_than_the_slice_leases_what_it_needs() {
    let clock = ManualClock::new(Timestamp::EPOCH);
    let (store, team) = remote("10", &clock);
    let lease = Arc::new(LeasedStore::new(store, "team", options("1", &clock)).unwrap());
    let local = Budget::open(lease.clone(), "team").unwrap();
    let guard = local.reserve(usd("2.50")).unwrap();
    // The first slice ($1, unused) is kept: the $2.50 hold needs its room as well.
    assert_eq!(spent_and_held(&team), (usd("0"), usd("2.50")));
    guard.commit(usd("2.50")).unwrap();
    lease.close().unwrap();
    assert_eq!(spent_and_held(&team), (usd("2.50"), usd("0")));
}

#[test]
fn near_the_cap_a_lease_takes_what_is_left_and_the_cap_is_spent_exactly() {
    let clock = ManualClock::new(Timestamp::EPOCH);
    let (store, team) = remote("2.50", &clock);
    let lease = Arc::new(LeasedStore::new(store, "team", options("1", &clock)).unwrap());
    let local = Budget::open(lease.clone(), "team").unwrap();
    let mut calls = 0;
    let err = loop {
        match local.reserve(usd("0.10")) {
            Ok(guard) => {
                guard.commit(usd("0.10")).unwrap();
                calls += 1;
            }
            Err(err) => break err,
        }
    };
    assert_eq!(calls, 25);
    let exceeded = err.exceeded().expect("a denial");
    assert_eq!(&*exceeded.node, "team");
    // Slices of $1, $1 and the last $0.50: the first two charged, the last one held.
    assert_eq!(spent_and_held(&team), (usd("2"), usd("0.50")));
    assert_eq!(lease.stats().unwrap().opened, 3);
    lease.close().unwrap();
    assert_eq!(spent_and_held(&team), (usd("2.50"), usd("0")));
}

#[test]
fn four_leases_on_one_cap_spend_it_exactly_and_strand_at_most_their_slices() {
    let clock = ManualClock::new(Timestamp::EPOCH);
    let (store, team) = remote("5", &clock);
    let leases: Vec<Arc<LeasedStore>> = (0..4)
        .map(|_| {
            Arc::new(LeasedStore::new(store.clone(), "team", options("0.70", &clock)).unwrap())
        })
        .collect();
    let threads: Vec<_> = leases
        .iter()
        .flat_map(|lease| [lease.clone(), lease.clone()])
        .map(|lease| {
            std::thread::spawn(move || {
                let local = Budget::open(lease, "team").unwrap();
                let mut calls = 0u32;
                while let Ok(guard) = local.reserve(usd("0.10")) {
                    guard.commit(usd("0.10")).unwrap();
                    calls += 1;
                }
                calls
            })
        })
        .collect();
    let calls: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(calls, 50, "a $5 cap lets exactly 50 $0.10 calls through");
    // Before the leases return: what the remote holds is exactly the outstanding slices.
    let outstanding: i64 = leases
        .iter()
        .map(|lease| lease.stats().unwrap().outstanding.minor_units())
        .sum();
    let unreported: i64 = leases
        .iter()
        .map(|lease| lease.stats().unwrap().unreported.minor_units())
        .sum();
    let (spent, held) = spent_and_held(&team);
    assert_eq!(held.minor_units(), outstanding);
    // Everything held remotely is spent locally: nothing stranded once the work is done.
    assert_eq!(held.minor_units(), unreported);
    assert_eq!(
        spent.minor_units() + held.minor_units(),
        usd("5").minor_units()
    );
    for lease in &leases {
        lease.close().unwrap();
    }
    assert_eq!(spent_and_held(&team), (usd("5"), usd("0")));
}

#[test]
fn a_crashed_lease_comes_back_by_expiry_and_its_unreported_spend_with_it() {
    let clock = ManualClock::new(Timestamp::EPOCH);
    let (store, team) = remote("10", &clock);
    let lease = LeasedStore::new(store.clone(), "team", options("1", &clock)).unwrap();
    let local = Budget::open(Arc::new(lease), "team").unwrap();
    spend(&local, "0.30", "0.30");
    // kill -9: nothing runs, nothing is returned.
    std::mem::forget(local);
    assert_eq!(spent_and_held(&team), (usd("0"), usd("1")));
    clock.advance(Duration::from_secs(31));
    assert_eq!(store.sweep().unwrap().len(), 1);
    // The whole slice is back, the $0.30 never reported with it (the documented bound: at
    // most the outstanding slices).
    assert_eq!(spent_and_held(&team), (usd("0"), usd("0")));
}

#[test]
fn the_heartbeat_extends_the_slice_and_reports_spend_where_the_remote_records() {
    let clock = ManualClock::new(Timestamp::EPOCH);
    let (store, team) = remote("10", &clock);
    let lease = Arc::new(LeasedStore::new(store.clone(), "team", options("1", &clock)).unwrap());
    let local = Budget::open(lease.clone(), "team").unwrap();
    spend(&local, "0.30", "0.30");
    // 25 s into a 30 s TTL with a 10 s margin: the next reserve renews first.
    clock.advance(Duration::from_secs(25));
    spend(&local, "0.20", "0.20");
    let stats = lease.stats().unwrap();
    assert_eq!(stats.renewed, 1);
    assert_eq!(
        stats.reported,
        usd("0.30"),
        "reported into the hold by record"
    );
    assert_eq!(stats.outstanding, usd("0.70"));
    assert_eq!(spent_and_held(&team), (usd("0.30"), usd("0.70")));
    // Past the first deadline, the extended hold lives on.
    clock.advance(Duration::from_secs(20));
    assert!(store.sweep().unwrap().is_empty());
    // A crash now loses only the spend since the last report.
    std::mem::forget(local);
    std::mem::forget(lease);
    clock.advance(Duration::from_secs(31));
    assert_eq!(store.sweep().unwrap().len(), 1);
    assert_eq!(spent_and_held(&team), (usd("0.30"), usd("0")));
}

#[test]
fn spend_reported_by_record_is_charged_once_when_the_slice_is_returned() {
    let clock = ManualClock::new(Timestamp::EPOCH);
    let (store, team) = remote("10", &clock);
    let lease = Arc::new(LeasedStore::new(store, "team", options("1", &clock)).unwrap());
    let local = Budget::open(lease.clone(), "team").unwrap();
    spend(&local, "0.30", "0.30");
    clock.advance(Duration::from_secs(25));
    spend(&local, "0.20", "0.20"); // $0.30 recorded first
    assert_eq!(spent_and_held(&team), (usd("0.30"), usd("0.70")));
    let closed = lease.close().unwrap();
    assert_eq!((closed.reported, closed.lost), (usd("0.50"), usd("0")));
    assert_eq!(spent_and_held(&team), (usd("0.50"), usd("0")));
}

#[test]
fn a_background_renewer_tops_the_slice_up_below_the_low_water_mark() {
    let (store, team) = {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let team = Budget::builder("team", Limit::hard(usd("10")))
            .build_shared(store.clone())
            .unwrap();
        (store, team)
    };
    let options = LeaseOptions::new(usd("1"))
        .low_water(usd("0.50"))
        .ttl(Duration::from_secs(3));
    let lease = Arc::new(LeasedStore::new(store, "team", options).unwrap());
    let local = Budget::open(lease.clone(), "team").unwrap();
    spend(&local, "0.60", "0.60");
    // The renewer wakes every 200 ms; wait (no deadline on speed) until it leased the next
    // slice and extended a hold (due 2 s after it was opened).
    loop {
        let stats = lease.stats().unwrap();
        if stats.opened >= 2 && stats.renewed >= 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // $0.60 reported by record, the first slice's unused $0.40 returned.
    assert_eq!(spent_and_held(&team), (usd("0.60"), usd("1")));
    drop(local);
    lease.close().unwrap();
    assert_eq!(spent_and_held(&team), (usd("0.60"), usd("0")));
}

#[test]
fn the_root_limit_belongs_to_the_lease_and_bad_options_are_refused() {
    let clock = ManualClock::new(Timestamp::EPOCH);
    let (store, team) = remote("10", &clock);
    let lease = Arc::new(LeasedStore::new(store.clone(), "team", options("1", &clock)).unwrap());
    let local = Budget::open(lease.clone(), "team").unwrap();
    assert!(matches!(local.credit(usd("5")), Err(Error::Store(_))));
    assert!(matches!(local.debit(usd("0.5")), Err(Error::Store(_))));
    // Children under the root work as usual.
    let child = local.add_child("task", Limit::hard(usd("0.25"))).unwrap();
    let err = child.reserve(usd("0.30")).unwrap_err();
    assert_eq!(&*err.exceeded().unwrap().node, "team/task");
    assert_eq!(
        lease.stats().unwrap().opened,
        1,
        "a child's denial leases nothing"
    );

    for bad in [
        LeaseOptions::new(usd("0")),
        LeaseOptions::new(usd("1")).low_water(usd("1")),
        LeaseOptions::new(usd("1")).low_water(Amount::tokens(5)),
        LeaseOptions::new(usd("1")).ttl(Duration::ZERO),
        LeaseOptions::new(usd("1")).renew_margin(Duration::from_secs(30)),
    ] {
        let err = LeasedStore::new(store.clone(), "team", bad).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidAmount { .. } | Error::InvalidDuration { .. }
            ),
            "{err}"
        );
    }
    let err = LeasedStore::new(store.clone(), "nope", options("1", &clock)).unwrap_err();
    assert!(matches!(err, Error::UnknownNode { .. }), "{err}");
    // Near the cap the first slice is what is left; with nothing left, a refusal.
    let second = LeasedStore::new(store.clone(), "team", options("20", &clock)).unwrap();
    assert_eq!(second.stats().unwrap().outstanding, usd("9"));
    let err = LeasedStore::new(store, "team", options("1", &clock)).unwrap_err();
    assert!(err.is_denial(), "{err}");
    assert_eq!(spent_and_held(&team), (usd("0"), usd("10")));
}
