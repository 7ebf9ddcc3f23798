//! The tokio feature: run_async, the async fallback chain, guards across `.await`, the event
//! stream, and cancellation releasing holds (tokio's paused clock: no real sleeps).
#![cfg(feature = "tokio")]

use std::time::Duration;

use budget_guard::{Amount, Budget, Event, Guard, Ladder, Limit, Unit};

fn usd(text: &str) -> Amount {
    Amount::usd(text).unwrap()
}

fn task() -> Budget {
    Budget::builder("task", Limit::hard(usd("1")))
        .build()
        .unwrap()
}

fn reserved(budget: &Budget) -> Amount {
    budget.balance(Unit::Usd).unwrap().reserved
}

#[test]
fn guards_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Guard<'static>>();
    assert_send_sync::<Guard<'_>>();
    assert_send_sync::<Budget>();
}

#[tokio::test(start_paused = true)]
async fn run_async_commits_across_awaits_in_a_spawned_task() {
    let budget = task();
    let handle = tokio::spawn({
        let budget = budget.clone();
        async move {
            budget
                .run_async(usd("0.50"), async |guard| {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    guard.record(usd("0.10")).unwrap();
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    Ok::<_, String>((7, usd("0.25")))
                })
                .await
        }
    });
    assert_eq!(handle.await.unwrap().unwrap(), 7);
    let balance = budget.balance(Unit::Usd).unwrap();
    assert_eq!(balance.spent, usd("0.25"));
    assert_eq!(balance.reserved, usd("0"));
}

#[tokio::test(start_paused = true)]
async fn a_timeout_releases_the_hold_of_the_cancelled_future() {
    let budget = task();
    let slow = budget.run_async(usd("0.80"), async |_guard| {
        tokio::time::sleep(Duration::from_secs(3_600)).await;
        Ok::<_, String>(((), usd("0.80")))
    });
    let outcome = tokio::time::timeout(Duration::from_secs(30), slow).await;
    assert!(outcome.is_err(), "timed out");
    assert_eq!(reserved(&budget), usd("0"));
    assert_eq!(budget.balance(Unit::Usd).unwrap().spent, usd("0"));
}

#[tokio::test(start_paused = true)]
async fn a_select_that_loses_releases_the_hold_and_the_event_says_so() {
    let budget = task();
    let (_, mut events) = budget.subscribe_async();
    let guard = budget.reserve_owned(usd("0.40")).unwrap();
    let held = reserved(&budget);
    assert_eq!(held, usd("0.40"));
    tokio::select! {
        _ = async move {
            let _guard = guard; // moved into the losing branch
            tokio::time::sleep(Duration::from_secs(60)).await;
        } => unreachable!("the timer branch wins"),
        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
    }
    assert_eq!(reserved(&budget), usd("0"));
    match events.recv().await {
        Some(Event::HoldReleased(released)) => assert!(released.dropped),
        other => panic!("expected a released hold, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn an_aborted_task_releases_its_hold() {
    let budget = task();
    let handle = tokio::spawn({
        let budget = budget.clone();
        async move {
            let guard = budget.reserve_owned(usd("0.70")).unwrap();
            tokio::time::sleep(Duration::from_secs(3_600)).await;
            guard.commit(usd("0.70")).unwrap();
        }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(reserved(&budget), usd("0.70"));
    handle.abort();
    assert!(handle.await.unwrap_err().is_cancelled());
    assert_eq!(reserved(&budget), usd("0"));
}

#[tokio::test(start_paused = true)]
async fn the_async_fallback_charges_failed_attempts_and_moves_on() {
    let budget = task();
    let ladder = Ladder::new()
        .tier("primary", usd("0.30"))
        .tier("backup", usd("0.10"));
    let served = ladder
        .fallback_async(
            &budget,
            |error: &&str| *error == "503",
            async |tier, guard| {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if tier.name() == "primary" {
                    guard.record(usd("0.01")).unwrap();
                    return Err("503");
                }
                Ok(("ok", usd("0.05")))
            },
        )
        .await
        .unwrap();
    assert_eq!(&*served.tier, "backup");
    assert_eq!(budget.balance(Unit::Usd).unwrap().spent, usd("0.06"));
    assert_eq!(reserved(&budget), usd("0"));
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_fallback_releases_the_attempt_in_flight() {
    let budget = task();
    let ladder = Ladder::new().tier("only", usd("0.50"));
    let chain = ladder.fallback_async(
        &budget,
        |_: &()| true,
        async |_, _| {
            tokio::time::sleep(Duration::from_secs(600)).await;
            Ok(((), usd("0.50")))
        },
    );
    assert!(
        tokio::time::timeout(Duration::from_secs(1), chain)
            .await
            .is_err()
    );
    assert_eq!(reserved(&budget), usd("0"));
}
