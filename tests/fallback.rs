//! Fallback chains: every attempt pays its own cost, retryable errors move on, denials move
//! on, and the chain stops exactly at the cap.

use budget_guard::{Amount, Budget, FallbackError, Ladder, Limit, Outcome, Unit};

fn usd(text: &str) -> Amount {
    Amount::usd(text).unwrap()
}

#[derive(Debug, PartialEq)]
enum CallError {
    Overloaded,
    BadRequest,
}

fn chain() -> Ladder {
    Ladder::new()
        .tier("primary", usd("0.30"))
        .tier("secondary", usd("0.20"))
        .tier("cheap", usd("0.05"))
}

fn retryable(error: &CallError) -> bool {
    *error == CallError::Overloaded
}

#[test]
fn failed_attempts_that_cost_money_are_charged() {
    let budget = Budget::builder("task", Limit::hard(usd("1")))
        .build()
        .unwrap();
    let served = chain()
        .fallback(&budget, retryable, |tier, guard| match tier.name() {
            "primary" => {
                guard.record(usd("0.02")).unwrap(); // billed for the prompt before failing
                Err(CallError::Overloaded)
            }
            "secondary" => Err(CallError::Overloaded), // failed for free
            _ => Ok(("answer", usd("0.04"))),
        })
        .unwrap();
    assert_eq!(&*served.tier, "cheap");
    assert_eq!(served.value, "answer");
    let charged: Vec<Amount> = served
        .attempts
        .iter()
        .map(|a| a.charged.get(Unit::Usd).unwrap_or(Amount::zero(Unit::Usd)))
        .collect();
    assert_eq!(charged, [usd("0.02"), usd("0"), usd("0.04")]);
    let balance = budget.balance(Unit::Usd).unwrap();
    assert_eq!(balance.spent, usd("0.06"));
    assert_eq!(balance.reserved, usd("0"));
}

#[test]
fn a_non_retryable_error_stops_the_chain() {
    let budget = Budget::builder("task", Limit::hard(usd("1")))
        .build()
        .unwrap();
    let mut calls = 0;
    let error = chain()
        .fallback(&budget, retryable, |_, _| {
            calls += 1;
            Err::<((), Amount), _>(CallError::BadRequest)
        })
        .unwrap_err();
    assert_eq!(calls, 1);
    assert!(matches!(error, FallbackError::Failed { .. }));
    assert_eq!(error.last_error(), Some(&CallError::BadRequest));
}

#[test]
fn denied_tiers_are_skipped_without_running() {
    let budget = Budget::builder("task", Limit::hard(usd("0.25")))
        .build()
        .unwrap();
    let served = chain()
        .fallback(&budget, retryable, |tier, _| {
            Ok((tier.name().to_owned(), usd("0.2")))
        })
        .unwrap();
    assert_eq!(&*served.tier, "secondary");
    assert!(matches!(served.attempts[0].outcome, Outcome::Denied(_)));
    assert!(matches!(served.attempts[1].outcome, Outcome::Served));
}

#[test]
fn repeated_chains_stop_exactly_at_the_cap() {
    // Every attempt charges what it holds; the primary always fails after being billed.
    let budget = Budget::builder("task", Limit::hard(usd("1")))
        .build()
        .unwrap();
    let mut served = 0;
    loop {
        let result = chain().fallback(&budget, retryable, |tier, guard| {
            if tier.name() == "primary" {
                guard.record(usd("0.30")).unwrap();
                return Err(CallError::Overloaded);
            }
            Ok(((), tier.estimate()))
        });
        match result {
            Ok(_) => served += 1,
            Err(error) => {
                assert!(matches!(error, FallbackError::Exhausted { .. }));
                assert!(
                    error
                        .attempts()
                        .iter()
                        .all(|a| matches!(a.outcome, Outcome::Denied(_)))
                );
                break;
            }
        }
        assert!(served < 100, "the chain must stop");
    }
    let balance = budget.balance(Unit::Usd).unwrap();
    // 0.30 + 0.20, 0.30 + 0.20 = 1.00 exactly; then nothing fits.
    assert_eq!(served, 2);
    assert_eq!(balance.spent, usd("1"));
    assert_eq!(balance.reserved, usd("0"));
    assert_eq!(balance.debt, usd("0"));
}
