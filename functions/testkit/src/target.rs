//! A local HTTP server on 127.0.0.1 standing in for the APIs a workflow
//! calls (and a sync polls): it records every request and answers from a
//! per-path script, else a fixed answer for the path, else
//! `200 {"id": "<path>-<n>"}`.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One request the target received.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Query string.
    pub query: Option<String>,
    /// Headers, lower-case names.
    pub headers: HashMap<String, String>,
    /// The JSON body (`null` when not JSON).
    pub body: Value,
}

#[derive(Default)]
struct TargetState {
    seen: Vec<Seen>,
    script: HashMap<String, VecDeque<(u16, Value)>>,
    fixed: HashMap<String, (u16, Value)>,
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

    /// The next answers for `path`, in order, before the fixed one.
    pub fn script(&self, path: &str, answers: &[(u16, Value)]) {
        self.state
            .lock()
            .unwrap()
            .script
            .entry(path.to_owned())
            .or_default()
            .extend(answers.iter().cloned());
    }

    /// Answer every request for `path` with `status` and `body`.
    pub fn respond(&self, path: &str, status: u16, body: Value) {
        self.state
            .lock()
            .unwrap()
            .fixed
            .insert(path.to_owned(), (status, body));
    }

    /// Every request so far, oldest first.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// The requests for `path`.
    pub fn seen_at(&self, path: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.path == path).collect()
    }
}

async fn answer(
    State(state): State<Arc<Mutex<TargetState>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let (status, body) = {
        let mut st = state.lock().unwrap();
        st.counter += 1;
        let n = st.counter;
        st.seen.push(Seen {
            method: method.to_string(),
            path: path.clone(),
            query: uri.query().map(str::to_owned),
            headers: headers
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                .collect(),
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        });
        let scripted = st.script.get_mut(&path).and_then(VecDeque::pop_front);
        scripted
            .or_else(|| st.fixed.get(&path).cloned())
            .unwrap_or_else(|| {
                (
                    200,
                    json!({ "id": format!("{}-{n}", path.trim_start_matches('/')) }),
                )
            })
    };
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        axum::Json(body),
    )
        .into_response()
}
