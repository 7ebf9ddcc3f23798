//! Amount literals checked at compile time, and builder steps that read as configuration.
//! (A bad literal failing to compile is shown by the `compile_fail` doctests on the macros.)

use budget_guard::top_up::TopUp;
use budget_guard::{Amount, Budget, Limit, Unit, requests, tokens, usd};

const PER_CALL: Amount = usd!("0.02");
const CONTEXT: Amount = tokens!(128_000);

#[test]
fn literals_equal_the_runtime_parser() {
    assert_eq!(usd!("0.10"), Amount::usd("0.10").unwrap());
    assert_eq!(usd!("12"), Amount::usd("12").unwrap());
    assert_eq!(usd!("$0.000000001").minor_units(), 1);
    assert_eq!(usd!("1_000.50"), Amount::usd("1000.5").unwrap());
    assert_eq!(usd!("9223372036.854775807").minor_units(), i64::MAX);
    assert_eq!(tokens!(3_000), Amount::tokens(3_000));
    assert_eq!(tokens!(5_000_000_000).minor_units(), 5_000_000_000);
    assert_eq!(requests!(60), Amount::requests(60));
    assert_eq!(PER_CALL.to_string(), "$0.02");
    assert_eq!(CONTEXT.unit(), Unit::Tokens);
}

#[test]
fn a_budget_reads_without_question_marks() {
    let agent = Budget::builder("agent", Limit::hard(usd!("0.10")))
        .build()
        .unwrap();
    agent
        .reserve(PER_CALL)
        .unwrap()
        .commit(usd!("0.015"))
        .unwrap();
    assert_eq!(agent.balance(Unit::Usd).unwrap().spent, usd!("0.015"));
    assert_eq!(
        agent.balance(Unit::Usd).unwrap().remaining,
        Some(usd!("0.085"))
    );
}

#[test]
fn top_up_rules_read_as_configuration() {
    let rule = TopUp::when_below(usd!("2")).adding(usd!("5")).at_most(3);
    assert_eq!(rule.threshold(), usd!("2"));
    assert_eq!(rule.amount(), usd!("5"));
    assert_eq!(
        rule.to_string(),
        "add $5.00 when below $2.00, at most 3 times"
    );
    #[allow(deprecated)]
    let old = TopUp::when_below(usd!("2")).add(usd!("5")).at_most(3);
    assert_eq!(old, rule, "the deprecated name builds the same rule");
}
