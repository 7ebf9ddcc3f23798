//! A model's per-token prices as integers, built once when the [`ModelPrice`](super::ModelPrice)
//! is constructed, so that pricing a call is a few integer multiplies and at most one rounding,
//! with no `Decimal` arithmetic per call.
//!
//! The rule is the crate's one pricing rule: the exact sum `Σ price × tokens`, rounded **up** once
//! to the nano-dollar, and [`None`] (the caller's `PricingError::Overflow`) exactly when that
//! rounded total does not fit `i64` nano-dollars.
//!
//! Each price is `mantissa / 10^scale` dollars per token, with `scale ≤ 28`. With
//! `S = max(9, every price's scale)` it is exactly `mantissa × 10^(S − scale) / 10^(S − 9)`
//! nano-dollars per token: one integer numerator per price over one common divisor
//! `10^(S − 9) ≤ 10^19`, which fits `u64`. When `S = 9` (every price is a whole number of
//! nano-dollars per token, as `$0.15` per million is: 150) the divisor is 1 and the cost is a plain
//! sum of `u64` products, exact, nothing to round.
//!
//! Overflow is detected, never wrapped, and is the same error as the exact computation gives: a
//! numerator too large for `u128`, a product or a sum past `u128`, or a total past `i64::MAX`
//! all mean the exact total is at least `2^128 / 10^19 > i64::MAX` nano-dollars, which does not
//! fit either.

use rust_decimal::Decimal;

use crate::amount::Unit;

/// The priced buckets of a [`Usage`](crate::Usage), in its field order: input, cached input,
/// cache write, output, reasoning.
pub(crate) const BUCKETS: usize = 5;

/// One model's prices in integer form. See the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Rates {
    /// Every price is a whole number of nano-dollars per token that fits `u64`.
    WholeNanos {
        /// Nano-dollars per token, per bucket.
        per_token: [u64; BUCKETS],
        /// The dearest input-side price (input, cache read, cache write), for worst cases.
        worst_input: u64,
        /// The dearest output-side price (output, reasoning).
        worst_output: u64,
    },
    /// Some price has a fraction of a nano-dollar (or is too large for `u64` nano-dollars): each
    /// price is `numerator / divisor` nano-dollars per token.
    Fraction {
        /// Numerators per bucket; `u128::MAX` stands for one too large for `u128`, which any
        /// non-zero token count turns into an overflow, as the exact value would.
        per_token: [u128; BUCKETS],
        /// The dearest input-side numerator.
        worst_input: u128,
        /// The dearest output-side numerator.
        worst_output: u128,
        /// `10^(S − 9)`, the common divisor.
        divisor: u64,
    },
}

impl Rates {
    /// The integer form of the per-token prices `prices` (in bucket order), which must be
    /// non-negative (the constructors of `ModelPrice` check that before calling this).
    pub(crate) fn new(prices: [Decimal; BUCKETS]) -> Rates {
        let nano_places = Unit::Usd.decimal_places();
        let scale = prices
            .iter()
            .map(Decimal::scale)
            .max()
            .unwrap_or(0)
            .max(nano_places);
        // `scale ≤ 28` and `scale − price.scale() ≤ 28`: both powers fit `u128` (10^38 does).
        let numerator = |price: &Decimal| {
            u128::try_from(price.mantissa())
                .ok()
                .and_then(|mantissa| mantissa.checked_mul(10u128.pow(scale - price.scale())))
                .unwrap_or(u128::MAX)
        };
        let numerators = prices.each_ref().map(numerator);
        let [input, cached_input, cache_write, output, reasoning] = numerators;
        let worst_input = input.max(cached_input).max(cache_write);
        let worst_output = output.max(reasoning);
        let divisor = 10u64.pow(scale - nano_places);
        if divisor == 1 {
            let whole = numerators.map(|n| u64::try_from(n).ok());
            if let [Some(a), Some(b), Some(c), Some(d), Some(e)] = whole {
                return Rates::WholeNanos {
                    per_token: [a, b, c, d, e],
                    worst_input: a.max(b).max(c),
                    worst_output: d.max(e),
                };
            }
        }
        Rates::Fraction {
            per_token: numerators,
            worst_input,
            worst_output,
            divisor,
        }
    }

    /// Nano-dollars for `tokens` (per bucket, in bucket order), rounded up; [`None`] if the
    /// total does not fit `i64`.
    #[inline]
    pub(crate) fn cost(&self, tokens: [u64; BUCKETS]) -> Option<i64> {
        match self {
            Rates::WholeNanos { per_token, .. } => whole_total(per_token, &tokens),
            Rates::Fraction {
                per_token, divisor, ..
            } => fraction_total(per_token, &tokens, *divisor),
        }
    }

    /// Nano-dollars for `prompt_tokens` at the dearest input price plus `max_tokens` at the
    /// dearest output price, rounded up; [`None`] if that does not fit `i64`.
    #[inline]
    pub(crate) fn worst_case(&self, prompt_tokens: u64, max_tokens: u64) -> Option<i64> {
        let tokens = [prompt_tokens, max_tokens];
        match self {
            Rates::WholeNanos {
                worst_input,
                worst_output,
                ..
            } => whole_total(&[*worst_input, *worst_output], &tokens),
            Rates::Fraction {
                worst_input,
                worst_output,
                divisor,
                ..
            } => fraction_total(&[*worst_input, *worst_output], &tokens, *divisor),
        }
    }
}

/// `Σ nanos × tokens` in `u64`; past `u64` is past `i64` too.
#[inline]
fn whole_total<const N: usize>(nanos: &[u64; N], tokens: &[u64; N]) -> Option<i64> {
    let mut sum = 0u64;
    for (price, count) in nanos.iter().zip(tokens) {
        sum = sum.checked_add(price.checked_mul(*count)?)?;
    }
    i64::try_from(sum).ok()
}

/// `⌈Σ numerator × tokens / divisor⌉`; any step past `u128` is past `i64` after the division
/// too (`divisor ≤ 10^19`).
#[inline]
fn fraction_total<const N: usize>(
    numerators: &[u128; N],
    tokens: &[u64; N],
    divisor: u64,
) -> Option<i64> {
    let mut sum = 0u128;
    for (numerator, count) in numerators.iter().zip(tokens) {
        if *count != 0 {
            sum = sum.checked_add(numerator.checked_mul(u128::from(*count))?)?;
        }
    }
    // A 64-bit division when the sum allows (it does for any total near `i64` range times a
    // small divisor), the 128-bit one otherwise.
    let nanos = match u64::try_from(sum) {
        Ok(small) => u128::from(small.div_ceil(divisor)),
        Err(_) => sum.div_ceil(u128::from(divisor)),
    };
    i64::try_from(nanos).ok()
}
