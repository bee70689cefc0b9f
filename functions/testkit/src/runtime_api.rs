//! A stand-in for the Lambda Runtime API on 127.0.0.1, to run a function's
//! real binary as Lambda would: it hands out queued events on
//! `GET /2018-06-01/runtime/invocation/next` and records what the function
//! posts back (a response, an invocation error, an init error).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::Value;

/// What a function answered to one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `…/response`.
    Response(Value),
    /// `…/error`.
    Error(Value),
}

#[derive(Default)]
struct ApiState {
    pending: VecDeque<(String, Value)>,
    outcomes: HashMap<String, (Outcome, Instant)>,
    first_poll: Option<Instant>,
    init_error: Option<Value>,
    next_id: u64,
}

/// The stand-in. Stops with the runtime that started it.
#[derive(Clone)]
pub struct RuntimeApi {
    /// Where it listens (`AWS_LAMBDA_RUNTIME_API`).
    pub addr: SocketAddr,
    state: Arc<Mutex<ApiState>>,
}

const BASE: &str = "/2018-06-01/runtime";

impl RuntimeApi {
    /// Start on a free port of 127.0.0.1.
    pub async fn start() -> RuntimeApi {
        let state = Arc::new(Mutex::new(ApiState::default()));
        let app = Router::new()
            .route(&format!("{BASE}/invocation/next"), get(next))
            .route(
                &format!("{BASE}/invocation/{{id}}/response"),
                post(response),
            )
            .route(&format!("{BASE}/invocation/{{id}}/error"), post(error))
            .route(&format!("{BASE}/init/error"), post(init_error))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port on 127.0.0.1");
        let addr = listener.local_addr().expect("a local address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        RuntimeApi { addr, state }
    }

    /// Queue an invocation; returns its request id.
    pub fn invoke(&self, event: Value) -> String {
        let mut st = self.state.lock().unwrap();
        st.next_id += 1;
        let id = format!("00000000-0000-4000-8000-{:012}", st.next_id);
        st.pending.push_back((id.clone(), event));
        id
    }

    /// The outcome of invocation `id`, waiting up to `timeout`.
    pub async fn outcome(&self, id: &str, timeout: Duration) -> Option<Outcome> {
        let start = Instant::now();
        loop {
            if let Some((o, _)) = self.state.lock().unwrap().outcomes.get(id) {
                return Some(o.clone());
            }
            if start.elapsed() > timeout {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// When the function posted its answer to invocation `id`.
    pub fn answered_at(&self, id: &str) -> Option<Instant> {
        self.state
            .lock()
            .unwrap()
            .outcomes
            .get(id)
            .map(|(_, at)| *at)
    }

    /// When the function first asked for an event: the end of its init.
    pub fn first_poll(&self) -> Option<Instant> {
        self.state.lock().unwrap().first_poll
    }

    /// What the function reported on `/init/error`, if anything.
    pub fn init_error(&self) -> Option<Value> {
        self.state.lock().unwrap().init_error.clone()
    }

    /// Start `binary` as Lambda would, against this API, with `env` added.
    pub fn spawn<K: AsRef<str>>(&self, binary: &Path, env: &[(K, String)]) -> Child {
        Command::new(binary)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", self.addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "ferry-test")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/ferry-test")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
            .env("AWS_REGION", "eu-west-1")
            .envs(env.iter().map(|(k, v)| (k.as_ref(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()))
    }
}

async fn next(State(state): State<Arc<Mutex<ApiState>>>) -> impl IntoResponse {
    {
        let mut st = state.lock().unwrap();
        st.first_poll.get_or_insert_with(Instant::now);
    }
    loop {
        let job = state.lock().unwrap().pending.pop_front();
        if let Some((id, event)) = job {
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() + 60_000)
                .unwrap_or_default();
            let mut headers = HeaderMap::new();
            let mut set = |k: &'static str, v: String| {
                headers.insert(k, HeaderValue::from_str(&v).expect("a header value"));
            };
            set("lambda-runtime-aws-request-id", id);
            set("lambda-runtime-deadline-ms", deadline.to_string());
            set(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:eu-west-1:123456789012:function:ferry-test".into(),
            );
            set(
                "lambda-runtime-trace-id",
                "Root=1-6553f100-000000000000000000000001;Sampled=0".into(),
            );
            return (headers, event.to_string());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn json_of(body: &Bytes) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

async fn response(
    State(state): State<Arc<Mutex<ApiState>>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> &'static str {
    let mut st = state.lock().unwrap();
    st.outcomes
        .insert(id, (Outcome::Response(json_of(&body)), Instant::now()));
    "{}"
}

async fn error(
    State(state): State<Arc<Mutex<ApiState>>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> &'static str {
    let mut st = state.lock().unwrap();
    st.outcomes
        .insert(id, (Outcome::Error(json_of(&body)), Instant::now()));
    "{}"
}

async fn init_error(State(state): State<Arc<Mutex<ApiState>>>, body: Bytes) -> &'static str {
    state.lock().unwrap().init_error = Some(json_of(&body));
    "{}"
}

/// The environment a function gets to serve `events/`: the events config and
/// its values, and an embedded store in `store_dir`.
pub fn events_env(store_dir: &Path) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = crate::env_file().into_iter().collect();
    env.push((
        "FERRY_CONFIG".into(),
        crate::events_dir().join("ferry.yaml").display().to_string(),
    ));
    env.push((
        "FERRY_STORE".into(),
        format!("sqlite:{}", store_dir.join("ferry.db").display()),
    ));
    env
}

/// A config with three mistakes: an unknown key, an unknown connection and
/// an unset variable.
pub const BROKEN_CONFIG: &str = r#"version: 1
connections:
  crm:
    base_url: "${env:FERRY_TEST_UNSET_URL}"
    timout: 5s
sources:
  form:
    verify: { scheme: none }
    event_id: "{{ body.id }}"
workflows:
  lead:
    trigger: { source: form }
    steps:
      - id: contact
        connection: crmm
        request: { method: POST, path: /contacts }
"#;

/// Start `binary` on [`BROKEN_CONFIG`] and check it stops at init, before
/// asking for an event, with exactly one log line: a JSON object at level
/// `ERROR` that names every problem with its line. Returns that line.
pub async fn assert_broken_config_fails_at_init(binary: &Path) -> Value {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let config = dir.path().join("ferry.yaml");
    std::fs::write(&config, BROKEN_CONFIG).expect("the config is written");
    let api = RuntimeApi::start().await;
    let child = api.spawn(
        binary,
        &[
            ("FERRY_CONFIG", config.display().to_string()),
            (
                "FERRY_STORE",
                format!("sqlite:{}", dir.path().join("ferry.db").display()),
            ),
        ],
    );
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("the wait finishes")
        .expect("the function runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a broken config must stop the function; stdout: {stdout}"
    );
    assert!(api.first_poll().is_none(), "it asked for an event");
    let lines: Vec<&str> = stdout.lines().chain(stderr.lines()).collect();
    assert_eq!(lines.len(), 1, "one log line, got: {lines:#?}");
    let line: Value =
        serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("not JSON ({e}): {}", lines[0]));
    assert_eq!(line["level"], "ERROR", "{line}");
    let error = line["error"].as_str().unwrap_or_default();
    for problem in [
        "line 4: connections.crm.base_url: environment variable FERRY_TEST_UNSET_URL is not set",
        "line 5: connections.crm.timout: unknown key \"timout\"",
        "line 15: workflows.lead.steps[0].connection: unknown connection \"crmm\"",
    ] {
        assert!(error.contains(problem), "{problem:?} not in {error}");
    }
    line
}

/// Start `binary` with `env`, give it `event`, and return what it answered
/// and every line it logged (JSON objects). The process is stopped after.
pub async fn serve_one<K: AsRef<str>>(
    binary: &Path,
    env: &[(K, String)],
    event: Value,
) -> (Outcome, Vec<Value>) {
    let api = RuntimeApi::start().await;
    let mut child = api.spawn(binary, env);
    let id = api.invoke(event);
    let outcome = api.outcome(&id, Duration::from_secs(60)).await;
    let _ = child.kill();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("the wait finishes")
        .expect("the function ran");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let logs: Vec<Value> = text
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {l}"))
        })
        .collect();
    let outcome = outcome.unwrap_or_else(|| panic!("no answer within 60 s; logs: {logs:#?}"));
    (outcome, logs)
}
