//! The Store conformance suite, run against MemoryStore. Other backends run the same macro.

use budget_guard::MemoryStore;

budget_guard::store_conformance_tests!(clock: MemoryStore::with_clock);

#[test]
fn run_all_passes_for_memory_store() {
    budget_guard::conformance::run_all(MemoryStore::new);
    budget_guard::conformance::run_all_with_clock(MemoryStore::with_clock);
}
