//! The port contract suites against the AWS adapter (DynamoDB + SQS), plus
//! what only that adapter promises, on moto's server (an AWS API emulator)
//! on loopback.
//!
//! The endpoint comes from `FERRY_TEST_AWS_ENDPOINT`. `scripts/test` runs
//! every test under `scripts/emulators run -- …`, which starts one moto server
//! for the whole run (serving one request at a time, so conditional writes are
//! atomic), sets it, and sets `FERRY_REQUIRE_AWS=1`: there a missing endpoint
//! FAILS these tests. `dynalite_contract.rs` runs the DynamoDB part again on a
//! second emulator. Run ad hoc with
//!
//! ```sh
//! scripts/emulators run -- cargo test -p ferry-shared --test aws_contract
//! ```
//!
//! A plain `cargo test` without the endpoint (and without
//! `FERRY_REQUIRE_AWS`) skips them, printing a loud `SKIPPED` line for each.
//!
//! Every test creates its own randomly named table and queues; credentials
//! are dummies, the region us-east-1.

mod aws_support;

use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use aws_support::{
    Recorder, backend, num, number, queue_count, read_item, run, s, store, store_recording,
};
use ferry::clock::ManualClock;
use ferry::contract::{self, T0, unique};
use ferry::model::{RunQuery, RunStatus};
use ferry::ports::{Claim, Idempotency, RunLog, StoreError, WorkQueue};
use ferry::store::aws::{ID_ATTRIBUTE, NOT_BEFORE_ATTRIBUTE, SqsRecord, message_from_sqs};

// ---------------------------------------------------------------- the contract

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idempotency_contract() {
    let Some(b) = backend("idempotency_contract").await else {
        return;
    };
    contract::run(b, "idempotency").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queue_contract() {
    let Some(b) = backend("queue_contract").await else {
        return;
    };
    // Every case at once: SQS runs on real time, so the suite sleeps through
    // its delays and timeouts; concurrently it takes as long as the slowest case.
    contract::run_concurrently(b, "queue").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn runs_contract() {
    let Some(b) = backend("runs_contract").await else {
        return;
    };
    contract::run(b, "runs").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cursors_contract() {
    let Some(b) = backend("cursors_contract").await else {
        return;
    };
    contract::run(b, "cursors").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn limits_contract() {
    let Some(b) = backend("limits_contract").await else {
        return;
    };
    contract::run(b, "limits").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn breakers_contract() {
    let Some(b) = backend("breakers_contract").await else {
        return;
    };
    contract::run(b, "breakers").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tallies_contract() {
    let Some(b) = backend("tallies_contract").await else {
        return;
    };
    contract::run(b, "tallies").await;
}

// ---------------------------------------------------------------- queue

/// 25 messages in one `send_batch` (three SendMessageBatch calls): all sent,
/// all received, each id once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_send_of_25() {
    let Some(b) = backend("batch_send_of_25").await else {
        return;
    };
    let (store, _) = store(&b, ManualClock::at(T0)).await;
    let items: Vec<(String, Duration)> = (0..25)
        .map(|i| (format!("m{i:02}"), Duration::ZERO))
        .collect();
    let ids = store.send_batch(&items).await.unwrap();
    assert_eq!(ids.len(), 25);
    let mut got = Vec::new();
    for _ in 0..20 {
        got.extend(
            store
                .receive(10, Duration::from_secs(60), Duration::from_secs(1))
                .await
                .unwrap(),
        );
        if got.len() >= 25 {
            break;
        }
    }
    let mut pairs: Vec<(String, String)> = got.into_iter().map(|m| (m.body, m.id)).collect();
    pairs.sort();
    let expected: Vec<(String, String)> = items
        .iter()
        .map(|(body, _)| body.clone())
        .zip(ids)
        .collect();
    assert_eq!(pairs, expected);
}

/// A delay beyond SQS's 15 minutes: sent with the longest delay SQS allows
/// and a "not before"; a copy that arrives early is sent again for the rest
/// of its delay (same id, not counted as a receive), and delivered once due.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_beyond_15_minutes() {
    let Some(b) = backend("delay_beyond_15_minutes").await else {
        return;
    };
    let clock = ManualClock::at(T0);
    let (store, queue_url) = store(&b, clock.clone()).await;

    // Sending: SQS holds it (delayed), nobody receives it now.
    store
        .send("in 20 minutes", Duration::from_secs(20 * 60))
        .await
        .unwrap();
    assert_eq!(
        queue_count(
            &b,
            &queue_url,
            QueueAttributeName::ApproximateNumberOfMessagesDelayed
        )
        .await,
        1
    );
    assert!(
        store
            .receive(10, Duration::from_secs(60), Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );

    // What SQS hands out after its 15 minutes, 5 s before it is due (by the clock;
    // long enough that the re-sent copy is still delayed when counted).
    let early = b
        .sqs
        .send_message()
        .queue_url(&queue_url)
        .message_body("early")
        .message_attributes(NOT_BEFORE_ATTRIBUTE, number(T0 + 5_000))
        .send()
        .await
        .unwrap()
        .message_id
        .unwrap();
    assert!(
        store
            .receive(10, Duration::from_secs(60), Duration::ZERO)
            .await
            .unwrap()
            .is_empty(),
        "not due yet: not delivered"
    );
    assert_eq!(
        queue_count(
            &b,
            &queue_url,
            QueueAttributeName::ApproximateNumberOfMessagesDelayed
        )
        .await,
        2,
        "re-sent with the rest of its delay"
    );
    assert_eq!(
        queue_count(
            &b,
            &queue_url,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible
        )
        .await,
        0,
        "the early copy is gone, not hidden"
    );
    clock.advance(5_000);
    tokio::time::sleep(Duration::from_secs(6)).await;
    let got = store
        .receive(10, Duration::from_secs(60), Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(
        got.iter()
            .map(|m| (m.id.as_str(), m.body.as_str(), m.receive_count))
            .collect::<Vec<_>>(),
        [(early.as_str(), "early", 1)]
    );

    // Already due when it arrives: delivered at once.
    b.sqs
        .send_message()
        .queue_url(&queue_url)
        .message_body("due")
        .message_attributes(NOT_BEFORE_ATTRIBUTE, number(T0))
        .send()
        .await
        .unwrap();
    let got = store
        .receive(10, Duration::from_secs(60), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        got.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["due"]
    );
}

/// A direct dead-letter carries the reason (and the id, receive count and
/// time) on the DLQ message itself, and deletes the original.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_dead_letter_carries_the_reason() {
    let Some(b) = backend("direct_dead_letter_carries_the_reason").await else {
        return;
    };
    let (store, queue_url) = store(&b, ManualClock::at(T0)).await;
    let id = store.send("{\"x\":1}", Duration::ZERO).await.unwrap();
    let m = store
        .receive(1, Duration::from_secs(60), Duration::ZERO)
        .await
        .unwrap()
        .remove(0);
    store
        .dead_letter(&m.receipt, "400 Bad Request: email is invalid")
        .await
        .unwrap();
    assert_eq!(
        queue_count(
            &b,
            &queue_url,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible
        )
        .await,
        0
    );
    assert_eq!(
        queue_count(
            &b,
            &queue_url,
            QueueAttributeName::ApproximateNumberOfMessages
        )
        .await,
        0
    );

    let dlq = b
        .sqs
        .receive_message()
        .queue_url(store.names().dlq_url.clone())
        .message_attribute_names("All")
        .send()
        .await
        .unwrap();
    let raw = &dlq.messages()[0];
    let attr = |name: &str| {
        raw.message_attributes().unwrap()[name]
            .string_value()
            .unwrap()
            .to_owned()
    };
    assert_eq!(raw.body(), Some("{\"x\":1}"));
    assert_eq!(attr("ferry-reason"), "400 Bad Request: email is invalid");
    assert_eq!(attr(ID_ATTRIBUTE), id);
    assert_eq!(attr("ferry-receive-count"), "1");
    assert_eq!(attr("ferry-dead-at"), T0.to_string());
}

/// Messages the Lambda event source received (no receive through the adapter)
/// can be settled with receipts from `message_from_sqs`; a used one is `NotFound`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_records_settle_through_the_port() {
    let Some(b) = backend("lambda_records_settle_through_the_port").await else {
        return;
    };
    let (store, queue_url) = store(&b, ManualClock::at(T0)).await;
    store.send("one", Duration::ZERO).await.unwrap();
    store.send("two", Duration::ZERO).await.unwrap();
    // Receive behind the adapter's back, as the event source does.
    let raw = b
        .sqs
        .receive_message()
        .queue_url(&queue_url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    assert_eq!(raw.messages().len(), 2);
    let msgs: Vec<_> = raw
        .messages()
        .iter()
        .map(|m| {
            message_from_sqs(SqsRecord {
                message_id: m.message_id().unwrap(),
                receipt_handle: m.receipt_handle().unwrap(),
                body: m.body().unwrap(),
                receive_count: 1,
                ferry_id: None,
                redriven: false,
            })
        })
        .collect();
    store.delete(&msgs[0].receipt).await.unwrap();
    let again = store.delete(&msgs[0].receipt).await;
    assert!(matches!(again, Err(StoreError::NotFound(_))), "{again:?}");
    store
        .dead_letter(&msgs[1].receipt, "mapping error")
        .await
        .unwrap();
    let dead = store.dead_letters(10).await.unwrap();
    assert_eq!(
        dead.iter()
            .map(|d| (d.body.as_str(), d.reason.as_str()))
            .collect::<Vec<_>>(),
        [(msgs[1].body.as_str(), "mapping error")]
    );
    // A raw handle cannot be dead-lettered: the body is not in it.
    let raw_dead = store
        .dead_letter(raw.messages()[0].receipt_handle().unwrap(), "x")
        .await;
    assert!(
        matches!(raw_dead, Err(StoreError::NotFound(_))),
        "{raw_dead:?}"
    );
}

// ---------------------------------------------------------------- idempotency

/// Claims from several stores (separate clients, like separate Lambda
/// instances) at once: exactly one wins, the others see its data.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_across_instances() {
    let Some(b) = backend("concurrent_claims_across_instances").await else {
        return;
    };
    contract::aws::claims_across_instances(&b).await;
}

/// Ingest's intake on AWS: claim, send, then the runs and the "seen" mark
/// in one `TransactWriteItems` — two DynamoDB write requests per event —
/// with duplicates, mismatches and an event back after its window answered
/// as on the composed path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intake_in_two_writes() {
    let Some(b) = backend("intake_in_two_writes").await else {
        return;
    };
    contract::aws_batching::intake_in_two_writes(&b, true).await;
}

/// An event with more runs than one transaction holds is still recorded
/// and marked whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intake_of_many_runs() {
    let Some(b) = backend("intake_of_many_runs").await else {
        return;
    };
    contract::aws_batching::intake_of_many_runs(&b).await;
}

/// The claims of an execute batch's records go in one `TransactWriteItems`;
/// a cancelled one (done, busy, mismatched, twice-claimed keys) answers each
/// claim as its own `PutItem` would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gathered_claims() {
    let Some(b) = backend("gathered_claims").await else {
        return;
    };
    contract::aws_batching::gathered_claims(&b, true).await;
}

/// A record busy elsewhere (making no claim) does not hold back the
/// others' gathered claims.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_busy_elsewhere_is_not_waited_for() {
    let Some(b) = backend("a_task_busy_elsewhere_is_not_waited_for").await else {
        return;
    };
    contract::aws_batching::a_task_busy_elsewhere_is_not_waited_for(&b, true).await;
}

/// The item looks like Powertools' record: IN_PROGRESS with a lease, then
/// COMPLETED with the result and a TTL; a different payload is reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_record_and_payload_mismatch() {
    let Some(b) = backend("idempotency_record_and_payload_mismatch").await else {
        return;
    };
    let (store, _) = store(&b, ManualClock::at(T0)).await;
    let key = unique("evt");
    let lease = Duration::from_secs(25);
    assert_eq!(
        store.claim(&key, "sha-1", "run-1", lease).await.unwrap(),
        Claim::Claimed
    );
    let item = read_item(&b, &format!("idem#{key}"), "idem").await.unwrap();
    assert_eq!(s(&item, "status"), "IN_PROGRESS");
    assert_eq!(s(&item, "payload_hash"), "sha-1");
    assert_eq!(num(&item, "valid_until"), T0 + 25_000);
    assert_eq!(
        store.claim(&key, "sha-2", "run-2", lease).await.unwrap(),
        Claim::PayloadMismatch {
            stored_hash: "sha-1".into()
        }
    );
    store
        .complete(&key, "{\"status\":202}", Duration::from_secs(3600))
        .await
        .unwrap();
    let item = read_item(&b, &format!("idem#{key}"), "idem").await.unwrap();
    assert_eq!(s(&item, "status"), "COMPLETED");
    assert_eq!(s(&item, "result"), "{\"status\":202}");
    assert_eq!(num(&item, "valid_until"), T0 + 3_600_000);
    // DynamoDB's TTL in epoch seconds, a grace period after the end.
    assert_eq!(num(&item, "expires_at"), (T0 + 3_600_000 + 600_000) / 1000);
    assert_eq!(
        store.claim(&key, "sha-2", "run-2", lease).await.unwrap(),
        Claim::PayloadMismatch {
            stored_hash: "sha-1".into()
        }
    );
}

// ---------------------------------------------------------------- runs

/// "Recent runs of workflow X" is one Query on the `by_workflow` index, newest
/// first; no listing ever scans.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_by_workflow_query_newest_first_without_a_scan() {
    let Some(b) = backend("runs_by_workflow_query_newest_first_without_a_scan").await else {
        return;
    };
    let recorder = Recorder::default();
    let store = store_recording(&b, ManualClock::at(T0), &recorder).await;
    let wf = unique("wf");
    let mut made = Vec::new();
    for i in 0..5 {
        let run = run(&wf, T0 + i * 1_000);
        store.create(&run).await.unwrap();
        made.push(run.id);
    }
    store
        .create(&run(&unique("other"), T0 + 99_000))
        .await
        .unwrap();
    recorder.clear();

    let listed = store
        .list(&RunQuery {
            workflow: Some(wf.clone()),
            status: None,
            limit: 3,
            ..RunQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        [made[4].as_str(), made[3].as_str(), made[2].as_str()]
    );
    assert_eq!(recorder.take(), ["Query by_workflow backwards limit 3"]);

    // Every other shape of listing queries too.
    for query in [
        RunQuery {
            workflow: Some(wf.clone()),
            status: Some(RunStatus::Queued),
            limit: 0,
            ..RunQuery::default()
        },
        RunQuery {
            workflow: None,
            status: Some(RunStatus::Queued),
            limit: 10,
            ..RunQuery::default()
        },
        RunQuery {
            workflow: None,
            status: None,
            limit: 10,
            ..RunQuery::default()
        },
        RunQuery {
            since: Some(T0),
            until: Some(T0 + 1),
            ..RunQuery::default()
        },
    ] {
        store.list(&query).await.unwrap();
        let ops = recorder.take();
        assert!(
            !ops.is_empty() && ops.iter().all(|op| op.starts_with("Query ")),
            "{query:?}: {ops:?}"
        );
    }

    // The most selective filter picks the index: event, workflow, source, status.
    for (query, index) in [
        (
            RunQuery {
                event_id: Some("e".into()),
                workflow: Some(wf.clone()),
                source: Some("form".into()),
                ..RunQuery::default()
            },
            "by_event",
        ),
        (
            RunQuery {
                workflow: Some(wf.clone()),
                source: Some("form".into()),
                status: Some(RunStatus::Queued),
                ..RunQuery::default()
            },
            "by_workflow",
        ),
        (
            RunQuery {
                source: Some("form".into()),
                status: Some(RunStatus::Queued),
                since: Some(T0),
                ..RunQuery::default()
            },
            "by_source",
        ),
    ] {
        store.list(&query).await.unwrap();
        let ops = recorder.take();
        assert!(
            !ops.is_empty()
                && ops
                    .iter()
                    .all(|op| op.starts_with(&format!("Query {index} "))),
            "{query:?}: {ops:?}"
        );
    }
}

// ---------------------------------------------------------------- boot

/// `FERRY_STORE=aws` builds the hub on DynamoDB + SQS from the names in the
/// environment, with `AWS_ENDPOINT_URL` honoured (region and credentials come
/// from the process environment, which `scripts/emulators run` fills with dummies).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boot_builds_the_hub_on_aws() {
    let Some(b) = backend("boot_builds_the_hub_on_aws").await else {
        return;
    };
    assert!(
        std::env::var("AWS_ACCESS_KEY_ID").is_ok(),
        "run under scripts/emulators, which sets dummy credentials for the SDK's default chain"
    );
    let names = b.names().await;
    let endpoint = std::env::var(ferry::contract::aws::ENDPOINT_VAR).unwrap();
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/issue-example.yaml"
    );
    let vars = std::collections::HashMap::from([
        ("FERRY_CONFIG", config.to_owned()),
        ("FERRY_STORE", "aws".to_owned()),
        ("FERRY_TABLE", names.table.clone()),
        ("FERRY_QUEUE_URL", names.queue_url.clone()),
        ("FERRY_DLQ_URL", names.dlq_url.clone()),
        ("AWS_ENDPOINT_URL", endpoint),
        ("CRM_URL", "http://127.0.0.1:9".to_owned()),
        ("CRM_TOKEN", "t".to_owned()),
        ("CHAT_URL", "http://127.0.0.1:9".to_owned()),
        ("FORM_SECRET", "s".to_owned()),
    ]);
    let hub = ferry::boot::hub_from(&|name| vars.get(name).cloned())
        .await
        .unwrap();

    let id = hub.ports.queue.send("{}", Duration::ZERO).await.unwrap();
    let got = hub
        .ports
        .queue
        .receive(1, Duration::from_secs(30), Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(got.iter().map(|m| &m.id).collect::<Vec<_>>(), [&id]);
    // Now, by the hub's (system) clock: a run from T0 would be past its retention.
    let r = run("new-lead", hub.ports.clock.now_ms());
    assert!(hub.ports.runs.create(&r).await.unwrap());
    assert_eq!(hub.ports.runs.get(&r.id).await.unwrap(), Some(r));
}
