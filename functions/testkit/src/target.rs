//! The one local HTTP server on 127.0.0.1 that tests use in place of the APIs
//! a workflow calls, a sync polls or a token endpoint answers.
//!
//! It records every request (method, path as sent, query, headers, body,
//! arrival time, the status it answered) and answers, in this order:
//!
//! 1. the next scripted answer for the exact path ([`Target::script`]);
//! 2. the fixed answer for the exact path ([`Target::respond`]);
//! 3. the first handler whose prefix the path starts with and that returns an
//!    answer ([`Target::behave`]): the escape hatch for paginated APIs, token
//!    endpoints, seeded faults — anything with state; [`Target::behave_async`]
//!    for one that holds a request in flight (overlap and concurrency tests);
//! 4. `200 {"id": "<path>-<n>"}`, `n` counting every request.
//!
//! An [`Answer`] has a status, headers, a JSON body (or a text one: an HTML
//! page, say) and a delay before it is sent.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One request the target received.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Its number, from 1, in order of arrival.
    pub n: u64,
    /// Method.
    pub method: String,
    /// Path, as sent (still percent-encoded).
    pub path: String,
    /// Query string, as sent.
    pub query: Option<String>,
    /// Headers, lower-case names (a repeated header: its last value).
    pub headers: HashMap<String, String>,
    /// The JSON body (`null` when not JSON).
    pub body: Value,
    /// The body as sent.
    pub raw: Vec<u8>,
    /// When it arrived.
    pub at: Instant,
    /// The status it was answered with (0 while it is being answered).
    pub status: u16,
}

impl Seen {
    /// Header `name` (lower case), or `""`.
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    /// Query parameter `name`, decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        let q = self.query.as_deref()?;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q).ok()?;
        pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// The form-encoded body's field `name` (a token request's `grant_type`…).
    pub fn form(&self, name: &str) -> Option<String> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&self.raw).ok()?;
        pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

/// An answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Status.
    pub status: u16,
    /// The JSON body.
    pub body: Value,
    /// A body that is not JSON, in place of `body`: its content type and
    /// text (an HTML page for the browser tests).
    pub text: Option<(String, String)>,
    /// Headers, besides `content-type: application/json`.
    pub headers: Vec<(String, String)>,
    /// How long to wait before answering (the request is recorded at once).
    pub delay: Duration,
}

impl Answer {
    /// `status` with a JSON `body`.
    pub fn status(status: u16, body: Value) -> Self {
        Answer {
            status,
            body,
            text: None,
            headers: vec![],
            delay: Duration::ZERO,
        }
    }

    /// `200` with a JSON `body`.
    pub fn ok(body: Value) -> Self {
        Self::status(200, body)
    }

    /// `status` with `text` as the body, of type `content_type`.
    pub fn text(status: u16, content_type: &str, text: impl Into<String>) -> Self {
        let mut a = Self::status(status, Value::Null);
        a.text = Some((content_type.to_owned(), text.into()));
        a
    }

    /// `200` with an HTML page (`text/html; charset=utf-8`).
    pub fn html(page: impl Into<String>) -> Self {
        Self::text(200, "text/html; charset=utf-8", page)
    }

    /// With header `name: value` too.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sent after `delay`.
    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

impl From<(u16, Value)> for Answer {
    fn from((status, body): (u16, Value)) -> Self {
        Answer::status(status, body)
    }
}

impl From<&(u16, Value)> for Answer {
    fn from((status, body): &(u16, Value)) -> Self {
        Answer::status(*status, body.clone())
    }
}

/// Decides the answer to a request (`None`: the default answer).
pub type Behaviour = Arc<dyn Fn(&Seen) -> Option<Answer> + Send + Sync>;

type Answering = Pin<Box<dyn Future<Output = Option<Answer>> + Send>>;
type AsyncBehaviour = Arc<dyn Fn(Seen) -> Answering + Send + Sync>;

#[derive(Default)]
struct TargetState {
    seen: Vec<Seen>,
    script: HashMap<String, VecDeque<Answer>>,
    fixed: HashMap<String, Answer>,
    behaviours: Vec<(String, AsyncBehaviour)>,
    counter: u64,
}

/// The server. It stops with the test's runtime.
#[derive(Clone)]
pub struct Target {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<Mutex<TargetState>>,
}

impl Target {
    /// Start on a free port of 127.0.0.1.
    pub async fn start() -> Target {
        let state = Arc::new(Mutex::new(TargetState::default()));
        let app = Router::new().fallback(answer).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port on 127.0.0.1");
        let addr = listener.local_addr().expect("a local address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Target { addr, state }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn state(&self) -> MutexGuard<'_, TargetState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next answers for `path`, in order, before anything else.
    pub fn script<A: Into<Answer>>(&self, path: &str, answers: impl IntoIterator<Item = A>) {
        self.state()
            .script
            .entry(path.to_owned())
            .or_default()
            .extend(answers.into_iter().map(Into::into));
    }

    /// Answer every request for `path` (once its script is spent) with `status` and `body`.
    pub fn respond(&self, path: &str, status: u16, body: Value) {
        self.respond_with(path, Answer::status(status, body));
    }

    /// Answer every request for `path` (once its script is spent) with `answer`.
    pub fn respond_with(&self, path: &str, answer: Answer) {
        self.state().fixed.insert(path.to_owned(), answer);
    }

    /// Answer requests whose path starts with `prefix` with `f`, when it
    /// returns `Some`. Handlers are asked in the order they were added; `f`
    /// runs outside the target's lock, so it may block or ask the target.
    pub fn behave(
        &self,
        prefix: &str,
        f: impl Fn(&Seen) -> Option<Answer> + Send + Sync + 'static,
    ) {
        self.behave_async(prefix, move |seen| std::future::ready(f(&seen)));
    }

    /// [`Target::behave`] with an asynchronous handler, which may hold the
    /// request in flight (waiting for others, say) without blocking the server.
    pub fn behave_async<F, Fut>(&self, prefix: &str, f: F)
    where
        F: Fn(Seen) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<Answer>> + Send + 'static,
    {
        let f: AsyncBehaviour = Arc::new(move |seen| Box::pin(f(seen)));
        self.state().behaviours.push((prefix.to_owned(), f));
    }

    /// Every request so far, in order of arrival.
    pub fn seen(&self) -> Vec<Seen> {
        self.state().seen.clone()
    }

    /// The requests for exactly `path`.
    pub fn seen_at(&self, path: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.path == path).collect()
    }

    /// The requests whose path starts with `prefix`.
    pub fn seen_under(&self, prefix: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.path.starts_with(prefix))
            .collect()
    }

    /// How many requests for exactly `path`.
    pub fn count(&self, path: &str) -> usize {
        self.count_where(|s| s.path == path)
    }

    /// How many requests `f` picks (without copying them all).
    pub fn count_where(&self, f: impl Fn(&Seen) -> bool) -> usize {
        self.state().seen.iter().filter(|s| f(s)).count()
    }
}

async fn answer(
    State(state): State<Arc<Mutex<TargetState>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let lock = || state.lock().unwrap_or_else(|p| p.into_inner());
    let path = uri.path().to_owned();
    let (seen, index, found, behaviours) = {
        let mut st = lock();
        st.counter += 1;
        let seen = Seen {
            n: st.counter,
            method: method.to_string(),
            path: path.clone(),
            query: uri.query().map(str::to_owned),
            headers: headers
                .iter()
                .map(|(k, v)| {
                    let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
                    (k.as_str().to_owned(), v)
                })
                .collect(),
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            raw: body.to_vec(),
            at: Instant::now(),
            status: 0,
        };
        let found = st
            .script
            .get_mut(&path)
            .and_then(VecDeque::pop_front)
            .or_else(|| st.fixed.get(&path).cloned());
        let behaviours: Vec<AsyncBehaviour> = st
            .behaviours
            .iter()
            .filter(|(prefix, _)| path.starts_with(prefix.as_str()))
            .map(|(_, f)| f.clone())
            .collect();
        st.seen.push(seen.clone());
        (seen, st.seen.len() - 1, found, behaviours)
    };
    let mut found = found;
    for f in &behaviours {
        if found.is_some() {
            break;
        }
        found = f(seen.clone()).await;
    }
    let answer = found.unwrap_or_else(|| {
        let id = format!("{}-{}", path.trim_start_matches('/'), seen.n);
        Answer::ok(json!({ "id": id }))
    });
    lock().seen[index].status = answer.status;
    if !answer.delay.is_zero() {
        tokio::time::sleep(answer.delay).await;
    }
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = match answer.text {
        Some((ctype, text)) => {
            (status, [(axum::http::header::CONTENT_TYPE, ctype)], text).into_response()
        }
        None => (status, axum::Json(answer.body)).into_response(),
    };
    for (k, v) in answer.headers {
        let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(&v),
        ) else {
            panic!("a scripted header that is not one: {k}: {v}");
        };
        resp.headers_mut().append(k, v);
    }
    resp
}
