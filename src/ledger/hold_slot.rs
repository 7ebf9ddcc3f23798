//! The hold slab's slot: a live hold in 40 bytes (issue 16).
//!
//! A [`Hold`] as the rules see it carries two whole [`Cost`]s (held and recorded, 32 bytes each,
//! one `i64` per unit). Almost every hold is in one unit, so the slab stores that unit's two
//! figures inline and boxes the two costs only for a hold in several units (the rare case, which
//! then costs one allocation). The slot converts to and from [`Hold`] at the slab's edge, so the
//! rules read and write plain `Hold` values.

use super::Hold;
use crate::amount::Unit;
use crate::clock::Timestamp;
use crate::cost::Cost;

/// One entry of the hold slab: free, or a live hold. `serial` tells a stale id from the live one.
#[derive(Debug)]
pub(super) struct HoldSlot {
    pub(super) serial: u32,
    pub(super) node: u32,
    pub(super) expires: Timestamp,
    pub(super) amounts: Amounts,
}

/// The held and recorded figures of a live hold (the same units in both, as [`Hold`] keeps them).
#[derive(Debug)]
pub(super) enum Amounts {
    /// No hold in this slot.
    Free,
    /// A hold in one unit: the common case, stored inline.
    One {
        unit: Unit,
        held: i64,
        recorded: i64,
    },
    /// A hold in several units.
    Many(Box<(Cost, Cost)>),
}

impl HoldSlot {
    /// A free slot.
    pub(super) const fn free(serial: u32) -> Self {
        HoldSlot {
            serial,
            node: 0,
            expires: Timestamp::MAX,
            amounts: Amounts::Free,
        }
    }

    /// A slot holding `hold`.
    #[inline]
    pub(super) fn live(serial: u32, hold: &Hold) -> Self {
        let mut slot = HoldSlot::free(serial);
        slot.set(hold);
        slot
    }

    /// The live hold, if any.
    #[inline]
    pub(super) fn hold(&self) -> Option<Hold> {
        let (held, recorded) = match &self.amounts {
            Amounts::Free => return None,
            Amounts::One {
                unit,
                held,
                recorded,
            } => (Cost::single(*unit, *held), Cost::single(*unit, *recorded)),
            Amounts::Many(costs) => **costs,
        };
        Some(Hold {
            node: self.node,
            held,
            recorded,
            expires: self.expires,
        })
    }

    pub(super) fn is_live(&self) -> bool {
        !matches!(self.amounts, Amounts::Free)
    }

    /// Stores `hold` (keeping the serial).
    #[inline]
    pub(super) fn set(&mut self, hold: &Hold) {
        self.node = hold.node;
        self.expires = hold.expires;
        self.amounts = match hold.held.single_unit() {
            Some(unit) => Amounts::One {
                unit,
                held: hold.held.minor(unit),
                recorded: hold.recorded.minor(unit),
            },
            _ => Amounts::Many(Box::new((hold.held, hold.recorded))),
        };
    }

    /// Frees the slot (keeping the serial).
    pub(super) fn clear(&mut self) {
        self.amounts = Amounts::Free;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_is_40_bytes() {
        assert_eq!(std::mem::size_of::<HoldSlot>(), 40);
    }

    #[test]
    fn one_and_several_units_round_trip() {
        let usd = Cost::single(Unit::Usd, 50);
        let mut both = usd;
        both.set(Unit::Tokens, 3_000);
        let mut recorded = both.zeroed();
        recorded.set(Unit::Tokens, 1_000);
        for (held, recorded) in [(usd, usd.zeroed()), (both, recorded)] {
            let hold = Hold {
                node: 7,
                held,
                recorded,
                expires: Timestamp::EPOCH,
            };
            let back = HoldSlot::live(3, &hold).hold().unwrap();
            assert_eq!((back.node, back.held, back.recorded), (7, held, recorded));
            assert_eq!(back.expires, Timestamp::EPOCH);
        }
        let mut slot = HoldSlot::live(
            3,
            &Hold {
                node: 1,
                held: usd,
                recorded: usd.zeroed(),
                expires: Timestamp::EPOCH,
            },
        );
        slot.clear();
        assert!(slot.hold().is_none() && !slot.is_live());
    }
}
