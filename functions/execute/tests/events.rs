//! The SQS batch in `events/` through the execute handler, on the embedded
//! queue (standing in for SQS and its event source mapping) against a local
//! target server; and a webhook from API Gateway to the target.

use std::time::{Duration, Instant};

use ferry::model::RunStatus;
use ferry_execute::{Batch, handle};
use ferry_testkit::target::Target;
use ferry_testkit::{Fixture, events_dir, sqs};
use serde_json::{Value, json};

fn read(path: &str) -> Value {
    let text = std::fs::read_to_string(events_dir().join(path)).unwrap();
    serde_json::from_str(&text).unwrap()
}

async fn run(fx: &Fixture, event: &Value, deadline: Option<Instant>) -> Value {
    let batch: Batch = serde_json::from_value(event.clone()).expect("an SQS event");
    serde_json::to_value(handle(&fx.hub, batch, deadline).await).unwrap()
}

async fn status(fx: &Fixture, run_id: &str) -> Option<RunStatus> {
    fx.ports().runs.get(run_id).await.unwrap().map(|r| r.status)
}

const LEAD_RUN: &str = "018bd0a4-6c00-7000-8000-000000000001";
const PUSH_RUN: &str = "018bd0a4-6c00-7000-8000-000000000002";

#[tokio::test]
async fn the_batch_runs_its_jobs_and_dead_letters_the_malformed_records() {
    let target = Target::start().await;
    let fx = Fixture::new(&target);
    let event = sqs::bind(fx.ports(), &read("sqs/batch.json")).await;

    let response = run(&fx, &event, None).await;
    assert_eq!(
        sqs::failed_ids(&response),
        Vec::<String>::new(),
        "{response}"
    );

    // The records run together: each run's steps in order, the runs side by side.
    let mut paths: Vec<String> = target.seen().iter().map(|s| s.path.clone()).collect();
    let lead = |p: &String| p != "/audit/events/github";
    assert_eq!(
        paths.iter().filter(|p| lead(p)).collect::<Vec<_>>(),
        ["/crm/contacts", "/chat/messages"],
        "the lead run's steps, in order"
    );
    paths.retain(|p| !lead(p));
    assert_eq!(paths, ["/audit/events/github"], "the push run");
    assert_eq!(
        target.seen_at("/crm/contacts")[0].body,
        json!({ "email": "ada.lovelace@example.com", "name": "Ada Lovelace" })
    );
    assert_eq!(status(&fx, LEAD_RUN).await, Some(RunStatus::Succeeded));
    assert_eq!(status(&fx, PUSH_RUN).await, Some(RunStatus::Succeeded));

    let dead = fx.ports().queue.dead_letters(10).await.unwrap();
    let mut bodies: Vec<(&str, &str)> = dead
        .iter()
        .map(|d| (d.body.as_str(), d.reason.as_str()))
        .collect();
    bodies.sort();
    assert_eq!(bodies.len(), 2, "{dead:?}");
    assert_eq!(bodies[0].0, "Hello from SQS!");
    assert!(
        bodies[0].1.starts_with("malformed job message"),
        "{}",
        bodies[0].1
    );
    assert!(bodies[1].0.contains("run.v9"));
    assert!(
        bodies[1].1.contains("run.v9"),
        "the reason names the unknown type: {}",
        bodies[1].1
    );

    // The event source mapping deletes the rest: nothing comes back.
    sqs::complete(fx.ports(), &event, &response).await;
    fx.clock.advance(120_000);
    let (again, _) = sqs::receive(fx.ports(), 10).await;
    assert!(again.is_empty(), "{again:?}");
}

#[tokio::test]
async fn only_the_failed_record_is_reported_and_it_resumes_after_its_backoff() {
    let target = Target::start().await;
    target.script("/audit/events/github", &[(503, json!({ "error": "busy" }))]);
    let fx = Fixture::new(&target);
    let event = sqs::bind(fx.ports(), &read("sqs/batch.json")).await;
    let push_id = event["Records"][1]["messageId"]
        .as_str()
        .unwrap()
        .to_owned();

    let response = run(&fx, &event, None).await;
    assert_eq!(
        sqs::failed_ids(&response),
        vec![push_id.clone()],
        "{response}"
    );
    assert_eq!(status(&fx, LEAD_RUN).await, Some(RunStatus::Succeeded));
    assert_eq!(status(&fx, PUSH_RUN).await, Some(RunStatus::Retrying));
    sqs::complete(fx.ports(), &event, &response).await;

    // Hidden for the backoff, then delivered again, alone.
    let (early, _) = sqs::receive(fx.ports(), 10).await;
    assert!(early.is_empty(), "visible before its backoff: {early:?}");
    fx.clock.advance(3_600_000);
    let (msgs, redelivery) = sqs::receive(fx.ports(), 10).await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].id, push_id);
    assert_eq!(msgs[0].receive_count, 2);

    let response = run(&fx, &redelivery, None).await;
    assert!(sqs::failed_ids(&response).is_empty(), "{response}");
    assert_eq!(status(&fx, PUSH_RUN).await, Some(RunStatus::Succeeded));
    assert_eq!(target.seen_at("/audit/events/github").len(), 2);
    assert_eq!(target.seen_at("/crm/contacts").len(), 1, "never repeated");
}

#[tokio::test]
async fn a_record_that_is_not_an_sqs_message_is_dead_lettered_without_failing_the_batch() {
    let target = Target::start().await;
    let fx = Fixture::new(&target);
    let mut event = sqs::bind(fx.ports(), &read("sqs/batch.json")).await;
    event["Records"][0]["attributes"] = json!(42);

    let response = run(&fx, &event, None).await;
    assert!(sqs::failed_ids(&response).is_empty(), "{response}");
    let dead = fx.ports().queue.dead_letters(10).await.unwrap();
    assert!(
        dead.iter()
            .any(|d| d.reason.starts_with("malformed SQS record") && d.body.contains(LEAD_RUN)),
        "{dead:?}"
    );
    // The records after it ran.
    assert_eq!(status(&fx, PUSH_RUN).await, Some(RunStatus::Succeeded));
}

#[tokio::test]
async fn a_dead_letter_that_cannot_be_written_is_reported_so_nothing_is_dropped() {
    // The file's own receipts mean nothing to the embedded queue: moving the
    // malformed records fails, so they are reported for SQS to retry (and,
    // after maxReceiveCount, to dead-letter by its redrive policy).
    let target = Target::start().await;
    let fx = Fixture::new(&target);
    let event = read("sqs/batch.json");
    let response = run(&fx, &event, None).await;
    let ids = |i: usize| {
        event["Records"][i]["messageId"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        sqs::failed_ids(&response),
        vec![ids(2), ids(3)],
        "{response}"
    );
    assert_eq!(status(&fx, LEAD_RUN).await, Some(RunStatus::Succeeded));
}

#[tokio::test]
async fn records_too_close_to_the_deadline_are_handed_back_unstarted() {
    let target = Target::start().await;
    let fx = Fixture::new(&target);
    let event = sqs::bind(fx.ports(), &read("sqs/batch.json")).await;

    let response = run(&fx, &event, Some(Instant::now() + Duration::from_secs(5))).await;
    assert_eq!(sqs::failed_ids(&response).len(), 4, "{response}");
    assert!(target.seen().is_empty(), "nothing ran");
    // Visible again at once, for the next invocation.
    let (msgs, _) = sqs::receive(fx.ports(), 10).await;
    assert_eq!(msgs.len(), 4);
}

#[tokio::test]
async fn a_webhook_goes_from_api_gateway_through_the_queue_to_the_target() {
    let target = Target::start().await;
    let fx = Fixture::new(&target);
    let text =
        std::fs::read_to_string(events_dir().join("ingest/http-v2/hmac-sha256.json")).unwrap();
    let req = lambda_http::request::from_str(&text).unwrap();
    let resp = ferry_ingest::handle(&fx.hub, req).await.unwrap();
    assert_eq!(resp.status(), 202);
    let lambda_http::Body::Text(body) = resp.body() else {
        panic!("a text body")
    };
    let reply: Value = serde_json::from_str(body).unwrap();
    let run_id = reply["run_id"].as_str().unwrap();
    assert_eq!(status(&fx, run_id).await, Some(RunStatus::Queued));

    let (msgs, event) = sqs::receive(fx.ports(), 10).await;
    assert_eq!(msgs.len(), 1);
    let response = run(&fx, &event, None).await;
    assert!(sqs::failed_ids(&response).is_empty(), "{response}");
    sqs::complete(fx.ports(), &event, &response).await;

    assert_eq!(status(&fx, run_id).await, Some(RunStatus::Succeeded));
    let chat = target.seen_at("/chat/messages");
    assert_eq!(
        chat[0].body,
        json!({ "text": "New lead   Ada.Lovelace@Example.COM  is contact crm/contacts-1" })
    );
    assert_eq!(
        target.seen_at("/crm/contacts")[0].headers["idempotency-key"],
        format!("{run_id}:contact")
    );
}

#[tokio::test]
async fn a_run_waiting_for_its_rate_limit_goes_back_on_the_queue_without_failing() {
    // `audit` allows one call a minute: the second push waits, as a delayed
    // copy of its message, and is not reported (waiting is not a failure).
    let target = Target::start().await;
    let fx = Fixture::new(&target);
    let file = read("sqs/batch.json");
    let mut second = file["Records"][1].clone();
    second["body"] = json!(
        second["body"]
            .as_str()
            .unwrap()
            .replace("000000000002", "000000000005")
    );
    let two = json!({ "Records": [file["Records"][1], second] });
    let event = sqs::bind(fx.ports(), &two).await;

    let response = run(&fx, &event, None).await;
    assert!(sqs::failed_ids(&response).is_empty(), "{response}");
    assert_eq!(target.seen_at("/audit/events/github").len(), 1);
    sqs::complete(fx.ports(), &event, &response).await;
    // The records run together: either may have taken the minute's token.
    let (first, waiting) = (
        "018bd0a4-6c00-7000-8000-000000000002",
        "018bd0a4-6c00-7000-8000-000000000005",
    );
    let (waiting, first) = if status(&fx, first).await == Some(RunStatus::Succeeded) {
        (waiting, first)
    } else {
        (first, waiting)
    };
    assert_eq!(status(&fx, first).await, Some(RunStatus::Succeeded));

    let (now, _) = sqs::receive(fx.ports(), 10).await;
    assert!(now.is_empty(), "the copy waits for the token: {now:?}");
    fx.clock.advance(120_000);
    let (later, redelivery) = sqs::receive(fx.ports(), 10).await;
    assert_eq!(later.len(), 1);
    assert!(later[0].body.contains(waiting), "{}", later[0].body);
    assert_eq!(
        later[0].receive_count, 1,
        "a fresh message: waiting uses no receive"
    );
    let response = run(&fx, &redelivery, None).await;
    assert!(sqs::failed_ids(&response).is_empty(), "{response}");
    assert_eq!(target.seen_at("/audit/events/github").len(), 2);
    assert_eq!(status(&fx, waiting).await, Some(RunStatus::Succeeded));
}

/// The records of one SQS batch run together, as `ferry dev`'s workers do:
/// ten runs reaching a batched step share one call, and an item the batch
/// endpoint reports as failed is retried alone, reported as the only failure.
#[tokio::test]
async fn the_records_of_one_batch_share_a_batched_call_and_a_failed_item_is_retried_alone() {
    use ferry::clock::{Clock, ManualClock};
    use ferry::ingest::{Inbound, ingest};
    use ferry::store::{SqliteOptions, SqliteStore};

    let target = Target::start().await;
    let results: Vec<Value> = (0..10)
        .map(|i| json!({ "status": if i == 3 { 503 } else { 200 } }))
        .collect();
    target.respond("/bulk", 200, json!({ "results": results }));
    let config = format!(
        r#"version: 1
connections:
  crm: {{ base_url: "{}" }}
sources:
  s: {{ verify: {{ scheme: none }}, event_id: "{{{{ body.id }}}}" }}
workflows:
  w:
    trigger: {{ source: s }}
    steps:
      - id: upsert
        connection: crm
        request: {{ method: POST, path: /contacts, json: {{ id: "{{{{ body.id }}}}" }} }}
        batch: {{ max_items: 10, path: /bulk, json: {{ records: "{{{{ items }}}}" }}, results: response.body.results, item_status: result.status, wait: 200ms }}
"#,
        target.url()
    );
    let loaded = ferry::config::load_str(&config, &|_| None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(1_700_000_000_000);
    let dyn_clock: std::sync::Arc<dyn Clock> = clock.clone();
    let store = SqliteStore::open(
        &dir.path().join("ferry.db"),
        SqliteOptions {
            max_receives: 5,
            clock: dyn_clock,
        },
    )
    .unwrap();
    let hub = ferry::hub::Hub::new(loaded.config, loaded.secrets, store.ports()).unwrap();
    for i in 0..10 {
        let mut headers = http::HeaderMap::new();
        headers.insert("content-type", "application/json".parse().unwrap());
        let reply = ingest(
            &hub,
            Inbound {
                method: http::Method::POST,
                source: "s".into(),
                headers,
                query: None,
                body: format!(r#"{{"id": "e{i}"}}"#).into(),
            },
        )
        .await;
        assert_eq!(reply.status, 202, "{}", reply.body);
    }

    let (msgs, event) = sqs::receive(&hub.ports, 10).await;
    assert_eq!(msgs.len(), 10);
    let batch: Batch = serde_json::from_value(event.clone()).unwrap();
    let response = serde_json::to_value(handle(&hub, batch, None).await).unwrap();

    let bulk = target.seen_at("/bulk");
    assert_eq!(bulk.len(), 1, "one call for the ten records");
    let items = bulk[0].body["records"].as_array().unwrap().clone();
    assert_eq!(items.len(), 10, "{items:?}");
    assert!(target.seen_at("/contacts").is_empty(), "nothing sent alone");
    // The item at index 3 failed: only its record is reported.
    let failed_event = items[3]["id"].as_str().unwrap().to_owned();
    let failed_msg = msgs
        .iter()
        .find(|m| m.body.contains(&format!(r#""event_id":"{failed_event}""#)))
        .unwrap();
    assert_eq!(sqs::failed_ids(&response), vec![failed_msg.id.clone()]);
    sqs::complete(&hub.ports, &event, &response).await;

    // After its backoff it comes back alone and is sent as the step's own request.
    clock.advance(3_600_000);
    let (again, event) = sqs::receive(&hub.ports, 10).await;
    assert_eq!(again.len(), 1, "{again:?}");
    let batch: Batch = serde_json::from_value(event).unwrap();
    let response = serde_json::to_value(handle(&hub, batch, None).await).unwrap();
    assert!(sqs::failed_ids(&response).is_empty(), "{response}");
    let alone = target.seen_at("/contacts");
    assert_eq!(alone.len(), 1);
    assert_eq!(alone[0].body, json!({ "id": failed_event }));
    assert_eq!(target.seen_at("/bulk").len(), 1, "the others never again");
}
