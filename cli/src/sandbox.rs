//! The built-in sandbox: request bins under `/_sandbox/<bin>/...` so the
//! example works offline. A bin records every request, answers with JSON
//! (`{"id": "<bin>_<n>", ...}`), and can be told to misbehave:
//!
//! - `POST /_sandbox/<bin>/_fail` `{"status": 500, "times": 2, "retry_after": 1, "body": {...}, "delay_ms": 0}`:
//!   the next `times` calls get that answer, after `delay_ms` (a hang, to try timeouts);
//! - `GET /_sandbox/<bin>/_requests`: what the bin received, oldest first;
//! - `DELETE /_sandbox/<bin>/_requests`: forget it.
//!
//! The listing never shows a credential: the value of every credential header
//! ([`CREDENTIAL_HEADERS`] and each connection's `api_key` header) is
//! `[redacted]`, and every secret of the config (or a token ferry obtained)
//! is redacted wherever else it appears (other headers, the query, the body).
//!
//! It runs only with `ferry dev --sandbox`, and keeps a bounded amount (see `bins`).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use ferry::config::Auth;
use ferry::hub::Hub;
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

/// Headers whose value the listing always hides (lower case).
pub const CREDENTIAL_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
];

/// All bins.
#[derive(Debug, Default, Clone)]
pub struct Sandbox {
    bins: Arc<Mutex<HashMap<String, Bin>>>,
    /// The hub whose secrets the listing redacts (none: credential headers only).
    hub: Option<Arc<Hub>>,
    /// Credential header names besides [`CREDENTIAL_HEADERS`] (lower case).
    credential_headers: BTreeSet<String>,
}

impl Sandbox {
    /// A sandbox that hides `hub`'s credentials from its listings.
    pub fn for_hub(hub: Arc<Hub>) -> Self {
        let credential_headers = hub
            .config
            .connections
            .values()
            .filter_map(|c| match &c.auth {
                Some(Auth::ApiKey {
                    header: Some(h),
                    query: None,
                    ..
                }) => Some(h.to_ascii_lowercase()),
                _ => None,
            })
            .collect();
        Self {
            hub: Some(hub),
            credential_headers,
            ..Self::default()
        }
    }

    fn redact(&self, text: &str) -> String {
        self.hub
            .as_ref()
            .map_or_else(|| text.to_owned(), |h| h.redact(text))
    }

    fn is_credential(&self, name: &str) -> bool {
        CREDENTIAL_HEADERS.contains(&name) || self.credential_headers.contains(name)
    }

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
                    .filter_map(|(k, v)| {
                        let v = if self.is_credential(k.as_str()) {
                            "[redacted]".to_owned()
                        } else {
                            self.redact(v.to_str().ok()?)
                        };
                        Some((k.as_str().to_owned(), Value::String(v)))
                    })
                    .collect();
                let listed_body = match &self.hub {
                    Some(h) => h.redact_json(&parsed),
                    None => parsed.clone(),
                };
                b.requests.push(json!({
                    "n": b.seq, "method": method.as_str(), "path": self.redact(&format!("/{rest}")),
                    "query": query.as_deref().map(|q| self.redact(q)), "headers": hdrs,
                    "authorized": headers.contains_key("authorization"), "body": listed_body,
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

#[cfg(test)]
mod tests {
    use super::*;

    const MAIL_KEY: &str = "mk-SECRET-sandbox-1";

    fn hub(dir: &std::path::Path) -> Arc<Hub> {
        let yaml = r#"version: 1
connections:
  mail: { base_url: "http://127.0.0.1:9", auth: { type: api_key, header: X-Mail-Key, key: "${env:MAIL_KEY}" } }
  q: { base_url: "http://127.0.0.1:9", auth: { type: api_key, query: api_key, key: "${env:MAIL_KEY}" } }
"#;
        let env = |name: &str| (name == "MAIL_KEY").then(|| MAIL_KEY.to_owned());
        let loaded = ferry::config::load_str(yaml, &env).unwrap();
        let store = ferry::store::SqliteStore::open(
            &dir.join("ferry.db"),
            ferry::store::SqliteOptions {
                max_receives: 5,
                clock: Arc::new(ferry::clock::SystemClock),
            },
        )
        .unwrap();
        Hub::new(loaded.config, loaded.secrets, store.ports()).unwrap()
    }

    #[tokio::test]
    async fn the_listing_never_shows_a_credential() {
        let dir = tempfile::tempdir().unwrap();
        let sb = Sandbox::for_hub(hub(dir.path()));
        let mut headers = HeaderMap::new();
        headers.insert("x-mail-key", MAIL_KEY.parse().unwrap());
        headers.insert("authorization", "Bearer other-token".parse().unwrap());
        headers.insert("cookie", "session=abc".parse().unwrap());
        headers.insert("x-echo", format!("key={MAIL_KEY}").parse().unwrap());
        headers.insert("x-plain", "visible".parse().unwrap());
        let body = Bytes::from(format!(r#"{{"note": "{MAIL_KEY}"}}"#));
        let query = Some(format!("api_key={MAIL_KEY}&page=2"));
        sb.answer(&Method::POST, "crm", "send", query, &headers, &body);
        let (listing, _) = sb.answer(
            &Method::GET,
            "crm",
            "_requests",
            None,
            &HeaderMap::new(),
            &Bytes::new(),
        );
        let bytes = axum::body::to_bytes(listing.into_body(), usize::MAX)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for secret in [MAIL_KEY, "other-token", "session=abc"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        let listed: Value = serde_json::from_slice(&bytes).unwrap();
        let h = &listed[0]["headers"];
        assert_eq!(h["x-mail-key"], "[redacted]");
        assert_eq!(h["authorization"], "[redacted]");
        assert_eq!(h["cookie"], "[redacted]");
        assert_eq!(h["x-echo"], "key=[redacted]");
        assert_eq!(h["x-plain"], "visible");
        assert_eq!(listed[0]["query"], "api_key=[redacted]&page=2");
        assert_eq!(listed[0]["body"]["note"], "[redacted]");
        assert_eq!(listed[0]["authorized"], true);
    }
}
