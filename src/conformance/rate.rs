//! Request rate limits, checked with the budget in one step.

use std::sync::Arc;
use std::time::Duration;

use super::{books, supports_all, tree, usd};
use crate::clock::ManualClock;
use crate::error::Error;
use crate::op::OpKind;
use crate::policy::Limit;
use crate::rate::RateLimit;
use crate::store::Store;

/// A rate limit is checked with the budget in one step: a reserve the budget denies takes no
/// rate slot, a reserve the rate limit denies holds no money, and the denial's `retry_after` is
/// exact. The limit is part of the snapshot.
pub fn rate_and_budget_denials_take_nothing_from_each_other(
    store: Arc<dyn Store>,
    clock: &ManualClock,
) {
    if !supports_all(&*store, &[OpKind::SetRateLimit]) {
        return;
    }
    let (acme, team, task) = tree(store, Limit::hard(usd("1")));
    let per_minute = RateLimit::per_minute(2).expect("a valid rate limit");
    assert_eq!(team.set_rate_limit(Some(per_minute)).expect("set"), None);
    // Denied by the budget (task has $1): no slot taken.
    let denied = task.reserve(usd("2")).expect_err("over the task's limit");
    assert!(matches!(denied, Error::BudgetExceeded(_)), "{denied}");
    // So both slots are still free.
    task.reserve(usd("0.25"))
        .expect("slot 1")
        .commit(usd("0.25"))
        .expect("commit");
    clock.advance(Duration::from_secs(10));
    task.reserve(usd("0.25"))
        .expect("slot 2")
        .commit(usd("0.25"))
        .expect("commit");
    let before = (books(&acme), books(&team), books(&task));
    // Denied by the rate limit: nothing held anywhere, exact retry time.
    match task.reserve(usd("0.10")) {
        Err(Error::RateLimited {
            node,
            limit,
            window,
            retry_after,
        }) => {
            assert_eq!(&*node, "acme/team");
            assert_eq!((limit, window), (2, Duration::from_secs(60)));
            assert_eq!(
                retry_after,
                Duration::from_secs(50),
                "the first slot frees at 60 s"
            );
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert_eq!((books(&acme), books(&team), books(&task)), before);
    // A sibling path without a rate limit is not affected.
    assert!(acme.reserve(usd("0.10")).is_ok());
    clock.advance(Duration::from_nanos(49_999_999_999));
    assert!(matches!(
        task.reserve(usd("0.10")),
        Err(Error::RateLimited { .. })
    ));
    clock.advance(Duration::from_nanos(1));
    task.reserve(usd("0.10"))
        .expect("the first slot left the window")
        .release()
        .expect("release");
    let snapshot = acme.snapshot().expect("snapshot");
    let node = snapshot
        .nodes
        .iter()
        .find(|node| &*node.path == "acme/team")
        .expect("team in the snapshot");
    assert_eq!(node.rate_limit, Some(per_minute));
    assert_eq!(team.set_rate_limit(None).expect("remove"), Some(per_minute));
}
