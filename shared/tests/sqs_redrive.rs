//! SQS's own redrive ("start DLQ redrive" in the console) of a dead-lettered
//! run, on the emulator: the message that comes back is executed as a replay
//! (fresh retry budget) and the run ends `succeeded`; a duplicate of the
//! message that dead-lettered it is not.

use std::sync::Arc;
use std::time::Duration;

use ferry::clock::SystemClock;
use ferry::contract::aws::AwsBackend;
use ferry::execute::{Disposition, execute};
use ferry::hub::Hub;
use ferry::model::RunStatus;
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
    retry: { max_attempts: 1 }
    steps: [ { id: a, connection: crm, request: { path: /x, json: { id: "{{ body.id }}" } } } ]
"#;

/// Receive what the queue has now, execute and settle it; the dispositions.
async fn work(hub: &Hub) -> Vec<Disposition> {
    let mut out = Vec::new();
    for msg in hub
        .ports
        .queue
        .receive(10, Duration::from_secs(30), Duration::from_secs(2))
        .await
        .unwrap()
    {
        let d = execute(hub, &msg).await;
        settle(hub.ports.queue.as_ref(), &msg, d.clone()).await;
        out.push(d);
    }
    out
}

#[tokio::test]
async fn a_dead_lettered_run_redriven_by_sqs_is_replayed_and_succeeds() {
    let Some(b) = AwsBackend::new("sqs_redrive", 3).await else {
        return;
    };
    let target = Target::start().await;
    target.respond("/crm/x", 503, Value::Null);
    let url = format!("{}/crm", target.url());
    let store = b.store(Arc::new(SystemClock)).await;
    let names = store.names().clone();
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
    let run_id = reply.body["run_id"].as_str().unwrap().to_owned();

    // One attempt, a 503, out of attempts: dead-lettered.
    let got = work(&hub).await;
    assert!(matches!(got[..], [Disposition::DeadLetter(_)]), "{got:?}");
    let run = hub.ports.runs.get(&run_id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::DeadLettered, "{run:?}");
    assert_eq!(target.count("/crm/x"), 1);

    // A duplicate of the message that dead-lettered it (no trip through the
    // DLQ): dropped, nothing called.
    let dlq = b
        .sqs
        .receive_message()
        .queue_url(&names.dlq_url)
        .message_attribute_names("All")
        .wait_time_seconds(2)
        .send()
        .await
        .unwrap();
    let dead = dlq.messages()[0].clone();
    b.sqs
        .send_message()
        .queue_url(&names.queue_url)
        .message_body(dead.body().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(work(&hub).await, [Disposition::Done]);
    assert_eq!(target.count("/crm/x"), 1, "a duplicate calls nothing");

    // The cause is fixed; SQS's redrive moves the message back with its
    // attributes (moto has no StartMessageMoveTask: done by hand, as it does).
    target.respond("/crm/x", 200, Value::Null);
    let redriven = || {
        b.sqs
            .send_message()
            .queue_url(&names.queue_url)
            .message_body(dead.body().unwrap())
            .set_message_attributes(dead.message_attributes().cloned())
    };
    redriven().send().await.unwrap();
    b.sqs
        .delete_message()
        .queue_url(&names.dlq_url)
        .receipt_handle(dead.receipt_handle().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(work(&hub).await, [Disposition::Done]);
    let run = hub.ports.runs.get(&run_id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(target.count("/crm/x"), 2, "called again, once");
    assert_eq!(run.steps[0].attempts.len(), 2, "the first attempt kept");
}
