//! ferry's retries and the queue's own dead-letter limit: a step allowed more
//! attempts than the queue allows receives still gets all of them (retries
//! near the limit are re-sent fresh), so the limit only catches crash loops.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry::clock::SystemClock;
use ferry::execute::execute;
use ferry::hub::Hub;
use ferry::model::{RunQuery, RunStatus};
use ferry::store::{SqliteOptions, SqliteStore};
use ferry::worker::settle;
use ferry_testkit::target::Target;
use serde_json::Value;

const CONFIG: &str = r#"version: 1
connections:
  crm: { base_url: "${env:CRM_URL}" }
sources:
  form: { verify: { scheme: api-key, header: X-Key, secret: "${env:KEY}" }, event_id: "{{ body.id }}" }
workflows:
  w:
    trigger: { source: form }
    retry: { max_attempts: 6, initial_backoff: 10ms, max_backoff: 20ms }
    steps: [ { id: a, connection: crm, request: { path: /x, json: { id: "{{ body.id }}" } } } ]
"#;

#[tokio::test]
async fn retries_beyond_the_queues_max_receives_are_not_dead_lettered_by_the_queue() {
    // The target fails five times, then answers 200.
    let target = Target::start().await;
    target.script("/crm/x", vec![(503, Value::Null); 5]);
    let url = format!("{}/crm", target.url());

    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        dir.path(),
        SqliteOptions {
            max_receives: 3,
            clock: Arc::new(SystemClock),
        },
    )
    .unwrap();
    let env = move |name: &str| match name {
        "CRM_URL" => Some(url.clone()),
        "KEY" => Some("k".to_owned()),
        _ => None,
    };
    let loaded = ferry::config::load_str(CONFIG, &env).unwrap();
    let hub = Hub::new(loaded.config, loaded.secrets, store.ports()).unwrap();
    let mut headers = http::HeaderMap::new();
    headers.insert("x-key", "k".parse().unwrap());
    headers.insert("content-type", "application/json".parse().unwrap());
    let reply = ferry::ingest::ingest(
        &hub,
        ferry::ingest::Inbound {
            method: http::Method::POST,
            source: "form".into(),
            headers,
            query: None,
            body: bytes::Bytes::from_static(br#"{"id": "r-1"}"#),
        },
    )
    .await;
    assert_eq!(reply.status, 202);

    let started = Instant::now();
    loop {
        let run = &hub.ports.runs.list(&RunQuery::default()).await.unwrap()[0];
        if run.status.is_final() {
            assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
            assert_eq!(run.steps[0].attempts.len(), 6, "{run:?}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the run never finished: {run:?}"
        );
        for msg in hub
            .ports
            .queue
            .receive(10, Duration::from_secs(30), Duration::from_millis(100))
            .await
            .unwrap()
        {
            let d = execute(&hub, &msg).await;
            settle(hub.ports.queue.as_ref(), &msg, d).await;
        }
    }
    assert_eq!(target.count("/crm/x"), 6);
    assert!(
        hub.ports.queue.dead_letters(10).await.unwrap().is_empty(),
        "nothing went to the dead-letter queue"
    );
}
