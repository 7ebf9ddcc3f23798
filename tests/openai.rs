//! The budgeted OpenAI client against a real HTTP server: an OpenAI-compatible mock on a
//! loopback port (`tests/openai_support/mock.rs`) that bills every call in nano-dollars.

#[path = "openai_support/mock.rs"]
mod mock;

use std::sync::Arc;
use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::types::chat::{
    ChatCompletionRequestUserMessage, CreateChatCompletionRequest, CreateChatCompletionRequestArgs,
};
use budget_guard::openai::{
    BudgetedChat, CapPolicy, LostReason, LostReplyPolicy, OpenAiError, prompt_token_bound,
};
use budget_guard::{Amount, Budget, Ladder, Limit, ModelPrice, PriceTable, Unit, Usage};
use futures::StreamExt;
use mock::{Mock, RATES};
use rust_decimal::Decimal;

fn prices() -> PriceTable {
    let mut table = PriceTable::new();
    for &(model, input, cached, output) in RATES {
        let per_million = |nanos: u64| Decimal::new(nanos as i64, 9);
        let price = ModelPrice::per_million(per_million(input), per_million(output))
            .unwrap()
            .with_cached_input_per_million(per_million(cached))
            .unwrap();
        table.insert(model, price);
    }
    table
}

fn chat(mock: &Mock) -> BudgetedChat {
    let config = OpenAIConfig::new()
        .with_api_base(mock.base_url.clone())
        .with_api_key("test");
    BudgetedChat::new(Client::with_config(config), prices())
}

fn request(model: &str, text: &str, cap: Option<u32>) -> CreateChatCompletionRequest {
    let mut args = CreateChatCompletionRequestArgs::default();
    args.model(model)
        .messages([ChatCompletionRequestUserMessage::from(text).into()]);
    if let Some(cap) = cap {
        args.max_completion_tokens(cap);
    }
    args.build().unwrap()
}

fn usd(text: &str) -> Amount {
    Amount::usd(text).unwrap()
}

fn nanos(nanos: i64) -> Amount {
    Amount::try_from_minor(nanos, Unit::Usd).unwrap()
}

fn budget(limit: &str) -> Budget {
    Budget::builder("task", Limit::hard(usd(limit)))
        .build()
        .unwrap()
}

/// Spent and still reserved on `budget`, in nano-dollars.
fn books(budget: &Budget) -> (i64, i64) {
    let balance = budget.balance(Unit::Usd).unwrap();
    (balance.spent.minor_units(), balance.reserved.minor_units())
}

fn worst_case(model: &str, request: &CreateChatCompletionRequest, cap: u64) -> Amount {
    prices()
        .get(model)
        .unwrap()
        .worst_case(prompt_token_bound(request), cap)
        .unwrap()
}

#[tokio::test]
async fn plain_calls_commit_what_the_server_billed_cached_input_at_its_rate() {
    let mock = Mock::start().await;
    let chat = chat(&mock);
    let task = budget("1");
    let mut costs = Vec::new();
    for text in ["What is a budget?", "And a ladder?", "And a hold?"] {
        let reply = chat
            .chat(&task, request("gpt-4o", text, Some(500)))
            .await
            .unwrap();
        costs.push(reply.cost.minor_units());
    }
    let calls = mock.calls();
    // The mock caches half the prompt of every third call.
    assert!(calls[0].cached_tokens > 0 && calls[1].cached_tokens == 0);
    let billed: Vec<i64> = calls.iter().map(|call| call.nanos).collect();
    assert_eq!(costs, billed);
    assert_eq!(books(&task), (mock.billed_nanos(), 0));
    // The first call by hand: 10 prompt tokens, 5 cached, 20 completion tokens.
    assert_eq!(
        (
            calls[0].prompt_tokens,
            calls[0].cached_tokens,
            calls[0].completion_tokens
        ),
        (10, 5, 20)
    );
    // 5 × $2.50/M + 5 × $1.25/M + 20 × $10/M = 12,500 + 6,250 + 200,000 nano-dollars.
    assert_eq!(costs[0], 218_750);
}

#[tokio::test]
async fn a_request_without_a_cap_is_sent_with_the_default_and_held_for_it() {
    let mock = Mock::start().await;
    let chat = chat(&mock).with_default_max_tokens(300);
    let task = budget("1");
    let sent = request("gpt-4o", "no cap here", None);
    let reply = chat.chat(&task, sent.clone()).await.unwrap();
    assert_eq!(mock.calls()[0].cap, Some(300));
    assert_eq!(reply.max_tokens, 300);
    assert_eq!(reply.held, worst_case("gpt-4o", &sent, 300));
    assert_eq!(books(&task), (mock.billed_nanos(), 0));
}

#[test]
fn the_prompt_bound_counts_the_bytes_of_the_messages() {
    let sent = request("gpt-4o", "hello", Some(10));
    // [{"role":"user","content":"hello"}] is 35 bytes, `null` tools and response format 8,
    // and 8 tokens for the reply's priming.
    assert_eq!(prompt_token_bound(&sent), 51);
    // Non-ASCII text: "日本語" is 9 bytes (3 tokens or more in cl100k); the bound counts 9.
    let wide = request("gpt-4o", "日本語", Some(10));
    assert_eq!(prompt_token_bound(&wide), 51 - 5 + 9);
}

#[tokio::test]
async fn a_cap_the_budget_cannot_pay_for_is_refused_before_anything_is_sent() {
    let mock = Mock::start().await;
    let chat = chat(&mock);
    // 1,000 output tokens at $10/M is $0.01: more than the whole budget.
    let task = budget("0.005");
    let error = chat
        .chat(&task, request("gpt-4o", "long answer please", Some(1_000)))
        .await
        .unwrap_err();
    assert!(error.is_denial(), "{error}");
    assert!(matches!(error, OpenAiError::Budget { .. }));
    assert_eq!(error.charged(), Amount::zero(Unit::Usd));
    assert!(mock.calls().is_empty());
    assert_eq!(books(&task), (0, 0));
}

#[tokio::test]
async fn cap_policy_lower_sends_the_cap_the_remaining_budget_pays_for() {
    let mock = Mock::start().await;
    let chat = chat(&mock).with_cap_policy(CapPolicy::Lower { floor: 10 });
    let task = budget("0.005");
    let sent = request("gpt-4o", "long answer please", Some(1_000));
    let reply = chat.chat(&task, sent.clone()).await.unwrap();
    let cap = u64::from(reply.max_tokens);
    assert_eq!(mock.calls()[0].cap, Some(cap));
    // The largest cap whose worst case fits $0.005.
    assert!(worst_case("gpt-4o", &sent, cap) <= usd("0.005"));
    assert!(worst_case("gpt-4o", &sent, cap + 1) > usd("0.005"));
    assert_eq!(reply.held, worst_case("gpt-4o", &sent, cap));
    assert_eq!(books(&task), (mock.billed_nanos(), 0));

    // Below the floor, refused like Refuse.
    let tiny = budget("0.00005");
    let error = chat.chat(&tiny, sent).await.unwrap_err();
    assert!(error.is_denial(), "{error}");
    assert_eq!(mock.calls().len(), 1);
}

#[tokio::test]
async fn a_streamed_call_commits_its_usage_chunk() {
    let mock = Mock::start().await;
    let chat = chat(&mock);
    let task = budget("1");
    let mut stream = chat
        .chat_stream(&task, request("gpt-4o", "stream it", Some(400)))
        .await
        .unwrap();
    let mut chunks = 0;
    while let Some(chunk) = stream.next().await {
        chunk.unwrap();
        chunks += 1;
    }
    assert_eq!(chunks, 4, "three content chunks and the usage chunk");
    let call = &mock.calls()[0];
    assert!(
        call.streamed && call.include_usage,
        "include_usage was turned on"
    );
    assert_eq!(stream.charged(), Some(nanos(call.nanos)));
    assert_eq!(
        stream.usage().map(|u| u.cached_input),
        Some(call.cached_tokens)
    );
    assert_eq!(books(&task), (call.nanos, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_workers_on_one_budget_spend_exactly_what_the_server_billed() {
    let mock = Mock::start().await;
    let chat = Arc::new(chat(&mock));
    let task = budget("0.05");
    let mut workers = Vec::new();
    for worker in 0..8 {
        let (chat, task) = (chat.clone(), task.clone());
        workers.push(tokio::spawn(async move {
            let mut served = 0;
            loop {
                let text = format!("worker {worker} asks question {served}");
                let sent = request("gpt-4o", &text, Some(200));
                let outcome = if served % 2 == 0 {
                    chat.chat(&task, sent).await.map(|reply| reply.cost)
                } else {
                    match chat.chat_stream(&task, sent).await {
                        Ok(mut stream) => {
                            while let Some(chunk) = stream.next().await {
                                chunk.unwrap();
                            }
                            Ok(stream.charged().unwrap())
                        }
                        Err(error) => Err(error),
                    }
                };
                match outcome {
                    Ok(_) => served += 1,
                    Err(error) if error.is_denial() => return served,
                    Err(error) => panic!("worker {worker}: {error}"),
                }
            }
        }));
    }
    let mut served = 0;
    for worker in workers {
        served += worker.await.unwrap();
    }
    let calls = mock.calls();
    assert_eq!(calls.len(), served, "no refused call reached the server");
    assert!(served > 8, "{served} calls");
    let (spent, reserved) = books(&task);
    assert_eq!(
        spent,
        mock.billed_nanos(),
        "spend equals the server's record"
    );
    assert_eq!(reserved, 0, "nothing held at the end");
    assert!(spent <= usd("0.05").minor_units());
    // The loop stopped because the next worst case no longer fit, not earlier.
    let next = request("gpt-4o", "worker 0 asks question 99", Some(200));
    let room = usd("0.05").minor_units() - spent;
    assert!(room < worst_case("gpt-4o", &next, 200).minor_units());
}

#[tokio::test]
async fn connection_refused_is_a_transport_error_and_charges_nothing() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let config = OpenAIConfig::new()
        .with_api_base(format!("http://{address}/v1"))
        .with_api_key("test");
    let chat = BudgetedChat::new(Client::with_config(config), prices());
    let task = budget("1");
    let error = chat
        .chat(&task, request("gpt-4o", "anyone there?", Some(100)))
        .await
        .unwrap_err();
    assert!(matches!(error, OpenAiError::Transport { .. }), "{error}");
    assert_eq!(error.charged(), Amount::zero(Unit::Usd));
    assert_eq!(books(&task), (0, 0));
}

#[tokio::test]
async fn a_provider_error_status_is_released() {
    let mock = Mock::start().await;
    let task = budget("1");
    let error = chat(&mock)
        .chat(&task, request("gpt-4o", "fault:500", Some(100)))
        .await
        .unwrap_err();
    match &error {
        OpenAiError::Provider {
            status, message, ..
        } => {
            assert_eq!(*status, 500);
            assert!(message.contains("the mock broke"), "{message}");
        }
        other => panic!("{other}"),
    }
    assert!(error.is_retryable());
    assert_eq!(error.charged(), Amount::zero(Unit::Usd));
    assert_eq!(books(&task), (0, 0));
}

#[tokio::test]
async fn a_body_cut_short_is_charged_by_each_lost_reply_policy() {
    let sent = request("gpt-4o", "fault:cut", Some(100));
    let hold = worst_case("gpt-4o", &sent, 100).minor_units();
    let price = *prices().get("gpt-4o").unwrap();
    let estimate = price
        .cost(&Usage::new(prompt_token_bound(&sent), 40))
        .unwrap()
        .minor_units();
    for (policy, expected) in [
        (LostReplyPolicy::ChargeHold, hold),
        (LostReplyPolicy::Release, 0),
        (
            LostReplyPolicy::ChargeEstimate { output_tokens: 40 },
            estimate,
        ),
    ] {
        let mock = Mock::start().await;
        let task = budget("1");
        let error = chat(&mock)
            .with_lost_reply(policy)
            .chat(&task, sent.clone())
            .await
            .unwrap_err();
        assert!(
            matches!(
                &error,
                OpenAiError::LostReply {
                    reason: LostReason::Interrupted { .. },
                    ..
                }
            ),
            "{policy:?}: {error}"
        );
        assert_eq!(error.charged(), nanos(expected), "{policy:?}");
        assert_eq!(books(&task), (expected, 0), "{policy:?}");
    }
}

#[tokio::test]
async fn a_reply_without_usage_is_a_lost_reply() {
    let mock = Mock::start().await;
    let task = budget("1");
    let sent = request("gpt-4o", "fault:no-usage", Some(100));
    let error = chat(&mock).chat(&task, sent.clone()).await.unwrap_err();
    assert!(matches!(
        &error,
        OpenAiError::LostReply {
            reason: LostReason::NoUsage,
            ..
        }
    ));
    let hold = worst_case("gpt-4o", &sent, 100).minor_units();
    assert_eq!(books(&task), (hold, 0));
}

#[tokio::test]
async fn a_timeout_after_sending_is_a_lost_reply() {
    let mock = Mock::start().await;
    let task = budget("1");
    let sent = request("gpt-4o", "fault:slow", Some(100));
    let error = chat(&mock)
        .with_timeout(Duration::from_millis(100))
        .chat(&task, sent.clone())
        .await
        .unwrap_err();
    assert!(matches!(
        &error,
        OpenAiError::LostReply {
            reason: LostReason::Timeout,
            ..
        }
    ));
    let hold = worst_case("gpt-4o", &sent, 100).minor_units();
    assert_eq!(error.charged(), nanos(hold));
    assert_eq!(books(&task), (hold, 0));
}

#[tokio::test]
async fn a_stream_cut_midway_ends_with_a_lost_reply_charged_the_hold() {
    let mock = Mock::start().await;
    let task = budget("1");
    let sent = request("gpt-4o", "fault:cut", Some(100));
    let mut stream = chat(&mock).chat_stream(&task, sent.clone()).await.unwrap();
    let (mut chunks, mut errors) = (0, Vec::new());
    while let Some(item) = stream.next().await {
        match item {
            Ok(_) => chunks += 1,
            Err(error) => errors.push(error),
        }
    }
    assert_eq!(chunks, 2, "the two chunks before the cut");
    assert_eq!(errors.len(), 1);
    assert!(matches!(
        &errors[0],
        OpenAiError::LostReply {
            reason: LostReason::Interrupted { .. },
            ..
        }
    ));
    let hold = worst_case("gpt-4o", &sent, 100).minor_units();
    assert_eq!(stream.charged(), Some(nanos(hold)));
    assert_eq!(books(&task), (hold, 0));
}

#[tokio::test]
async fn a_stream_without_a_usage_chunk_is_charged_by_the_policy() {
    let sent = request("gpt-4o", "fault:no-usage", Some(100));
    let hold = worst_case("gpt-4o", &sent, 100).minor_units();
    for (policy, expected) in [
        (LostReplyPolicy::ChargeHold, hold),
        (LostReplyPolicy::Release, 0),
    ] {
        let mock = Mock::start().await;
        let task = budget("1");
        let chat = chat(&mock).with_lost_reply(policy);
        let mut stream = chat.chat_stream(&task, sent.clone()).await.unwrap();
        let mut last = None;
        while let Some(item) = stream.next().await {
            last = Some(item);
        }
        let error = last.unwrap().unwrap_err();
        assert!(matches!(
            &error,
            OpenAiError::LostReply {
                reason: LostReason::NoUsage,
                ..
            }
        ));
        assert_eq!(error.charged(), nanos(expected), "{policy:?}");
        assert_eq!(books(&task), (expected, 0), "{policy:?}");
    }
}

#[tokio::test]
async fn a_stream_dropped_early_is_settled_by_the_policy() {
    let sent = request("gpt-4o", "stop me", Some(100));
    let hold = worst_case("gpt-4o", &sent, 100).minor_units();
    for (policy, expected) in [
        (LostReplyPolicy::ChargeHold, hold),
        (LostReplyPolicy::Release, 0),
    ] {
        let mock = Mock::start().await;
        let task = budget("1");
        let chat = chat(&mock).with_lost_reply(policy);
        let mut stream = chat.chat_stream(&task, sent.clone()).await.unwrap();
        stream.next().await.unwrap().unwrap();
        assert_eq!(books(&task), (0, hold), "held while streaming");
        drop(stream);
        assert_eq!(books(&task), (expected, 0), "{policy:?}");
    }
}

#[tokio::test]
async fn bad_requests_are_refused_before_anything_is_held() {
    let mock = Mock::start().await;
    let chat = chat(&mock);
    let task = budget("1");
    let unknown = chat
        .chat(&task, request("gpt-unknown", "hi", Some(10)))
        .await
        .unwrap_err();
    assert!(matches!(unknown, OpenAiError::Pricing(_)), "{unknown}");
    let zero_cap = chat
        .chat(&task, request("gpt-4o", "hi", Some(0)))
        .await
        .unwrap_err();
    assert!(
        matches!(zero_cap, OpenAiError::InvalidRequest { .. }),
        "{zero_cap}"
    );
    let mut streaming = request("gpt-4o", "hi", Some(10));
    streaming.stream = Some(true);
    let wrong_call = chat.chat(&task, streaming).await.unwrap_err();
    assert!(
        matches!(wrong_call, OpenAiError::InvalidRequest { .. }),
        "{wrong_call}"
    );
    assert!(mock.calls().is_empty());
    assert_eq!(books(&task), (0, 0));
}

#[tokio::test]
async fn a_ladder_picks_the_tier_the_budget_still_pays_for_and_the_wrapper_sends_it() {
    let mock = Mock::start().await;
    let chat = chat(&mock);
    let ladder = Ladder::new()
        .tier("gpt-4o", usd("0.004"))
        .tier("gpt-4o-mini", usd("0.0004"));
    let task = budget("0.003");
    let (tier, guard) = ladder.reserve(&task).unwrap();
    assert_eq!(tier.name(), "gpt-4o-mini");
    let reply = chat
        .chat_held(guard, request(tier.name(), "which tier?", Some(300)))
        .await
        .unwrap();
    assert_eq!(mock.calls()[0].model, "gpt-4o-mini");
    assert_eq!(reply.held, usd("0.0004"));
    assert_eq!(books(&task), (mock.billed_nanos(), 0));
}

#[tokio::test]
async fn a_fallback_chain_moves_to_the_second_model_and_charges_both_attempts() {
    let mock = Mock::start().await;
    let chat = chat(&mock);
    let ladder = Ladder::new()
        .tier("gpt-4o", usd("0.01"))
        .tier("gpt-4o-mini", usd("0.001"));
    let task = budget("1");
    let served = ladder
        .fallback_async(&task, OpenAiError::is_retryable, async |tier, guard| {
            // The primary's body is cut after it was sent: a lost reply, charged its hold.
            let text = if tier.name() == "gpt-4o" {
                "fault:cut"
            } else {
                "fine"
            };
            chat.chat_within(guard, request(tier.name(), text, Some(100)))
                .await
        })
        .await
        .unwrap();
    assert_eq!(&*served.tier, "gpt-4o-mini");
    assert_eq!(served.attempts.len(), 2);
    let first = served.attempts[0].charged.get(Unit::Usd).unwrap();
    assert_eq!(
        first,
        usd("0.01"),
        "the primary's lost reply is charged its whole hold"
    );
    let backup = mock.calls()[1].nanos;
    assert_eq!(served.value.cost, nanos(backup));
    assert_eq!(books(&task), (usd("0.01").minor_units() + backup, 0));
}

#[tokio::test]
async fn a_call_dropped_while_in_flight_is_settled_by_the_policy() {
    let sent = request("gpt-4o", "fault:slow", Some(100));
    let hold = worst_case("gpt-4o", &sent, 100).minor_units();
    for (policy, expected) in [
        (LostReplyPolicy::ChargeHold, hold),
        (LostReplyPolicy::Release, 0),
    ] {
        let mock = Mock::start().await;
        let task = budget("1");
        let chat = chat(&mock).with_lost_reply(policy);
        // The caller gives up (a select! branch that lost, an outer timeout): the future is
        // dropped after the request reached the server.
        let call = chat.chat(&task, sent.clone());
        assert!(
            tokio::time::timeout(Duration::from_millis(1_000), call)
                .await
                .is_err()
        );
        assert_eq!(mock.calls().len(), 1, "the request was sent");
        assert_eq!(books(&task), (expected, 0), "{policy:?}");
    }
}

#[tokio::test]
#[allow(deprecated)] // `max_tokens`: deprecated by OpenAI, still read by compatible servers
async fn a_legacy_max_tokens_cap_is_the_one_held_and_lowered() {
    let mock = Mock::start().await;
    let chat = chat(&mock).with_cap_policy(CapPolicy::Lower { floor: 10 });
    let task = budget("0.002");
    let mut sent = request("gpt-4o", "old style", None);
    sent.max_tokens = Some(1_000);
    let reply = chat.chat(&task, sent.clone()).await.unwrap();
    // $0.002 pays for the prompt bound and fewer than 200 output tokens at $10/M.
    assert!(reply.max_tokens < 200, "{}", reply.max_tokens);
    assert_eq!(mock.calls()[0].cap, Some(u64::from(reply.max_tokens)));
    assert_eq!(books(&task), (mock.billed_nanos(), 0));
}

#[tokio::test]
async fn a_hold_too_small_for_the_cap_is_refused_and_released() {
    let mock = Mock::start().await;
    let chat = chat(&mock);
    let task = budget("1");
    let guard = task.reserve(usd("0.0001")).unwrap();
    let error = chat
        .chat_held(guard, request("gpt-4o", "a long answer", Some(1_000)))
        .await
        .unwrap_err();
    match &error {
        OpenAiError::HoldTooSmall { held, needed } => {
            assert_eq!(*held, usd("0.0001"));
            let sent = request("gpt-4o", "a long answer", Some(1_000));
            assert_eq!(*needed, worst_case("gpt-4o", &sent, 1_000));
        }
        other => panic!("{other}"),
    }
    assert!(error.is_denial());
    assert!(mock.calls().is_empty());
    assert_eq!(books(&task), (0, 0));
}

#[cfg(feature = "openai-tiktoken")]
#[tokio::test]
async fn with_tiktoken_holds_the_encodings_count_instead_of_the_bytes() {
    use budget_guard::openai::tiktoken_prompt_bound;
    let mock = Mock::start().await;
    let task = budget("1");
    let sent = request(
        "gpt-4o",
        "hello world, how large is this prompt?",
        Some(100),
    );
    // o200k_base: 9 tokens of text (hello, world, the comma, ..., the question mark), "user" (4 bytes), 4 per message, 3 for the reply, and
    // 8 bytes of `null` tools and response format.
    assert_eq!(tiktoken_prompt_bound(&sent), 28);
    assert_eq!(prompt_token_bound(&sent), 84);
    let reply = chat(&mock).with_tiktoken().chat(&task, sent).await.unwrap();
    let price = *prices().get("gpt-4o").unwrap();
    assert_eq!(reply.held, price.worst_case(28, 100).unwrap());
    assert_eq!(books(&task), (mock.billed_nanos(), 0));
}
