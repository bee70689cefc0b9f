//! The hub under test (config, SQLite store in a temp dir, the queue drained
//! in-process by the real executor) and local servers that record what they get.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use ferry::clock::SystemClock;
use ferry::execute::execute;
use ferry::hub::Hub;
use ferry::model::{RunQuery, RunRecord};
use ferry::store::{SqliteOptions, SqliteStore};
use ferry::worker::{VISIBILITY, settle};
use serde_json::Value;

/// The webhook source every test config uses (`${env:KEY}` is set to `k`).
pub const SOURCE: &str = r#"sources:
  form: { verify: { scheme: api-key, header: X-Key, secret: "${env:KEY}" }, event_id: "{{ body.id }}" }
"#;

pub struct Env {
    pub hub: Arc<Hub>,
    pub dir: tempfile::TempDir,
}

/// Load `yaml` with `vars` (and `KEY`) on a fresh SQLite store.
pub fn hub(yaml: &str, vars: &[(&str, &str)]) -> Env {
    let env = |name: &str| {
        if name == "KEY" {
            return Some("k".to_owned());
        }
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    };
    let loaded = ferry::config::load_str(yaml, &env).unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        &dir.path().join("ferry.db"),
        SqliteOptions {
            max_receives: 5,
            clock: Arc::new(SystemClock),
        },
    )
    .unwrap();
    let hub = Hub::new(loaded.config, loaded.secrets, store.ports()).unwrap();
    Env { hub, dir }
}

/// Post `body` to the source `form`; it must be accepted.
pub async fn post(hub: &Hub, body: &Value) {
    let mut headers = http::HeaderMap::new();
    headers.insert("x-key", "k".parse().unwrap());
    headers.insert("content-type", "application/json".parse().unwrap());
    let reply = ferry::ingest::ingest(
        hub,
        ferry::ingest::Inbound {
            method: http::Method::POST,
            source: "form".into(),
            headers,
            query: None,
            body: bytes::Bytes::from(serde_json::to_vec(body).unwrap()),
        },
    )
    .await;
    assert_eq!(reply.status, 202, "{body}");
}

/// Execute every visible queued run (many at once) until none is left.
pub async fn drain(hub: &Hub) {
    loop {
        let msgs = hub
            .ports
            .queue
            .receive(200, VISIBILITY, Duration::ZERO)
            .await
            .unwrap();
        if msgs.is_empty() {
            return;
        }
        futures::future::join_all(msgs.iter().map(|m| async move {
            let d = execute(hub, m).await;
            settle(hub.ports.queue.as_ref(), m, d).await;
        }))
        .await;
    }
}

/// Every run, by workflow name.
pub async fn runs(hub: &Hub) -> HashMap<String, Vec<RunRecord>> {
    let mut out: HashMap<String, Vec<RunRecord>> = HashMap::new();
    for r in hub.ports.runs.list(&RunQuery::default()).await.unwrap() {
        out.entry(r.workflow.clone()).or_default().push(r);
    }
    out
}

/// One request a [`Server`] received, as it arrived (the path still encoded).
#[derive(Debug, Clone)]
pub struct Req {
    #[allow(dead_code)]
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: HashMap<String, String>,
    pub body: Value,
}

/// An answer: status, headers, JSON body.
pub type Answer = (u16, Vec<(String, String)>, Value);

/// A local server on 127.0.0.1 that records every request and answers with `f`.
#[derive(Clone)]
pub struct Server {
    pub url: String,
    seen: Arc<Mutex<Vec<Req>>>,
}

impl Server {
    pub async fn start(f: impl Fn(&Req) -> Answer + Send + Sync + 'static) -> Server {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let f = Arc::new(f);
        let log = seen.clone();
        let app = Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let (f, log) = (f.clone(), log.clone());
                async move {
                    let req = Req {
                        method: method.to_string(),
                        path: uri.path().to_owned(),
                        query: uri.query().map(str::to_owned),
                        headers: headers
                            .iter()
                            .map(|(k, v)| {
                                (
                                    k.as_str().to_owned(),
                                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                                )
                            })
                            .collect(),
                        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                    };
                    let (status, hdrs, body) = f(&req);
                    log.lock().unwrap().push(req);
                    let mut resp: Response =
                        (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response();
                    for (k, v) in hdrs {
                        resp.headers_mut().insert(
                            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                            v.parse().unwrap(),
                        );
                    }
                    resp
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Server { url, seen }
    }

    pub fn seen(&self) -> Vec<Req> {
        self.seen.lock().unwrap().clone()
    }
}

/// `200 {"ok": true}`.
pub fn ok() -> Answer {
    (200, vec![], serde_json::json!({ "ok": true }))
}
