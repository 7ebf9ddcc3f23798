//! A cost across several units at once (`$0.04` *and* `3000 tokens` *and* `1 request`).
//!
//! Every reserve and commit speaks [`Cost`]; a single [`Amount`] converts into one, so
//! `budget.reserve(Amount::usd("0.04")?)` and a multi-unit reserve share one atomic path.

use std::fmt;

use crate::amount::{Amount, Unit};
use crate::error::{AmountError, Error};

/// At most one amount per [`Unit`], stored inline (no allocation).
///
/// ```
/// use budget_guard::{Amount, Cost, Unit};
/// # fn main() -> budget_guard::Result<()> {
/// let cost = Cost::from(Amount::usd("0.04")?).with(Amount::tokens(3_000))?;
/// assert_eq!(cost.get(Unit::Tokens), Some(Amount::tokens(3_000)));
/// assert_eq!(cost.get(Unit::Requests), None);
/// assert_eq!(cost.to_string(), "$0.04 + 3000 tokens");
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Cost {
    minor: [i64; Unit::COUNT],
    present: u8,
}

impl Cost {
    /// A cost in no unit at all. Reserving it is [`Error::InvalidAmount`].
    pub const fn new() -> Self {
        Cost {
            minor: [0; Unit::COUNT],
            present: 0,
        }
    }

    /// This cost plus `amount` in a unit it does not have yet.
    ///
    /// # Errors
    /// [`Error::UnitMismatch`] if the cost already has an amount of that unit.
    pub fn with(mut self, amount: Amount) -> Result<Self, Error> {
        let unit = amount.unit();
        if self.has(unit) {
            return Err(Error::UnitMismatch {
                expected: unit,
                found: unit,
                context: "a cost with two amounts of one unit",
            });
        }
        self.set(unit, amount.minor_units());
        Ok(self)
    }

    /// The amount of `unit`, if the cost has one.
    pub fn get(&self, unit: Unit) -> Option<Amount> {
        self.has(unit)
            .then(|| Amount::from_minor(self.minor[unit.index()], unit))
    }

    /// The amounts, in unit order.
    pub fn iter(&self) -> impl Iterator<Item = Amount> + '_ {
        Unit::ALL.into_iter().filter_map(|unit| self.get(unit))
    }

    /// `true` if the cost has no unit at all.
    pub const fn is_empty(&self) -> bool {
        self.present == 0
    }

    /// `true` if the cost has an amount of `unit`.
    pub const fn has(&self, unit: Unit) -> bool {
        self.present & (1 << unit.index()) != 0
    }

    /// `true` if both costs name exactly the same units.
    pub(crate) const fn same_units(&self, other: &Cost) -> bool {
        self.present == other.present
    }

    /// `true` if this cost names every unit `other` names (and maybe more).
    pub(crate) const fn includes_units(&self, other: &Cost) -> bool {
        self.present & other.present == other.present
    }

    /// For error messages about costs with different units: a unit this cost has that `other`
    /// lacks (else its first unit), and a unit `other` has that this cost lacks (else its first).
    pub(crate) fn unit_difference(&self, other: &Cost) -> (Unit, Unit) {
        let pick = |have: &Cost, lack: &Cost| {
            let mut units = Unit::ALL.into_iter();
            units
                .clone()
                .find(|unit| have.has(*unit) && !lack.has(*unit))
                .or_else(|| units.find(|unit| have.has(*unit)))
                .unwrap_or(Unit::Usd)
        };
        (pick(self, other), pick(other, self))
    }

    /// Minor units of `unit` (zero when absent).
    pub(crate) const fn minor(&self, unit: Unit) -> i64 {
        self.minor[unit.index()]
    }

    /// A cost of `minor` in `unit` alone, written whole (one store, no piecewise writes a
    /// following copy would read back).
    #[inline]
    pub(crate) const fn single(unit: Unit, minor: i64) -> Cost {
        let mut amounts = [0; Unit::COUNT];
        amounts[unit.index()] = minor;
        Cost {
            minor: amounts,
            present: 1 << unit.index(),
        }
    }

    /// The cost's unit if it has exactly one.
    #[inline]
    pub(crate) const fn single_unit(&self) -> Option<Unit> {
        if self.present.is_power_of_two() {
            Some(Unit::ALL[self.present.trailing_zeros() as usize])
        } else {
            None
        }
    }

    pub(crate) fn set(&mut self, unit: Unit, minor: i64) {
        self.minor[unit.index()] = minor;
        self.present |= 1 << unit.index();
    }

    /// The units present, for the ledger's loops (walks the set bits, no per-unit test).
    pub(crate) fn units(&self) -> impl Iterator<Item = Unit> + use<> {
        let mut bits = self.present;
        std::iter::from_fn(move || {
            if bits == 0 {
                return None;
            }
            let index = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            Some(Unit::ALL[index])
        })
    }

    /// A cost with the same units as this one, all zero.
    pub(crate) const fn zeroed(&self) -> Cost {
        Cost {
            minor: [0; Unit::COUNT],
            present: self.present,
        }
    }

    /// Checks that a cost can be reserved: at least one unit, every amount above zero.
    pub(crate) fn validate_reservable(&self) -> Result<(), Error> {
        if self.is_empty() {
            return Err(Error::InvalidAmount {
                input: "an empty cost".to_owned(),
                reason: AmountError::Zero,
            });
        }
        if let Some(zero) = self.iter().find(|amount| amount.is_zero()) {
            return Err(Error::InvalidAmount {
                input: zero.to_string(),
                reason: AmountError::Zero,
            });
        }
        Ok(())
    }
}

impl From<Amount> for Cost {
    fn from(amount: Amount) -> Self {
        let mut cost = Cost::new();
        cost.set(amount.unit(), amount.minor_units());
        cost
    }
}

impl fmt::Display for Cost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("nothing");
        }
        for (position, amount) in self.iter().enumerate() {
            if position > 0 {
                f.write_str(" + ")?;
            }
            write!(f, "{amount}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Cost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cost({self})")
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Cost {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Cost {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let amounts = Vec::<Amount>::deserialize(deserializer)?;
        amounts
            .into_iter()
            .try_fold(Cost::new(), |cost, amount| cost.with(amount))
            .map_err(serde::de::Error::custom)
    }
}
