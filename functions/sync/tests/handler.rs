//! The Lambda handler runs the same sync config as `ferry dev`: a scheduled
//! event names the sync, the run reads the source and enqueues its runs, and
//! the invocation's deadline stops it early.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ferry::clock::SystemClock;
use ferry::hub::Hub;
use ferry::store::{SqliteOptions, SqliteStore};
use ferry::sync::Outcome;
use ferry_testkit::target::{Answer, Target};
use serde_json::{Value, json};

const CONFIG: &str = r#"version: 1
connections:
  api: { base_url: "${env:API_URL}" }
syncs:
  contacts:
    schedule: rate(5 minutes)
    source:
      connection: api
      request: { method: GET, path: /contacts, query: { updated_since: "{{ watermark }}" } }
      pagination: { style: page, param: page, size: 10 }
      records: response.body.results
      id: record.id
      version: record.updated_at
      watermark: record.updated_at
    steps:
      - { id: push, connection: api, request: { method: PUT, path: "/warehouse/{{ body.id }}", json: "{{ body }}" } }
"#;

/// 25 records, 10 a page.
async fn api() -> String {
    let target = Target::start().await;
    target.behave("/contacts", |req| {
        let page: usize = req.param("page").and_then(|p| p.parse().ok()).unwrap_or(1);
        let all: Vec<Value> = (0..25)
            .map(|i| json!({ "id": format!("c{i}"), "updated_at": format!("2024-01-01T00:00:{i:02}Z") }))
            .collect();
        let results: Vec<Value> = all.into_iter().skip((page - 1) * 10).take(10).collect();
        Some(Answer::ok(json!({ "results": results })))
    });
    target.url()
}

fn hub(url: &str, dir: &std::path::Path) -> Arc<Hub> {
    let env = |n: &str| (n == "API_URL").then(|| url.to_owned());
    let loaded = ferry::config::load_str(CONFIG, &env).unwrap();
    let store = SqliteStore::open(
        &dir.join("ferry.db"),
        SqliteOptions {
            max_receives: 5,
            clock: Arc::new(SystemClock),
        },
    )
    .unwrap();
    Hub::new(loaded.config, loaded.secrets, store.ports()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_event_runs_the_named_sync() {
    let url = api().await;
    let dir = tempfile::tempdir().unwrap();
    let hub = hub(&url, dir.path());

    // As an EventBridge rule with a constant input delivers it.
    let r = ferry_sync::handle(&hub, json!({ "sync": "contacts" }))
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Completed);
    assert_eq!((r.pages, r.counts.seen, r.counts.sent), (3, 25, 25));
    // The runs are on the queue for the execute function.
    let queued = hub
        .ports
        .queue
        .receive(100, Duration::from_secs(30), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(queued.len(), 25);
    assert!(queued[0].body.contains("\"workflow\":\"sync:contacts\""));

    // An event with the name under `detail`: the same sync, nothing new to send.
    let again = ferry_sync::handle(&hub, json!({ "detail": { "sync": "contacts" } }))
        .await
        .unwrap();
    assert_eq!(again.counts.sent, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lambda_deadline_stops_the_run_and_the_next_one_continues() {
    let url = api().await;
    let dir = tempfile::tempdir().unwrap();
    let hub = hub(&url, dir.path());
    // A deadline inside the reserve: not even the first page fits.
    let soon = SystemTime::now() + Duration::from_secs(5);
    let r = ferry_sync::handle_until(&hub, json!({ "sync": "contacts" }), Some(soon))
        .await
        .unwrap();
    assert_eq!((r.outcome, r.pages), (Outcome::Stopped, 0));
    let later = SystemTime::now() + Duration::from_secs(600);
    let r = ferry_sync::handle_until(&hub, json!({ "sync": "contacts" }), Some(later))
        .await
        .unwrap();
    assert_eq!((r.outcome, r.counts.sent), (Outcome::Completed, 25));
}

#[tokio::test]
async fn an_event_without_a_sync_name_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub("http://127.0.0.1:9", dir.path());
    let e = ferry_sync::handle(&hub, json!({ "source": "aws.events" }))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("does not name a sync"), "{e}");
    let e = ferry_sync::handle(&hub, json!({ "sync": "nope" }))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no sync named \"nope\""), "{e}");
}
