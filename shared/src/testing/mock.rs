//! The mocked APIs of a test run: one HTTP server on 127.0.0.1 that every
//! connection's `base_url` (and OAuth 2.0 `token_url`) is pointed at. It
//! answers each call from the case's mocks (by the step the
//! `Idempotency-Key` names), records what it received, holds every
//! connection to its documented `rate_limit` (a call over it is answered
//! `429` and counted), and takes a mocked `delay` on the virtual clock. A
//! call no mock answers is answered `400` (so it is not retried) and counted.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::{Value, json};

use super::file::{Mock, duration};
use crate::clock::{Clock, Millis, VirtualClock, millis};

/// A call the mock received.
#[derive(Debug, Clone)]
pub struct Received {
    /// The step it was for (`<connection>.token` for a token request).
    pub step: String,
    /// Method.
    pub method: String,
    /// Path after the connection's base URL, query included.
    pub path: String,
    /// Headers (lower-case names).
    pub headers: BTreeMap<String, String>,
    /// The body: JSON, form fields as an object, or the text.
    pub body: Value,
    /// The status it was answered.
    pub status: u16,
}

/// What a connection is held to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Documented `rate_limit`: (requests, per).
    pub rate: Option<(u32, Millis)>,
    /// The connection's timeout.
    pub timeout: Duration,
}

#[derive(Default)]
struct State {
    mocks: BTreeMap<String, Mock>,
    received: Vec<Received>,
    unmocked: Vec<String>,
    over_limit: Vec<String>,
    windows: HashMap<String, VecDeque<Millis>>,
}

/// The running mock server.
pub struct MockServer {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Shared {
    state: Arc<Mutex<State>>,
    clock: Arc<VirtualClock>,
    limits: HashMap<String, Limits>,
}

impl MockServer {
    /// Start on a free port of 127.0.0.1; `limits` per connection name.
    pub async fn start(
        clock: Arc<VirtualClock>,
        limits: HashMap<String, Limits>,
    ) -> Result<Self, String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("mock server: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("mock server: {e}"))?;
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::new(Shared {
            state: state.clone(),
            clock,
            limits,
        });
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = shared.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let shared = shared.clone();
                        async move { shared.answer(req).await }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, svc)
                        .await;
                });
            }
        });
        Ok(Self {
            base: format!("http://{addr}"),
            state,
            task,
        })
    }

    /// The base URL connection `name` is pointed at.
    pub fn connection_url(&self, name: &str) -> String {
        format!("{}/c/{name}", self.base)
    }

    /// The token URL connection `name` is pointed at.
    pub fn token_url(&self, name: &str) -> String {
        format!("{}/t/{name}", self.base)
    }

    /// Start a case: these mocks, nothing received.
    pub fn reset(&self, mocks: BTreeMap<String, Mock>) {
        let mut s = lock(&self.state);
        *s = State {
            mocks,
            ..State::default()
        };
    }

    /// What was received, in order.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.state).received.clone()
    }

    /// Calls no mock answered, each shown in full.
    pub fn unmocked(&self) -> Vec<String> {
        lock(&self.state).unmocked.clone()
    }

    /// Calls over a connection's documented rate limit.
    pub fn over_limit(&self) -> Vec<String> {
        lock(&self.state).over_limit.clone()
    }
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

type Answered = Result<hyper::Response<Full<Bytes>>, String>;

impl Shared {
    async fn answer(&self, req: hyper::Request<Incoming>) -> Answered {
        let (parts, body) = req.into_parts();
        let bytes = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let headers: BTreeMap<String, String> = parts
            .headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let full = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let (kind, rest) = full
            .trim_start_matches('/')
            .split_once('/')
            .unwrap_or(("", ""));
        let (conn, path) = rest
            .split_once(['/', '?'])
            .map_or((rest, ""), |(c, _)| (c, &rest[c.len()..]));
        let path = if path.is_empty() { "/" } else { path }.to_owned();
        let step = match kind {
            "t" => format!("{conn}.token"),
            _ => headers
                .get("idempotency-key")
                .and_then(|k| k.rsplit_once(':'))
                .map_or_else(|| format!("{conn} {path}"), |(_, s)| s.to_owned()),
        };
        let body_value = parse(&headers, &bytes);
        let method = parts.method.to_string();
        let shown = || format!("{method} {path} (step {step}) {body_value}");
        let limits = self.limits.get(conn).copied();
        // The documented limit, on the virtual clock.
        let now = self.clock.now_ms();
        let mut state = lock(&self.state);
        if kind == "c"
            && let Some((requests, per)) = limits.and_then(|l| l.rate)
        {
            let window = state.windows.entry(conn.to_owned()).or_default();
            while window.front().is_some_and(|t| *t <= now - per) {
                window.pop_front();
            }
            if window.len() >= requests as usize {
                state
                    .over_limit
                    .push(format!("{} over {requests} per {per}ms: {}", conn, shown()));
                let retry = (per / 1000).max(1);
                return Ok(reply(
                    429,
                    &[("retry-after", retry.to_string())],
                    &json!({}),
                ));
            }
            window.push_back(now);
        }
        let n = state.received.iter().filter(|r| r.step == step).count();
        let answer = match (state.mocks.get(&step), kind) {
            (Some(m), _) => Some(m.nth(n).reply()),
            (None, "t") => None,
            (None, _) => {
                state.unmocked.push(shown());
                state.received.push(Received {
                    step,
                    method,
                    path,
                    headers,
                    body: body_value,
                    status: 400,
                });
                let why = json!({ "error": "not mocked", "message": "ferry test: no mock for this step" });
                return Ok(reply(400, &[], &why));
            }
        };
        let (status, extra, out, delay) = match answer {
            Some(r) => {
                let mut h: Vec<(&str, String)> = r
                    .headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.clone()))
                    .collect();
                if let Some(s) = r.retry_after {
                    h.push(("retry-after", s.to_string()));
                }
                let h: Vec<(String, String)> =
                    h.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
                let delay = r.delay.as_deref().map(duration).transpose()?;
                (
                    r.status.unwrap_or(200),
                    h,
                    r.body.unwrap_or(json!({})),
                    delay,
                )
            }
            None => (
                200,
                Vec::new(),
                json!({ "access_token": "ferry-test-token", "token_type": "bearer", "expires_in": 3600 }),
                None,
            ),
        };
        state.received.push(Received {
            step,
            method,
            path,
            headers,
            body: body_value,
            status,
        });
        drop(state);
        if let Some(d) = delay {
            let timeout = limits.map_or(crate::outbound::DEFAULT_TIMEOUT, |l| l.timeout);
            self.clock.advance(millis(d.min(timeout)));
            if d >= timeout {
                return Err(format!("mocked delay {d:?} is over the timeout"));
            }
        }
        let extra: Vec<(&str, String)> =
            extra.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        Ok(reply(status, &extra, &out))
    }
}

fn reply(status: u16, headers: &[(&str, String)], body: &Value) -> hyper::Response<Full<Bytes>> {
    let mut b = hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json");
    for (k, v) in headers {
        b = b.header(*k, v);
    }
    b.body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_else(|_| hyper::Response::new(Full::new(Bytes::new())))
}

/// The body as an expectation compares it: JSON, form fields, or text.
fn parse(headers: &BTreeMap<String, String>, raw: &[u8]) -> Value {
    if raw.is_empty() {
        return Value::Null;
    }
    let form = headers
        .get("content-type")
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if form && let Ok(pairs) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(raw) {
        return Value::Object(
            pairs
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect(),
        );
    }
    serde_json::from_slice(raw)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(raw).into()))
}
