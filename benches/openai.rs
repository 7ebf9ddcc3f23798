//! The budgeted client's overhead per call: a bare `async-openai` chat completion and the same
//! call through `BudgetedChat` (prompt bound, reserve, cap rewrite, commit of the usage),
//! against the same loopback mock in the same run. Only the difference and the ratio mean
//! anything; the HTTP round trip dominates both.
//!
//! `cargo bench --bench openai --features openai -- --warm-up-time 1 --measurement-time 3`
//!
//! One run on the shared 2-core VM (2026-11-30, medians): bare call 76.5 µs, budgeted call
//! 77.1 µs (1.01×, +0.6 µs, inside the bare call's own spread of 70–84 µs);
//! `prompt_token_bound` alone 71 ns.

#[path = "../tests/openai_support/mock.rs"]
mod mock;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::types::chat::{ChatCompletionRequestUserMessage, CreateChatCompletionRequest};
use budget_guard::openai::{BudgetedChat, prompt_token_bound};
use budget_guard::{Amount, Budget, Limit, ModelPrice, PriceTable};
use criterion::Criterion;

fn request() -> CreateChatCompletionRequest {
    CreateChatCompletionRequest {
        model: "gpt-4o-mini".to_owned(),
        messages: vec![
            ChatCompletionRequestUserMessage::from("How large should the hold be for this?").into(),
        ],
        max_completion_tokens: Some(200),
        ..Default::default()
    }
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let mock = runtime.block_on(mock::Mock::start());
    let config = OpenAIConfig::new()
        .with_api_base(mock.base_url.clone())
        .with_api_key("bench");
    let client = Client::with_config(config);
    let prices = PriceTable::new().with(
        "gpt-4o-mini",
        ModelPrice::per_million("0.15".parse().unwrap(), "0.60".parse().unwrap()).unwrap(),
    );
    let chat = BudgetedChat::new(client.clone(), prices);
    let budget = Budget::builder("bench", Limit::hard(Amount::usd("1000000").unwrap()))
        .build()
        .unwrap();

    let mut group = c.benchmark_group("openai_call");
    group.bench_function("bare_async_openai", |b| {
        b.iter(|| runtime.block_on(client.chat().create(request())).unwrap());
    });
    group.bench_function("budgeted_chat", |b| {
        b.iter(|| runtime.block_on(chat.chat(&budget, request())).unwrap());
    });
    group.finish();
    c.bench_function("prompt_token_bound", |b| {
        let sent = request();
        b.iter(|| prompt_token_bound(std::hint::black_box(&sent)));
    });
}

// What `criterion_group!` + `criterion_main!` expand to, written out so every item is
// documented (the crate's `missing_docs` lint reaches benches).
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
}
