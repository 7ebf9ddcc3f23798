//! The integer pricing path ([`Rates`](super::rates::Rates), behind [`ModelPrice::cost`] and
//! [`ModelPrice::worst_case`]) against the exact `Decimal` computation it replaced
//! ([`super::reference`]): same nano-dollars for every input, the same `Overflow` error where
//! that overflowed, for prices of every scale the constructors accept (up to 28 places per
//! token, mantissas up to 96 bits) and token counts from 0 to `u64::MAX`, with many of them
//! placed within a few tokens of the point where the cost stops fitting `i64` nano-dollars.

use proptest::prelude::*;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use super::{ModelPrice, Per, PricingError, reference};
use crate::amount::Amount;
use crate::usage::Usage;

/// The largest mantissa a `Decimal` holds: `2^96 − 1`.
const MAX_MANTISSA: i128 = (1 << 96) - 1;

/// `PROPTEST_CASES` if set (the development loop uses 500), else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(default)
}

/// A quoted price as a caller writes it: any non-negative decimal a `Decimal` holds, with
/// realistic ones (a few digits, up to 4 places: `0.15` per million is 150 nano-dollars per
/// token) frequent, and every mantissa size and scale up to 28 places present.
fn quoted_price() -> impl Strategy<Value = Decimal> {
    let realistic = (0i128..100_000, 0u32..=4);
    let mantissa = prop_oneof![
        6 => 1i128..100_000,
        3 => 1i128..1_000_000_000_000,
        2 => 0i128..=i128::from(u64::MAX),
        2 => 0i128..=MAX_MANTISSA,
        1 => (MAX_MANTISSA - 1_000)..=MAX_MANTISSA,
    ];
    let scale = prop_oneof![3 => 0u32..=12, 2 => 0u32..=28, 1 => 20u32..=28];
    prop_oneof![
        1 => Just((0, 0)),
        4 => realistic,
        6 => (mantissa, scale),
    ]
    .prop_map(|(mantissa, scale)| Decimal::from_i128_with_scale(mantissa, scale))
}

fn per() -> impl Strategy<Value = Per> {
    prop_oneof![Just(Per::Token), Just(Per::Thousand), Just(Per::Million)]
}

/// A model price built through the public constructors' path (input and output, then each
/// optional price or not); quotes a constructor refuses (too many places once divided) are left
/// out, they price nothing.
fn model_price() -> impl Strategy<Value = ModelPrice> {
    (
        quoted_price(),
        quoted_price(),
        proptest::option::of(quoted_price()),
        proptest::option::of(quoted_price()),
        proptest::option::of(quoted_price()),
        per(),
    )
        .prop_filter_map(
            "a price the constructors accept",
            |(input, output, cached_input, cache_write, reasoning, per)| {
                let mut price = ModelPrice::quoted(input, output, per).ok()?;
                for (field, value) in [
                    (super::OptionalPrice::CachedInput, cached_input),
                    (super::OptionalPrice::CacheWrite, cache_write),
                    (super::OptionalPrice::Reasoning, reasoning),
                ] {
                    if let Some(value) = value {
                        price = price.set_optional(field, value, per).ok()?;
                    }
                }
                Some(price)
            },
        )
}

/// How a token count is picked: fixed ones, random ones, and ones at a share of the count where
/// this bucket's price alone reaches `i64::MAX` nano-dollars, give or take a few tokens.
#[derive(Clone, Copy, Debug)]
enum Count {
    Fixed(u64),
    NearLimit { share: u64, delta: i64 },
}

fn count() -> impl Strategy<Value = Count> {
    prop_oneof![
        6 => Just(Count::Fixed(0)),
        6 => (1u64..100_000).prop_map(Count::Fixed),
        1 => any::<u64>().prop_map(Count::Fixed),
        1 => (0u64..=1_000).prop_map(|below| Count::Fixed(u64::MAX - below)),
        3 => (1u64..=5, -3i64..=3).prop_map(|(share, delta)| Count::NearLimit { share, delta }),
    ]
}

impl Count {
    /// The count for a bucket priced `price` dollars per token.
    fn tokens(self, price: Decimal) -> u64 {
        match self {
            Count::Fixed(tokens) => tokens,
            Count::NearLimit { share, delta } => {
                // i64::MAX nano-dollars in dollars, exactly.
                let limit = Decimal::from_i128_with_scale(i128::from(i64::MAX), 9);
                let limit_tokens = limit
                    .checked_div(price)
                    .and_then(|tokens| tokens.floor().to_u64())
                    .unwrap_or(u64::MAX);
                (limit_tokens / share).saturating_add_signed(delta)
            }
        }
    }
}

/// A result reduced to what a caller can observe: the nano-dollars, or the overflow's text.
fn observed(result: Result<Amount, PricingError>) -> Result<i64, String> {
    match result {
        Ok(amount) => Ok(amount.minor_units()),
        Err(error @ PricingError::Overflow { .. }) => Err(error.to_string()),
        Err(other) => panic!("pricing can only overflow, got {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(10_000)))]

    #[test]
    fn cost_equals_the_decimal_reference(price in model_price(), counts in std::array::from_fn::<_, 5, _>(|_| count())) {
        let [input, cached_input, cache_write, output, reasoning] = counts;
        let usage = Usage::new(input.tokens(price.input()), output.tokens(price.output()))
            .with_cached_input(cached_input.tokens(price.cached_input()))
            .with_cache_write(cache_write.tokens(price.cache_write()))
            .with_reasoning(reasoning.tokens(price.reasoning()));
        prop_assert_eq!(
            observed(price.cost(&usage)),
            observed(reference::cost(&price, &usage)),
            "{:?} {:?}", price, usage
        );
    }

    #[test]
    fn worst_case_equals_the_decimal_reference(
        price in model_price(),
        prompt in count(),
        max in count(),
    ) {
        let dearest_input = price.input().max(price.cached_input()).max(price.cache_write());
        let dearest_output = price.output().max(price.reasoning());
        let (prompt, max) = (prompt.tokens(dearest_input), max.tokens(dearest_output));
        prop_assert_eq!(
            observed(price.worst_case(prompt, max)),
            observed(reference::worst_case(&price, prompt, max)),
            "{:?} prompt {} max {}", price, prompt, max
        );
    }
}

/// A few exact points on the overflow line, by hand, for both integer forms (whole nano-dollars
/// per token, and fractions of one).
#[test]
fn the_overflow_line_is_where_the_reference_draws_it() {
    let dec = |text: &str| Decimal::from_str_exact(text).unwrap();
    // 7 nano-dollars per token (whole): i64::MAX / 7 = 1317624576693539401 tokens fit.
    let whole = ModelPrice::per_token(dec("0.000000007"), dec("0")).unwrap();
    let fits = Usage::new(1_317_624_576_693_539_401, 0);
    assert_eq!(
        whole.cost(&fits).unwrap().minor_units(),
        9_223_372_036_854_775_807
    );
    let past = Usage::new(1_317_624_576_693_539_402, 0);
    assert!(matches!(
        whole.cost(&past),
        Err(PricingError::Overflow {
            operation: "price a usage report"
        })
    ));
    // 0.5 nano-dollars per token (a fraction): 2 × i64::MAX tokens fit exactly, one more token
    // rounds up past it.
    let half = ModelPrice::per_token(dec("0.0000000005"), dec("0")).unwrap();
    let tokens = 2 * 9_223_372_036_854_775_807u64;
    assert_eq!(
        half.cost(&Usage::new(tokens, 0)).unwrap().minor_units(),
        i64::MAX
    );
    assert!(matches!(
        half.cost(&Usage::new(tokens + 1, 0)),
        Err(PricingError::Overflow { .. })
    ));
    for (price, usage) in [
        (whole, fits),
        (whole, past),
        (half, Usage::new(tokens + 1, 0)),
    ] {
        assert_eq!(
            observed(price.cost(&usage)),
            observed(reference::cost(&price, &usage))
        );
    }
}
