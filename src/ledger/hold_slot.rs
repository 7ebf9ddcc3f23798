//! The hold slab's slot: a live hold in 40 bytes (issue 16).
//!
//! A [`Hold`] as the rules see it carries two whole [`Cost`]s (held and recorded, 32 bytes each,
//! one `i64` per unit). Most holds are in one unit, so the slab stores that unit's two figures
//! inline and boxes the two costs only for a hold in several units (a priced call holds USD,
//! tokens and requests). Those boxes are recycled: an ended hold hands its box to the ledger's
//! [`SpareCosts`] and the next hold in several units takes it, so after warm-up a multi-unit
//! reserve and commit allocate nothing either, while every slot stays 40 bytes (both costs
//! inline would make every slot 80 bytes, one-unit holds included). The slot converts to and
//! from [`Hold`] at the slab's edge, so the rules read and write plain `Hold` values.

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

    /// Stores `hold` (keeping the serial), allocating the costs' box if it needs one.
    #[inline]
    pub(super) fn set(&mut self, hold: &Hold) {
        self.set_reusing(hold, &mut SpareCosts::default());
    }

    /// Stores `hold` (keeping the serial); a hold in several units writes into the slot's own
    /// box, or one from `spare`, and allocates only when both are missing.
    #[inline]
    pub(super) fn set_reusing(&mut self, hold: &Hold, spare: &mut SpareCosts) {
        self.node = hold.node;
        self.expires = hold.expires;
        let costs = (hold.held, hold.recorded);
        match (hold.held.single_unit(), &mut self.amounts) {
            (Some(unit), _) => {
                let one = Amounts::One {
                    unit,
                    held: hold.held.minor(unit),
                    recorded: hold.recorded.minor(unit),
                };
                spare.keep(std::mem::replace(&mut self.amounts, one));
            }
            (None, Amounts::Many(boxed)) => **boxed = costs,
            (None, _) => self.amounts = Amounts::Many(spare.take(costs)),
        }
    }

    /// Frees the slot (keeping the serial), handing a multi-unit hold's box to `spare`.
    #[inline]
    pub(super) fn clear(&mut self, spare: &mut SpareCosts) {
        spare.keep(std::mem::replace(&mut self.amounts, Amounts::Free));
    }
}

/// Boxes of ended multi-unit holds, kept for the next one (see the module's docs).
#[derive(Debug, Default)]
#[expect(
    clippy::vec_box,
    reason = "the boxes themselves are what is kept: a slot's `Amounts::Many` takes one whole"
)]
pub(super) struct SpareCosts(Vec<Box<(Cost, Cost)>>);

impl SpareCosts {
    /// How many boxes are kept at most: enough for every concurrent priced call of a busy
    /// process, little memory (80 bytes each) after a burst.
    const MAX: usize = 1_024;

    /// Keeps the box of `amounts`, if it has one and there is room.
    #[inline]
    fn keep(&mut self, amounts: Amounts) {
        if let Amounts::Many(boxed) = amounts
            && self.0.len() < Self::MAX
        {
            self.0.push(boxed);
        }
    }

    /// A box holding `costs`: a kept one if any, else a new one.
    #[inline]
    fn take(&mut self, costs: (Cost, Cost)) -> Box<(Cost, Cost)> {
        match self.0.pop() {
            Some(mut boxed) => {
                *boxed = costs;
                boxed
            }
            None => Box::new(costs),
        }
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
    fn a_multi_unit_box_is_recycled_by_the_next_multi_unit_hold() {
        let mut both = Cost::single(Unit::Usd, 50);
        both.set(Unit::Tokens, 3_000);
        let hold = |held: Cost| Hold {
            node: 2,
            held,
            recorded: held.zeroed(),
            expires: Timestamp::EPOCH,
        };
        let mut spare = SpareCosts::default();
        let mut slot = HoldSlot::free(1);
        slot.set_reusing(&hold(both), &mut spare);
        let Amounts::Many(boxed) = &slot.amounts else {
            panic!("a two-unit hold is boxed")
        };
        let first: *const (Cost, Cost) = &**boxed;
        slot.clear(&mut spare);
        assert_eq!(spare.0.len(), 1);
        let mut other = HoldSlot::free(2);
        let mut tokens = Cost::single(Unit::Tokens, 10);
        tokens.set(Unit::Requests, 1);
        other.set_reusing(&hold(tokens), &mut spare);
        let Amounts::Many(boxed) = &other.amounts else {
            panic!("a two-unit hold is boxed")
        };
        assert_eq!(
            &**boxed as *const (Cost, Cost), first,
            "the same box, reused"
        );
        assert_eq!(other.hold().unwrap().held, tokens);
        assert!(spare.0.is_empty());
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
        slot.clear(&mut SpareCosts::default());
        assert!(slot.hold().is_none() && !slot.is_live());
    }
}
