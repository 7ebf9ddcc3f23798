//! The Decimal pricing this crate used before the integer [`Rates`](super::rates::Rates), kept
//! verbatim as the reference the property tests (`super::tests`) compare the integer path with.

use rust_decimal::Decimal;

use super::{ModelPrice, PricingError};
use crate::amount::{Amount, Unit};
use crate::usage::Usage;

/// What [`ModelPrice::cost`] answered before the integer rates.
pub(super) fn cost(price: &ModelPrice, usage: &Usage) -> Result<Amount, PricingError> {
    exact_cost(&[
        (price.input, usage.input),
        (price.cached_input(), usage.cached_input),
        (price.cache_write(), usage.cache_write),
        (price.output, usage.output),
        (price.reasoning(), usage.reasoning),
    ])
}

/// What [`ModelPrice::worst_case`] answered before the integer rates.
pub(super) fn worst_case(
    price: &ModelPrice,
    prompt_tokens: u64,
    max_tokens: u64,
) -> Result<Amount, PricingError> {
    let input = price
        .input
        .max(price.cached_input())
        .max(price.cache_write());
    let output = price.output.max(price.reasoning());
    exact_cost(&[(input, prompt_tokens), (output, max_tokens)])
}

/// `Σ price × count`, exact, rounded up once to the nano-dollar.
///
/// Each price is `mantissa / 10^scale`; all terms are brought to the largest scale `S` (at most
/// 28, so `10^S < 2^94` fits `u128`) and summed as integers. The nano-dollar count is then
/// `ceil(sum / 10^(S-9))` (or `sum × 10^(9-S)` when `S ≤ 9`). Any overflow is an error, never a
/// rounding.
fn exact_cost(terms: &[(Decimal, u64)]) -> Result<Amount, PricingError> {
    const OVERFLOW: PricingError = PricingError::Overflow {
        operation: "price a usage report",
    };
    let scale = terms
        .iter()
        .filter(|(_, count)| *count > 0)
        .map(|(price, _)| price.scale())
        .max()
        .unwrap_or(0);
    let mut sum: u128 = 0;
    for &(price, count) in terms {
        if count == 0 {
            continue;
        }
        // Prices are validated non-negative at construction.
        let mantissa = u128::try_from(price.mantissa()).map_err(|_| OVERFLOW)?;
        let widened = mantissa
            .checked_mul(10u128.pow(scale - price.scale()))
            .and_then(|m| m.checked_mul(u128::from(count)))
            .ok_or(OVERFLOW)?;
        sum = sum.checked_add(widened).ok_or(OVERFLOW)?;
    }
    let places = Unit::Usd.decimal_places();
    let nanos = if scale > places {
        let divisor = 10u128.pow(scale - places);
        sum.div_ceil(divisor)
    } else {
        sum.checked_mul(10u128.pow(places - scale))
            .ok_or(OVERFLOW)?
    };
    let nanos = i64::try_from(nanos).map_err(|_| OVERFLOW)?;
    Amount::try_from_minor(nanos, Unit::Usd).map_err(|_| OVERFLOW)
}
