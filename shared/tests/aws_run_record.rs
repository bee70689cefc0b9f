//! What a run record shows, on DynamoDB + SQS (moto's server on loopback):
//! the hub driven as the Lambda functions drive it — ingest, then execute
//! each message SQS hands over — for an event whose step is answered 500,
//! 503 with `Retry-After`, then 200. Run with
//!
//! ```sh
//! scripts/emulators run -- cargo test --workspace --locked --test aws_run_record
//! ```
//!
//! Without the emulator (and without `FERRY_REQUIRE_AWS`) it skips loudly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use ferry::clock::{Clock, SystemClock};
use ferry::contract::aws::AwsBackend;
use ferry::hub::Hub;
use ferry::ingest::{Inbound, ingest};
use ferry::model::RunStatus;
use ferry::runlog::Decided;
use ferry_testkit::target::{Answer, Target};
use serde_json::json;

const FORM_KEY: &str = "form-api-key-for-aws-run-record";
const CRM_TOKEN: &str = "crm-bearer-token-aws-77e2c4";
const SENDER_KEY: &str = "sender-key-aws-5b6a7f8e9d";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_record_on_dynamodb_shows_the_event_and_every_attempt_and_no_secret() {
    let test = "a_run_record_on_dynamodb_shows_the_event_and_every_attempt_and_no_secret";
    let Some(b) = AwsBackend::new(test, 5).await else {
        return;
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = b.store(clock).await;
    let target = Target::start().await;
    target.behave("/crm", move |seen| {
        let auth = seen.header("authorization").to_owned();
        let answer = |status| Answer::status(status, json!({ "seen_authorization": auth }));
        Some(match seen.n {
            1 => answer(500),
            2 => answer(503).header("retry-after", "1"),
            _ => answer(200),
        })
    });
    let config = r#"version: 1
connections:
  crm:
    base_url: "${env:TARGET}/crm"
    auth: { type: bearer, token: "${env:CRM_TOKEN}" }
sources:
  form:
    verify: { scheme: api-key, header: X-Key, secret: "${env:FORM_KEY}" }
    event_id: "{{ body.id }}"
workflows:
  new-lead:
    trigger: { source: form }
    retry: { max_attempts: 5, initial_backoff: 20ms, max_backoff: 50ms }
    steps:
      - id: upsert
        connection: crm
        request: { method: POST, path: /contacts, json: { email: "{{ body.email }}" } }
"#;
    let url = target.url();
    let env = move |name: &str| match name {
        "TARGET" => Some(url.clone()),
        "CRM_TOKEN" => Some(CRM_TOKEN.to_owned()),
        "FORM_KEY" => Some(FORM_KEY.to_owned()),
        _ => None,
    };
    let loaded = ferry::config::load_str(config, &env).expect("the config loads");
    let hub = Hub::new(loaded.config, loaded.secrets, store.ports()).unwrap();

    let payload = json!({ "id": "lead-aws-1", "email": "ada@example.com", "n": [1, 2, 3] });
    let mut headers = http::HeaderMap::new();
    headers.insert("content-type", "application/json".parse().unwrap());
    headers.insert("x-key", FORM_KEY.parse().unwrap());
    headers.insert("x-api-key", SENDER_KEY.parse().unwrap());
    headers.insert("x-request-origin", "landing-page".parse().unwrap());
    let reply = ingest(
        &hub,
        Inbound {
            method: http::Method::POST,
            source: "form".into(),
            headers,
            query: None,
            body: bytes::Bytes::from(payload.to_string()),
        },
    )
    .await;
    assert_eq!(reply.status, 202, "{:?}", reply.body);
    let id = reply.body["run_id"].as_str().unwrap().to_owned();

    // What the SQS event source mapping and the execute function do.
    let deadline = Instant::now() + Duration::from_secs(30);
    let run = loop {
        assert!(Instant::now() < deadline, "the run did not finish");
        let msgs = hub
            .ports
            .queue
            .receive(10, Duration::from_secs(30), Duration::from_millis(500))
            .await
            .unwrap();
        for msg in msgs {
            let d = ferry::execute::execute(&hub, &msg).await;
            ferry::worker::settle(hub.ports.queue.as_ref(), &msg, d).await;
        }
        let run = hub.ports.runs.get(&id).await.unwrap().unwrap();
        if run.status.is_final() {
            break run;
        }
    };
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");

    let event = run.event.as_ref().expect("the event is on the record");
    assert_eq!(event.payload, payload);
    assert!(!event.truncated);
    assert_eq!(event.headers["x-request-origin"], "landing-page");
    assert!(!event.headers.contains_key("x-key") && !event.headers.contains_key("x-api-key"));
    let attempts = &run.steps[0].attempts;
    assert_eq!(attempts.len(), 3, "{attempts:?}");
    for (a, status) in attempts.iter().zip([500, 503, 200]) {
        let req = a.request.as_ref().unwrap();
        assert_eq!(
            (req.method.as_str(), req.url.as_str()),
            ("POST", format!("{}/crm/contacts", target.url()).as_str())
        );
        assert_eq!(req.body, json!({ "email": "ada@example.com" }));
        let resp = a.response.as_ref().unwrap();
        assert_eq!(resp.status, status);
        assert_eq!(resp.body["seen_authorization"], "[redacted]");
    }
    assert!(matches!(
        attempts[0].decision,
        Some(Decided::Retry {
            retry_after_honoured: false,
            ..
        })
    ));
    assert_eq!(
        attempts[1].decision,
        Some(Decided::Retry {
            in_ms: 1000,
            retry_after_honoured: true
        })
    );
    assert_eq!(attempts[2].decision, Some(Decided::Done));

    // The whole table, every attribute of every item, in the test only.
    let mut dump = String::new();
    let mut start = None;
    loop {
        let page = b
            .dynamo
            .scan()
            .table_name(store.names().table.clone())
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .unwrap();
        for item in page.items() {
            dump.push_str(&format!("{item:?}\n"));
        }
        match page.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => break,
        }
    }
    assert!(dump.contains("ada@example.com"), "the scan reads the runs");
    for secret in [CRM_TOKEN, FORM_KEY, SENDER_KEY] {
        assert!(!dump.contains(secret), "the table holds {secret}");
    }
}

/// A run item carries the table's TTL attribute (`expires_at`, epoch seconds
/// rounded up) from the record's expiry, so DynamoDB deletes it in time;
/// reads hide it from its expiry on (the RunLog contract).
#[tokio::test]
async fn a_run_item_carries_the_ttl_attribute() {
    let Some(b) = AwsBackend::new("a_run_item_carries_the_ttl_attribute", 5).await else {
        return;
    };
    let clock = ferry::clock::ManualClock::at(ferry::contract::T0);
    let store = b.store(clock.clone()).await;
    let ports = store.ports();
    let mut run = ports_run();
    run.expires_at = Some(ferry::contract::T0 + 3_600_500);
    ports.runs.put(&run).await.unwrap();
    let item = b
        .dynamo
        .get_item()
        .table_name(store.names().table.clone())
        .key("pk", AttributeValue::S(format!("run#{}", run.id)))
        .key("sk", AttributeValue::S("run".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let ttl: i64 = item["expires_at"].as_n().unwrap().parse().unwrap();
    assert_eq!(ttl, (ferry::contract::T0 + 3_601_000) / 1000);
    clock.advance(3_600_500);
    assert_eq!(ports.runs.get(&run.id).await.unwrap(), None);
}

fn ports_run() -> ferry::model::RunRecord {
    ferry::model::RunRecord {
        id: ferry::model::new_run_id(),
        workflow: "wf".into(),
        source: "form".into(),
        event_id: "e".into(),
        status: RunStatus::Succeeded,
        attempts: 1,
        created_at: ferry::contract::T0,
        updated_at: ferry::contract::T0,
        error: None,
        failure: None,
        steps: Vec::new(),
        event: None,
        expires_at: None,
        rerun_of: None,
        reruns: Vec::new(),
    }
}
