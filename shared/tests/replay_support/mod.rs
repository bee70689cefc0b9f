//! An in-process hub on the embedded store and a manual clock, with the
//! testkit's target, for the replay, bulk-replay and pause tests: events are
//! ingested as a webhook would be, and the queue is driven by hand.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry::clock::ManualClock;
use ferry::hub::Hub;
use ferry::model::RunRecord;
use ferry::ports::Ports;
use ferry::store::{SqliteOptions, SqliteStore};
use ferry_testkit::target::Target;

/// One workflow `w` on source `form` calling `crm` at `/x`; `RETRY` is replaced
/// by the workflow's retry policy.
pub const RETRYING: &str = r#"version: 1
connections:
  crm: { base_url: "${env:CRM_URL}" }
sources:
  form: { verify: { scheme: api-key, header: X-Key, secret: "${env:KEY}" }, event_id: "{{ body.id }}" }
workflows:
  w:
    trigger: { source: form }
    retry: RETRY
    steps: [ { id: a, connection: crm, request: { path: /x, json: { id: "{{ body.id }}" } } } ]
"#;

/// When the manual clock starts.
pub const T0: i64 = 1_800_000_000_000;

pub struct Bench {
    pub hub: Arc<Hub>,
    pub clock: Arc<ManualClock>,
    pub target: Target,
    _dir: Option<tempfile::TempDir>,
}

impl Bench {
    /// A hub for `config` on a fresh embedded store (`${env:CRM_URL}` is the target's `/crm`).
    pub async fn start(config: &str) -> Bench {
        Bench::start_on(config, ManualClock::at(T0)).await
    }

    /// [`Bench::start`] on `clock`.
    pub async fn start_on(config: &str, clock: Arc<ManualClock>) -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(
            dir.path(),
            SqliteOptions {
                max_receives: 5,
                clock: clock.clone(),
            },
        )
        .unwrap();
        let mut b = Bench::on(config, clock, store.ports()).await;
        b._dir = Some(dir);
        b
    }

    /// A hub for `config` on `ports`, whose clock is `clock`.
    pub async fn on(config: &str, clock: Arc<ManualClock>, ports: Ports) -> Bench {
        let target = Target::start().await;
        let url = format!("{}/crm", target.url());
        let env = move |name: &str| match name {
            "CRM_URL" => Some(url.clone()),
            "KEY" => Some("k".to_owned()),
            "ALERT_SECRET" => Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned()),
            _ => None,
        };
        let loaded = ferry::config::load_str(config, &env).unwrap();
        let hub = Hub::new(loaded.config, loaded.secrets, ports).unwrap();
        Bench {
            hub,
            clock,
            target,
            _dir: None,
        }
    }

    /// Post event `id` to source `source`; the run id of its first workflow.
    pub async fn send_to(&self, source: &str, id: &str) -> String {
        self.send_json(source, serde_json::json!({ "id": id }))
            .await
    }

    /// Post `body` to source `source` (accepted); the run id of its first workflow.
    pub async fn send_json(&self, source: &str, body: serde_json::Value) -> String {
        let mut headers = http::HeaderMap::new();
        headers.insert("x-key", "k".parse().unwrap());
        headers.insert("content-type", "application/json".parse().unwrap());
        let reply = ferry::ingest::ingest(
            &self.hub,
            ferry::ingest::Inbound {
                method: http::Method::POST,
                source: source.into(),
                headers,
                query: None,
                body: bytes::Bytes::from(body.to_string()),
            },
        )
        .await;
        assert_eq!(reply.status, 202, "{:?}", reply.body);
        let id = &reply.body["run_id"];
        let id = id.as_str();
        id.unwrap_or_default().to_owned()
    }

    /// Post event `id` to source `form`.
    pub async fn send(&self, id: &str) -> String {
        self.send_to("form", id).await
    }

    /// Receive and execute what is due now; how many messages there were.
    pub async fn step(&self) -> usize {
        ferry_testkit::drive::step(&self.hub).await
    }

    /// Run the queue, moving the clock 100 ms whenever nothing is due, until
    /// `done` holds (checked between rounds); panics after 60 s of real time.
    pub async fn until<F, Fut>(&self, what: &str, mut done: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let started = Instant::now();
        while !done().await {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "timed out waiting for {what}"
            );
            if self.step().await == 0 {
                self.clock.advance(100);
            }
        }
    }

    /// Run the queue until run `id` is final; the run.
    pub async fn drive(&self, id: &str) -> RunRecord {
        self.until(&format!("run {id} to finish"), || async {
            self.run(id).await.is_some_and(|r| r.status.is_final())
        })
        .await;
        self.run(id).await.unwrap()
    }

    /// Run the queue until nothing is left on it (for `idle` clock steps of 100 ms).
    pub async fn drain(&self, idle: u32) {
        let mut quiet = 0;
        let started = Instant::now();
        while quiet < idle {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "queue never drained"
            );
            if self.step().await == 0 {
                quiet += 1;
                self.clock.advance(100);
            } else {
                quiet = 0;
            }
        }
    }

    pub async fn run(&self, id: &str) -> Option<RunRecord> {
        self.hub.ports.runs.get(id).await.unwrap()
    }
}
