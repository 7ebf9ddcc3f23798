//! An OpenAI-compatible mock of `POST /v1/chat/completions` on a loopback port, shared by
//! `tests/openai.rs` and `examples/openai_agent.rs` (through `#[path]`). It bills every call in
//! integer nano-dollars from its own rate card and records it, so tests compare a budget's
//! spend with the server's own books.
//!
//! Usage varies per call: the completion length cycles with the call number (never above the
//! request's cap), every third call has half its prompt cached. The last user message picks a
//! fault: `fault:500`, `fault:cut` (the body, or the stream, is cut halfway), `fault:no-usage`
//! (no usage in the reply or the stream), `fault:slow` (replies after two seconds).

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// The mock's rate card: (model, input, cached input, output), nano-dollars per million tokens.
pub const RATES: &[(&str, u64, u64, u64)] = &[
    ("gpt-4o", 2_500_000_000, 1_250_000_000, 10_000_000_000),
    ("gpt-4o-mini", 150_000_000, 75_000_000, 600_000_000),
];

/// One call the mock answered (or started to).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Billed {
    pub model: String,
    pub prompt_tokens: u64,
    pub cached_tokens: u64,
    pub completion_tokens: u64,
    /// The cap the request was sent with (`max_completion_tokens`, else `max_tokens`).
    pub cap: Option<u64>,
    pub streamed: bool,
    pub include_usage: bool,
    pub fault: Option<String>,
    /// What the call costs by the rate card, rounded up to the nano-dollar.
    pub nanos: i64,
}

/// A running mock; it stops with the runtime that started it.
#[derive(Clone, Debug)]
pub struct Mock {
    pub base_url: String,
    calls: Arc<Mutex<Vec<Billed>>>,
}

impl Mock {
    /// Serves on `127.0.0.1` at a free port.
    pub async fn start() -> Mock {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind a loopback port");
        let address = listener.local_addr().expect("local address");
        let calls = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route("/v1/chat/completions", post(complete))
            .with_state(calls.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Mock {
            base_url: format!("http://{address}/v1"),
            calls,
        }
    }

    /// Every call so far, in arrival order.
    pub fn calls(&self) -> Vec<Billed> {
        self.calls.lock().unwrap().clone()
    }

    /// Nano-dollars billed for calls whose reply carried its usage in full.
    pub fn billed_nanos(&self) -> i64 {
        self.calls()
            .iter()
            .filter(|call| call.fault.is_none() && (!call.streamed || call.include_usage))
            .map(|call| call.nanos)
            .sum()
    }
}

type Calls = Arc<Mutex<Vec<Billed>>>;

async fn complete(State(calls): State<Calls>, raw: Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&raw) else {
        return error(StatusCode::BAD_REQUEST, "body is not JSON");
    };
    let model = request["model"].as_str().unwrap_or_default().to_owned();
    let Some(&(_, input_rate, cached_rate, output_rate)) =
        RATES.iter().find(|(name, ..)| *name == model)
    else {
        return error(StatusCode::NOT_FOUND, "model not found");
    };
    let messages = request["messages"].as_array().cloned().unwrap_or_default();
    let last = messages
        .last()
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default();
    let fault = last.strip_prefix("fault:").map(str::to_owned);
    let cap = request["max_completion_tokens"]
        .as_u64()
        .or_else(|| request["max_tokens"].as_u64());
    let streamed = request["stream"].as_bool() == Some(true);
    let include_usage = request["stream_options"]["include_usage"].as_bool() == Some(true);

    // A prompt of `bytes` costs about bytes/4 tokens plus 3 per message, as real encodings do.
    let text: usize = messages
        .iter()
        .map(|m| m["content"].as_str().map_or(0, str::len))
        .sum();
    let prompt_tokens = (text / 4 + 3 * messages.len() + 3) as u64;
    // The lock is scoped so the handler's future stays `Send`.
    let (number, completion_tokens, cached_tokens) = {
        let mut billed = calls.lock().unwrap();
        let number = billed.len() as u64;
        let completion_tokens = (20 + number * 37 % 180).min(cap.unwrap_or(u64::MAX));
        let cached_tokens = if number.is_multiple_of(3) {
            prompt_tokens / 2
        } else {
            0
        };
        let exact = u128::from(prompt_tokens - cached_tokens) * u128::from(input_rate)
            + u128::from(cached_tokens) * u128::from(cached_rate)
            + u128::from(completion_tokens) * u128::from(output_rate);
        billed.push(Billed {
            model: model.clone(),
            prompt_tokens,
            cached_tokens,
            completion_tokens,
            cap,
            streamed,
            include_usage,
            fault: fault.clone(),
            nanos: exact.div_ceil(1_000_000) as i64,
        });
        (number, completion_tokens, cached_tokens)
    };

    let usage = json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": 0},
    });
    let fault = fault.as_deref();
    match fault {
        Some("500") => return error(StatusCode::INTERNAL_SERVER_ERROR, "the mock broke"),
        Some("slow") => tokio::time::sleep(Duration::from_secs(2)).await,
        _ => {}
    }
    let with_usage = fault != Some("no-usage");
    if streamed {
        let mut events: Vec<String> = (0..3)
            .map(|i| {
                chunk(
                    &model,
                    json!([{"index": 0, "delta": {"content": format!("part {i} ")}}]),
                )
            })
            .collect();
        if include_usage && with_usage {
            let mut last = serde_json::from_str::<Value>(&chunk(&model, json!([]))).unwrap();
            last["usage"] = usage;
            events.push(last.to_string());
        }
        let mut frames: Vec<String> = events.iter().map(|e| format!("data: {e}\n\n")).collect();
        frames.push("data: [DONE]\n\n".to_owned());
        let cut = (fault == Some("cut")).then_some(2);
        return body(frames, cut, "text/event-stream");
    }
    let mut reply = json!({
        "id": format!("chatcmpl-{number}"),
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": null,
                     "message": {"role": "assistant", "content": "a mock answer"}}],
    });
    if with_usage {
        reply["usage"] = usage;
    }
    let text = reply.to_string();
    if fault == Some("cut") {
        let half = text.len() / 2;
        return body(
            vec![text[..half].to_owned(), text[half..].to_owned()],
            Some(1),
            "application/json",
        );
    }
    body(vec![text], None, "application/json")
}

fn chunk(model: &str, choices: Value) -> String {
    json!({"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 0,
           "model": model, "choices": choices})
    .to_string()
}

/// A chunked body of `frames`; with `cut_after`, the connection breaks after that many frames.
fn body(frames: Vec<String>, cut_after: Option<usize>, content_type: &'static str) -> Response {
    use futures::StreamExt;
    let keep = cut_after.unwrap_or(frames.len());
    let sent = frames
        .into_iter()
        .take(keep)
        .map(|f| Ok::<_, std::io::Error>(Bytes::from(f)));
    // The break comes a moment later, so the status and the first frames are on the wire
    // before it (as when a provider's connection drops mid-reply).
    let cut = futures::stream::iter(cut_after).then(|_| async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Err(std::io::Error::other("the mock cut the body"))
    });
    let stream = futures::stream::iter(sent).chain(cut);
    (
        [(header::CONTENT_TYPE, content_type)],
        Body::from_stream(stream),
    )
        .into_response()
}

fn error(status: StatusCode, message: &str) -> Response {
    let body =
        json!({"error": {"message": message, "type": "mock_error", "param": null, "code": null}});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
