//! Exact amounts of money and other metered units.
//!
//! The API speaks [`rust_decimal::Decimal`]; inside, every amount is an `i64` count of the unit's
//! *minor units* (nano-dollars for [`Unit::Usd`], whole tokens for [`Unit::Tokens`]). The hot path
//! therefore never does decimal arithmetic, and every conversion that could lose value is an error:
//! negative amounts, more decimal places than the unit holds, and values past `i64` minor units.
//! The one deliberate exception is [`Amount::rounded_up`], which rounds *up* (never down) for
//! estimates and holds, so that a hold never covers less than was asked for.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;

use crate::error::{AmountError, Error};

/// A metered unit. Amounts of different units never mix: doing so is [`Error::UnitMismatch`].
///
/// ```
/// use budget_guard::Unit;
/// assert_eq!(Unit::Usd.decimal_places(), 9);
/// assert_eq!("tokens".parse::<Unit>().unwrap(), Unit::Tokens);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum Unit {
    /// US dollars, exact to the nano-dollar (9 decimal places).
    Usd,
    /// Model tokens, whole numbers only.
    Tokens,
    /// Requests (calls), whole numbers only.
    Requests,
}

impl Unit {
    /// Every unit, in index order.
    pub const ALL: [Unit; 3] = [Unit::Usd, Unit::Tokens, Unit::Requests];
    /// How many units exist; the length of per-unit arrays inside the ledger.
    pub(crate) const COUNT: usize = Self::ALL.len();

    /// Decimal places the unit can hold exactly.
    pub const fn decimal_places(self) -> u32 {
        match self {
            Unit::Usd => 9,
            Unit::Tokens | Unit::Requests => 0,
        }
    }

    /// Short lower-case name, as used in `Display` and parsing.
    pub const fn name(self) -> &'static str {
        match self {
            Unit::Usd => "usd",
            Unit::Tokens => "tokens",
            Unit::Requests => "requests",
        }
    }

    pub(crate) const fn index(self) -> usize {
        self as usize
    }

    const fn minor_per_major(self) -> i64 {
        10i64.pow(self.decimal_places())
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Unit {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "usd" | "$" => Ok(Unit::Usd),
            "tokens" | "token" => Ok(Unit::Tokens),
            "requests" | "request" | "calls" => Ok(Unit::Requests),
            _ => Err(Error::InvalidAmount {
                input: s.to_owned(),
                reason: AmountError::UnknownUnit,
            }),
        }
    }
}

/// A non-negative, exact quantity of one [`Unit`].
///
/// Construction validates: negative values, more decimal places than the unit holds, and values
/// too large for the unit's `i64` minor units are [`Error::InvalidAmount`] or [`Error::Overflow`].
///
/// ```
/// use budget_guard::{Amount, Unit};
/// # fn main() -> budget_guard::Result<()> {
/// let price = Amount::usd("0.10")?;
/// assert_eq!(price.to_string(), "$0.10");
/// assert_eq!(price, "$0.1".parse()?);
/// assert_eq!(Amount::tokens(3_000).unit(), Unit::Tokens);
/// // More precision than a nano-dollar is refused, or rounded *up* on request:
/// assert!(Amount::usd("0.0000000001").is_err());
/// assert_eq!(Amount::rounded_up("0.0000000001".parse().unwrap(), Unit::Usd)?.minor_units(), 1);
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(into = "AmountRepr", try_from = "AmountRepr"))]
pub struct Amount {
    minor: i64,
    unit: Unit,
}

impl Amount {
    /// Zero of `unit`.
    pub const fn zero(unit: Unit) -> Self {
        Amount { minor: 0, unit }
    }

    /// Dollars from a decimal string such as `"0.10"` or `"12"`.
    ///
    /// # Errors
    /// [`Error::InvalidAmount`] for text that is not a non-negative decimal with at most nine
    /// decimal places; [`Error::Overflow`] past about 9.2 billion dollars.
    pub fn usd(text: &str) -> Result<Self, Error> {
        let value = parse_decimal(text)?;
        Self::new(value, Unit::Usd)
    }

    /// A whole number of tokens (for counts past `u32`, see [`Amount::try_from_minor`]).
    pub const fn tokens(count: u32) -> Self {
        Amount {
            minor: count as i64,
            unit: Unit::Tokens,
        }
    }

    /// A whole number of requests.
    pub const fn requests(count: u32) -> Self {
        Amount {
            minor: count as i64,
            unit: Unit::Requests,
        }
    }

    /// An exact decimal value of `unit`.
    ///
    /// # Errors
    /// [`Error::InvalidAmount`] if `value` is negative or has more decimal places than the unit
    /// holds (use [`Amount::rounded_up`] to round instead); [`Error::Overflow`] if it does not fit.
    pub fn new(value: Decimal, unit: Unit) -> Result<Self, Error> {
        let scaled = scale(value, unit)?;
        if scaled.fract() != Decimal::ZERO {
            return Err(Error::InvalidAmount {
                input: value.to_string(),
                reason: AmountError::TooPrecise {
                    unit,
                    decimal_places: unit.decimal_places(),
                },
            });
        }
        to_minor(scaled, unit)
    }

    /// `value` rounded *up* to the unit's precision: the form for estimates and holds, where
    /// rounding down would hold less than the work may cost.
    ///
    /// # Errors
    /// [`Error::InvalidAmount`] if `value` is negative; [`Error::Overflow`] if it does not fit.
    pub fn rounded_up(value: Decimal, unit: Unit) -> Result<Self, Error> {
        let scaled = scale(value, unit)?;
        to_minor(scaled.ceil(), unit)
    }

    /// An amount from a count of minor units (nano-dollars, tokens, requests).
    ///
    /// # Errors
    /// [`Error::InvalidAmount`] if `minor` is negative.
    pub fn try_from_minor(minor: i64, unit: Unit) -> Result<Self, Error> {
        if minor < 0 {
            return Err(Error::InvalidAmount {
                input: minor.to_string(),
                reason: AmountError::Negative,
            });
        }
        Ok(Amount { minor, unit })
    }

    /// Internal constructor for values the ledger already validated as non-negative.
    pub(crate) const fn from_minor(minor: i64, unit: Unit) -> Self {
        debug_assert!(minor >= 0);
        Amount { minor, unit }
    }

    /// The unit of this amount.
    pub const fn unit(self) -> Unit {
        self.unit
    }

    /// The amount in minor units (nano-dollars for USD).
    pub const fn minor_units(self) -> i64 {
        self.minor
    }

    /// `true` for zero.
    pub const fn is_zero(self) -> bool {
        self.minor == 0
    }

    /// The exact decimal value.
    pub fn to_decimal(self) -> Decimal {
        Decimal::new(self.minor, self.unit.decimal_places()).normalize()
    }

    /// `self + other`, checked.
    ///
    /// # Errors
    /// [`Error::UnitMismatch`] for different units, [`Error::Overflow`] past `i64` minor units.
    pub fn checked_add(self, other: Amount) -> Result<Amount, Error> {
        self.same_unit(other, "add")?;
        let minor = self.minor.checked_add(other.minor).ok_or(Error::Overflow {
            operation: "add amounts",
        })?;
        Ok(Amount::from_minor(minor, self.unit))
    }

    /// `self - other`, floored at zero (amounts are never negative).
    ///
    /// # Errors
    /// [`Error::UnitMismatch`] for different units.
    pub fn saturating_sub(self, other: Amount) -> Result<Amount, Error> {
        self.same_unit(other, "subtract")?;
        Ok(Amount::from_minor(
            (self.minor - other.minor).max(0),
            self.unit,
        ))
    }

    pub(crate) fn same_unit(self, other: Amount, context: &'static str) -> Result<(), Error> {
        if self.unit == other.unit {
            Ok(())
        } else {
            Err(Error::UnitMismatch {
                expected: self.unit,
                found: other.unit,
                context,
            })
        }
    }
}

fn parse_decimal(text: &str) -> Result<Decimal, Error> {
    let trimmed = text.trim();
    Decimal::from_str_exact(trimmed).map_err(|_| Error::InvalidAmount {
        input: text.to_owned(),
        reason: AmountError::NotANumber,
    })
}

/// `value` multiplied into minor units, still as a decimal; rejects negatives.
fn scale(value: Decimal, unit: Unit) -> Result<Decimal, Error> {
    if value.is_sign_negative() && !value.is_zero() {
        return Err(Error::InvalidAmount {
            input: value.to_string(),
            reason: AmountError::Negative,
        });
    }
    value
        .checked_mul(Decimal::from(unit.minor_per_major()))
        .ok_or(Error::Overflow {
            operation: "convert amount to minor units",
        })
}

fn to_minor(scaled: Decimal, unit: Unit) -> Result<Amount, Error> {
    let minor = i64::try_from(scaled.trunc()).map_err(|_| Error::Overflow {
        operation: "convert amount to minor units",
    })?;
    Ok(Amount { minor, unit })
}

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Amount({self})")
    }
}

impl fmt::Display for Amount {
    /// `$0.10` for dollars (at least two decimal places), `3000 tokens`, `1 requests`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = self.to_decimal();
        match self.unit {
            Unit::Usd => {
                let mut shown = value;
                if shown.scale() < 2 {
                    shown.rescale(2);
                }
                write!(f, "${shown}")
            }
            Unit::Tokens | Unit::Requests => write!(f, "{value} {}", self.unit),
        }
    }
}

impl FromStr for Amount {
    type Err = Error;

    /// Parses `"$0.10"`, `"0.10 usd"`, `"3000 tokens"` and `"5 requests"`.
    fn from_str(text: &str) -> Result<Self, Error> {
        let trimmed = text.trim();
        if let Some(dollars) = trimmed.strip_prefix('$') {
            return Amount::usd(dollars);
        }
        let (number, unit) =
            trimmed
                .split_once(char::is_whitespace)
                .ok_or_else(|| Error::InvalidAmount {
                    input: text.to_owned(),
                    reason: AmountError::MissingUnit,
                })?;
        let unit: Unit = unit.parse().map_err(|_| Error::InvalidAmount {
            input: text.to_owned(),
            reason: AmountError::UnknownUnit,
        })?;
        Amount::new(parse_decimal(number)?, unit)
    }
}

/// The serde form of an amount: an exact decimal string and a unit, so JSON never goes through
/// a float.
#[cfg(feature = "serde")]
#[derive(serde::Serialize, serde::Deserialize)]
struct AmountRepr {
    value: Decimal,
    unit: Unit,
}

#[cfg(feature = "serde")]
impl From<Amount> for AmountRepr {
    fn from(amount: Amount) -> Self {
        AmountRepr {
            value: amount.to_decimal(),
            unit: amount.unit,
        }
    }
}

#[cfg(feature = "serde")]
impl TryFrom<AmountRepr> for Amount {
    type Error = Error;

    fn try_from(repr: AmountRepr) -> Result<Self, Error> {
        Amount::new(repr.value, repr.unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usd_round_trips_exactly() {
        let amount = Amount::usd("0.123456789").unwrap();
        assert_eq!(amount.minor_units(), 123_456_789);
        assert_eq!(amount.to_decimal().to_string(), "0.123456789");
        assert_eq!(amount.to_string(), "$0.123456789");
        assert_eq!(Amount::usd("12").unwrap().to_string(), "$12.00");
    }

    #[test]
    fn too_precise_is_an_error_but_rounds_up_on_request() {
        let err = Amount::usd("0.0000000015").unwrap_err();
        assert!(matches!(
            err,
            Error::InvalidAmount {
                reason: AmountError::TooPrecise { .. },
                ..
            }
        ));
        let up = Amount::rounded_up("0.0000000011".parse().unwrap(), Unit::Usd).unwrap();
        assert_eq!(up.minor_units(), 2);
        let tokens = Amount::rounded_up("10.01".parse().unwrap(), Unit::Tokens).unwrap();
        assert_eq!(tokens.minor_units(), 11);
    }

    #[test]
    fn negative_and_garbage_are_errors() {
        assert!(matches!(
            Amount::usd("-1"),
            Err(Error::InvalidAmount {
                reason: AmountError::Negative,
                ..
            })
        ));
        assert!(matches!(
            Amount::usd("ten"),
            Err(Error::InvalidAmount {
                reason: AmountError::NotANumber,
                ..
            })
        ));
        assert!(matches!(
            "12 euros".parse::<Amount>(),
            Err(Error::InvalidAmount {
                reason: AmountError::UnknownUnit,
                ..
            })
        ));
        assert!(matches!(
            "12".parse::<Amount>(),
            Err(Error::InvalidAmount {
                reason: AmountError::MissingUnit,
                ..
            })
        ));
    }

    #[test]
    fn overflow_is_an_error() {
        assert!(matches!(
            Amount::usd("10000000000"),
            Err(Error::Overflow { .. })
        ));
        let max = Amount::try_from_minor(i64::MAX, Unit::Usd).unwrap();
        assert!(matches!(
            max.checked_add(Amount::usd("0.000000001").unwrap()),
            Err(Error::Overflow { .. })
        ));
    }

    #[test]
    fn parse_forms() {
        assert_eq!(
            "$0.10".parse::<Amount>().unwrap(),
            Amount::usd("0.1").unwrap()
        );
        assert_eq!(
            "0.10 USD".parse::<Amount>().unwrap(),
            Amount::usd("0.1").unwrap()
        );
        assert_eq!(
            "3000 tokens".parse::<Amount>().unwrap(),
            Amount::tokens(3000)
        );
        assert!("1.5 tokens".parse::<Amount>().is_err());
    }

    #[test]
    fn mixing_units_is_a_mismatch() {
        let err = Amount::usd("1")
            .unwrap()
            .checked_add(Amount::tokens(1))
            .unwrap_err();
        assert!(matches!(
            err,
            Error::UnitMismatch {
                expected: Unit::Usd,
                found: Unit::Tokens,
                ..
            }
        ));
    }
}
