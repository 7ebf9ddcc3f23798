//! A valid budget file whose record payloads are edited (hostile hold indexes, counts, lengths,
//! duplicated, removed and cut records) and then given valid checksums again, so the decoder and
//! the replay see them instead of the frame check: opening it is `Ok` with sound books or a
//! typed error, never a panic or an abort. The edit language is in `fuzz/src/hostile.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    budget_guard_fuzz::hostile::records_hostile(data);
});
