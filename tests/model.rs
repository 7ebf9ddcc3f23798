//! Random operation sequences on a [`MemoryStore`] against a deliberately simple reference model
//! (`tests/support/model.rs`): after every step, every node's limit, spent, reserved and debt
//! must agree, and so must the outcome. `tests/model_file.rs` runs the same model on the
//! `FileStore`.
//!
//! 10,000 cases by default, run as two tests of 5,000 side by side (each with its own random
//! seed); `PROPTEST_CASES=N` overrides the total. The `#[ignore]`d long run does 100,000:
//! `cargo test --release --test model -- --ignored` (or in debug, about 4 minutes).

mod support;

use std::sync::Arc;

use budget_guard::{MemoryStore, Store};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use support::model::{Backend, Op, cases, half_of_cases, ops, run};

struct Memory;

impl Backend for Memory {
    fn open(&mut self) -> Arc<dyn Store> {
        Arc::new(MemoryStore::new())
    }
    fn reopen(&mut self) -> Arc<dyn Store> {
        unreachable!("the memory store does not reopen")
    }
    fn reopens(&self) -> bool {
        false
    }
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/model.proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(half_of_cases(10_000)))]

    #[test]
    fn ledger_agrees_with_the_reference_model(ops in ops(false)) {
        run(&mut Memory, &ops);
    }

    /// The other half of the cases, beside the first.
    #[test]
    fn ledger_agrees_with_the_reference_model_too(ops in ops(false)) {
        run(&mut Memory, &ops);
    }
}

proptest! {
    #![proptest_config(config(cases(100_000)))]

    /// The long run: `cargo test --release --test model -- --ignored`.
    #[test]
    #[ignore = "long run: 100,000 cases"]
    fn ledger_agrees_with_the_reference_model_long_run(ops in ops(false)) {
        run(&mut Memory, &ops);
    }
}

#[test]
fn model_catches_a_known_sequence() {
    // Overage on a Reject node, credit to repay it, then reserve again: a hand-checked sequence.
    run(
        &mut Memory,
        &[
            Op::Reserve { node: 2, cents: 5 },
            Op::Commit { hold: 0, cents: 7 },
            Op::Reserve { node: 2, cents: 1 },
            Op::Credit { node: 2, cents: 2 },
            Op::Reserve { node: 2, cents: 1 },
            Op::Record { hold: 0, cents: 3 },
        ],
    );
}

/// Found by the model (first run): a debit on a node whose `Reject` overage left it in debt while
/// it still had room used to repay that debt out of the existing room. Only new funds repay debt.
#[test]
fn debit_does_not_repay_debt_out_of_existing_room() {
    run(
        &mut Memory,
        &[
            Op::Reserve { node: 2, cents: 5 },
            Op::Commit { hold: 0, cents: 7 }, // a1: spent 5, debt 2, room 5
            Op::Debit { node: 2, cents: 3 },  // limit 7: the debt must stay 2
            Op::Reserve { node: 2, cents: 1 }, // still in debt
            Op::Credit { node: 2, cents: 1 }, // repays 1 of the 2
            Op::Reserve { node: 2, cents: 1 }, // still in debt
        ],
    );
}
