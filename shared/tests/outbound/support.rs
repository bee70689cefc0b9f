//! The hub under test (config, SQLite store in a temp dir, the queue drained
//! in-process by the real executor) and the testkit's target, answering with a closure.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ferry::clock::SystemClock;
use ferry::execute::execute;
use ferry::hub::Hub;
use ferry::model::{RunQuery, RunRecord};
use ferry::store::{SqliteOptions, SqliteStore};
use ferry::worker::{VISIBILITY, settle};
use ferry_testkit::target::Target;
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
    hub_with(yaml, vars, |_| {})
}

/// [`hub`], with the loaded config changed by `edit` first (what `ferry
/// validate` would refuse, to reach the checks behind it).
pub fn hub_with(
    yaml: &str,
    vars: &[(&str, &str)],
    edit: impl FnOnce(&mut ferry::config::Config),
) -> Env {
    let env = |name: &str| {
        if name == "KEY" {
            return Some("k".to_owned());
        }
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    };
    let mut loaded = ferry::config::load_str(yaml, &env).unwrap_or_else(|e| panic!("{e}"));
    edit(&mut loaded.config);
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
pub type Req = ferry_testkit::target::Seen;

/// An answer: status, headers, JSON body.
pub type Answer = (u16, Vec<(String, String)>, Value);

/// The testkit's target, answering every request with `f`.
#[derive(Clone)]
pub struct Server {
    pub url: String,
    target: Target,
}

impl Server {
    pub async fn start(f: impl Fn(&Req) -> Answer + Send + Sync + 'static) -> Server {
        let target = Target::start().await;
        target.behave("/", move |req| {
            let (status, headers, body) = f(req);
            let mut a = ferry_testkit::target::Answer::status(status, body);
            a.headers = headers;
            Some(a)
        });
        Server {
            url: target.url(),
            target,
        }
    }

    pub fn seen(&self) -> Vec<Req> {
        self.target.seen()
    }
}

/// `200 {"ok": true}`.
pub fn ok() -> Answer {
    (200, vec![], serde_json::json!({ "ok": true }))
}
