//! `Budget::run`: Ok commits the actual, Err releases (keeping recorded spend), a panic
//! releases and keeps unwinding.

use std::panic::{AssertUnwindSafe, catch_unwind};

use budget_guard::{Amount, Budget, Error, Limit, RunError, Unit};

fn usd(text: &str) -> Amount {
    Amount::usd(text).unwrap()
}

fn task() -> Budget {
    Budget::builder("task", Limit::hard(usd("1")))
        .build()
        .unwrap()
}

fn figures(budget: &Budget) -> (Amount, Amount) {
    let balance = budget.balance(Unit::Usd).unwrap();
    (balance.spent, balance.reserved)
}

#[test]
fn ok_commits_the_actual_and_returns_the_rest() {
    let task = task();
    let value = task
        .run(usd("0.50"), |guard| {
            assert_eq!(guard.held().get(Unit::Usd), Some(usd("0.50")));
            Ok::<_, String>((42, usd("0.20")))
        })
        .unwrap();
    assert_eq!(value, 42);
    assert_eq!(figures(&task), (usd("0.20"), usd("0")));
}

#[test]
fn err_releases_the_hold() {
    let task = task();
    let error = task
        .run(usd("0.50"), |_| Err::<((), Amount), _>("boom"))
        .unwrap_err();
    assert!(matches!(error, RunError::Operation("boom")));
    assert_eq!(figures(&task), (usd("0"), usd("0")));
}

#[test]
fn err_keeps_the_spend_the_failed_call_recorded() {
    let task = task();
    let error = task
        .run(usd("0.50"), |guard| {
            guard.record(usd("0.05")).unwrap();
            Err::<((), Amount), _>("timed out after streaming")
        })
        .unwrap_err();
    assert!(error.operation().is_some());
    assert_eq!(figures(&task), (usd("0.05"), usd("0")));
}

#[test]
fn a_denied_reserve_does_not_run_the_closure() {
    let task = task();
    let mut ran = false;
    let error = task
        .run(usd("2"), |_| {
            ran = true;
            Ok::<_, String>(((), usd("0.1")))
        })
        .unwrap_err();
    assert!(!ran);
    assert!(error.is_denial());
    assert!(matches!(error.budget(), Some(Error::BudgetExceeded(_))));
}

#[test]
fn a_panic_releases_the_hold_and_keeps_unwinding() {
    let task = task();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        task.run(usd("0.50"), |_| -> Result<((), Amount), String> {
            panic!("bug in the tool call")
        })
    }));
    assert!(outcome.is_err(), "the panic reached the caller");
    assert_eq!(figures(&task), (usd("0"), usd("0")));
    assert!(
        task.reserve(usd("1")).is_ok(),
        "the whole limit is free again"
    );
}

#[test]
fn a_failed_commit_is_a_budget_error() {
    let task = task();
    // Reject policy: an actual above the hold is recorded (as debt) and reported.
    let error = task
        .run(usd("0.10"), |_| Ok::<_, String>(((), usd("0.30"))))
        .unwrap_err();
    assert!(matches!(
        error.budget(),
        Some(Error::OverageRejected { .. })
    ));
    let balance = task.balance(Unit::Usd).unwrap();
    assert_eq!(balance.spent, usd("0.10"));
    assert_eq!(balance.debt, usd("0.20"));
}
