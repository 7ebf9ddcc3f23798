//! The priced call (`reserve_for` + `commit_usage`) through the public API, at the edges the
//! integer pricing (`src/price/rates.rs`) and the metering path (`src/meter.rs`) handle: prices
//! that are not a whole number of nano-dollars per token, rounding up once, overflow as a typed
//! error that holds or commits nothing, and the units a commit carries.

use budget_guard::{
    Amount, Budget, CommitUsageError, Limit, ModelPrice, PriceTable, PricingError, Unit, Usage,
};
use rust_decimal::Decimal;

fn dec(text: &str) -> Decimal {
    Decimal::from_str_exact(text).unwrap()
}

fn usd(text: &str) -> Amount {
    Amount::usd(text).unwrap()
}

fn budget(limit: &str) -> Budget {
    Budget::builder("task", Limit::hard(usd(limit)))
        .build()
        .unwrap()
}

/// No unit of `task` has anything reserved.
fn assert_nothing_held(task: &Budget) {
    for unit in Unit::ALL {
        let reserved = task.balance(unit).unwrap().reserved;
        assert!(reserved.is_zero(), "{unit:?}: {reserved} reserved");
    }
}

/// $0.0375 per million input tokens is 37.5 nano-dollars per token: a fraction of the minor
/// unit, priced exactly and rounded up once per call.
fn fractional() -> PriceTable {
    PriceTable::new().with(
        "flash-lite",
        ModelPrice::per_million(dec("0.0375"), dec("0.15")).unwrap(),
    )
}

#[test]
fn a_fractional_nano_price_is_exact_and_rounded_up_once() {
    let prices = fractional();
    let task = budget("1");
    // Worst case: 3 × 37.5 + 1 × 150 = 262.5 nano-dollars, held as 263.
    let guard = task.reserve_for(&prices, "flash-lite", 3, 1).unwrap();
    assert_eq!(guard.held().get(Unit::Usd), Some(usd("0.000000263")));
    assert_eq!(guard.held().get(Unit::Tokens), Some(Amount::tokens(4)));
    assert_eq!(guard.held().get(Unit::Requests), Some(Amount::requests(1)));
    // Actual: 1 × 37.5 + 1 × 150 = 187.5, committed as 188; the rest returns.
    let price = prices.get("flash-lite").unwrap();
    guard.commit_usage(price, &Usage::new(1, 1)).unwrap();
    let balance = task.balance(Unit::Usd).unwrap();
    assert_eq!(balance.spent, usd("0.000000188"));
    assert_eq!(balance.reserved, usd("0"));
    // Two tokens at 37.5 are exactly 75: nothing to round.
    assert_eq!(price.cost(&Usage::new(2, 0)).unwrap(), usd("0.000000075"));
}

#[test]
fn a_worst_case_past_i64_nano_dollars_is_an_overflow_and_holds_nothing() {
    let prices = PriceTable::new().with(
        "dear",
        ModelPrice::per_token(dec("1000"), dec("1000")).unwrap(),
    );
    let task = budget("1000000000");
    // 9,223,372 tokens at $1,000 is $9,223,372,000 = 9.223372e18 nano-dollars: fits i64.
    let fits = prices
        .get("dear")
        .unwrap()
        .worst_case(9_223_372, 0)
        .unwrap();
    assert_eq!(fits, usd("9223372000"));
    // One more token is past i64::MAX nano-dollars ($9,223,372,036.854775807).
    let error = task.reserve_for(&prices, "dear", 9_223_373, 0).unwrap_err();
    assert!(
        matches!(
            error,
            PricingError::Overflow {
                operation: "price a usage report"
            }
        ),
        "{error:?}"
    );
    assert_nothing_held(&task);
}

#[test]
fn a_token_count_past_i64_is_an_overflow_and_holds_nothing() {
    let free = PriceTable::new().with(
        "free",
        ModelPrice::per_token(dec("0"), dec("0.000000001")).unwrap(),
    );
    let task = budget("1000000000");
    for (prompt, max) in [(u64::MAX, 1), (1 << 63, 0)] {
        let error = task.reserve_for(&free, "free", prompt, max).unwrap_err();
        assert!(
            matches!(
                error,
                PricingError::Overflow {
                    operation: "count tokens"
                }
            ),
            "{prompt} + {max}: {error:?}"
        );
    }
    assert_nothing_held(&task);
}

#[test]
fn usage_that_cannot_be_priced_commits_nothing_and_hands_the_guard_back() {
    let prices = fractional();
    let price = prices.get("flash-lite").unwrap();
    let task = budget("1");
    let guard = task.reserve_for(&prices, "flash-lite", 1_000, 100).unwrap();
    // 37.5 × (2^64 − 1) nano-dollars is far past i64.
    let Err(CommitUsageError::Pricing { error, guard }) =
        guard.commit_usage(price, &Usage::new(u64::MAX, 0))
    else {
        panic!("an unpriceable usage must not commit");
    };
    assert!(matches!(error, PricingError::Overflow { .. }), "{error:?}");
    assert_eq!(task.balance(Unit::Usd).unwrap().spent, usd("0"));
    // 1000 × 37.5 + 100 × 150 = 52,500 nano-dollars still held by the returned guard.
    assert_eq!(task.balance(Unit::Usd).unwrap().reserved, usd("0.0000525"));
    // A usage whose dollars fit but whose token total does not fit i64 tokens: the same.
    let zero_input = PriceTable::new().with(
        "zero-input",
        ModelPrice::per_token(dec("0"), dec("0.000001")).unwrap(),
    );
    let Err(CommitUsageError::Pricing { error, guard }) = guard.commit_usage(
        zero_input.get("zero-input").unwrap(),
        &Usage::new(1 << 63, 1),
    ) else {
        panic!("a token total past i64 must not commit");
    };
    assert!(
        matches!(
            error,
            PricingError::Overflow {
                operation: "count tokens"
            }
        ),
        "{error:?}"
    );
    // The guard is still live and commits a sane report.
    guard.commit_usage(price, &Usage::new(800, 50)).unwrap();
    // 800 × 37.5 + 50 × 150 = 30,000 + 7,500
    let balance = task.balance(Unit::Usd).unwrap();
    assert_eq!(balance.spent, usd("0.0000375"));
    assert_eq!(balance.reserved, usd("0"));
    assert_eq!(
        task.balance(Unit::Tokens).unwrap().spent,
        Amount::tokens(850)
    );
}

#[test]
fn commit_usage_commits_exactly_the_units_the_guard_holds() {
    let prices = fractional();
    let price = prices.get("flash-lite").unwrap();
    let task = budget("1");
    // A plain dollar hold: the usage's tokens are not committed, only its dollars.
    let guard = task.reserve(usd("0.001")).unwrap();
    let committed = guard.commit_usage(price, &Usage::new(4, 2)).unwrap();
    // 4 × 37.5 + 2 × 150 = 450
    assert_eq!(committed.spent.get(Unit::Usd), Some(usd("0.00000045")));
    assert_eq!(committed.spent.get(Unit::Tokens), None);
    assert_eq!(committed.spent.get(Unit::Requests), None);
    // A metered hold commits dollars, the token total and the request it held.
    let guard = task.reserve_for(&prices, "flash-lite", 10, 10).unwrap();
    let committed = guard
        .commit_usage(price, &Usage::new(4, 2).with_cached_input(6))
        .unwrap();
    // Cached input falls back to the input price: (4 + 6) × 37.5 + 2 × 150 = 675
    assert_eq!(committed.spent.get(Unit::Usd), Some(usd("0.000000675")));
    assert_eq!(committed.spent.get(Unit::Tokens), Some(Amount::tokens(12)));
    assert_eq!(
        committed.spent.get(Unit::Requests),
        Some(Amount::requests(1))
    );
}
