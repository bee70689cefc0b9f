//! What a run record shows beyond its status: the event as received, and per
//! attempt the request sent, the response read and the retry decision — each
//! capped in size and redacted (see [`crate::hub::Hub::redact`]), so a run
//! record never holds a secret or an obtained token and always fits one
//! DynamoDB item (400 KB; [`fit`] holds it to [`MAX_RECORD_BYTES`]).
//!
//! One rule decides which headers are credentials: [`is_credential_header`].

use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::Duration;

use aho_corasick::AhoCorasick;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::Millis;
use crate::hub::Hub;
use crate::model::{Event, RunRecord};
use crate::outbound::{Body, Prepared, Response};

/// Largest event payload kept on a run record (its JSON), 64 KiB.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
/// Largest request or response body kept on an attempt (its JSON), 8 KiB.
pub const MAX_BODY_BYTES: usize = 8 * 1024;
/// Largest header value kept; longer ones are cut.
pub const MAX_HEADER_VALUE: usize = 1024;
/// Most headers kept per event, request or response (the first by name).
pub const MAX_HEADERS: usize = 64;
/// Largest run record (its JSON) a store writes: under DynamoDB's 400 KB item
/// limit with room for the item's other attributes (indexes, TTL).
pub const MAX_RECORD_BYTES: usize = 320 * 1024;
/// How long runs are kept when the config sets no `retention`.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Whether header `name` may carry a credential or a signature, and so is
/// never shown or stored on a run record: `authorization`,
/// `proxy-authorization`, `cookie`, `set-cookie`, and any name containing
/// `signature`, `token`, `secret`, `key` or `auth` (`x-api-key`,
/// `x-hub-signature-256`, `x-auth-token`…). Case-insensitive. A source's own
/// verification headers are removed before this (see `ingest`).
pub fn is_credential_header(name: &str) -> bool {
    /// The words, found in one case-insensitive pass over a name.
    static WORDS: LazyLock<AhoCorasick> = LazyLock::new(|| {
        AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(["signature", "token", "secret", "key", "auth"])
            .expect("five short words make a small automaton")
    });
    name.eq_ignore_ascii_case("cookie")
        || name.eq_ignore_ascii_case("set-cookie")
        || WORDS.is_match(name)
}

/// The event as received, on its run record (the source and event id are the
/// record's own `source` and `event_id`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReceivedEvent {
    /// When it was accepted.
    pub received_at: Millis,
    /// Headers, without credentials and signatures.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Query parameters, without credential-like names.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, String>,
    /// The parsed payload; when its JSON was over [`MAX_PAYLOAD_BYTES`], the
    /// first part of that JSON as a string, with `truncated`.
    pub payload: Value,
    /// Whether `payload` was cut.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

impl ReceivedEvent {
    /// `event` as a run record shows it.
    pub fn new(hub: &Hub, event: &Event) -> Self {
        let (payload, truncated) = capped(hub.redact_json(&event.body), MAX_PAYLOAD_BYTES);
        ReceivedEvent {
            received_at: event.received_at,
            headers: shown_headers(hub, &event.headers),
            query: shown_headers(hub, &event.query),
            payload,
            truncated,
        }
    }
}

/// A request as it was sent (the connection's credential is added at send
/// time and never recorded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentRequest {
    /// Method.
    pub method: String,
    /// The final URL, query included.
    pub url: String,
    /// Headers, without credentials.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The body (JSON, form fields as an object, or null); capped like a payload.
    #[serde(default)]
    pub body: Value,
    /// Whether `body` was cut at [`MAX_BODY_BYTES`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

impl SentRequest {
    /// `req` as a run record shows it.
    pub fn new(hub: &Hub, req: &Prepared) -> Self {
        let mut url = req.url.to_string();
        if !req.query.is_empty() {
            let q = serde_urlencoded::to_string(&req.query).unwrap_or_default();
            url = format!("{url}?{q}");
        }
        let headers: BTreeMap<String, String> = req.headers.iter().cloned().collect();
        let body = match &req.body {
            Body::None => Value::Null,
            Body::Json(v) => v.clone(),
            Body::Form(f) => Value::Object(
                f.iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            ),
        };
        let (body, truncated) = capped(hub.redact_json(&body), MAX_BODY_BYTES);
        SentRequest {
            method: req.method.to_string(),
            url: hub.redact(&url),
            headers: shown_headers(hub, &headers),
            body,
            truncated,
        }
    }
}

/// A response as it was read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GotResponse {
    /// HTTP status.
    pub status: u16,
    /// Headers, without credentials.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The body (JSON, or the text), capped at [`MAX_BODY_BYTES`].
    #[serde(default)]
    pub body: Value,
    /// Whether `body` was cut.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

impl GotResponse {
    /// `resp` as a run record shows it.
    pub fn new(hub: &Hub, resp: &Response) -> Self {
        let (body, truncated) = capped(hub.redact_json(&resp.body), MAX_BODY_BYTES);
        GotResponse {
            status: resp.status,
            headers: shown_headers(hub, &resp.headers),
            body,
            truncated,
        }
    }
}

/// What [`crate::retry::decide`] made of an attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Decided {
    /// The step succeeded.
    Done,
    /// Tried again after `in_ms`.
    Retry {
        /// The wait before the next attempt.
        in_ms: u64,
        /// Whether the wait is the server's `Retry-After` (else a jittered backoff).
        retry_after_honoured: bool,
    },
    /// Given up: the step failed for good.
    GaveUp {
        /// Why.
        why: String,
    },
}

impl std::fmt::Display for Decided {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Decided::Done => f.write_str("done"),
            Decided::Retry {
                in_ms,
                retry_after_honoured,
            } => {
                let d = humantime::format_duration(Duration::from_millis(*in_ms));
                let why = if *retry_after_honoured {
                    " (Retry-After)"
                } else {
                    ""
                };
                write!(f, "retry in {d}{why}")
            }
            Decided::GaveUp { why } => write!(f, "gave up: {why}"),
        }
    }
}

/// `v`, or — when its JSON is over `max` bytes — the first `max` bytes of
/// that JSON as a string (valid JSON either way), and whether it was cut.
pub fn capped(v: Value, max: usize) -> (Value, bool) {
    if json_len(&v) <= max {
        return (v, false);
    }
    let json = v.to_string();
    (Value::String(cut(&json, max).to_owned()), true)
}

/// The length of `v`'s JSON, counted without building the string.
fn json_len(v: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    serde_json::to_writer(&mut count, v).expect("a JSON value always serializes");
    count.0
}

/// The longest prefix of `s` of at most `max` bytes, on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Headers (or query parameters) a run record shows: not credentials (see
/// [`is_credential_header`]), at most [`MAX_HEADERS`], values cut at
/// [`MAX_HEADER_VALUE`] and redacted.
fn shown_headers(hub: &Hub, headers: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let redact = hub.redactor();
    headers
        .iter()
        .filter(|(k, _)| !is_credential_header(k))
        .take(MAX_HEADERS)
        .map(|(k, v)| (redact(k), redact(cut(v, MAX_HEADER_VALUE))))
        .collect()
}

/// Hold `run` to `budget` bytes of JSON: drop the request and response of
/// the oldest attempts first (their status, error and decision stay), then
/// the event's headers and payload. A record with no detail left is a few
/// hundred bytes per attempt; steps and attempts are bounded by the config.
pub fn fit(run: &mut RunRecord, budget: usize) {
    let size = |r: &RunRecord| serde_json::to_vec(r).map_or(0, |v| v.len());
    if size(run) <= budget {
        return;
    }
    let mut order: Vec<(Millis, usize, usize)> = Vec::new();
    for (s, step) in run.steps.iter().enumerate() {
        for (a, at) in step.attempts.iter().enumerate() {
            if at.request.is_some() || at.response.is_some() {
                order.push((at.started_at, s, a));
            }
        }
    }
    order.sort_unstable();
    for (_, s, a) in order {
        let at = &mut run.steps[s].attempts[a];
        at.request = None;
        at.response = None;
        if size(run) <= budget {
            return;
        }
    }
    if let Some(event) = &mut run.event {
        event.headers.clear();
        event.query.clear();
        event.payload = Value::String(String::new());
        event.truncated = true;
    }
}

/// `run` as stored: its JSON, held to [`MAX_RECORD_BYTES`] by [`fit`].
/// Both adapters write this, so both keep the same detail.
pub fn encode(run: &RunRecord) -> Result<String, serde_json::Error> {
    let json = serde_json::to_string(run)?;
    if json.len() <= MAX_RECORD_BYTES {
        return Ok(json);
    }
    let mut smaller = run.clone();
    fit(&mut smaller, MAX_RECORD_BYTES);
    serde_json::to_string(&smaller)
}

/// When a run last changed at `updated_at` expires under `retention`.
pub fn expiry(updated_at: Millis, retention: Duration) -> Millis {
    crate::clock::after(updated_at, retention)
}

#[cfg(test)]
mod tests;
