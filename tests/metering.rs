//! Metering that never over-charges: one approval question per metered call, a stream meter
//! that commits the provider's final usage, and stream chunks with `"usage": null`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use budget_guard::approval::{Approval, ApprovalRequest};
use budget_guard::{Budget, Flow, Limit, ModelPrice, PriceTable, Unit, Usage, usd};

/// "m": $100 per million input tokens ($0.0001 each), $400 per million output ($0.0004 each).
fn prices() -> PriceTable {
    PriceTable::new().with(
        "m",
        ModelPrice::per_million("100".parse().unwrap(), "400".parse().unwrap()).unwrap(),
    )
}

/// A dollars-only budget whose approver approves everything and counts how often it is asked.
fn approved_budget() -> (Budget, Arc<AtomicU32>) {
    let budget = Budget::builder("agent", Limit::hard(usd!("10")))
        .build()
        .unwrap();
    let asked = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&asked);
    budget
        .require_approval(usd!("0.01"), move |_: &ApprovalRequest| {
            counter.fetch_add(1, Ordering::SeqCst);
            Approval::Approved
        })
        .unwrap();
    (budget, asked)
}

#[test]
fn reserve_for_asks_the_approver_once_per_call() {
    let (budget, asked) = approved_budget();
    // Worst case 400 × 0.0001 + 64 × 0.0004 = 0.04 + 0.0256 = 0.0656, above the $0.01 rule.
    let guard = budget.reserve_for(&prices(), "m", 400, 64).unwrap();
    assert_eq!(guard.held().get(Unit::Usd), Some(usd!("0.0656")));
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    guard.release().unwrap();
}

#[test]
fn stream_for_asks_the_approver_once_per_call() {
    let (budget, asked) = approved_budget();
    let stream = budget.stream_for(&prices(), "m", 400, 64).unwrap();
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    stream.finish(Some(&Usage::new(400, 64))).unwrap();
    assert_eq!(asked.load(Ordering::SeqCst), 1);
}

#[test]
fn a_denying_approver_is_asked_once_and_nothing_is_held() {
    let budget = Budget::builder("agent", Limit::hard(usd!("10")))
        .build()
        .unwrap();
    let asked = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&asked);
    budget
        .require_approval(usd!("0.01"), move |_: &ApprovalRequest| {
            counter.fetch_add(1, Ordering::SeqCst);
            Approval::deny("no")
        })
        .unwrap();
    let error = budget.reserve_for(&prices(), "m", 400, 64).unwrap_err();
    assert!(error.is_denial());
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    assert_eq!(budget.balance(Unit::Usd).unwrap().reserved, usd!("0"));
}

#[test]
fn a_stream_commits_the_final_usage_not_the_chunk_count() {
    let budget = Budget::builder("agent", Limit::hard(usd!("1")))
        .build()
        .unwrap();
    let mut stream = budget.stream_for(&prices(), "m", 400, 64).unwrap();
    assert_eq!(stream.on_output_tokens(1).unwrap(), Flow::Continue);
    // The caller's count: 400 × 0.0001 + 1 × 0.0004 = 0.0404.
    assert_eq!(stream.counted_usd(), usd!("0.0404"));
    // The provider bills 120 prompt and 64 completion tokens:
    // 120 × 0.0001 + 64 × 0.0004 = 0.012 + 0.0256 = 0.0376.
    let committed = stream.finish(Some(&Usage::new(120, 64))).unwrap();
    assert_eq!(committed.spent.get(Unit::Usd), Some(usd!("0.0376")));
    let balance = budget.balance(Unit::Usd).unwrap();
    assert_eq!(balance.spent, usd!("0.0376"));
    assert_eq!(balance.reserved, usd!("0"));
}

#[test]
fn a_count_past_the_hold_still_grows_it_at_zero_grace() {
    // Held 0.0656 of a 0.07 cap; a count past the hold is recorded (the hold grows) until the
    // cap, then the meter says Stop and nothing more is written.
    let budget = Budget::builder("agent", Limit::hard(usd!("0.07")))
        .build()
        .unwrap();
    let mut stream = budget.stream_for(&prices(), "m", 400, 64).unwrap();
    assert_eq!(stream.on_output_tokens(64).unwrap(), Flow::Continue);
    assert_eq!(stream.recorded_usd(), usd!("0")); // 0.0656 fits the hold
    // 74 output tokens: 0.04 + 0.0296 = 0.0696 ≤ 0.07: recorded, the hold grows.
    assert_eq!(stream.on_output_tokens(10).unwrap(), Flow::Continue);
    assert_eq!(stream.recorded_usd(), usd!("0.0696"));
    // 76 output tokens: 0.0704 > 0.07: Stop, nothing recorded.
    assert_eq!(stream.on_output_tokens(2).unwrap(), Flow::Stop);
    assert_eq!(budget.balance(Unit::Usd).unwrap().spent, usd!("0.0696"));
    stream.finish(Some(&Usage::new(400, 74))).unwrap();
    assert_eq!(budget.balance(Unit::Usd).unwrap().spent, usd!("0.0696"));
}

/// Reading provider JSON needs the `serde` feature.
#[cfg(feature = "serde")]
mod stream_chunks {
    use budget_guard::{PricingError, Usage};

    #[test]
    fn an_openai_chunk_with_null_usage_is_no_usage_yet() {
        let chunk = r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,
            "model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}],
            "usage":null}"#;
        assert_eq!(Usage::from_stream_chunk(chunk).unwrap(), None);
        assert!(matches!(
            Usage::from_openai_json(chunk),
            Err(PricingError::NoUsageYet)
        ));
        assert!(matches!(
            Usage::from_json(chunk),
            Err(PricingError::NoUsageYet)
        ));
        // A chunk with no "usage" field at all (streams without include_usage) is no usage either.
        let bare = r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[]}"#;
        assert_eq!(Usage::from_stream_chunk(bare).unwrap(), None);
        // The last chunk carries it.
        let last = r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[],
            "usage":{"prompt_tokens":120,"completion_tokens":64,"total_tokens":184,
            "prompt_tokens_details":{"cached_tokens":0}}}"#;
        assert_eq!(
            Usage::from_stream_chunk(last).unwrap(),
            Some(Usage::new(120, 64))
        );
    }

    #[test]
    fn malformed_reports_stay_errors_distinct_from_no_usage() {
        assert!(matches!(
            Usage::from_stream_chunk("{\"usage\": nul"),
            Err(PricingError::Malformed { .. })
        ));
        assert!(matches!(
            Usage::from_stream_chunk(r#"{"usage": 7}"#),
            Err(PricingError::InvalidUsage { field, .. }) if field == "usage"
        ));
        assert!(matches!(
            Usage::from_stream_chunk(r#"{"usage": {"prompt_tokens": 10}}"#),
            Err(PricingError::InvalidUsage { field, .. }) if field == "completion_tokens"
        ));
        assert!(matches!(
            Usage::from_openai_json(r#"{"usage": {}}"#),
            Err(PricingError::InvalidUsage { field, .. }) if field == "prompt_tokens"
        ));
    }
}
