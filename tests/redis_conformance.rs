//! The shared conformance suite on RedisStore, against a real `redis-server` per check: the
//! checks whose operations the store declares. `undeclared_ops_are_unsupported` checks that
//! the others are refused with `Unsupported`.
//!
//! Not listed, because they also use an operation the store does not declare (and the check
//! does not skip it): `snapshot_restores_exactly` and `frozen_and_closed_nodes_block_their_subtree`
//! (`Restore`), and the top-up and burn window checks. `idempotency_keys_expire_after_their_ttl`
//! is not listed either: keys expire by Redis' own key TTL (24 h on the server's clock), which a
//! manual clock cannot advance.

mod redis_support;

use std::sync::Arc;

use budget_guard::{ManualClock, RedisOptions, Store, conformance};
use redis_support::RedisServer;

macro_rules! checks {
    ($($check:ident),* $(,)?) => {$(
        #[test]
        fn $check() {
            let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
            let store: Arc<dyn Store> = Arc::new(server.store("conformance"));
            conformance::$check(store);
        }
    )*};
}

/// Checks that move time: the store takes its time from the check's manual clock
/// ([`RedisOptions::clock`]) instead of the server's `TIME`.
macro_rules! clock_checks {
    ($($check:ident),* $(,)?) => {$(
        #[test]
        fn $check() {
            let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
            let clock = ManualClock::new(conformance::CLOCK_START);
            let options = RedisOptions::new().clock(clock.clone());
            let store: Arc<dyn Store> = Arc::new(server.store_with("conformance", options));
            conformance::$check(store, &clock);
        }
    )*};
}

checks!(
    reserve_holds_on_every_ancestor,
    denied_reserve_changes_nothing,
    commit_returns_the_unused_rest,
    release_is_idempotent,
    multi_unit_reserve_is_all_or_nothing,
    concurrent_reserves_never_pass_a_hard_limit,
    idempotency_mismatch_changes_nothing,
    concurrent_retries_hold_once,
    undeclared_ops_are_unsupported,
    bad_input_changes_nothing,
    limits_and_funds,
    reject_records_overage_as_debt,
    allow_if_available_needs_room_everywhere,
    overdraft_is_bounded,
    cancellation_says_why_a_hold_should_stop,
    soft_limits_report_without_denying,
    reserve_up_to_takes_what_fits,
    idempotent_retries_apply_once,
    node_lifecycle,
    a_hold_ends_once,
    record_grows_only_with_room,
    check_is_a_dry_run,
);

clock_checks!(
    a_denied_reserve_reclaims_expired_holds_first,
    a_reclaimed_hold_commits_only_what_fits,
    a_retried_reserve_of_an_ended_hold_says_how_it_ended,
    expired_holds_are_reclaimed_once,
    extend_moves_the_deadline,
    a_reclaimed_hold_is_cancelled_as_expired,
    check_reclaims_expired_holds_like_reserve,
    rate_and_budget_denials_take_nothing_from_each_other,
    periods_reset_lazily_and_keep_holds,
);
