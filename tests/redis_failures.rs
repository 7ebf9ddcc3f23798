//! RedisStore fails closed: a server that cannot be reached, or dies mid-run, gives a typed
//! `StoreError` that says whether the operation may have happened, never a silent allow.

mod redis_support;

use std::time::Duration;

use budget_guard::{Amount, Cost, Error, Limit, RedisOptions, RedisStore, Store, StoreErrorKind};
use redis_support::{RedisServer, free_port};

fn kind(error: &Error) -> Option<StoreErrorKind> {
    match error {
        Error::Store(store) => Some(store.kind()),
        _ => None,
    }
}

#[test]
fn an_unreachable_server_is_transient_nothing_was_sent() {
    let url = format!("redis://127.0.0.1:{}", free_port());
    let options = RedisOptions::new().timeout(Duration::from_millis(300));
    let store = RedisStore::with_options(&url, "t", options).unwrap();
    let error = store
        .create_node(None, "acme", &Limit::hard(Amount::usd("1").unwrap()).into())
        .unwrap_err();
    assert_eq!(kind(&error), Some(StoreErrorKind::Transient), "{error}");
    assert!(error.is_transient());
}

#[test]
fn a_server_killed_mid_run_fails_closed() {
    let mut server = RedisServer::start();
    let store = server.store("t");
    let root = store
        .create_node(None, "acme", &Limit::hard(Amount::usd("1").unwrap()).into())
        .unwrap();
    let one_cent = Cost::from(Amount::usd("0.01").unwrap());
    store.reserve(root, &one_cent).unwrap();
    server.kill();
    // The pooled connection is dead: the request may have gone out, so the outcome is unknown
    // (or, if the write itself failed at once, transient). Never an Ok.
    let error = store.reserve(root, &one_cent).unwrap_err();
    assert!(
        matches!(
            kind(&error),
            Some(StoreErrorKind::OutcomeUnknown | StoreErrorKind::Transient)
        ),
        "{error}"
    );
    // The failed connection was dropped; the next call tries to reconnect and cannot.
    let error = store.reserve(root, &one_cent).unwrap_err();
    assert_eq!(kind(&error), Some(StoreErrorKind::Transient), "{error}");
}

#[test]
fn a_bad_tree_name_or_timeout_is_refused_up_front() {
    assert!(matches!(
        RedisStore::connect("redis://127.0.0.1:1", "a{b}"),
        Err(Error::InvalidName { .. })
    ));
    assert!(matches!(
        RedisStore::with_options(
            "redis://127.0.0.1:1",
            "t",
            RedisOptions::new().timeout(Duration::ZERO)
        ),
        Err(Error::InvalidDuration { .. })
    ));
}
