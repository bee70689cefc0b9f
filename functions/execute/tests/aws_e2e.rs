//! The AWS path end to end on the emulator (moto's server, started by
//! `scripts/test`): an API Gateway event into the ingest handler → a message on
//! the SQS queue → the execute handler with that SQS batch (delivered the way
//! the Lambda event source mapping delivers it) → the target HTTP server → the
//! run log in DynamoDB. Run ad hoc without the emulator, it skips loudly.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use ferry::clock::{Clock, SystemClock};
use ferry::contract::aws::{emulator, fresh};
use ferry::hub::Hub;
use ferry::model::RunStatus;
use ferry::store::AwsStore;
use ferry::store::aws::provision::QueueSpec;
use ferry_testkit::target::Target;
use serde_json::{Value, json};

const CONFIG: &str = r#"version: 1
connections:
  crm: { base_url: "${env:CRM_URL}" }
sources:
  forms:
    verify: { scheme: api-key, header: X-Webhook-Token, secret: "${env:FORMS_TOKEN}" }
    event_id: "{{ body.entry_id }}"
workflows:
  lead:
    trigger: { source: forms }
    retry: { max_attempts: 3, initial_backoff: 200ms, max_backoff: 500ms }
    steps:
      - id: create
        connection: crm
        request: { path: /leads, json: { email: "{{ body.email }}" } }
"#;
const MAX_RECEIVES: u32 = 3;

struct Aws {
    hub: Arc<Hub>,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

async fn setup(test: &str, target: &Target) -> Option<Aws> {
    setup_with(test, target, CONFIG).await
}

async fn setup_with(test: &str, target: &Target, config_text: &str) -> Option<Aws> {
    let config = emulator(test).await?;
    let names = fresh(
        &config,
        QueueSpec {
            max_receives: MAX_RECEIVES,
            visibility: Duration::from_secs(30),
        },
    )
    .await;
    let queue_url = names.queue_url.clone();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let ports = AwsStore::new(&config, names, clock).ports();
    let crm = format!("{}/crm", target.url());
    let env = move |name: &str| match name {
        "CRM_URL" => Some(crm.clone()),
        "FORMS_TOKEN" => Some("forms-token-e2e".to_owned()),
        _ => None,
    };
    let loaded = ferry::config::load_str(config_text, &env).expect("the config loads");
    let hub = Hub::new(loaded.config, loaded.secrets, ports).expect("the hub builds");
    Some(Aws {
        hub,
        sqs: aws_sdk_sqs::Client::new(&config),
        queue_url,
    })
}

/// An HTTP API (payload v2) event for `POST /hooks/forms`.
fn api_gateway(entry_id: &str) -> lambda_http::Request {
    let body = json!({ "entry_id": entry_id, "email": "ada@example.com" }).to_string();
    support::form_webhook(body, "forms-token-e2e")
}

async fn ingest(aws: &Aws, entry_id: &str) -> (u16, Value) {
    let resp = ferry_ingest::handle(&aws.hub, api_gateway(entry_id))
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = match resp.body() {
        lambda_http::Body::Text(t) => serde_json::from_str(t).unwrap(),
        other => panic!("unexpected body {other:?}"),
    };
    (status, body)
}

/// What the SQS event source mapping does (see `support::deliver`).
async fn deliver(aws: &Aws) -> usize {
    support::deliver(&aws.hub, &aws.sqs, &aws.queue_url, 10).await
}

async fn queue_depth(aws: &Aws) -> u64 {
    let attrs = aws
        .sqs
        .get_queue_attributes()
        .queue_url(&aws.queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .unwrap();
    let map = attrs.attributes.unwrap_or_default();
    map.values().filter_map(|v| v.parse::<u64>().ok()).sum()
}

#[tokio::test]
async fn a_webhook_runs_through_api_gateway_sqs_and_dynamodb() {
    let target = Target::start().await;
    let Some(aws) = setup(
        "a_webhook_runs_through_api_gateway_sqs_and_dynamodb",
        &target,
    )
    .await
    else {
        return;
    };

    let (status, reply) = ingest(&aws, "e-1").await;
    assert_eq!(status, 202, "{reply}");
    let run_id = reply["run_id"].as_str().unwrap().to_owned();
    assert_eq!(
        aws.hub
            .ports
            .runs
            .get(&run_id)
            .await
            .unwrap()
            .unwrap()
            .status,
        RunStatus::Queued
    );
    assert_eq!(
        deliver(&aws).await,
        1,
        "the accepted event is one message on the queue"
    );

    let calls = target.seen_at("/crm/leads");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].body, json!({ "email": "ada@example.com" }));
    let run = aws.hub.ports.runs.get(&run_id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(queue_depth(&aws).await, 0, "the message was deleted");
}

#[tokio::test]
async fn concurrent_duplicates_through_dynamodb_make_one_run() {
    let target = Target::start().await;
    let Some(aws) = setup(
        "concurrent_duplicates_through_dynamodb_make_one_run",
        &target,
    )
    .await
    else {
        return;
    };
    let (a, b, c) = tokio::join!(
        ingest(&aws, "dup"),
        ingest(&aws, "dup"),
        ingest(&aws, "dup")
    );
    let mut statuses = vec![a.0, b.0, c.0];
    statuses.sort();
    assert_eq!(statuses, vec![200, 200, 202], "{a:?} {b:?} {c:?}");
    assert_eq!(a.1["run_id"], b.1["run_id"]);
    assert_eq!(a.1["run_id"], c.1["run_id"]);
    assert_eq!(queue_depth(&aws).await, 1, "one message for three copies");
}

#[tokio::test]
async fn a_target_that_always_fails_ends_on_the_dead_letter_queue_with_the_reason() {
    let target = Target::start().await;
    target.script(
        "/crm/leads",
        &[
            (500, json!({"error": "down"})),
            (500, json!({"error": "down"})),
            (500, json!({"error": "still down"})),
        ],
    );
    let Some(aws) = setup(
        "a_target_that_always_fails_ends_on_the_dead_letter_queue_with_the_reason",
        &target,
    )
    .await
    else {
        return;
    };
    let (status, reply) = ingest(&aws, "e-fail").await;
    assert_eq!(status, 202);
    let run_id = reply["run_id"].as_str().unwrap().to_owned();

    // Deliver until the message leaves the work queue (each retry waits out its backoff).
    let started = Instant::now();
    let mut receives = 0;
    while queue_depth(&aws).await > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the message never left the queue"
        );
        receives += deliver(&aws).await;
    }
    assert_eq!(
        receives as u32, MAX_RECEIVES,
        "delivered maxReceiveCount times"
    );
    assert_eq!(target.seen_at("/crm/leads").len(), 3);
    let letters = aws.hub.ports.queue.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert!(
        letters[0].reason.contains("gave up after 3 attempts")
            && letters[0].reason.contains("still down"),
        "{}",
        letters[0].reason
    );
    let run = aws.hub.ports.runs.get(&run_id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::DeadLettered);
    assert_eq!(
        run.steps[0]
            .attempts
            .iter()
            .map(|a| a.status_code)
            .collect::<Vec<_>>(),
        vec![Some(500); 3]
    );
}

/// The `lead` workflow with its step batched.
const BATCHED: &str = r#"version: 1
connections:
  crm: { base_url: "${env:CRM_URL}" }
sources:
  forms:
    verify: { scheme: api-key, header: X-Webhook-Token, secret: "${env:FORMS_TOKEN}" }
    event_id: "{{ body.entry_id }}"
workflows:
  lead:
    trigger: { source: forms }
    retry: { max_attempts: 3, initial_backoff: 200ms, max_backoff: 500ms }
    steps:
      - id: create
        connection: crm
        request: { path: /leads, json: { entry: "{{ body.entry_id }}" } }
        batch: { max_items: 10, path: /leads/batch, json: { records: "{{ items }}" }, results: response.body.results, item_status: result.status, wait: 200ms }
"#;

/// One SQS batch of ten records for a batched step: one call on AWS too, as in
/// `ferry dev`; the item the endpoint reports as failed is retried alone.
#[tokio::test]
async fn an_sqs_batch_shares_one_batched_call_and_a_failed_item_is_retried_alone() {
    let target = Target::start().await;
    let results: Vec<Value> = (0..10)
        .map(|i| json!({ "status": if i == 3 { 503 } else { 200 } }))
        .collect();
    target.respond("/crm/leads/batch", 200, json!({ "results": results }));
    let test = "an_sqs_batch_shares_one_batched_call_and_a_failed_item_is_retried_alone";
    let Some(aws) = setup_with(test, &target, BATCHED).await else {
        return;
    };
    for i in 0..10 {
        let (status, reply) = ingest(&aws, &format!("b-{i}")).await;
        assert_eq!(status, 202, "{reply}");
    }
    assert_eq!(deliver(&aws).await, 10, "one SQS batch of ten records");
    let bulk = target.seen_at("/crm/leads/batch");
    assert_eq!(bulk.len(), 1, "one call for the ten records");
    let items = bulk[0].body["records"].as_array().unwrap().clone();
    assert_eq!(items.len(), 10);
    assert!(target.seen_at("/crm/leads").is_empty());

    // The failed item comes back after its backoff, alone, as the step's own request.
    let started = Instant::now();
    while queue_depth(&aws).await > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the failed record never came back"
        );
        deliver(&aws).await;
    }
    let alone = target.seen_at("/crm/leads");
    assert_eq!(alone.len(), 1, "only the failed item again");
    assert_eq!(alone[0].body, json!({ "entry": items[3]["entry"] }));
    assert_eq!(target.seen_at("/crm/leads/batch").len(), 1);
}
