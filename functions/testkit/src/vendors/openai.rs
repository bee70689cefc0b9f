//! A fake of the OpenAI API's `POST /v1/embeddings`, as its public docs
//! describe it (read 2026-11-30), on 127.0.0.1:
//!
//! - **Auth**: `Authorization: Bearer <API key>`; a wrong key answers `401`
//!   with `error.code: invalid_api_key` (*Error codes*,
//!   https://platform.openai.com/docs/guides/error-codes/api-errors).
//!   `OpenAI-Organization` / `OpenAI-Project` headers are recorded
//!   (*API reference — Authentication*,
//!   https://platform.openai.com/docs/api-reference/authentication).
//! - **Embeddings**: `input` is a string or a list of strings; `data[]` holds
//!   one `{object: "embedding", index, embedding}` per input, `usage` the
//!   prompt tokens (*API reference — Embeddings*,
//!   https://platform.openai.com/docs/api-reference/embeddings/create). This
//!   fake answers `data` in **reverse** order, so a client that does not match
//!   by `index` gets the wrong vectors.
//! - **Rate limits**: requests and tokens per minute, reported on every answer
//!   as `x-ratelimit-limit-requests`, `x-ratelimit-remaining-requests`,
//!   `x-ratelimit-reset-requests` and the same three for `-tokens`, resets
//!   written as durations such as `6m0s`, `1.5s`, `120ms`; a call over either
//!   budget answers `429` with `error.code: rate_limit_exceeded` and
//!   `error.type` `requests` or `tokens` (*Rate limits*,
//!   https://platform.openai.com/docs/guides/rate-limits).
//!   Counted here over a sliding minute on the clock the test gives, so a
//!   client must stay inside **every** 60-second window.
//! - **Tokens**: the docs' rule of thumb is about 4 characters of English per
//!   token (*What are tokens and how to count them?*,
//!   https://help.openai.com/en/articles/4936856-what-are-tokens-and-how-to-count-them);
//!   the fake counts, deterministically, `ceil(characters / 4)` over all of a
//!   call's inputs together (characters are Unicode scalar values).
//! - **Quota**: an account out of credit answers `429` with
//!   `error.code: insufficient_quota`, which waiting does not clear;
//!   a server fault is `500` with `error.type: server_error` (*Error codes*).
//!
//! Scriptable: [`OpenAi::limit_next`] (the next calls answer a
//! `rate_limit_exceeded` `429`), [`OpenAi::fail_next`] (`500`),
//! [`OpenAi::exhaust_quota`]. Readable: [`OpenAi::calls`] (every call, its
//! inputs, tokens and answer) and [`OpenAi::count_429`].

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use ferry::clock::{Clock, Millis};
use serde_json::{Value, json};

/// The window OpenAI's limits are per.
const MINUTE_MS: Millis = 60_000;

/// The account's limits for the model (the org's limits page).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Requests per minute (RPM).
    pub rpm: u64,
    /// Tokens per minute (TPM).
    pub tpm: u64,
}

/// One call the fake received.
#[derive(Debug, Clone)]
pub struct Call {
    /// When it arrived, on the test's clock.
    pub at: Millis,
    /// Its inputs, in order.
    pub inputs: Vec<String>,
    /// Its tokens by the fake's rule (`ceil(characters / 4)`).
    pub tokens: u64,
    /// The status answered.
    pub status: u16,
    /// `OpenAI-Organization`, when sent.
    pub organization: Option<String>,
    /// `OpenAI-Project`, when sent.
    pub project: Option<String>,
}

#[derive(Default)]
struct Inner {
    /// Calls accepted in the last minute: (when, tokens).
    window: VecDeque<(Millis, u64)>,
    calls: Vec<Call>,
    limit_next: usize,
    fail_next: usize,
    quota_gone: bool,
}

struct Shared {
    key: String,
    limits: Limits,
    clock: Arc<dyn Clock>,
    inner: Mutex<Inner>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The fake, serving until dropped with the test's runtime.
#[derive(Clone)]
pub struct OpenAi {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl OpenAi {
    /// Start on 127.0.0.1 accepting API key `key`, with `limits`, counting
    /// minutes on `clock` (the hub's, so a virtual wait moves both).
    pub async fn start(key: &str, limits: Limits, clock: Arc<dyn Clock>) -> OpenAi {
        let shared = Arc::new(Shared {
            key: key.to_owned(),
            limits,
            clock,
            inner: Mutex::new(Inner::default()),
        });
        let app = Router::new()
            .route("/v1/embeddings", post(embeddings))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the OpenAI fake");
        let addr = listener.local_addr().expect("the fake's address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        OpenAi { addr, shared }
    }

    /// Its base URL (`http://127.0.0.1:PORT`); the API lives under `/v1`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next `n` calls answer `429 rate_limit_exceeded` (requests).
    pub fn limit_next(&self, n: usize) {
        self.shared.lock().limit_next = n;
    }

    /// The next `n` calls answer `500 server_error`.
    pub fn fail_next(&self, n: usize) {
        self.shared.lock().fail_next = n;
    }

    /// From now on every call answers `429 insufficient_quota`.
    pub fn exhaust_quota(&self) {
        self.shared.lock().quota_gone = true;
    }

    /// Every call received, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.lock().calls.clone()
    }

    /// How many calls were answered `429`.
    pub fn count_429(&self) -> usize {
        self.calls().iter().filter(|c| c.status == 429).count()
    }

    /// The inputs of every call answered `200`, in order.
    pub fn embedded(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| c.status == 200)
            .flat_map(|c| c.inputs)
            .collect()
    }
}

/// The fake's token count for `inputs`: `ceil(characters / 4)` over all.
pub fn tokens(inputs: &[String]) -> u64 {
    let chars: usize = inputs.iter().map(|s| s.chars().count()).sum();
    (chars as u64).div_ceil(4)
}

/// The deterministic vector of an input: its length and its first and last
/// characters' code points.
pub fn vector(input: &str) -> Vec<f64> {
    let first = input.chars().next().map_or(0, u32::from);
    let last = input.chars().last().map_or(0, u32::from);
    vec![
        input.chars().count() as f64,
        f64::from(first),
        f64::from(last),
    ]
}

/// A Go-style duration as OpenAI writes resets: `6m0s`, `1.5s`, `120ms`.
pub fn go_duration(ms: Millis) -> String {
    let ms = ms.max(0);
    if ms >= MINUTE_MS {
        format!("{}m{}s", ms / MINUTE_MS, (ms % MINUTE_MS) / 1000)
    } else if ms >= 1000 {
        let s = format!("{:.3}", ms as f64 / 1000.0);
        format!("{}s", s.trim_end_matches('0').trim_end_matches('.'))
    } else {
        format!("{ms}ms")
    }
}

fn error(status: StatusCode, message: &str, kind: &str, code: Option<&str>) -> (StatusCode, Value) {
    (
        status,
        json!({"error": {"message": message, "type": kind, "param": null, "code": code}}),
    )
}

async fn embeddings(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let now = s.clock.now_ms();
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let inputs: Vec<String> = match &body["input"] {
        Value::String(one) => vec![one.clone()],
        Value::Array(all) => all
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    let cost = tokens(&inputs);
    let mut inner = s.lock();
    while inner
        .window
        .front()
        .is_some_and(|(at, _)| *at <= now - MINUTE_MS)
    {
        inner.window.pop_front();
    }
    let used_requests = inner.window.len() as u64;
    let used_tokens: u64 = inner.window.iter().map(|(_, t)| t).sum();
    // When the oldest call in the window leaves it (both budgets free up then).
    let reset = inner
        .window
        .front()
        .map_or(0, |(at, _)| at + MINUTE_MS - now);
    let bearer = header("authorization");
    let (status, answer) = if bearer.as_deref() != Some(&format!("Bearer {}", s.key)) {
        // Error codes: 401 Invalid Authentication / Incorrect API key provided.
        error(
            StatusCode::UNAUTHORIZED,
            "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            Some("invalid_api_key"),
        )
    } else if inner.quota_gone {
        error(
            StatusCode::TOO_MANY_REQUESTS,
            "You exceeded your current quota, please check your plan and billing details.",
            "insufficient_quota",
            Some("insufficient_quota"),
        )
    } else if inner.fail_next > 0 {
        inner.fail_next -= 1;
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            None,
        )
    } else if inner.limit_next > 0 || used_requests + 1 > s.limits.rpm {
        inner.limit_next = inner.limit_next.saturating_sub(1);
        error(
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "Rate limit reached for requests per min (RPM): Limit {}, Used {used_requests}, Requested 1. Please try again in {}.",
                s.limits.rpm,
                go_duration(reset)
            ),
            "requests",
            Some("rate_limit_exceeded"),
        )
    } else if used_tokens + cost > s.limits.tpm {
        error(
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "Rate limit reached for tokens per min (TPM): Limit {}, Used {used_tokens}, Requested {cost}. Please try again in {}.",
                s.limits.tpm,
                go_duration(reset)
            ),
            "tokens",
            Some("rate_limit_exceeded"),
        )
    } else if inputs.is_empty() {
        error(
            StatusCode::BAD_REQUEST,
            "'input' is a required property",
            "invalid_request_error",
            None,
        )
    } else {
        inner.window.push_back((now, cost));
        let mut data: Vec<Value> = inputs
            .iter()
            .enumerate()
            .map(
                |(i, input)| json!({"object": "embedding", "index": i, "embedding": vector(input)}),
            )
            .collect();
        data.reverse();
        (
            StatusCode::OK,
            json!({
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": cost, "total_tokens": cost},
            }),
        )
    };
    let accepted = status == StatusCode::OK;
    let (requests_left, tokens_left) = (
        s.limits
            .rpm
            .saturating_sub(used_requests + u64::from(accepted)),
        s.limits
            .tpm
            .saturating_sub(used_tokens + if accepted { cost } else { 0 }),
    );
    let reset = if accepted && reset == 0 {
        MINUTE_MS
    } else {
        reset
    };
    inner.calls.push(Call {
        at: now,
        inputs,
        tokens: cost,
        status: status.as_u16(),
        organization: header("openai-organization"),
        project: header("openai-project"),
    });
    drop(inner);
    let mut resp = (status, axum::Json(answer)).into_response();
    let h = resp.headers_mut();
    for (name, value) in [
        ("x-ratelimit-limit-requests", s.limits.rpm.to_string()),
        ("x-ratelimit-remaining-requests", requests_left.to_string()),
        ("x-ratelimit-reset-requests", go_duration(reset)),
        ("x-ratelimit-limit-tokens", s.limits.tpm.to_string()),
        ("x-ratelimit-remaining-tokens", tokens_left.to_string()),
        ("x-ratelimit-reset-tokens", go_duration(reset)),
    ] {
        if let Ok(v) = value.parse() {
            h.insert(name, v);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_written_as_openai_writes_them() {
        assert_eq!(go_duration(360_000), "6m0s");
        assert_eq!(go_duration(61_500), "1m1s");
        assert_eq!(go_duration(1_500), "1.5s");
        assert_eq!(go_duration(2_000), "2s");
        assert_eq!(go_duration(120), "120ms");
    }

    #[test]
    fn tokens_are_a_quarter_of_the_characters_rounded_up() {
        assert_eq!(tokens(&["abcd".into()]), 1);
        assert_eq!(tokens(&["abcde".into()]), 2);
        assert_eq!(tokens(&["ab".into(), "cd".into(), "e".into()]), 2);
        assert_eq!(tokens(&[]), 0);
    }
}
