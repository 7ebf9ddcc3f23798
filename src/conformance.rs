//! The conformance suite every [`Store`] implementation must pass (feature `conformance`).
//!
//! Each check takes a fresh, empty store and asserts one rule of the [`Store`] contract with
//! numbers, panicking with a message that names the rule when the store breaks it. Run them all
//! as separate tests with one macro line:
//!
//! ```
//! # #[cfg(any())] mod hidden {
//! budget_guard::store_conformance_tests!(|| budget_guard::MemoryStore::new());
//! # }
//! ```
//!
//! or call [`run_all`] from a single test. A distributed backend passes the same checks as the
//! in-memory one; that is what lets the two be swapped.
//!
//! Time-based rules (hold expiry) need a store that reads a [`ManualClock`] the check advances:
//! the `clock:` form of the macro (and [`run_all_with_clock`]) takes a function from a clock to a
//! store and runs [`CLOCK_CHECKS`] as well:
//!
//! ```
//! # #[cfg(any())] mod hidden {
//! budget_guard::store_conformance_tests!(clock: budget_guard::MemoryStore::with_clock);
//! # }
//! ```

use std::sync::Arc;

use crate::amount::{Amount, Unit};
use crate::budget::Budget;
use crate::clock::{ManualClock, Timestamp};
use crate::op::OpKind;
use crate::policy::Limit;
use crate::store::Store;

mod capabilities;
mod expiry;
mod idempotency;
mod limits;
mod money;
mod nodes;
mod period;
mod rate;
mod reads;
mod top_up;

pub use self::capabilities::undeclared_ops_are_unsupported;
pub use self::expiry::{
    a_denied_reserve_reclaims_expired_holds_first, a_reclaimed_hold_commits_only_what_fits,
    a_reclaimed_hold_is_cancelled_as_expired, check_reclaims_expired_holds_like_reserve,
    expired_holds_are_reclaimed_once, extend_moves_the_deadline,
};
pub use self::idempotency::{
    a_retried_reserve_of_an_ended_hold_says_how_it_ended, concurrent_retries_hold_once,
    idempotency_keys_expire_after_their_ttl, idempotency_mismatch_changes_nothing,
    idempotent_retries_apply_once,
};
pub use self::limits::{
    allow_if_available_needs_room_everywhere, limits_and_funds, overdraft_is_bounded,
    reject_records_overage_as_debt, soft_limits_report_without_denying,
};
pub use self::money::{
    a_hold_ends_once, bad_input_changes_nothing, commit_returns_the_unused_rest,
    concurrent_reserves_never_pass_a_hard_limit, denied_reserve_changes_nothing,
    multi_unit_reserve_is_all_or_nothing, record_grows_only_with_room, release_is_idempotent,
    reserve_holds_on_every_ancestor, reserve_up_to_takes_what_fits,
};
pub use self::nodes::{
    frozen_and_closed_nodes_block_their_subtree, node_lifecycle, snapshot_restores_exactly,
};
pub use self::period::periods_reset_lazily_and_keep_holds;
pub use self::rate::rate_and_budget_denials_take_nothing_from_each_other;
pub use self::reads::{cancellation_says_why_a_hold_should_stop, check_is_a_dry_run};
pub use self::top_up::{
    bad_top_up_input_changes_nothing, burn_rates_project_depletion,
    concurrent_top_ups_fire_exactly_once, top_ups_fire_once_per_crossing,
};

/// `true` if `store` declares every operation of `kinds` ([`Store::supports`]). A check of an
/// operation the store declares unsupported passes without running: such a store returns
/// [`Error::Unsupported`](crate::Error::Unsupported) for it instead, which
/// [`undeclared_ops_are_unsupported`] asserts. Every check asks for each operation it uses
/// beyond `CreateNode`, `Reserve`, `Commit` and `Release` (which every store has), either for
/// the whole check or around the one assertion that needs it.
pub fn supports_all(store: &dyn Store, kinds: &[OpKind]) -> bool {
    kinds.iter().all(|kind| store.supports(*kind))
}

/// A conformance check: gets a fresh empty store, panics if the store breaks the rule. (Named
/// apart from the reserve's dry run, [`Check`](crate::Check).)
pub type StoreCheck = fn(Arc<dyn Store>);

/// A conformance check of a time-based rule: gets a fresh empty store reading `clock`, and the clock.
pub type ClockedStoreCheck = fn(Arc<dyn Store>, &ManualClock);

crate::__store_conformance_checks!(tables);

/// Where every clock check starts: 2023-11-14T22:13:20Z.
pub const CLOCK_START: Timestamp = Timestamp::from_unix_nanos(1_700_000_000_000_000_000);

/// Runs every check, [`CHECKS`] and [`CLOCK_CHECKS`], each on a store from `make` given a
/// fresh [`ManualClock`] at [`CLOCK_START`].
///
/// # Panics
/// On the first check the store fails, naming it.
pub fn run_all_with_clock<S: Store>(make: impl Fn(ManualClock) -> S) {
    run_all(|| make(ManualClock::new(CLOCK_START)));
    for (name, check) in CLOCK_CHECKS {
        let clock = ManualClock::new(CLOCK_START);
        let store: Arc<dyn Store> = Arc::new(make(clock.clone()));
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(store, &clock)));
        if let Err(panic) = outcome {
            eprintln!("store conformance check `{name}` failed");
            std::panic::resume_unwind(panic);
        }
    }
}

/// Runs every check, each on a store from `make`.
///
/// # Panics
/// On the first check the store fails, naming it.
pub fn run_all<S: Store>(make: impl Fn() -> S) {
    for (name, check) in CHECKS {
        let store: Arc<dyn Store> = Arc::new(make());
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(store)));
        if let Err(panic) = outcome {
            eprintln!("store conformance check `{name}` failed");
            std::panic::resume_unwind(panic);
        }
    }
}

/// One `#[test]` per conformance check, each on a fresh store from `$make` (anything callable
/// with no arguments that returns an `impl Store`).
///
/// With `clock: $make` (`$make` takes a [`ManualClock`](crate::ManualClock) and returns the
/// store), the time-based [`CLOCK_CHECKS`] run too; every backend with a clock should use it.
#[macro_export]
macro_rules! store_conformance_tests {
    (clock: $make:expr) => {
        $crate::__store_conformance_checks!(clocked_tests $make);
    };
    ($make:expr) => {
        $crate::__store_conformance_checks!(tests $make);
    };
}

/// The list of checks, written once: [`CHECKS`], [`CLOCK_CHECKS`] and the tests of
/// [`store_conformance_tests!`](crate::store_conformance_tests) all expand from it. Not part of
/// the API: a macro only because a test's name must be known when the invoking crate compiles.
#[doc(hidden)]
#[macro_export]
macro_rules! __store_conformance_checks {
    (@expand [tables] plain: [$($plain:ident),*] clocked: [$($clocked:ident),*]) => {
        /// Every check, by name, in the order
        /// [`store_conformance_tests!`](crate::store_conformance_tests) lists them.
        pub const CHECKS: &[(&str, StoreCheck)] = &[$((stringify!($plain), $plain)),*];

        /// Every time-based check, by name, in the order the `clock:` form of
        /// [`store_conformance_tests!`](crate::store_conformance_tests) lists them.
        pub const CLOCK_CHECKS: &[(&str, ClockedStoreCheck)] = &[$((stringify!($clocked), $clocked)),*];
    };
    (@expand [tests $make:expr] plain: [$($plain:ident),*] clocked: [$($clocked:ident),*]) => {
        $(
            #[test]
            fn $plain() {
                let store: ::std::sync::Arc<dyn $crate::Store> = ::std::sync::Arc::new(($make)());
                $crate::conformance::$plain(store);
            }
        )*
    };
    (@expand [clocked_tests $make:expr] plain: [$($plain:ident),*] clocked: [$($clocked:ident),*]) => {
        $crate::__store_conformance_checks!(@expand [tests || ($make)($crate::ManualClock::new(
            $crate::conformance::CLOCK_START
        ))] plain: [$($plain),*] clocked: []);
        $(
            #[test]
            fn $clocked() {
                let clock = $crate::ManualClock::new($crate::conformance::CLOCK_START);
                let store: ::std::sync::Arc<dyn $crate::Store> =
                    ::std::sync::Arc::new(($make)(clock.clone()));
                $crate::conformance::$clocked(store, &clock);
            }
        )*
    };
    ($($target:tt)*) => {
        $crate::__store_conformance_checks!(@expand [$($target)*]
            plain: [
                reserve_holds_on_every_ancestor,
                denied_reserve_changes_nothing,
                commit_returns_the_unused_rest,
                release_is_idempotent,
                a_hold_ends_once,
                reject_records_overage_as_debt,
                allow_if_available_needs_room_everywhere,
                overdraft_is_bounded,
                record_grows_only_with_room,
                reserve_up_to_takes_what_fits,
                soft_limits_report_without_denying,
                bad_input_changes_nothing,
                multi_unit_reserve_is_all_or_nothing,
                node_lifecycle,
                limits_and_funds,
                snapshot_restores_exactly,
                frozen_and_closed_nodes_block_their_subtree,
                check_is_a_dry_run,
                cancellation_says_why_a_hold_should_stop,
                concurrent_reserves_never_pass_a_hard_limit,
                idempotent_retries_apply_once,
                idempotency_mismatch_changes_nothing,
                concurrent_retries_hold_once,
                undeclared_ops_are_unsupported
            ]
            clocked: [
                expired_holds_are_reclaimed_once,
                a_denied_reserve_reclaims_expired_holds_first,
                extend_moves_the_deadline,
                a_reclaimed_hold_commits_only_what_fits,
                check_reclaims_expired_holds_like_reserve,
                a_reclaimed_hold_is_cancelled_as_expired,
                rate_and_budget_denials_take_nothing_from_each_other,
                periods_reset_lazily_and_keep_holds,
                idempotency_keys_expire_after_their_ttl,
                a_retried_reserve_of_an_ended_hold_says_how_it_ended,
                top_ups_fire_once_per_crossing,
                burn_rates_project_depletion,
                bad_top_up_input_changes_nothing,
                concurrent_top_ups_fire_exactly_once
            ]
        );
    };
}

fn usd(text: &str) -> Amount {
    Amount::usd(text).expect("valid test amount")
}

/// acme ($10) → team ($4) → task (given limit), built through the public API.
fn tree(store: Arc<dyn Store>, task: Limit) -> (Budget, Budget, Budget) {
    let acme = Budget::builder("acme", Limit::hard(usd("10")))
        .child("team", Limit::hard(usd("4")))
        .child("team/task", task)
        .build_shared(store)
        .expect("build the conformance tree");
    let team = acme.at("team").expect("team exists");
    let task = acme.at("team/task").expect("task exists");
    (acme, team, task)
}

/// (spent, reserved, debt) in USD.
fn books(budget: &Budget) -> (Amount, Amount, Amount) {
    let balance = budget.balance(Unit::Usd).expect("balance of a live node");
    (balance.spent, balance.reserved, balance.debt)
}

fn zero() -> Amount {
    Amount::zero(Unit::Usd)
}
