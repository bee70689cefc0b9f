//! How many DynamoDB and SQS requests one event costs on AWS, counted on the
//! emulator (moto, started by `scripts/emulators`) with the SDK interceptor
//! of `ferry::store::aws::requests`: [`EVENTS`] webhooks through the ingest
//! Lambda's handler, then their SQS messages through the execute Lambda's
//! handler in batches of ten, delivered the way the SQS event source mapping
//! delivers them (its receives and deletes are counted apart: on AWS they are
//! Lambda's requests, billed to the queue's owner all the same).
//!
//! Counts are deterministic, so the test asserts them: a change that adds a
//! request per event fails here. The table behind docs/performance.md
//! ("AWS requests per event") is printed with
//! `scripts/emulators run -- cargo test --workspace --locked --test aws_requests -- --nocapture`.
//! Run without the emulator, the test skips loudly.

mod support;

use std::sync::Arc;
use std::time::Duration;

use ferry::clock::{Clock, SystemClock};
use ferry::contract::aws::{emulator, fresh};
use ferry::hub::Hub;
use ferry::model::{RunQuery, RunStatus};
use ferry::store::AwsStore;
use ferry::store::aws::provision::QueueSpec;
use ferry::store::aws::requests::{RequestCounter, Requests};
use ferry_execute::handle;
use ferry_testkit::target::Target;
use serde_json::json;

/// Events sent: two full SQS batches.
const EVENTS: usize = 20;
/// Records per invocation, as `BatchSize` in template.yaml.
const BATCH_SIZE: i32 = 10;

/// A source and a single-step workflow, as the issue's benchmark has them.
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
    steps:
      - id: create
        connection: crm
        request: { path: /leads, json: { email: "{{ body.email }}" } }
"#;

/// Per event, at most. The issue's goal is ≤ 3 DynamoDB writes and ≤ 1 SQS
/// request per event on the ingest + single-step path; these budgets are
/// today's counts (2.2 writes, 1.2 SQS), so a change that adds a request
/// fails here.
struct Budget {
    dynamodb_writes: f64,
    dynamodb_reads: f64,
    sqs: f64,
}

/// The ingest Lambda's path: claim the event id (`PutItem`), one
/// `SendMessageBatch`, then record the run and mark the id seen in one
/// `TransactWriteItems` (two writes).
const INGEST: Budget = Budget {
    dynamodb_writes: 2.0,
    dynamodb_reads: 0.0,
    sqs: 1.0,
};
/// One single-step run on the execute Lambda's path (ferry's own requests;
/// the event source mapping's are [`ESM`]): a tenth of the
/// `TransactWriteItems` that carries the step claims of the batch's ten
/// records, and a tenth of the `BatchWriteItem` that carries their run
/// records and step results. Reads: the run and the connection's pause (one
/// each), the workflow's and the connection's pause and the breaker at most
/// once a second per instance (cached), so between two and five.
const EXECUTE: Budget = Budget {
    dynamodb_writes: 0.2,
    dynamodb_reads: 5.0,
    sqs: 0.0,
};
/// The event source mapping: a receive and a delete per batch of ten.
const ESM: Budget = Budget {
    dynamodb_writes: 0.0,
    dynamodb_reads: 0.0,
    sqs: 0.2,
};

struct Aws {
    hub: Arc<Hub>,
    dynamo: aws_sdk_dynamodb::Client,
    table: String,
    ferry: RequestCounter,
    esm: RequestCounter,
    esm_sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

async fn setup(test: &str, target: &Target) -> Option<Aws> {
    let config = emulator(test).await?;
    let spec = QueueSpec {
        max_receives: 5,
        visibility: Duration::from_secs(30),
    };
    let names = fresh(&config, spec).await;
    let queue_url = names.queue_url.clone();
    let table = names.table.clone();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let ferry = RequestCounter::new();
    let ports = AwsStore::counted(&config, names, clock, &ferry).ports();
    let crm = format!("{}/crm", target.url());
    let env = move |name: &str| match name {
        "CRM_URL" => Some(crm.clone()),
        "FORMS_TOKEN" => Some("forms-token-requests".to_owned()),
        _ => None,
    };
    let loaded = ferry::config::load_str(CONFIG, &env).expect("the config loads");
    let hub = Hub::new(loaded.config, loaded.secrets, ports).expect("the hub builds");
    let esm = RequestCounter::new();
    let esm_sqs = aws_sdk_sqs::config::Builder::from(&config)
        .interceptor(esm.interceptor())
        .build();
    Some(Aws {
        hub,
        dynamo: aws_sdk_dynamodb::Client::new(&config),
        table,
        ferry,
        esm,
        esm_sqs: aws_sdk_sqs::Client::from_conf(esm_sqs),
        queue_url,
    })
}

/// An HTTP API (payload v2) event for `POST /hooks/forms` with a ~1 KB body.
fn api_gateway(entry_id: &str) -> lambda_http::Request {
    let body = json!({
        "entry_id": entry_id, "email": "ada@example.com",
        "message": "x".repeat(900),
    })
    .to_string();
    support::form_webhook(body, "forms-token-requests")
}

/// What the event source mapping does, on the counted SQS client.
async fn deliver(aws: &Aws) -> usize {
    support::deliver(&aws.hub, &aws.esm_sqs, &aws.queue_url, BATCH_SIZE).await
}

/// Every item in the table by kind (`run`, `idem`, …): how many, and their
/// average size by DynamoDB's rules (attribute names plus values; a number
/// counted as its digits / 2 + 1 bytes), which sets the write units of
/// each write (one per KB, rounded up) and of each index copy.
async fn item_sizes(aws: &Aws) -> Vec<(String, usize, usize)> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let mut sizes: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    let mut start = None;
    loop {
        let page = aws
            .dynamo
            .scan()
            .table_name(&aws.table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan the emulator's table");
        for item in page.items() {
            let kind = match item.get("sk") {
                Some(AttributeValue::S(s)) => s.clone(),
                _ => "?".into(),
            };
            let size: usize = item
                .iter()
                .map(|(name, v)| {
                    name.len()
                        + match v {
                            AttributeValue::S(s) => s.len(),
                            AttributeValue::N(n) => n.len() / 2 + 1,
                            _ => 1,
                        }
                })
                .sum();
            let e = sizes.entry(kind).or_default();
            e.0 += 1;
            e.1 += size;
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    sizes
        .into_iter()
        .map(|(kind, (count, total))| (kind, count, total / count.max(1)))
        .collect()
}

/// `n` per event, to two decimals.
fn per(n: u64) -> f64 {
    (n as f64 / EVENTS as f64 * 100.0).round() / 100.0
}

fn row(name: &str, r: &Requests) -> String {
    format!(
        "| {name} | {:.2} | {:.2} | {:.2} |",
        per(r.dynamodb_writes()),
        per(r.dynamodb_reads()),
        per(r.sqs())
    )
}

fn within(what: &str, r: &Requests, b: &Budget) {
    let got = (
        per(r.dynamodb_writes()),
        per(r.dynamodb_reads()),
        per(r.sqs()),
    );
    assert!(
        got.0 <= b.dynamodb_writes && got.1 <= b.dynamodb_reads && got.2 <= b.sqs,
        "{what}: per event {got:?} (DynamoDB writes, reads, SQS) is over its budget \
         ({}, {}, {}); requests:\n{r}",
        b.dynamodb_writes,
        b.dynamodb_reads,
        b.sqs
    );
}

#[tokio::test]
async fn requests_per_event_on_the_ingest_and_single_step_path_stay_within_budget() {
    let test = "requests_per_event_on_the_ingest_and_single_step_path_stay_within_budget";
    let target = Target::start().await;
    let Some(aws) = setup(test, &target).await else {
        return;
    };
    for i in 0..EVENTS {
        let resp = ferry_ingest::handle(&aws.hub, api_gateway(&format!("e-{i}")))
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 202, "event {i}: {:?}", resp.body());
    }
    let ingest = aws.ferry.snapshot();

    let mut handled = 0;
    for _ in 0..(EVENTS * 2) {
        if handled >= EVENTS {
            break;
        }
        handled += deliver(&aws).await;
    }
    assert_eq!(handled, EVENTS, "every message was delivered once");
    let execute = aws.ferry.snapshot().since(&ingest);
    let esm = aws.esm.snapshot();

    // The work was done: one call per event, every run succeeded.
    assert_eq!(target.seen_at("/crm/leads").len(), EVENTS);
    let runs = aws
        .hub
        .ports
        .runs
        .list(&RunQuery {
            limit: EVENTS * 2,
            ..RunQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(runs.len(), EVENTS);
    assert!(
        runs.iter().all(|r| r.status == RunStatus::Succeeded),
        "{runs:?}"
    );

    let mut total = ingest.clone();
    for r in [&execute, &esm] {
        for (k, n) in &r.counts {
            *total.counts.entry(k.clone()).or_default() += n;
        }
    }
    println!("\nAWS requests per event ({EVENTS} events, SQS batches of {BATCH_SIZE}):\n");
    println!("| path | DynamoDB writes | DynamoDB reads | SQS |");
    println!("|---|---:|---:|---:|");
    println!("{}", row("ingest (per accepted event)", &ingest));
    println!("{}", row("execute (per single-step run)", &execute));
    println!("{}", row("event source mapping (receive, delete)", &esm));
    println!("{}", row("**total per event**", &total));
    println!("\nitems stored (kind, count, average bytes):");
    for (kind, count, bytes) in item_sizes(&aws).await {
        println!("{kind:<8} {count:>4} {bytes:>6}");
    }
    println!(
        "\nby operation, ingest:\n{ingest}\nexecute:\n{execute}\nevent source mapping:\n{esm}"
    );

    within("ingest", &ingest, &INGEST);
    within("execute", &execute, &EXECUTE);
    within("event source mapping", &esm, &ESM);
}

/// The batch's held writes are its acknowledgement: when they cannot be
/// written (here the table is gone by the time the batch ends: the target
/// deletes it while answering), no record is reported done, so SQS
/// delivers them again rather than deleting work the run log does not show.
#[tokio::test]
async fn a_batch_whose_held_writes_fail_acknowledges_no_record() {
    let test = "a_batch_whose_held_writes_fail_acknowledges_no_record";
    let target = Target::start().await;
    let Some(aws) = setup(test, &target).await else {
        return;
    };
    for i in 0..3 {
        let resp = ferry_ingest::handle(&aws.hub, api_gateway(&format!("f-{i}")))
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 202);
    }
    let (dynamo, table) = (aws.dynamo.clone(), aws.table.clone());
    target.behave_async("/crm/leads", move |_| {
        let (dynamo, table) = (dynamo.clone(), table.clone());
        async move {
            // Every call deletes it; the first one succeeds, the rest find it gone.
            let _ = dynamo.delete_table().table_name(&table).send().await;
            Some(ferry_testkit::target::Answer::status(
                200,
                json!({ "id": "lead-1" }),
            ))
        }
    });
    let messages = support::receive(&aws.esm_sqs, &aws.queue_url, BATCH_SIZE).await;
    assert_eq!(messages.len(), 3, "the three events in one batch");
    let response = handle(&aws.hub, support::batch(&messages), None).await;

    assert_eq!(target.seen_at("/crm/leads").len(), 3, "the calls went out");
    let mut failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    failed.sort_unstable();
    let mut sent: Vec<&str> = messages.iter().filter_map(|m| m.message_id()).collect();
    sent.sort_unstable();
    assert_eq!(failed, sent, "every record is retried, none acknowledged");
}
