//! Identifiers the [`Store`](crate::Store) hands out for nodes and holds.
//!
//! Both pack a slot index (low 32 bits) with a serial number (high 32 bits) that changes every
//! time a slot is reused, so a stale id left over from a removed node or an ended hold is
//! recognised as stale instead of reaching a newer occupant of its slot.

use std::fmt;

macro_rules! slot_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
        #[cfg_attr(feature = "serde", serde(transparent))]
        pub struct $name(u64);

        impl $name {
            /// The id from its raw `u64` form (as stored by a backend).
            pub const fn from_raw(raw: u64) -> Self {
                $name(raw)
            }

            /// The raw `u64` form, for backends that persist ids.
            pub const fn into_raw(self) -> u64 {
                self.0
            }

            pub(crate) const fn new(index: u32, serial: u32) -> Self {
                $name(((serial as u64) << 32) | index as u64)
            }

            pub(crate) const fn index(self) -> u32 {
                self.0 as u32
            }

            pub(crate) const fn serial(self) -> u32 {
                (self.0 >> 32) as u32
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "#{}.{}"), self.index(), self.serial())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }
    };
}

slot_id!(
    /// A node of a budget tree inside one [`Store`](crate::Store). Paths are the stable,
    /// human identity of a node; ids are what the hot path uses.
    NodeId,
    "node"
);

slot_id!(
    /// One reservation (hold) inside one [`Store`](crate::Store).
    HoldId,
    "hold"
);

/// Most holds one store keeps live at once: a reserve beyond it fails with
/// [`Error::TooLarge`](crate::Error::TooLarge), and a snapshot or budget file naming a hold index
/// at or above it is refused before anything is allocated.
///
/// Holds live in a slab indexed by [`HoldId`], so this also bounds the slab (about 100 bytes a
/// slot) that an untrusted snapshot or file can make a store allocate.
///
/// ```
/// assert_eq!(budget_guard::MAX_LIVE_HOLDS, 1_048_576);
/// ```
pub const MAX_LIVE_HOLDS: u32 = 1 << 20;
