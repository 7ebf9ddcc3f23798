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

use std::sync::{Arc, Barrier};
use std::time::Duration;

use crate::amount::{Amount, Unit};
use crate::budget::Budget;
use crate::cancel::Cancellation;
use crate::check::Verdict;
use crate::clock::{Clock, ManualClock, Timestamp};
use crate::cost::Cost;
use crate::error::Error;
use crate::expiry::ReserveOptions;
use crate::node_state::NodeState;
use crate::op::OpKind;
use crate::period::{Period, Rollover};
use crate::policy::{Limit, Limits, OveragePolicy};
use crate::rate::RateLimit;
use crate::store::Store;

mod capabilities;
mod idempotency;
mod top_up;
pub use self::capabilities::undeclared_ops_are_unsupported;
pub use self::idempotency::{
    a_retried_reserve_of_an_ended_hold_says_how_it_ended, concurrent_retries_hold_once,
    idempotency_keys_expire_after_their_ttl, idempotency_mismatch_changes_nothing,
    idempotent_retries_apply_once,
};
pub use self::top_up::{
    bad_top_up_input_changes_nothing, burn_rates_project_depletion,
    concurrent_top_ups_fire_exactly_once, top_ups_fire_once_per_crossing,
};

/// `true` if `store` declares every operation of `kinds` ([`Store::supports`]). A check of an
/// operation the store declares unsupported passes without running: such a store returns
/// [`Error::Unsupported`] for it instead, which its own tests should assert.
pub fn supports_all(store: &dyn Store, kinds: &[OpKind]) -> bool {
    kinds.iter().all(|kind| store.supports(*kind))
}

/// A check: gets a fresh empty store, panics if the store breaks the rule.
pub type Check = fn(Arc<dyn Store>);

/// Every check, by name, in the order [`store_conformance_tests!`](crate::store_conformance_tests)
/// lists them.
pub const CHECKS: &[(&str, Check)] = &[
    (
        "reserve_holds_on_every_ancestor",
        reserve_holds_on_every_ancestor,
    ),
    (
        "denied_reserve_changes_nothing",
        denied_reserve_changes_nothing,
    ),
    (
        "commit_returns_the_unused_rest",
        commit_returns_the_unused_rest,
    ),
    ("release_is_idempotent", release_is_idempotent),
    ("a_hold_ends_once", a_hold_ends_once),
    (
        "reject_records_overage_as_debt",
        reject_records_overage_as_debt,
    ),
    (
        "allow_if_available_needs_room_everywhere",
        allow_if_available_needs_room_everywhere,
    ),
    ("overdraft_is_bounded", overdraft_is_bounded),
    ("record_grows_only_with_room", record_grows_only_with_room),
    (
        "reserve_up_to_takes_what_fits",
        reserve_up_to_takes_what_fits,
    ),
    (
        "soft_limits_report_without_denying",
        soft_limits_report_without_denying,
    ),
    ("bad_input_changes_nothing", bad_input_changes_nothing),
    (
        "multi_unit_reserve_is_all_or_nothing",
        multi_unit_reserve_is_all_or_nothing,
    ),
    ("node_lifecycle", node_lifecycle),
    ("limits_and_funds", limits_and_funds),
    ("snapshot_restores_exactly", snapshot_restores_exactly),
    (
        "frozen_and_closed_nodes_block_their_subtree",
        frozen_and_closed_nodes_block_their_subtree,
    ),
    ("check_is_a_dry_run", check_is_a_dry_run),
    (
        "cancellation_says_why_a_hold_should_stop",
        cancellation_says_why_a_hold_should_stop,
    ),
    (
        "concurrent_reserves_never_pass_a_hard_limit",
        concurrent_reserves_never_pass_a_hard_limit,
    ),
    (
        "idempotent_retries_apply_once",
        idempotent_retries_apply_once,
    ),
    (
        "idempotency_mismatch_changes_nothing",
        idempotency_mismatch_changes_nothing,
    ),
    ("concurrent_retries_hold_once", concurrent_retries_hold_once),
    (
        "undeclared_ops_are_unsupported",
        undeclared_ops_are_unsupported,
    ),
];

/// A check of a time-based rule: gets a fresh empty store reading `clock`, and the clock.
pub type ClockCheck = fn(Arc<dyn Store>, &ManualClock);

/// Every time-based check, by name, in the order the `clock:` form of
/// [`store_conformance_tests!`](crate::store_conformance_tests) lists them.
pub const CLOCK_CHECKS: &[(&str, ClockCheck)] = &[
    (
        "expired_holds_are_reclaimed_once",
        expired_holds_are_reclaimed_once,
    ),
    (
        "a_denied_reserve_reclaims_expired_holds_first",
        a_denied_reserve_reclaims_expired_holds_first,
    ),
    ("extend_moves_the_deadline", extend_moves_the_deadline),
    (
        "a_reclaimed_hold_commits_only_what_fits",
        a_reclaimed_hold_commits_only_what_fits,
    ),
    (
        "check_reclaims_expired_holds_like_reserve",
        check_reclaims_expired_holds_like_reserve,
    ),
    (
        "a_reclaimed_hold_is_cancelled_as_expired",
        a_reclaimed_hold_is_cancelled_as_expired,
    ),
    (
        "rate_and_budget_denials_take_nothing_from_each_other",
        rate_and_budget_denials_take_nothing_from_each_other,
    ),
    (
        "periods_reset_lazily_and_keep_holds",
        periods_reset_lazily_and_keep_holds,
    ),
    (
        "idempotency_keys_expire_after_their_ttl",
        idempotency_keys_expire_after_their_ttl,
    ),
    (
        "a_retried_reserve_of_an_ended_hold_says_how_it_ended",
        a_retried_reserve_of_an_ended_hold_says_how_it_ended,
    ),
    (
        "top_ups_fire_once_per_crossing",
        top_ups_fire_once_per_crossing,
    ),
    ("burn_rates_project_depletion", burn_rates_project_depletion),
    (
        "bad_top_up_input_changes_nothing",
        bad_top_up_input_changes_nothing,
    ),
    (
        "concurrent_top_ups_fire_exactly_once",
        concurrent_top_ups_fire_exactly_once,
    ),
];

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
        $crate::store_conformance_tests!(|| ($make)($crate::ManualClock::new(
            $crate::conformance::CLOCK_START
        )));
        $crate::store_conformance_tests!(@clocked $make;
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
            concurrent_top_ups_fire_exactly_once,
        );
    };
    (@clocked $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                let clock = $crate::ManualClock::new($crate::conformance::CLOCK_START);
                let store: ::std::sync::Arc<dyn $crate::Store> =
                    ::std::sync::Arc::new(($make)(clock.clone()));
                $crate::conformance::$check(store, &clock);
            }
        )*
    };
    ($make:expr) => {
        $crate::store_conformance_tests!(@each $make;
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
            undeclared_ops_are_unsupported,
        );
    };
    (@each $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                let store: ::std::sync::Arc<dyn $crate::Store> = ::std::sync::Arc::new(($make)());
                $crate::conformance::$check(store);
            }
        )*
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

/// Reserving on a leaf holds the amount on the leaf and every ancestor.
pub fn reserve_holds_on_every_ancestor(store: Arc<dyn Store>) {
    let (acme, team, task) = tree(store, Limit::hard(usd("1")));
    let _guard = task.reserve(usd("0.40")).expect("fits");
    for node in [&acme, &team, &task] {
        assert_eq!(
            books(node),
            (zero(), usd("0.40"), zero()),
            "{}",
            node.path()
        );
    }
}

/// A denied reserve names the limiting node with its numbers and holds nothing anywhere.
pub fn denied_reserve_changes_nothing(store: Arc<dyn Store>) {
    let (acme, _, task) = tree(store.clone(), Limit::hard(usd("5")));
    let _held = task.reserve(usd("3")).expect("fits");
    let before = store.snapshot().expect("snapshot");
    let error = task.reserve(usd("1.5")).expect_err("team has only $1 left");
    let details = error.exceeded().expect("BudgetExceeded");
    assert_eq!(&*details.node, "acme/team");
    assert_eq!(
        (
            details.limit,
            details.spent,
            details.reserved,
            details.requested
        ),
        (usd("4"), zero(), usd("3"), usd("1.5"))
    );
    assert_eq!(
        store.snapshot().expect("snapshot"),
        before,
        "a denial changed the books"
    );
    assert_eq!(books(&acme), (zero(), usd("3"), zero()));
}

/// A commit below the hold spends the actual cost and returns the rest on every node.
pub fn commit_returns_the_unused_rest(store: Arc<dyn Store>) {
    let (acme, team, task) = tree(store, Limit::hard(usd("1")));
    let committed = task
        .reserve(usd("0.50"))
        .expect("fits")
        .commit(usd("0.20"))
        .expect("commit");
    assert_eq!(committed.returned.get(Unit::Usd), Some(usd("0.30")));
    for node in [&acme, &team, &task] {
        assert_eq!(
            books(node),
            (usd("0.20"), zero(), zero()),
            "{}",
            node.path()
        );
    }
}

/// Release returns everything; releasing an ended hold is `Ok(false)` and changes nothing.
pub fn release_is_idempotent(store: Arc<dyn Store>) {
    let (acme, _, task) = tree(store.clone(), Limit::hard(usd("1")));
    let guard = task.reserve(usd("0.50")).expect("fits");
    let hold = guard.id();
    guard.release().expect("release");
    assert_eq!(books(&acme), (zero(), zero(), zero()));
    assert!(!store.release(hold).expect("second release is not an error"));
    assert_eq!(books(&acme), (zero(), zero(), zero()));
}

/// Once a hold ended, commit and record on its id are `UnknownHold` and change nothing.
pub fn a_hold_ends_once(store: Arc<dyn Store>) {
    let (acme, _, task) = tree(store.clone(), Limit::hard(usd("1")));
    let guard = task.reserve(usd("0.50")).expect("fits");
    let hold = guard.id();
    guard.commit(usd("0.10")).expect("commit");
    let before = store.snapshot().expect("snapshot");
    let cost = Cost::from(usd("0.10"));
    assert!(matches!(
        store.commit(hold, &cost),
        Err(Error::UnknownHold { .. })
    ));
    assert!(matches!(
        store.record(hold, &cost),
        Err(Error::UnknownHold { .. })
    ));
    assert_eq!(store.snapshot().expect("snapshot"), before);
    assert_eq!(books(&acme), (usd("0.10"), zero(), zero()));
}

/// `Reject`: the overage is recorded (held part spent, excess as the reserving node's debt),
/// the commit errs, and the node refuses reserves until a credit repays the debt.
pub fn reject_records_overage_as_debt(store: Arc<dyn Store>) {
    let (acme, _, task) = tree(store, Limit::hard(usd("1")));
    let error = task
        .reserve(usd("0.50"))
        .expect("fits")
        .commit(usd("0.70"))
        .expect_err("Reject refuses an overage");
    assert!(matches!(error.error(), Error::OverageRejected { debt, .. } if *debt == usd("0.20")));
    assert!(error.into_guard().is_none(), "the hold has ended");
    assert_eq!(books(&task), (usd("0.50"), zero(), usd("0.20")));
    assert_eq!(books(&acme), (usd("0.70"), zero(), zero()));
    assert!(matches!(
        task.reserve(usd("0.01")),
        Err(Error::InDebt { .. })
    ));
    task.credit(usd("0.20")).expect("credit");
    assert_eq!(books(&task), (usd("0.70"), zero(), zero()));
    assert!(task.reserve(usd("0.50")).is_ok());
}

/// `AllowIfAvailable` takes the excess only when every node on the path has room.
pub fn allow_if_available_needs_room_everywhere(store: Arc<dyn Store>) {
    let policy = OveragePolicy::AllowIfAvailable;
    let (acme, team, task) = tree(store, Limit::hard(usd("5")).with_overage(policy));
    let committed = task
        .reserve(usd("1"))
        .expect("fits")
        .commit(usd("3"))
        .expect("room everywhere");
    assert_eq!(committed.overage.get(Unit::Usd), Some(usd("2")));
    assert_eq!(books(&team), (usd("3"), zero(), zero()));
    // team has $1 left: an excess of $1.50 does not fit there, so the commit errs.
    let error = task
        .reserve(usd("0.50"))
        .expect("fits")
        .commit(usd("2"))
        .expect_err("team has no room");
    assert!(matches!(error.error(), Error::OverageRejected { .. }));
    assert_eq!(books(&task), (usd("3.50"), zero(), usd("1.50")));
    assert_eq!(books(&team), (usd("4"), zero(), usd("1")));
    assert_eq!(books(&acme), (usd("5"), zero(), zero()));
}

/// `AllowWithOverdraft` succeeds while the debt stays within its limit and records beyond it.
pub fn overdraft_is_bounded(store: Arc<dyn Store>) {
    let policy = OveragePolicy::AllowWithOverdraft { limit: usd("0.25") };
    let (_, _, task) = tree(store, Limit::hard(usd("1")).with_overage(policy));
    task.reserve(usd("0.90"))
        .expect("fits")
        .commit(usd("1.10"))
        .expect("within the overdraft");
    assert_eq!(books(&task), (usd("1"), zero(), usd("0.10")));
    assert!(matches!(
        task.reserve(usd("0.01")),
        Err(Error::InDebt { .. })
    ));
    task.credit(usd("0.20")).expect("credit");
    let error = task
        .reserve(usd("0.10"))
        .expect("fits")
        .commit(usd("0.50"))
        .expect_err("past the overdraft");
    assert!(matches!(error.error(), Error::OverageRejected { .. }));
    assert_eq!(books(&task), (usd("1.20"), zero(), usd("0.40")));
}

/// `record` spends at once, grows the hold while every node has room, and otherwise records
/// nothing.
pub fn record_grows_only_with_room(store: Arc<dyn Store>) {
    let (acme, _, task) = tree(store.clone(), Limit::hard(usd("1")));
    let guard = task.reserve(usd("0.30")).expect("fits");
    guard.record(usd("0.20")).expect("within the hold");
    assert_eq!(books(&acme), (usd("0.20"), usd("0.10"), zero()));
    guard.record(usd("0.50")).expect("grows the hold");
    assert_eq!(books(&acme), (usd("0.70"), zero(), zero()));
    let before = store.snapshot().expect("snapshot");
    assert!(
        guard
            .record(usd("0.31"))
            .expect_err("past the cap")
            .is_denial()
    );
    assert_eq!(store.snapshot().expect("snapshot"), before);
    guard.commit(usd("0.70")).expect("commit the total");
    assert_eq!(books(&task), (usd("0.70"), zero(), zero()));
}

/// `reserve_up_to` holds what the tightest node has room for, within bounds.
pub fn reserve_up_to_takes_what_fits(store: Arc<dyn Store>) {
    let (_, team, task) = tree(store, Limit::hard(usd("5")));
    let _busy = team.reserve(usd("3.25")).expect("fits");
    let guard = task
        .reserve_up_to(usd("0.10"), usd("2"))
        .expect("0.75 fits");
    assert_eq!(guard.held().get(Unit::Usd), Some(usd("0.75")));
    let error = task
        .reserve_up_to(usd("0.10"), usd("2"))
        .expect_err("nothing left");
    assert_eq!(
        &*error.exceeded().expect("BudgetExceeded").node,
        "acme/team"
    );
}

/// Soft limits let reserves through and name the node whose soft limit is passed.
pub fn soft_limits_report_without_denying(store: Arc<dyn Store>) {
    let (_, _, task) = tree(store, Limit::soft(usd("0.50")));
    let guard = task.reserve(usd("0.80")).expect("soft limits do not deny");
    assert_eq!(guard.over_soft_limit(), Some("acme/team/task"));
    let team = Budget::open(guard.budget().store().clone(), "acme/team").expect("team");
    let small = team.reserve(usd("0.10")).expect("fits");
    assert_eq!(small.over_soft_limit(), None);
}

/// Invalid input is a typed error that changes nothing.
pub fn bad_input_changes_nothing(store: Arc<dyn Store>) {
    let (_, _, task) = tree(store.clone(), Limit::hard(usd("1")));
    let guard = task.reserve(usd("0.10")).expect("fits");
    let before = store.snapshot().expect("snapshot");
    let node = task.id();
    let tokens = Cost::from(Amount::tokens(5));
    let outcomes = [
        store.reserve(node, &Cost::new()).map(|_| ()),
        store.reserve(node, &Cost::from(zero())).map(|_| ()),
        // (A reserve of tokens nobody limits is not bad input: every unit is ledgered.)
        store.commit(guard.id(), &tokens).map(|_| ()),
        store.record(guard.id(), &tokens),
        store
            .reserve_up_to(node, usd("0.5"), usd("0.1"))
            .map(|_| ()),
        store
            .create_node(Some(node), "a/b", &Limits::none())
            .map(|_| ()),
        store.create_node(None, "acme", &Limits::none()).map(|_| ()),
        store.set_limit(node, Limit::hard(usd("0.05"))).map(|_| ()),
        store.debit(node, usd("5")).map(|_| ()),
        store.credit(node, Amount::tokens(5)).map(|_| ()),
    ];
    for (position, outcome) in outcomes.iter().enumerate() {
        assert!(outcome.is_err(), "bad input #{position} was accepted");
    }
    assert_eq!(
        store.snapshot().expect("snapshot"),
        before,
        "bad input changed the books"
    );
    let retry = guard
        .commit(Amount::tokens(5))
        .expect_err("unit mismatch")
        .into_guard()
        .expect("the hold is still live after bad input");
    retry
        .commit(usd("0.10"))
        .expect("retry with the right unit");
}

/// A reserve across several units holds all of them or none.
pub fn multi_unit_reserve_is_all_or_nothing(store: Arc<dyn Store>) {
    let limits = Limits::from([Limit::hard(usd("1")), Limit::hard(Amount::tokens(1_000))]);
    let agent = Budget::builder("agent", limits)
        .build_shared(store.clone())
        .expect("build");
    let both = Cost::from(usd("0.10"))
        .with(Amount::tokens(900))
        .expect("two units");
    let _first = agent.reserve(both).expect("fits");
    let before = store.snapshot().expect("snapshot");
    let error = agent.reserve(both).expect_err("tokens do not fit");
    assert_eq!(
        error.exceeded().expect("exceeded").requested,
        Amount::tokens(900)
    );
    assert_eq!(
        store.snapshot().expect("snapshot"),
        before,
        "the USD part was held"
    );
}

/// Nodes are added and removed at run time; busy nodes and roots cannot be removed; removed
/// nodes are unknown, and their spend stays on the ancestors.
pub fn node_lifecycle(store: Arc<dyn Store>) {
    let (acme, team, _) = tree(store, Limit::hard(usd("1")));
    let job = team
        .add_child("job-1", Limit::hard(usd("0.5")))
        .expect("add");
    assert!(matches!(
        team.add_child("job-1", Limits::none()),
        Err(Error::DuplicateNode { .. })
    ));
    let guard = job.reserve(usd("0.2")).expect("fits");
    assert!(matches!(
        job.clone().remove(),
        Err(Error::NodeInUse { holds: 1, .. })
    ));
    assert!(matches!(
        team.clone().remove(),
        Err(Error::NodeInUse { .. })
    ));
    assert!(matches!(
        acme.clone().remove(),
        Err(Error::RootRemoval { .. })
    ));
    guard.commit(usd("0.2")).expect("commit");
    let stale = job.clone();
    job.remove().expect("idle leaf");
    assert!(matches!(
        stale.reserve(usd("0.1")),
        Err(Error::UnknownNode { .. })
    ));
    assert_eq!(books(&team), (usd("0.2"), zero(), zero()));
    let children: Vec<String> = team
        .children()
        .expect("children")
        .iter()
        .map(|child| child.path().to_owned())
        .collect();
    assert_eq!(children, ["acme/team/task"]);
}

/// Limits can be raised and lowered (never below usage); credit and debit move funds.
pub fn limits_and_funds(store: Arc<dyn Store>) {
    let (_, _, task) = tree(store, Limit::hard(usd("1")));
    let _guard = task.reserve(usd("0.60")).expect("fits");
    assert!(matches!(
        task.set_limit(Limit::hard(usd("0.50"))),
        Err(Error::LimitBelowUsage { .. })
    ));
    assert_eq!(
        task.debit(usd("0.40")).expect("debit").remaining,
        Some(zero())
    );
    assert_eq!(
        task.credit(usd("1")).expect("credit").remaining,
        Some(usd("1"))
    );
    let raised = task.set_limit(Limit::hard(usd("3"))).expect("raise");
    assert_eq!(raised.remaining, Some(usd("2.40")));
    let untracked = task.remove_limit(Unit::Usd).expect("remove limit");
    assert_eq!((untracked.limit, untracked.remaining), (None, None));
}

/// A snapshot restores exactly (holds included), and an inconsistent one is refused without
/// changing the store.
pub fn snapshot_restores_exactly(store: Arc<dyn Store>) {
    let (_, _, task) = tree(store.clone(), Limit::hard(usd("1")));
    let live = task.reserve_owned(usd("0.30")).expect("fits");
    task.reserve(usd("0.20"))
        .expect("fits")
        .commit(usd("0.05"))
        .expect("commit");
    let snapshot = store.snapshot().expect("snapshot");
    store.restore(&snapshot).expect("restore");
    assert_eq!(store.snapshot().expect("snapshot"), snapshot);
    let mut broken = snapshot.clone();
    broken.holds.clear();
    assert!(matches!(
        store.restore(&broken),
        Err(Error::InvalidSnapshot { .. })
    ));
    assert_eq!(store.snapshot().expect("snapshot"), snapshot);
    // Node ids may change on restore; paths do not. The restored hold is still committable.
    let task = Budget::open(store.clone(), "acme/team/task").expect("task");
    let cost = Cost::from(usd("0.30"));
    store
        .commit(live.id(), &cost)
        .expect("restored hold commits");
    drop(live); // its release finds the hold ended: a no-op
    assert_eq!(books(&task), (usd("0.35"), zero(), zero()));
}

/// Many threads reserving on one leaf and its siblings never pass a hard limit, and exactly the
/// holds that fit are granted.
pub fn concurrent_reserves_never_pass_a_hard_limit(store: Arc<dyn Store>) {
    const THREADS: usize = 8;
    let root = Budget::builder("org", Limit::hard(usd("50")))
        .child("a", Limit::hard(usd("100")))
        .child("b", Limit::hard(usd("100")))
        .build_shared(store)
        .expect("build");
    let barrier = Barrier::new(THREADS);
    let granted: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|thread| {
                let leaf = root
                    .at(if thread % 2 == 0 { "a" } else { "b" })
                    .expect("leaf");
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    let mut kept = Vec::new();
                    for _ in 0..20 {
                        match leaf.reserve_owned(usd("1")) {
                            Ok(guard) => kept.push(guard),
                            Err(error) => assert!(error.is_denial(), "{error}"),
                        }
                    }
                    let count = kept.len();
                    for guard in kept {
                        guard.commit(usd("1")).expect("commit");
                    }
                    count
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).sum()
    });
    assert_eq!(granted, 50, "exactly $50 of $1 holds fit under the root");
    assert_eq!(books(&root), (usd("50"), zero(), zero()));
}

fn ttl(seconds: u64) -> ReserveOptions {
    ReserveOptions::new().ttl(Duration::from_secs(seconds))
}

/// A hold is not reclaimed before its deadline; a sweep at the deadline reclaims it, returns
/// its outstanding part on the whole path, keeps recorded spend, and reports it exactly once.
pub fn expired_holds_are_reclaimed_once(store: Arc<dyn Store>, clock: &ManualClock) {
    let (acme, team, task) = tree(store.clone(), Limit::hard(usd("1")));
    let guard = task.reserve_with(usd("0.60"), &ttl(10)).expect("fits");
    assert_eq!(
        guard.expires_at(),
        CLOCK_START.saturating_add(Duration::from_secs(10)),
        "the deadline is the store clock at the reserve plus the ttl"
    );
    guard.record(usd("0.10")).expect("record");
    clock.advance(Duration::from_secs(9));
    assert!(store.sweep().expect("sweep").is_empty(), "reclaimed early");
    clock.advance(Duration::from_secs(1));
    let expired = store.sweep().expect("sweep");
    assert_eq!(expired.len(), 1, "the hold is reclaimed at its deadline");
    assert_eq!(expired[0].hold, guard.id());
    assert_eq!(expired[0].node.as_ref(), "acme/team/task");
    assert_eq!(expired[0].returned(), Cost::from(usd("0.50")));
    for node in [&acme, &team, &task] {
        assert_eq!(
            books(node),
            (usd("0.10"), zero(), zero()),
            "{}",
            node.path()
        );
    }
    assert!(store.sweep().expect("sweep").is_empty(), "reported twice");
    assert!(
        guard.release().is_ok(),
        "releasing a reclaimed hold is a no-op"
    );
    assert_eq!(books(&acme), (usd("0.10"), zero(), zero()));
    // The default ttl is 60 s.
    let guard = task.reserve(usd("0.10")).expect("fits");
    assert_eq!(
        guard.expires_at(),
        clock.now().saturating_add(crate::expiry::DEFAULT_HOLD_TTL)
    );
}

/// A reserve that does not fit reclaims expired holds first and is granted if that makes room;
/// a hold before its deadline is never taken.
pub fn a_denied_reserve_reclaims_expired_holds_first(store: Arc<dyn Store>, clock: &ManualClock) {
    let (_, _, task) = tree(store.clone(), Limit::hard(usd("1")));
    let stuck = task.reserve_with(usd("0.70"), &ttl(5)).expect("fits");
    let _alive = task.reserve_with(usd("0.20"), &ttl(60)).expect("fits");
    clock.advance(Duration::from_secs(4));
    assert!(
        task.reserve(usd("0.50")).is_err_and(|e| e.is_denial()),
        "a hold before its deadline was reclaimed"
    );
    clock.advance(Duration::from_secs(1));
    let fresh = store
        .reserve(task.id(), &Cost::from(usd("0.50")))
        .expect("the expired hold makes room");
    assert_eq!(
        fresh.expired.len(),
        1,
        "the reserve reports what it reclaimed"
    );
    assert_eq!(fresh.expired[0].hold, stuck.id());
    assert_eq!(books(&task), (zero(), usd("0.70"), zero()));
    assert!(store.sweep().expect("sweep").is_empty(), "reported twice");
    // A reserve still denied after reclaiming leaves the report to the next sweep.
    clock.advance(Duration::from_secs(60));
    assert!(task.reserve(usd("2")).is_err_and(|e| e.is_denial()));
    assert_eq!(books(&task), (zero(), zero(), zero()));
    assert_eq!(store.sweep().expect("sweep").len(), 2);
    drop(stuck);
}

/// `extend` moves a live hold's deadline from the store's now; it fails with
/// `ReservationExpired` once the hold is reclaimed and rejects a zero ttl.
pub fn extend_moves_the_deadline(store: Arc<dyn Store>, clock: &ManualClock) {
    let (_, _, task) = tree(store.clone(), Limit::hard(usd("1")));
    let guard = task.reserve_with(usd("0.50"), &ttl(10)).expect("fits");
    clock.advance(Duration::from_secs(8));
    let deadline = guard.extend(Duration::from_secs(10)).expect("extend");
    assert_eq!(
        deadline,
        clock.now().saturating_add(Duration::from_secs(10))
    );
    assert_eq!(guard.expires_at(), deadline);
    assert!(matches!(
        guard.extend(Duration::ZERO),
        Err(Error::InvalidDuration { .. })
    ));
    assert!(matches!(
        task.reserve_with(usd("0.10"), &ReserveOptions::new().ttl(Duration::ZERO)),
        Err(Error::InvalidDuration { .. })
    ));
    clock.advance(Duration::from_secs(9));
    assert!(
        store.sweep().expect("sweep").is_empty(),
        "the heartbeat was ignored"
    );
    // Past the deadline but not reclaimed: still live, and a heartbeat revives it.
    clock.advance(Duration::from_secs(2));
    guard
        .extend(Duration::from_secs(10))
        .expect("not reclaimed yet");
    assert!(store.sweep().expect("sweep").is_empty());
    clock.advance(Duration::from_secs(10));
    assert_eq!(store.sweep().expect("sweep").len(), 1);
    assert!(matches!(
        guard.extend(Duration::from_secs(10)),
        Err(Error::ReservationExpired { hold, .. }) if hold == guard.id()
    ));
    assert!(matches!(
        store.record(guard.id(), &Cost::from(usd("0.01"))),
        Err(Error::ReservationExpired { .. })
    ));
    assert_eq!(books(&task), (zero(), zero(), zero()));
}

/// An expired but unreclaimed hold commits normally. A reclaimed hold's commit records its
/// spend without a hold when it fits under every hard limit (`Committed::expired`, nothing
/// returned); otherwise it records nothing and fails with `ReservationExpired`.
pub fn a_reclaimed_hold_commits_only_what_fits(store: Arc<dyn Store>, clock: &ManualClock) {
    let (acme, _, task) = tree(store.clone(), Limit::hard(usd("1")));
    let late = task.reserve_with(usd("0.40"), &ttl(1)).expect("fits");
    clock.advance(Duration::from_secs(2));
    let committed = late
        .commit(usd("0.30"))
        .expect("not reclaimed: commits normally");
    assert!(!committed.expired);
    assert_eq!(committed.returned, Cost::from(usd("0.10")));

    let reclaimed = task.reserve_with(usd("0.40"), &ttl(1)).expect("fits");
    clock.advance(Duration::from_secs(2));
    assert_eq!(store.sweep().expect("sweep").len(), 1);
    let committed = reclaimed.commit(usd("0.25")).expect("fits without a hold");
    assert!(committed.expired);
    assert_eq!(committed.spent, Cost::from(usd("0.25")));
    assert_eq!(committed.returned, Cost::from(Amount::zero(Unit::Usd)));
    assert_eq!(books(&task), (usd("0.55"), zero(), zero()));
    assert_eq!(books(&acme), (usd("0.55"), zero(), zero()));

    // $0.45 left on the task; another caller takes $0.40 of it while the hold is reclaimed.
    let reclaimed = task.reserve_with(usd("0.40"), &ttl(1)).expect("fits");
    clock.advance(Duration::from_secs(2));
    assert_eq!(store.sweep().expect("sweep").len(), 1);
    let _other = task.reserve(usd("0.40")).expect("fits");
    let id = reclaimed.id();
    let error = reclaimed.commit(usd("0.30")).expect_err("does not fit");
    assert!(
        matches!(error.error(), Error::ReservationExpired { hold, .. } if *hold == id),
        "{error}"
    );
    assert!(error.into_guard().is_none(), "the hold has ended");
    assert_eq!(
        books(&task),
        (usd("0.55"), usd("0.40"), zero()),
        "nothing recorded"
    );
}

/// A frozen node refuses new holds on itself and its subtree (naming itself) while live holds
/// record and commit; a closed one also refuses recording; both change nothing when they
/// refuse, survive a snapshot, and lift when the node is active again.
pub fn frozen_and_closed_nodes_block_their_subtree(store: Arc<dyn Store>) {
    let (acme, team, task) = tree(store.clone(), Limit::hard(usd("1")));
    let live = task.reserve(usd("0.50")).expect("fits");
    assert_eq!(
        team.set_state(NodeState::Frozen).expect("freeze"),
        NodeState::Active
    );
    assert_eq!(team.info().expect("info").state, NodeState::Frozen);
    let before = store.snapshot().expect("snapshot");
    assert!(matches!(
        task.reserve(usd("0.10")),
        Err(Error::Frozen { node }) if &*node == "acme/team"
    ));
    assert!(matches!(
        task.reserve_up_to(usd("0.10"), usd("0.20")),
        Err(Error::Frozen { .. })
    ));
    assert_eq!(
        store.snapshot().expect("snapshot"),
        before,
        "a refusal changed the books"
    );
    assert!(
        acme.reserve(usd("0.10")).is_ok(),
        "the parent is not frozen"
    );
    live.record(usd("0.10"))
        .expect("live holds record while frozen");
    store.restore(&before).expect("restore");
    assert!(
        matches!(
            Budget::open(store.clone(), "acme/team/task")
                .expect("task")
                .reserve(usd("0.10")),
            Err(Error::Frozen { .. })
        ),
        "the state survives a snapshot"
    );
    // Node ids may change on restore; handles are opened again by path.
    let acme = Budget::open(store.clone(), "acme").expect("acme");
    let team = Budget::open(store.clone(), "acme/team").expect("team");
    let task = Budget::open(store.clone(), "acme/team/task").expect("task");
    assert_eq!(
        acme.set_state(NodeState::Closed).expect("close"),
        NodeState::Active
    );
    assert!(matches!(
        task.reserve(usd("0.10")),
        Err(Error::Frozen { .. }) | Err(Error::Closed { .. })
    ));
    assert!(matches!(
        store.record(live.id(), &Cost::from(usd("0.10"))),
        Err(Error::Closed { node }) if &*node == "acme"
    ));
    store
        .commit(live.id(), &Cost::from(usd("0.30")))
        .expect("live holds commit while closed");
    drop(live);
    assert_eq!(books(&task), (usd("0.30"), zero(), zero()));
    acme.set_state(NodeState::Active).expect("reopen");
    team.set_state(NodeState::Active).expect("thaw");
    assert!(task.reserve(usd("0.10")).is_ok());
}

/// `check` gives the verdict `reserve` would give (fits, exceeded with the limiting node's
/// numbers, in debt, frozen, closed), names the tightest node when it fits, and changes nothing.
pub fn check_is_a_dry_run(store: Arc<dyn Store>) {
    let (acme, team, task) = tree(store.clone(), Limit::hard(usd("1")));
    let _held = task.reserve(usd("0.50")).expect("fits");
    let before = store.snapshot().expect("snapshot");
    let fits = task.check(usd("0.50")).expect("check");
    assert!(fits.fits(), "{fits:?}");
    assert_eq!(fits.limiting.len(), 1);
    assert_eq!(&*fits.limiting[0].node, "acme/team/task");
    assert_eq!(fits.limiting[0].remaining(), usd("0.50"));
    let denied = task.check(usd("0.60")).expect("check");
    match &denied.verdict {
        Verdict::Exceeded(details) => {
            assert_eq!(&*details.node, "acme/team/task");
            assert_eq!(
                (details.limit, details.reserved, details.requested),
                (usd("1"), usd("0.50"), usd("0.60"))
            );
        }
        other => panic!("expected Exceeded, got {other:?}"),
    }
    let at_team = team.check(usd("3.60")).expect("check");
    assert_eq!(at_team.denied_by(), Some("acme/team"));
    let reserve_error = team.reserve(usd("3.60")).expect_err("team has $3.50 left");
    assert_eq!(
        reserve_error.exceeded().map(|d| &*d.node),
        Some("acme/team"),
        "check and reserve agree"
    );
    assert_eq!(
        store.snapshot().expect("snapshot"),
        before,
        "check held something"
    );
    team.set_state(NodeState::Frozen).expect("freeze");
    assert!(matches!(
        task.check(usd("0.10")).expect("check").verdict,
        Verdict::Frozen { node } if &*node == "acme/team"
    ));
    team.set_state(NodeState::Active).expect("thaw");
    acme.set_state(NodeState::Closed).expect("close");
    assert!(matches!(
        task.check(usd("0.10")).expect("check").verdict,
        Verdict::Closed { node } if &*node == "acme"
    ));
    acme.set_state(NodeState::Active).expect("reopen");
    assert!(matches!(
        task.check(zero()),
        Err(Error::InvalidAmount { .. })
    ));
    // Every unit is ledgered: a unit no node limits always fits.
    assert!(task.check(Amount::tokens(5)).expect("check").fits());
    let error = task
        .reserve(usd("0.20"))
        .expect("fits")
        .commit(usd("0.70"))
        .expect_err("Reject refuses the overage");
    assert!(matches!(error.error(), Error::OverageRejected { .. }));
    let in_debt = task.check(usd("0.01")).expect("check");
    assert!(
        matches!(&in_debt.verdict, Verdict::InDebt { node, debt }
            if &**node == "acme/team/task" && *debt == usd("0.50")),
        "{in_debt:?}"
    );
}

/// A check that a hard limit would deny reclaims expired holds first, as a reserve does, and
/// reports them once.
pub fn check_reclaims_expired_holds_like_reserve(store: Arc<dyn Store>, clock: &ManualClock) {
    let (_, _, task) = tree(store.clone(), Limit::hard(usd("1")));
    let stuck = task.reserve_with(usd("0.80"), &ttl(5)).expect("fits");
    assert_eq!(
        task.check(usd("0.50")).expect("check").denied_by(),
        Some("acme/team/task"),
        "the hold is live before its deadline"
    );
    clock.advance(Duration::from_secs(6));
    let check = task.check(usd("0.50")).expect("check");
    assert!(check.fits(), "{check:?}");
    assert_eq!(check.expired.len(), 1);
    assert_eq!(check.expired[0].hold, stuck.id());
    assert_eq!(books(&task), (zero(), zero(), zero()));
    assert!(store.sweep().expect("sweep").is_empty(), "reported once");
    drop(stuck);
}

/// `cancellation` names a frozen or closed node on the path (the nearest), a hard limit used up
/// by spend or a node in debt, and a hold that ended; it changes nothing; and `cancel_epoch`,
/// when the store keeps one, moves whenever the answer may have changed.
pub fn cancellation_says_why_a_hold_should_stop(store: Arc<dyn Store>) {
    let (acme, team, task) = tree(store.clone(), Limit::hard(usd("1")));
    let live = task.reserve(usd("0.40")).expect("fits");
    let other = task.reserve(usd("0.10")).expect("fits");
    let ask = |hold| store.cancellation(hold).expect("cancellation");
    assert_eq!(ask(live.id()), None);
    let before = store.snapshot().expect("snapshot");
    let epoch = store.cancel_epoch();
    let _ = ask(live.id());
    assert_eq!(
        store.snapshot().expect("snapshot"),
        before,
        "a query changed the books"
    );
    let _ = task.reserve(usd("0.10")).expect("fits").commit(usd("0.05"));
    assert_eq!(
        store.cancel_epoch(),
        epoch,
        "an ordinary reserve and commit moved the epoch"
    );
    acme.set_state(NodeState::Closed).expect("close");
    team.set_state(NodeState::Frozen).expect("freeze");
    // A store without a counter (`cancel_epoch` is `None`) is asked every time instead.
    if epoch.is_some() {
        assert_ne!(
            store.cancel_epoch(),
            epoch,
            "a state change must move the epoch"
        );
    }
    let frozen = Cancellation::Frozen {
        node: "acme/team".into(),
    };
    assert_eq!(ask(live.id()), Some(frozen), "the nearest blocked node");
    team.set_state(NodeState::Active).expect("thaw");
    let closed = Cancellation::Closed {
        node: "acme".into(),
    };
    assert_eq!(ask(live.id()), Some(closed));
    acme.set_state(NodeState::Active).expect("reopen");
    assert_eq!(
        ask(live.id()),
        None,
        "lifting the state lifts the cancellation"
    );
    let epoch = store.cancel_epoch();
    let error = live
        .commit(usd("0.90"))
        .expect_err("Reject refuses the overage");
    assert!(matches!(error.error(), Error::OverageRejected { .. }));
    // A store without a counter (`cancel_epoch` is `None`) is asked every time instead.
    if epoch.is_some() {
        assert_ne!(
            store.cancel_epoch(),
            epoch,
            "an overage must move the epoch"
        );
    }
    let exhausted = Cancellation::Exhausted {
        node: "acme/team/task".into(),
        unit: Unit::Usd,
    };
    assert_eq!(ask(other.id()), Some(exhausted), "a node in debt");
    let ended = other.id();
    other.release().expect("release");
    assert_eq!(ask(ended), Some(Cancellation::Ended));
}

/// A hold reclaimed by expiry is cancelled as `Expired` with its deadline; one past its deadline
/// but not reclaimed is not cancelled.
pub fn a_reclaimed_hold_is_cancelled_as_expired(store: Arc<dyn Store>, clock: &ManualClock) {
    let (_, _, task) = tree(store.clone(), Limit::hard(usd("1")));
    let guard = task.reserve_with(usd("0.50"), &ttl(5)).expect("fits");
    let deadline = guard.expires_at();
    clock.advance(Duration::from_secs(6));
    assert_eq!(
        store.cancellation(guard.id()).expect("cancellation"),
        None,
        "past its deadline but still live"
    );
    let epoch = store.cancel_epoch();
    assert_eq!(store.sweep().expect("sweep").len(), 1);
    // A store without a counter (`cancel_epoch` is `None`) is asked every time instead.
    if epoch.is_some() {
        assert_ne!(store.cancel_epoch(), epoch, "a reclaim must move the epoch");
    }
    assert_eq!(
        store.cancellation(guard.id()).expect("cancellation"),
        Some(Cancellation::Expired {
            expired_at: deadline
        })
    );
    assert!(guard.is_cancelled());
}

/// A rate limit is checked with the budget in one step: a reserve the budget denies takes no
/// rate slot, a reserve the rate limit denies holds no money, and the denial's `retry_after` is
/// exact. The limit is part of the snapshot.
pub fn rate_and_budget_denials_take_nothing_from_each_other(
    store: Arc<dyn Store>,
    clock: &ManualClock,
) {
    if !supports_all(&*store, &[OpKind::SetRateLimit]) {
        return;
    }
    let (acme, team, task) = tree(store, Limit::hard(usd("1")));
    let per_minute = RateLimit::per_minute(2).expect("a valid rate limit");
    assert_eq!(team.set_rate_limit(Some(per_minute)).expect("set"), None);
    // Denied by the budget (task has $1): no slot taken.
    let denied = task.reserve(usd("2")).expect_err("over the task's limit");
    assert!(matches!(denied, Error::BudgetExceeded(_)), "{denied}");
    // So both slots are still free.
    task.reserve(usd("0.25"))
        .expect("slot 1")
        .commit(usd("0.25"))
        .expect("commit");
    clock.advance(Duration::from_secs(10));
    task.reserve(usd("0.25"))
        .expect("slot 2")
        .commit(usd("0.25"))
        .expect("commit");
    let before = (books(&acme), books(&team), books(&task));
    // Denied by the rate limit: nothing held anywhere, exact retry time.
    match task.reserve(usd("0.10")) {
        Err(Error::RateLimited {
            node,
            limit,
            window,
            retry_after,
        }) => {
            assert_eq!(&*node, "acme/team");
            assert_eq!((limit, window), (2, Duration::from_secs(60)));
            assert_eq!(
                retry_after,
                Duration::from_secs(50),
                "the first slot frees at 60 s"
            );
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert_eq!((books(&acme), books(&team), books(&task)), before);
    // A sibling path without a rate limit is not affected.
    assert!(acme.reserve(usd("0.10")).is_ok());
    clock.advance(Duration::from_nanos(49_999_999_999));
    assert!(matches!(
        task.reserve(usd("0.10")),
        Err(Error::RateLimited { .. })
    ));
    clock.advance(Duration::from_nanos(1));
    task.reserve(usd("0.10"))
        .expect("the first slot left the window")
        .release()
        .expect("release");
    let snapshot = acme.snapshot().expect("snapshot");
    let node = snapshot
        .nodes
        .iter()
        .find(|node| &*node.path == "acme/team")
        .expect("team in the snapshot");
    assert_eq!(node.rate_limit, Some(per_minute));
    assert_eq!(team.set_rate_limit(None).expect("remove"), Some(per_minute));
}

/// A daily team cap with a per-task cap under it: spend resets at the first operation after
/// midnight UTC (no thread), a live hold stays reserved across the boundary and its commit counts
/// in the new period, a rollover carries the unused rest (capped), and bad periodic limits are
/// typed errors that change nothing.
pub fn periods_reset_lazily_and_keep_holds(store: Arc<dyn Store>, clock: &ManualClock) {
    let day = Duration::from_secs(86_400);
    // CLOCK_START is 22:13:20 UTC: the day ends 1 h 46 min 40 s later.
    let midnight = CLOCK_START.saturating_add(Duration::from_secs(6_400));
    let team = Budget::builder("team", Limit::hard(usd("10")).per(Period::daily()))
        .child("task", Limit::hard(usd("4")))
        .build_shared(store.clone())
        .expect("build the periodic tree");
    let task = team.at("task").expect("task exists");
    let balance = team.balance(Unit::Usd).expect("balance");
    assert_eq!(
        balance.resets_at,
        Some(midnight),
        "resets_at of a daily limit"
    );
    assert_eq!(balance.allowance, Some(usd("10")));
    task.reserve(usd("3"))
        .expect("fits")
        .commit(usd("3"))
        .expect("commit");
    let live = task.reserve(usd("1")).expect("fits");
    assert!(team.reserve(usd("7")).is_err(), "10 - 3 spent - 1 held");

    clock.set(midnight);
    let balance = team.balance(Unit::Usd).expect("balance");
    assert_eq!(
        (balance.spent, balance.reserved),
        (zero(), usd("1")),
        "spend resets at the boundary; the live hold stays reserved"
    );
    assert_eq!(balance.resets_at, Some(midnight.saturating_add(day)));
    assert_eq!(
        books(&task),
        (usd("3"), usd("1"), zero()),
        "a limit without period keeps its spend"
    );
    live.commit(usd("1")).expect("commit across the boundary");
    assert_eq!(
        team.balance(Unit::Usd).expect("balance").spent,
        usd("1"),
        "a hold's commit counts in the period it is committed in"
    );
    team.reserve(usd("9"))
        .expect("the new day has 9 left")
        .release()
        .expect("release");

    // Bad input changes nothing.
    let before = store.snapshot().expect("snapshot");
    assert!(matches!(
        team.set_limit(Limit::hard(usd("10")).with_rollover(Rollover::CapAtAllocation)),
        Err(Error::InvalidPeriod { .. })
    ));
    assert!(matches!(
        team.set_limit(Limit::hard(usd("10")).per(Period::daily()).with_rollover(
            Rollover::CarryForward {
                cap: Amount::tokens(5)
            }
        )),
        Err(Error::UnitMismatch { .. })
    ));
    assert_eq!(store.snapshot().expect("snapshot"), before);

    // A rollover on the same period keeps the current period and carries at the next boundary.
    team.set_limit(
        Limit::hard(usd("10"))
            .per(Period::daily())
            .with_rollover(Rollover::CarryForward { cap: usd("2") }),
    )
    .expect("same period, with a rollover");
    assert_eq!(
        team.balance(Unit::Usd).expect("balance").resets_at,
        Some(midnight.saturating_add(day))
    );
    clock.advance(day);
    let balance = team.balance(Unit::Usd).expect("balance");
    assert_eq!(balance.spent, zero());
    assert_eq!(balance.allowance, Some(usd("12")), "9 unused, capped at 2");
    // The snapshot carries the period state exactly.
    let snapshot = store.snapshot().expect("snapshot");
    store.restore(&snapshot).expect("restore");
    assert_eq!(team.balance(Unit::Usd).expect("balance"), balance);
}
