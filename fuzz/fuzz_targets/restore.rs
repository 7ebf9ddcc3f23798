//! A valid snapshot with hostile edits (hold indexes up to `u32::MAX`, raw ids, moved and
//! duplicated holds and nodes, extreme figures) restored into a MemoryStore: a typed error that
//! changes nothing, or books that keep the invariants and survive a FileStore round trip. Never
//! an abort. The edit language is in `fuzz/src/hostile.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    budget_guard_fuzz::hostile::restore_hostile(data);
});
