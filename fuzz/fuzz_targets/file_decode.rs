//! Arbitrary bytes as a budget file: opening it (and inspecting it read-only) returns `Ok` or a
//! typed error, never panics; on `Ok` the books satisfy the ledger invariants and survive a
//! reopen unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    budget_guard_fuzz::decode_file(data);
});
