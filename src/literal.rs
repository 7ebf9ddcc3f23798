//! Compile-time checked amount literals: [`usd!`](crate::usd), [`tokens!`](crate::tokens) and
//! [`requests!`](crate::requests).
//!
//! Each macro evaluates a `const fn` parser inside a `const` block, so a bad literal is a
//! *compile* error (a panic during constant evaluation), and a good one costs nothing at run
//! time. Text that arrives at run time (configuration, user input) keeps the fallible
//! [`Amount::usd`], which returns a typed error instead.

use crate::amount::{Amount, Unit};

/// Why a literal was rejected; the macros turn it into a compile error with this text.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiteralError {
    /// Empty, or a character other than digits, one `.` and `_` separators.
    NotANumber,
    /// More decimal places than the unit holds exactly.
    TooPrecise,
    /// Past `i64` minor units.
    TooLarge,
    /// Below zero (counts only; a `-` in text is `NotANumber`).
    Negative,
}

impl LiteralError {
    /// The message of the compile error.
    #[doc(hidden)]
    pub const fn message(self) -> &'static str {
        match self {
            LiteralError::NotANumber => {
                "not an amount literal: use digits, at most one '.', optional '_' separators"
            }
            LiteralError::TooPrecise => "more decimal places than the unit holds exactly",
            LiteralError::TooLarge => "too large for the unit's i64 minor units",
            LiteralError::Negative => "amounts cannot be negative",
        }
    }
}

/// Parses a non-negative decimal literal such as `"0.10"`, `"$12"` or `"1_000.5"` into `unit`'s
/// minor units, in a `const` context. Used by [`usd!`](crate::usd).
#[doc(hidden)]
pub const fn parse(text: &str, unit: Unit) -> Result<Amount, LiteralError> {
    let bytes = text.as_bytes();
    let mut at = 0;
    if at < bytes.len() && bytes[at] == b'$' && matches!(unit, Unit::Usd) {
        at += 1;
    }
    let places = unit.decimal_places();
    let mut minor: i64 = 0;
    let mut digits = 0u32;
    let mut decimals: Option<u32> = None;
    while at < bytes.len() {
        let byte = bytes[at];
        at += 1;
        match byte {
            b'_' => continue,
            b'.' => {
                if decimals.is_some() {
                    return Err(LiteralError::NotANumber);
                }
                decimals = Some(0);
                continue;
            }
            b'0'..=b'9' => {}
            _ => return Err(LiteralError::NotANumber),
        }
        if let Some(seen) = decimals {
            if seen == places {
                return Err(LiteralError::TooPrecise);
            }
            decimals = Some(seen + 1);
        }
        digits += 1;
        minor = match minor.checked_mul(10) {
            Some(shifted) => match shifted.checked_add((byte - b'0') as i64) {
                Some(next) => next,
                None => return Err(LiteralError::TooLarge),
            },
            None => return Err(LiteralError::TooLarge),
        };
    }
    if digits == 0 {
        return Err(LiteralError::NotANumber);
    }
    // Scale the remaining places: "0.1" is 1 with 8 places still to go for nano-dollars.
    let mut missing = places
        - match decimals {
            Some(seen) => seen,
            None => 0,
        };
    while missing > 0 {
        minor = match minor.checked_mul(10) {
            Some(next) => next,
            None => return Err(LiteralError::TooLarge),
        };
        missing -= 1;
    }
    Ok(Amount::from_minor(minor, unit))
}

/// A whole count of `unit` (tokens, requests) in a `const` context. Used by
/// [`tokens!`](crate::tokens) and [`requests!`](crate::requests).
#[doc(hidden)]
pub const fn count(value: i128, unit: Unit) -> Result<Amount, LiteralError> {
    if value < 0 {
        return Err(LiteralError::Negative);
    }
    if value > i64::MAX as i128 {
        return Err(LiteralError::TooLarge);
    }
    Ok(Amount::from_minor(value as i64, unit))
}

/// Dollars from a literal, checked at compile time: `usd!("0.10")` is an [`Amount`] of ten
/// cents, with no `?` and no `unwrap`. A literal that is not a non-negative decimal with at
/// most nine places (a nano-dollar) does not compile. For text known only at run time use
/// [`Amount::usd`], which returns an error instead.
///
/// ```
/// use budget_guard::{Amount, usd};
/// # fn main() -> budget_guard::Result<()> {
/// assert_eq!(usd!("0.10"), Amount::usd("0.10")?);
/// assert_eq!(usd!("$1_000.000000001").minor_units(), 1_000_000_000_001);
/// const PER_CALL: Amount = usd!("0.02"); // usable in constants too
/// assert_eq!(PER_CALL.to_string(), "$0.02");
/// # Ok(()) }
/// ```
///
/// A typo is a compile error, not a run-time surprise:
///
/// ```compile_fail,E0080
/// let price = budget_guard::usd!("0.1O"); // letter O
/// ```
///
/// ```compile_fail,E0080
/// let price = budget_guard::usd!("0.0000000001"); // below a nano-dollar
/// ```
#[macro_export]
macro_rules! usd {
    ($text:literal) => {
        const {
            match $crate::__literal::parse($text, $crate::Unit::Usd) {
                ::core::result::Result::Ok(amount) => amount,
                ::core::result::Result::Err(error) => ::core::panic!("{}", error.message()),
            }
        }
    };
}

/// A whole number of tokens from an integer literal or constant, checked at compile time (up
/// to `i64::MAX`, unlike [`Amount::tokens`], which takes a `u32`).
///
/// ```
/// use budget_guard::{Amount, tokens};
/// assert_eq!(tokens!(3_000), Amount::tokens(3_000));
/// assert_eq!(tokens!(5_000_000_000).minor_units(), 5_000_000_000);
/// ```
///
/// ```compile_fail,E0080
/// let nothing = budget_guard::tokens!(-1); // negative counts do not compile
/// ```
#[macro_export]
macro_rules! tokens {
    ($count:expr) => {
        const {
            match $crate::__literal::count(($count) as i128, $crate::Unit::Tokens) {
                ::core::result::Result::Ok(amount) => amount,
                ::core::result::Result::Err(error) => ::core::panic!("{}", error.message()),
            }
        }
    };
}

/// A whole number of requests from an integer literal or constant, checked at compile time.
///
/// ```
/// use budget_guard::{Amount, requests};
/// assert_eq!(requests!(60), Amount::requests(60));
/// ```
///
/// ```compile_fail,E0080
/// let nothing = budget_guard::requests!(-5);
/// ```
#[macro_export]
macro_rules! requests {
    ($count:expr) => {
        const {
            match $crate::__literal::count(($count) as i128, $crate::Unit::Requests) {
                ::core::result::Result::Ok(amount) => amount,
                ::core::result::Result::Err(error) => ::core::panic!("{}", error.message()),
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_parse_like_the_runtime_parser() {
        for text in [
            "0",
            "0.10",
            "12",
            "1.5",
            "0.000000001",
            "9223372036.854775807",
        ] {
            assert_eq!(
                parse(text, Unit::Usd),
                Ok(Amount::usd(text).unwrap()),
                "{text}"
            );
        }
        assert_eq!(parse("", Unit::Usd), Err(LiteralError::NotANumber));
        assert_eq!(parse(".", Unit::Usd), Err(LiteralError::NotANumber));
        assert_eq!(parse("1.2.3", Unit::Usd), Err(LiteralError::NotANumber));
        assert_eq!(parse("-1", Unit::Usd), Err(LiteralError::NotANumber));
        assert_eq!(
            parse("0.0000000001", Unit::Usd),
            Err(LiteralError::TooPrecise)
        );
        assert_eq!(
            parse("9223372036.854775808", Unit::Usd),
            Err(LiteralError::TooLarge)
        );
        assert_eq!(count(-1, Unit::Tokens), Err(LiteralError::Negative));
        assert_eq!(
            count(i128::from(i64::MAX) + 1, Unit::Tokens),
            Err(LiteralError::TooLarge)
        );
    }
}
