//! Hold expiry: deadlines, sweeps, reclaiming on denial, heartbeats and late commits.

use std::sync::Arc;
use std::time::Duration;

use super::{CLOCK_START, books, supports_all, tree, usd, zero};
use crate::amount::{Amount, Unit};
use crate::cancel::Cancellation;
use crate::clock::{Clock, ManualClock};
use crate::cost::Cost;
use crate::error::Error;
use crate::expiry::ReserveOptions;
use crate::op::OpKind;
use crate::policy::Limit;
use crate::store::Store;

fn ttl(seconds: u64) -> ReserveOptions {
    ReserveOptions::new().ttl(Duration::from_secs(seconds))
}

/// A hold is not reclaimed before its deadline; a sweep at the deadline reclaims it, returns
/// its outstanding part on the whole path, keeps recorded spend, and reports it exactly once.
pub fn expired_holds_are_reclaimed_once(store: Arc<dyn Store>, clock: &ManualClock) {
    if !supports_all(&*store, &[OpKind::Sweep, OpKind::Record]) {
        return;
    }
    let (acme, team, task) = tree(store.clone(), Limit::hard(usd("1")));
    let guard = task.reserve_with(usd("0.60"), &ttl(10)).expect("fits");
    assert_eq!(
        guard.expires_at(),
        CLOCK_START.saturating_add(Duration::from_secs(10)),
        "the deadline is the store clock at the reserve plus the ttl"
    );
    guard.record(usd("0.10")).expect("record");
    clock.advance(Duration::from_secs(9));
    assert!(store.sweep().expect("sweep").is_empty(), "reclaimed early");
    clock.advance(Duration::from_secs(1));
    let expired = store.sweep().expect("sweep");
    assert_eq!(expired.len(), 1, "the hold is reclaimed at its deadline");
    assert_eq!(expired[0].hold, guard.id());
    assert_eq!(expired[0].node.as_ref(), "acme/team/task");
    assert_eq!(expired[0].returned(), Cost::from(usd("0.50")));
    for node in [&acme, &team, &task] {
        assert_eq!(
            books(node),
            (usd("0.10"), zero(), zero()),
            "{}",
            node.path()
        );
    }
    assert!(store.sweep().expect("sweep").is_empty(), "reported twice");
    assert!(
        guard.release().is_ok(),
        "releasing a reclaimed hold is a no-op"
    );
    assert_eq!(books(&acme), (usd("0.10"), zero(), zero()));
    // The default ttl is 60 s.
    let guard = task.reserve(usd("0.10")).expect("fits");
    assert_eq!(
        guard.expires_at(),
        clock.now().saturating_add(crate::expiry::DEFAULT_HOLD_TTL)
    );
}

/// A reserve that does not fit reclaims expired holds first and is granted if that makes room;
/// a hold before its deadline is never taken.
pub fn a_denied_reserve_reclaims_expired_holds_first(store: Arc<dyn Store>, clock: &ManualClock) {
    if !supports_all(&*store, &[OpKind::Sweep]) {
        return;
    }
    let (_, _, task) = tree(store.clone(), Limit::hard(usd("1")));
    let stuck = task.reserve_with(usd("0.70"), &ttl(5)).expect("fits");
    let _alive = task.reserve_with(usd("0.20"), &ttl(60)).expect("fits");
    clock.advance(Duration::from_secs(4));
    assert!(
        task.reserve(usd("0.50")).is_err_and(|e| e.is_denial()),
        "a hold before its deadline was reclaimed"
    );
    clock.advance(Duration::from_secs(1));
    let fresh = store
        .reserve(task.id(), &Cost::from(usd("0.50")))
        .expect("the expired hold makes room");
    assert_eq!(
        fresh.expired.len(),
        1,
        "the reserve reports what it reclaimed"
    );
    assert_eq!(fresh.expired[0].hold, stuck.id());
    assert_eq!(books(&task), (zero(), usd("0.70"), zero()));
    assert!(store.sweep().expect("sweep").is_empty(), "reported twice");
    // A reserve still denied after reclaiming leaves the report to the next sweep.
    clock.advance(Duration::from_secs(60));
    assert!(task.reserve(usd("2")).is_err_and(|e| e.is_denial()));
    assert_eq!(books(&task), (zero(), zero(), zero()));
    assert_eq!(store.sweep().expect("sweep").len(), 2);
    drop(stuck);
}

/// `extend` moves a live hold's deadline from the store's now; it fails with
/// `ReservationExpired` once the hold is reclaimed and rejects a zero ttl.
pub fn extend_moves_the_deadline(store: Arc<dyn Store>, clock: &ManualClock) {
    if !supports_all(&*store, &[OpKind::Extend, OpKind::Sweep]) {
        return;
    }
    let (_, _, task) = tree(store.clone(), Limit::hard(usd("1")));
    let guard = task.reserve_with(usd("0.50"), &ttl(10)).expect("fits");
    clock.advance(Duration::from_secs(8));
    let deadline = guard.extend(Duration::from_secs(10)).expect("extend");
    assert_eq!(
        deadline,
        clock.now().saturating_add(Duration::from_secs(10))
    );
    assert_eq!(guard.expires_at(), deadline);
    assert!(matches!(
        guard.extend(Duration::ZERO),
        Err(Error::InvalidDuration { .. })
    ));
    assert!(matches!(
        task.reserve_with(usd("0.10"), &ReserveOptions::new().ttl(Duration::ZERO)),
        Err(Error::InvalidDuration { .. })
    ));
    clock.advance(Duration::from_secs(9));
    assert!(
        store.sweep().expect("sweep").is_empty(),
        "the heartbeat was ignored"
    );
    // Past the deadline but not reclaimed: still live, and a heartbeat revives it.
    clock.advance(Duration::from_secs(2));
    guard
        .extend(Duration::from_secs(10))
        .expect("not reclaimed yet");
    assert!(store.sweep().expect("sweep").is_empty());
    clock.advance(Duration::from_secs(10));
    assert_eq!(store.sweep().expect("sweep").len(), 1);
    assert!(matches!(
        guard.extend(Duration::from_secs(10)),
        Err(Error::ReservationExpired { hold, .. }) if hold == guard.id()
    ));
    if store.supports(OpKind::Record) {
        assert!(matches!(
            store.record(guard.id(), &Cost::from(usd("0.01"))),
            Err(Error::ReservationExpired { .. })
        ));
    }
    assert_eq!(books(&task), (zero(), zero(), zero()));
}

/// An expired but unreclaimed hold commits normally. A reclaimed hold's commit records its
/// spend without a hold when it fits under every hard limit (`Committed::expired`, nothing
/// returned); otherwise it records nothing and fails with `ReservationExpired`.
pub fn a_reclaimed_hold_commits_only_what_fits(store: Arc<dyn Store>, clock: &ManualClock) {
    if !supports_all(&*store, &[OpKind::Sweep]) {
        return;
    }
    let (acme, _, task) = tree(store.clone(), Limit::hard(usd("1")));
    let late = task.reserve_with(usd("0.40"), &ttl(1)).expect("fits");
    clock.advance(Duration::from_secs(2));
    let committed = late
        .commit(usd("0.30"))
        .expect("not reclaimed: commits normally");
    assert!(!committed.expired);
    assert_eq!(committed.returned, Cost::from(usd("0.10")));

    let reclaimed = task.reserve_with(usd("0.40"), &ttl(1)).expect("fits");
    clock.advance(Duration::from_secs(2));
    assert_eq!(store.sweep().expect("sweep").len(), 1);
    let committed = reclaimed.commit(usd("0.25")).expect("fits without a hold");
    assert!(committed.expired);
    assert_eq!(committed.spent, Cost::from(usd("0.25")));
    assert_eq!(committed.returned, Cost::from(Amount::zero(Unit::Usd)));
    assert_eq!(books(&task), (usd("0.55"), zero(), zero()));
    assert_eq!(books(&acme), (usd("0.55"), zero(), zero()));

    // $0.45 left on the task; another caller takes $0.40 of it while the hold is reclaimed.
    let reclaimed = task.reserve_with(usd("0.40"), &ttl(1)).expect("fits");
    clock.advance(Duration::from_secs(2));
    assert_eq!(store.sweep().expect("sweep").len(), 1);
    let _other = task.reserve(usd("0.40")).expect("fits");
    let id = reclaimed.id();
    let error = reclaimed.commit(usd("0.30")).expect_err("does not fit");
    assert!(
        matches!(error.error(), Error::ReservationExpired { hold, .. } if *hold == id),
        "{error}"
    );
    assert!(error.into_guard().is_none(), "the hold has ended");
    assert_eq!(
        books(&task),
        (usd("0.55"), usd("0.40"), zero()),
        "nothing recorded"
    );
}

/// A check that a hard limit would deny reclaims expired holds first, as a reserve does, and
/// reports them once.
pub fn check_reclaims_expired_holds_like_reserve(store: Arc<dyn Store>, clock: &ManualClock) {
    if !supports_all(&*store, &[OpKind::Sweep]) {
        return;
    }
    let (_, _, task) = tree(store.clone(), Limit::hard(usd("1")));
    let stuck = task.reserve_with(usd("0.80"), &ttl(5)).expect("fits");
    assert_eq!(
        task.check(usd("0.50")).expect("check").denied_by(),
        Some("acme/team/task"),
        "the hold is live before its deadline"
    );
    clock.advance(Duration::from_secs(6));
    let check = task.check(usd("0.50")).expect("check");
    assert!(check.fits(), "{check:?}");
    assert_eq!(check.expired.len(), 1);
    assert_eq!(check.expired[0].hold, stuck.id());
    assert_eq!(books(&task), (zero(), zero(), zero()));
    assert!(store.sweep().expect("sweep").is_empty(), "reported once");
    drop(stuck);
}

/// A hold reclaimed by expiry is cancelled as `Expired` with its deadline; one past its deadline
/// but not reclaimed is not cancelled.
pub fn a_reclaimed_hold_is_cancelled_as_expired(store: Arc<dyn Store>, clock: &ManualClock) {
    if !supports_all(&*store, &[OpKind::Sweep]) {
        return;
    }
    let (_, _, task) = tree(store.clone(), Limit::hard(usd("1")));
    let guard = task.reserve_with(usd("0.50"), &ttl(5)).expect("fits");
    let deadline = guard.expires_at();
    clock.advance(Duration::from_secs(6));
    assert_eq!(
        store.cancellation(guard.id()).expect("cancellation"),
        None,
        "past its deadline but still live"
    );
    let epoch = store.cancel_epoch();
    assert_eq!(store.sweep().expect("sweep").len(), 1);
    // A store without a counter (`cancel_epoch` is `None`) is asked every time instead.
    if epoch.is_some() {
        assert_ne!(store.cancel_epoch(), epoch, "a reclaim must move the epoch");
    }
    assert_eq!(
        store.cancellation(guard.id()).expect("cancellation"),
        Some(Cancellation::Expired {
            expired_at: deadline
        })
    );
    assert!(guard.is_cancelled());
}
