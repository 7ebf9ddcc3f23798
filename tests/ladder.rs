//! `Ladder`: the best tier that fits, at many remaining amounts, and a reserve that falls to
//! the next tier instead of racing.

use std::sync::{Arc, Barrier};
use std::thread;

use budget_guard::{Amount, Budget, Error, Ladder, Limit, Tier, Unit};

fn usd(text: &str) -> Amount {
    Amount::usd(text).unwrap()
}

fn ladder() -> Ladder {
    Ladder::new()
        .with(Tier::new("premium", usd("0.50")).while_usage_below(80))
        .with(Tier::new("standard", usd("0.10")))
        .with(Tier::new("economy", usd("0.01")))
}

/// The tier a reference rule picks for a $10 limit with `spent` already spent.
fn expected(spent_cents: i64) -> Option<&'static str> {
    let remaining = 1_000 - spent_cents;
    let usage_percent = spent_cents * 100 / 1_000;
    if usage_percent < 80 && remaining >= 50 {
        Some("premium")
    } else if remaining >= 10 {
        Some("standard")
    } else if remaining >= 1 {
        Some("economy")
    } else {
        None
    }
}

#[test]
fn select_and_reserve_pick_the_best_affordable_tier_at_every_remaining_amount() {
    let ladder = ladder();
    for spent_cents in (0..=1_000)
        .step_by(7)
        .chain([790, 799, 800, 890, 900, 990, 999, 1_000])
    {
        let budget = Budget::builder("agent", Limit::hard(usd("10")))
            .build()
            .unwrap();
        if spent_cents > 0 {
            let spent = Amount::try_from_minor(spent_cents * 10_000_000, Unit::Usd).unwrap();
            budget.reserve(spent).unwrap().commit(spent).unwrap();
        }
        let want = expected(spent_cents);
        let selected = ladder
            .select(&budget)
            .ok()
            .map(|tier| tier.name().to_owned());
        assert_eq!(
            selected.as_deref(),
            want,
            "select at {spent_cents} cents spent"
        );
        match ladder.reserve(&budget) {
            Ok((tier, guard)) => {
                assert_eq!(
                    Some(tier.name()),
                    want,
                    "reserve at {spent_cents} cents spent"
                );
                assert_eq!(guard.held(), tier.estimate());
            }
            Err(error) => {
                assert_eq!(want, None, "reserve at {spent_cents} cents: {error}");
                assert!(error.is_denial());
            }
        }
    }
}

#[test]
fn the_rule_uses_the_tightest_node_of_the_path() {
    let org = Budget::builder("org", Limit::hard(usd("10")))
        .child("agent", Limit::hard(usd("100")))
        .build()
        .unwrap();
    let agent = org.at("agent").unwrap();
    agent
        .reserve(usd("8.5"))
        .unwrap()
        .commit(usd("8.5"))
        .unwrap(); // org at 85 %
    assert_eq!(ladder().select(&agent).unwrap().name(), "standard");
}

#[test]
fn nothing_fits_returns_the_last_denial_and_rules_alone_say_so() {
    let budget = Budget::builder("b", Limit::hard(usd("0.005")))
        .build()
        .unwrap();
    let error = ladder().select(&budget).unwrap_err();
    assert_eq!(error.exceeded().unwrap().requested, usd("0.01"));
    let ruled = Ladder::new().with(Tier::new("only", usd("0.001")).while_usage_below(0));
    assert!(matches!(
        ruled.select(&budget),
        Err(Error::NoTierAllowed { tiers: 1 })
    ));
    assert!(matches!(
        Ladder::new().reserve(&budget),
        Err(Error::NoTierAllowed { tiers: 0 })
    ));
}

#[test]
fn racing_reserves_fall_to_the_next_tier_and_never_pass_the_limit() {
    // $1.05 fits two premium calls ($0.50) and then one of $0.05 economy; 8 threads race.
    let ladder = Ladder::new()
        .tier("premium", usd("0.50"))
        .tier("economy", usd("0.05"));
    let budget = Budget::builder("b", Limit::hard(usd("1.05")))
        .build()
        .unwrap();
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (ladder, budget, barrier) = (ladder.clone(), budget.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                ladder
                    .reserve(&budget)
                    .map(|(tier, guard)| (tier.name().to_owned(), guard.into_owned()))
            })
        })
        .collect();
    let mut tiers: Vec<String> = Vec::new();
    let mut guards = Vec::new();
    for handle in handles {
        if let Ok((tier, guard)) = handle.join().unwrap() {
            tiers.push(tier);
            guards.push(guard);
        }
    }
    tiers.sort();
    assert_eq!(tiers, ["economy", "premium", "premium"]);
    assert_eq!(budget.balance(Unit::Usd).unwrap().reserved, usd("1.05"));
}
