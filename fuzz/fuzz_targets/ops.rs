//! An arbitrary operation sequence on a MemoryStore-backed tree: the invariants hold after every
//! step, every error is a typed, non-storage error, and a refused operation changes nothing.
#![no_main]

use budget_guard_fuzz::Op;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|ops: Vec<Op>| {
    budget_guard_fuzz::run_ops(&ops);
});
