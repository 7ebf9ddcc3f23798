//! Threshold levels and event delivery: exactly once per upward crossing of spend, re-armed when
//! spend falls back (credit, period), delivered after the store call to callbacks (subtree
//! scope) and channels. The spend-versus-holds rules themselves are in `tests/alerts.rs`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;

use budget_guard::{Amount, Budget, Event, Limit, ThresholdBasis, ThresholdEvent, Unit};

fn usd(text: &str) -> Amount {
    Amount::usd(text).unwrap()
}

/// Collects `(node, level)` of every threshold event seen by a callback on `budget`.
fn recorder(budget: &Budget) -> Arc<Mutex<Vec<(String, u16)>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    budget.on_threshold(move |event: &ThresholdEvent| {
        log.lock()
            .unwrap()
            .push((event.node.to_string(), event.level));
    });
    seen
}

#[test]
fn eight_threads_crossing_together_fire_each_level_exactly_once() {
    for round in 0..20 {
        let tokens = Limit::hard(Amount::tokens(800)).with_thresholds([50, 80, 95]);
        let budget = Budget::builder("run", tokens).build().unwrap();
        let seen = recorder(&budget);
        let barrier = Arc::new(Barrier::new(8));
        let workers: Vec<_> = (0..8)
            .map(|_| {
                let budget = budget.clone();
                let barrier = barrier.clone();
                thread::spawn(move || {
                    barrier.wait();
                    let guard = budget.reserve(Amount::tokens(100)).unwrap();
                    guard.commit(Amount::tokens(100)).unwrap();
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
        let mut levels: Vec<u16> = seen.lock().unwrap().drain(..).map(|(_, l)| l).collect();
        levels.sort_unstable();
        assert_eq!(levels, [50, 80, 95], "round {round}");
        assert_eq!(
            budget.balance(Unit::Tokens).unwrap().spent,
            Amount::tokens(800)
        );
    }
}

#[test]
fn a_level_fires_once_until_usage_drops_below_it() {
    let budget = Budget::builder("b", Limit::hard(usd("10")).with_thresholds([50]))
        .build()
        .unwrap();
    let seen = recorder(&budget);
    budget.reserve(usd("6")).unwrap().commit(usd("6")).unwrap(); // 60 %: fires
    budget.reserve(usd("1")).unwrap().commit(usd("1")).unwrap(); // 70 %: already crossed
    assert_eq!(seen.lock().unwrap().len(), 1);
    budget.credit(usd("10")).unwrap(); // 7 of 20 = 35 %: re-armed
    budget.reserve(usd("4")).unwrap().commit(usd("4")).unwrap(); // 55 %: fires again
    assert_eq!(*seen.lock().unwrap(), [("b".into(), 50), ("b".into(), 50)]);
}

#[test]
fn the_payload_carries_the_figures_after_the_operation() {
    let early = Limit::hard(usd("10"))
        .with_thresholds([50])
        .with_threshold_basis(ThresholdBasis::SpentAndHeld);
    let budget = Budget::builder("org", early).build().unwrap();
    let (_id, events) = budget.subscribe();
    budget.reserve(usd("2")).unwrap().commit(usd("2")).unwrap();
    let _guard = budget.reserve(usd("4")).unwrap();
    let Event::ThresholdCrossed(event) = events.try_recv().unwrap() else {
        panic!("expected a threshold event");
    };
    assert_eq!(&*event.node, "org");
    assert_eq!(event.unit, Unit::Usd);
    assert_eq!(event.level, 50);
    assert_eq!(event.limit, usd("10"));
    assert_eq!(event.basis, ThresholdBasis::SpentAndHeld);
    assert_eq!(event.spent, usd("2"));
    assert_eq!(event.reserved, usd("4"));
    assert_eq!(event.remaining, usd("4"));
    assert_eq!(event.percent_used, 60);
    assert_eq!(event.projected_depletion, None);
    assert!(events.try_recv().is_err());
}

#[test]
fn ancestors_report_their_own_levels_and_callbacks_see_their_subtree() {
    let org = Budget::builder("org", Limit::hard(usd("100")).with_thresholds([50]))
        .child("a", Limit::hard(usd("10")).with_thresholds([50]))
        .child("b", Limit::hard(usd("100")))
        .build()
        .unwrap();
    let a = org.at("a").unwrap();
    let b = org.at("b").unwrap();
    let at_org = recorder(&org);
    let at_a = recorder(&a);
    let at_b = recorder(&b);
    a.reserve(usd("6")).unwrap().commit(usd("6")).unwrap(); // a at 60 %, org at 6 %
    b.reserve(usd("50")).unwrap().commit(usd("50")).unwrap(); // org at 56 %
    assert_eq!(*at_a.lock().unwrap(), [("org/a".into(), 50)]);
    assert_eq!(
        *at_org.lock().unwrap(),
        [("org/a".into(), 50), ("org".into(), 50)]
    );
    assert!(
        at_b.lock().unwrap().is_empty(),
        "org's level is not in b's subtree"
    );
}

#[test]
fn a_callback_may_reserve_on_the_same_budget() {
    let budget = Budget::builder("b", Limit::hard(usd("10")).with_thresholds([50, 90]))
        .build()
        .unwrap();
    let inner = budget.clone();
    let nested = Arc::new(AtomicUsize::new(0));
    let count = nested.clone();
    budget.on_threshold(move |event| {
        if event.level == 50 {
            // Re-entering the store from a callback: no lock is held here.
            let guard = inner.reserve(usd("3")).expect("room left");
            guard.commit(usd("3")).unwrap(); // takes usage to 90 %: a nested event
            count.fetch_add(1, Ordering::SeqCst);
        }
    });
    let seen = recorder(&budget);
    budget.reserve(usd("6")).unwrap().commit(usd("6")).unwrap();
    assert_eq!(nested.load(Ordering::SeqCst), 1);
    assert_eq!(budget.balance(Unit::Usd).unwrap().spent, usd("9"));
    let mut levels: Vec<u16> = seen.lock().unwrap().iter().map(|(_, l)| *l).collect();
    levels.sort_unstable();
    assert_eq!(levels, [50, 90]);
}

#[test]
fn a_panicking_callback_is_caught_and_changes_nothing() {
    let budget = Budget::builder("b", Limit::hard(usd("10")).with_thresholds([50]))
        .build()
        .unwrap();
    budget.on_event(|_| panic!("callback bug"));
    let seen = recorder(&budget);
    let guard = budget.reserve(usd("6")).unwrap();
    guard.commit(usd("5")).unwrap();
    let balance = budget.balance(Unit::Usd).unwrap();
    assert_eq!(balance.spent, usd("5"));
    assert_eq!(balance.reserved, usd("0"));
    assert_eq!(seen.lock().unwrap().len(), 1, "later callbacks still run");
    // The budget keeps working.
    budget.reserve(usd("1")).unwrap().release().unwrap();
}

#[test]
fn unsubscribed_callbacks_and_dropped_channels_stop_receiving() {
    let budget = Budget::builder("b", Limit::hard(usd("1"))).build().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    let id = budget.on_event(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let (_, receiver) = budget.subscribe();
    drop(receiver);
    assert!(budget.reserve(usd("2")).is_err());
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert!(budget.unsubscribe(id));
    assert!(!budget.unsubscribe(id));
    assert!(budget.reserve(usd("2")).is_err());
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[test]
fn denials_overages_and_released_holds_are_events() {
    let org = Budget::builder("org", Limit::hard(usd("1")))
        .child(
            "task",
            Limit::hard(usd("1")).with_overage(budget_guard::OveragePolicy::AllowIfAvailable),
        )
        .build()
        .unwrap();
    let task = org.at("task").unwrap();
    let (_, events) = org.subscribe();
    assert!(task.reserve(usd("2")).is_err());
    task.reserve(usd("0.10"))
        .unwrap()
        .commit(usd("0.20"))
        .unwrap();
    drop(task.reserve(usd("0.10")).unwrap());
    let kinds: Vec<Event> = events.try_iter().collect();
    assert!(
        matches!(&kinds[0], Event::ReserveDenied(d) if &*d.limiting_node == "org/task" && &*d.node == "org/task")
    );
    assert!(matches!(&kinds[1], Event::OverageAllowed(o) if !o.rejected));
    assert!(matches!(&kinds[2], Event::HoldReleased(r) if r.dropped));
    assert_eq!(kinds.len(), 3);
}

#[test]
fn a_soft_limit_is_a_level_of_its_own() {
    let budget = Budget::builder("b", Limit::soft(usd("1"))).build().unwrap();
    let seen = recorder(&budget);
    budget
        .reserve(usd("0.60"))
        .unwrap()
        .commit(usd("0.60"))
        .unwrap();
    budget
        .reserve(usd("0.60"))
        .unwrap()
        .commit(usd("0.60"))
        .unwrap();
    assert_eq!(*seen.lock().unwrap(), [("b".into(), 100)]);
}

#[test]
fn a_lowered_limit_reports_levels_at_the_next_operation() {
    let budget = Budget::builder("b", Limit::hard(usd("10")).with_thresholds([50]))
        .build()
        .unwrap();
    let seen = recorder(&budget);
    budget.reserve(usd("4")).unwrap().commit(usd("4")).unwrap(); // 40 %
    budget.debit(usd("4")).unwrap(); // 4 of 6 = 66 %
    assert!(seen.lock().unwrap().is_empty());
    budget
        .reserve(usd("0.5"))
        .unwrap()
        .commit(usd("0.5"))
        .unwrap();
    assert_eq!(*seen.lock().unwrap(), [("b".into(), 50)]);
}

#[test]
fn unusable_levels_are_refused() {
    let error = Budget::builder("b", Limit::hard(usd("1")).with_thresholds([0, 50]))
        .build()
        .unwrap_err();
    assert!(matches!(
        error,
        budget_guard::Error::InvalidThreshold { level: 0, .. }
    ));
    let error = Budget::builder("b", Limit::hard(usd("1")).with_thresholds(1..=9))
        .build()
        .unwrap_err();
    assert!(matches!(
        error,
        budget_guard::Error::InvalidThreshold { level: 9, .. }
    ));
}

#[test]
fn a_restored_store_does_not_repeat_crossed_levels() {
    let budget = Budget::builder("b", Limit::hard(usd("10")).with_thresholds([50]))
        .build()
        .unwrap();
    budget.reserve(usd("6")).unwrap().commit(usd("6")).unwrap();
    let snapshot = budget.snapshot().unwrap();
    budget.store().restore(&snapshot).unwrap();
    let budget = Budget::open(budget.store().clone(), "b").unwrap();
    let seen = recorder(&budget);
    budget.reserve(usd("1")).unwrap().commit(usd("1")).unwrap();
    assert!(seen.lock().unwrap().is_empty());
}
