//! The built-in sandbox: request bins under `/_sandbox/<bin>/...` so the
//! example works offline. A bin records every request, answers with JSON
//! (`{"id": "<bin>_<n>", ...}`), and can be told to misbehave:
//!
//! - `POST /_sandbox/<bin>/_fail` `{"status": 500, "times": 2, "retry_after": 1, "body": {...}, "delay_ms": 0}`:
//!   the next `times` calls get that answer, after `delay_ms` (a hang, to try timeouts);
//! - `GET /_sandbox/<bin>/_requests`: what the bin received, oldest first;
//! - `DELETE /_sandbox/<bin>/_requests`: forget it.
//!
//! It runs only with `ferry dev --sandbox`, and keeps a bounded amount (see `bins`).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::bins::{MAX_BINS, MAX_FAILURES, Requests};

/// Programmed failure.
#[derive(Debug, Clone, Deserialize)]
pub struct Failure {
    /// Status to answer with.
    pub status: u16,
    /// How many calls get it (default 1).
    #[serde(default = "one")]
    pub times: u32,
    /// `Retry-After` seconds to send, if any.
    #[serde(default)]
    pub retry_after: Option<u64>,
    /// Body to answer with (default `{"error": "sandbox failure"}`).
    #[serde(default)]
    pub body: Option<Value>,
    /// Wait this long before answering (longer than a connection's timeout: a hang).
    #[serde(default)]
    pub delay_ms: u64,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Default)]
struct Bin {
    seq: u64,
    requests: Requests,
    failures: VecDeque<Failure>,
}

/// All bins.
#[derive(Debug, Default, Clone)]
pub struct Sandbox {
    bins: Arc<Mutex<HashMap<String, Bin>>>,
}

impl Sandbox {
    /// Handle `/_sandbox/<bin>/<rest>`.
    pub async fn handle(
        State(sb): State<Sandbox>,
        method: Method,
        Path((bin, rest)): Path<(String, String)>,
        RawQuery(query): RawQuery,
        headers: HeaderMap,
        body: Bytes,
    ) -> Response {
        let (resp, delay_ms) = sb.answer(&method, &bin, &rest, query, &headers, &body);
        if delay_ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
        }
        resp
    }

    /// The answer, and how long to wait before giving it.
    fn answer(
        &self,
        method: &Method,
        bin: &str,
        rest: &str,
        query: Option<String>,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> (Response, u64) {
        let mut bins = self.bins.lock().expect("sandbox lock");
        if bins.len() >= MAX_BINS && !bins.contains_key(bin) {
            let message = format!(
                "the sandbox holds at most {MAX_BINS} bins; restart ferry dev to start over"
            );
            let body = json!({ "error": "sandbox_full", "message": message });
            return (
                (StatusCode::INSUFFICIENT_STORAGE, Json(body)).into_response(),
                0,
            );
        }
        let b = bins.entry(bin.to_owned()).or_default();
        let resp = match (method.as_str(), rest) {
            ("POST", "_fail") => match serde_json::from_slice::<Failure>(body) {
                Ok(_) if b.failures.len() >= MAX_FAILURES => (
                    StatusCode::INSUFFICIENT_STORAGE,
                    Json(json!({ "error": "sandbox_full", "message": format!("a bin holds at most {MAX_FAILURES} programmed failures") })),
                )
                    .into_response(),
                Ok(f) => {
                    b.failures.push_back(f);
                    (StatusCode::OK, Json(json!({ "ok": true }))).into_response()
                }
                Err(e) => (
                    StatusCode::BAD_REQUEST,
                    Json(json!({ "error": "bad_failure", "message": e.to_string() })),
                )
                    .into_response(),
            },
            ("GET", "_requests") => Json(json!(b.requests)).into_response(),
            ("DELETE", "_requests") => {
                b.requests.clear();
                Json(json!({ "ok": true })).into_response()
            }
            _ => {
                b.seq += 1;
                let parsed: Value = serde_json::from_slice(body)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()));
                let hdrs: serde_json::Map<String, Value> = headers
                    .iter()
                    .filter(|(k, _)| k.as_str() != "authorization")
                    .filter_map(|(k, v)| {
                        Some((
                            k.as_str().to_owned(),
                            Value::String(v.to_str().ok()?.to_owned()),
                        ))
                    })
                    .collect();
                b.requests.push(json!({
                    "n": b.seq, "method": method.as_str(), "path": format!("/{rest}"), "query": query,
                    "headers": hdrs, "authorized": headers.contains_key("authorization"), "body": parsed,
                }));
                if let Some(front) = b.failures.front_mut() {
                    let f = front.clone();
                    front.times = front.times.saturating_sub(1);
                    if front.times == 0 {
                        b.failures.pop_front();
                    }
                    let status =
                        StatusCode::from_u16(f.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                    let body = f.body.unwrap_or_else(
                        || json!({ "error": "sandbox failure", "status": f.status }),
                    );
                    let mut resp = (status, Json(body)).into_response();
                    if let Some(s) = f.retry_after {
                        resp.headers_mut().insert("retry-after", s.into());
                    }
                    return (resp, f.delay_ms);
                }
                let id = format!("{bin}_{}", b.seq);
                (
                    StatusCode::OK,
                    Json(json!({ "id": id, "ok": true, "received": parsed })),
                )
                    .into_response()
            }
        };
        (resp, 0)
    }
}
