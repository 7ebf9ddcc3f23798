use std::num::NonZeroUsize;

use super::*;
use crate::amount::Unit;
use crate::policy::{Limit, Limits};

fn usd(minor: i64) -> Amount {
    Amount::from_minor(minor, Unit::Usd)
}

fn key(text: &str) -> IdempotencyKey {
    IdempotencyKey::new(text).unwrap()
}

fn retention(seconds: u64, max: usize) -> KeyRetention {
    KeyRetention::new(
        Duration::from_secs(seconds),
        NonZeroUsize::new(max).unwrap(),
    )
    .unwrap()
}

fn credit(ledger: &mut Ledger, node: NodeId, k: &IdempotencyKey, at: i64, r: &KeyRetention) {
    let keyed = Keyed {
        key: k,
        now: Timestamp::from_unix_nanos(at),
        retention: r,
    };
    let (result, _) = ledger.once(
        Some(keyed),
        |l| {
            Ok(Request::Credit {
                node: l.request_node(node)?,
                amount: usd(1),
            })
        },
        |l| l.credit(node, usd(1)),
    );
    result.unwrap();
}

#[test]
fn the_table_never_holds_more_than_max_keys() {
    let mut ledger = Ledger::new();
    let root = ledger
        .create_node(None, "root", &Limits::from(Limit::hard(usd(10))))
        .unwrap();
    let retention = retention(3_600, 4);
    for n in 0..100 {
        credit(&mut ledger, root, &key(&format!("k{n}")), n, &retention);
        assert!(ledger.keys.map.len() <= 4);
        assert!(
            ledger.keys.order.len() <= 32,
            "stale order places are dropped"
        );
    }
    let kept: Vec<&str> = ledger.remembered_keys().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kept, ["k96", "k97", "k98", "k99"]);
}

#[test]
fn expired_keys_are_pruned_from_the_front() {
    let mut ledger = Ledger::new();
    let root = ledger
        .create_node(None, "root", &Limits::from(Limit::hard(usd(10))))
        .unwrap();
    let retention = retention(1, 100);
    let second = 1_000_000_000;
    credit(&mut ledger, root, &key("a"), 0, &retention);
    credit(&mut ledger, root, &key("b"), second / 2, &retention);
    // At 1.2 s "a" (from 0 s) is past its TTL and goes; "b" (0.5 s) stays.
    credit(
        &mut ledger,
        root,
        &key("c"),
        second + second / 5,
        &retention,
    );
    let kept: Vec<&str> = ledger.remembered_keys().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kept, ["b", "c"]);
}
