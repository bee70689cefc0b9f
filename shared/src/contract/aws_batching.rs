//! What only the AWS adapter's request batching promises, run on both
//! emulators (moto, which has `TransactWriteItems`, and dynalite, which has
//! not: there the same calls fall back to one write each, and the answers
//! must be the same):
//!
//! - [`intake_in_two_writes`]: ingest's [`Intake`](crate::ports::Intake) on
//!   DynamoDB + SQS — claim, send, then runs and mark in one transaction;
//! - [`gathered_claims`]: the claims of [`hold_writes_each`]'s tasks in one
//!   transaction, each answered as its own `PutItem` would be;
//! - [`a_task_busy_elsewhere_is_not_waited_for`]: a task that makes no claim
//!   does not hold the others' back.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::config::SharedInterceptor;

use super::aws::AwsBackend;
use super::{T0, unique};
use crate::clock::ManualClock;
use crate::model::{RunRecord, RunStatus};
use crate::ports::{Claim, Idempotency, NewEvent, RunLog, WorkQueue};
use crate::store::aws::requests::{RequestCounter, Requests};
use crate::store::aws::{AwsStore, hold_writes_each};

/// A store on a new queue pair whose DynamoDB requests `counter` notes.
async fn counted(
    b: &AwsBackend,
    clock: Arc<ManualClock>,
    counter: &RequestCounter,
) -> Arc<AwsStore> {
    let dynamo = aws_sdk_dynamodb::config::Builder::from(&b.dynamo_config)
        .interceptor(SharedInterceptor::new(counter.interceptor()))
        .build();
    AwsStore::from_clients(
        aws_sdk_dynamodb::Client::from_conf(dynamo),
        b.sqs.clone(),
        b.names().await,
        clock,
    )
}

fn queued_run(event_id: &str) -> RunRecord {
    RunRecord {
        id: crate::model::new_run_id(),
        workflow: "wf".into(),
        source: "forms".into(),
        event_id: event_id.into(),
        status: RunStatus::Queued,
        attempts: 0,
        created_at: T0,
        updated_at: T0,
        error: None,
        failure: None,
        steps: Vec::new(),
        event: None,
        expires_at: None,
        rerun_of: None,
        reruns: Vec::new(),
    }
}

fn writes(r: &Requests) -> Vec<(String, u64)> {
    r.counts
        .iter()
        .filter(|((service, _), _)| service == "dynamodb")
        .map(|((_, op), n)| (op.clone(), *n))
        .collect()
}

/// Ingest's intake on AWS: a new event is claimed, sent, recorded and marked
/// seen — on a store with transactions in exactly two DynamoDB write
/// requests (`PutItem`, `TransactWriteItems`); a duplicate is answered from
/// the key with nothing sent; a payload mismatch is reported; an event that
/// comes back after its window (its run still stored) is accepted again,
/// the existing run kept. `transactions`: whether the endpoint has them.
pub async fn intake_in_two_writes(b: &AwsBackend, transactions: bool) {
    let clock = ManualClock::at(T0);
    let counter = RequestCounter::new();
    let store = counted(b, clock.clone(), &counter).await;
    let intake = store.ports().intake.expect("the AWS store has an intake");
    let key = unique("ingest:forms");
    let run = queued_run(&key);
    let result = serde_json::to_string(&[&run.id]).unwrap();
    let messages = vec![("{\"job\":1}".to_owned(), Duration::ZERO)];
    let runs = vec![run.clone()];
    let window = Duration::from_secs(3600);
    let event = NewEvent {
        key: &key,
        payload_hash: "h1",
        result: &result,
        window,
        messages: &messages,
        runs: &runs,
    };

    assert_eq!(intake.accept(&event).await.unwrap(), Claim::Claimed);
    let first = counter.snapshot();
    if transactions {
        assert_eq!(
            writes(&first),
            [
                ("PutItem".to_owned(), 1),
                ("TransactWriteItems".to_owned(), 1)
            ],
            "claim, then runs and mark in one transaction"
        );
    }
    let stored = store
        .get(&run.id)
        .await
        .unwrap()
        .expect("the run is recorded");
    assert_eq!(stored.status, RunStatus::Queued);
    let got = store
        .receive(10, Duration::from_secs(30), Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(got.len(), 1, "one message sent");

    // A duplicate: answered from the key, nothing sent or written.
    let again = intake.accept(&event).await.unwrap();
    assert_eq!(
        again,
        Claim::Completed {
            result: result.clone()
        }
    );
    let other = NewEvent {
        payload_hash: "h2",
        ..event
    };
    assert!(matches!(
        intake.accept(&other).await.unwrap(),
        Claim::PayloadMismatch { .. }
    ));
    let none = store
        .receive(10, Duration::from_secs(30), Duration::from_secs(1))
        .await
        .unwrap();
    assert!(none.is_empty(), "a duplicate sends nothing: {none:?}");

    // After the window: accepted again; the stored run (created again in
    // the transaction, whose condition fails) is kept, the key marked.
    clock.advance(3_601_000);
    store
        .put(&RunRecord {
            status: RunStatus::Succeeded,
            ..run.clone()
        })
        .await
        .unwrap();
    assert_eq!(intake.accept(&event).await.unwrap(), Claim::Claimed);
    let kept = store.get(&run.id).await.unwrap().expect("the run is kept");
    assert_eq!(
        kept.status,
        RunStatus::Succeeded,
        "not replaced by a queued copy"
    );
    let marked = store
        .claim(&key, "h1", "x", Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        marked,
        Claim::Completed { result },
        "the key is marked seen again"
    );
}

/// Claims made by [`hold_writes_each`]'s tasks together: ten fresh keys in
/// one `TransactWriteItems` (on a store with transactions), each `Claimed`;
/// then a gathering with keys that are done, in progress, held with another
/// payload and claimed twice: each answered as alone (`Completed`,
/// `InProgress`, `PayloadMismatch`, exactly one winner of the twice-claimed
/// key) and every fresh key still claimed.
pub async fn gathered_claims(b: &AwsBackend, transactions: bool) {
    let lease = Duration::from_secs(30);
    let clock = ManualClock::at(T0);
    let counter = RequestCounter::new();
    let store = counted(b, clock.clone(), &counter).await;

    let fresh: Vec<String> = (0..10).map(|_| unique("step")).collect();
    let tasks: Vec<_> = fresh
        .iter()
        .map(|k| {
            let store = store.clone();
            async move { store.claim(k, "", "run", lease).await.unwrap() }
        })
        .collect();
    let (claims, written) = hold_writes_each(tasks).await;
    written.unwrap();
    assert!(claims.iter().all(|c| *c == Claim::Claimed), "{claims:?}");
    if transactions {
        assert_eq!(
            writes(&counter.snapshot()),
            [("TransactWriteItems".to_owned(), 1)],
            "ten claims, one request"
        );
    }
    for k in &fresh {
        let c = store.claim(k, "", "run", lease).await.unwrap();
        assert!(matches!(c, Claim::InProgress { .. }), "{k} is held: {c:?}");
    }

    let (done, busy, other) = (unique("done"), unique("busy"), unique("other"));
    assert_eq!(
        store.claim(&done, "", "run", lease).await.unwrap(),
        Claim::Claimed
    );
    store.complete(&done, "\"out\"", lease).await.unwrap();
    assert_eq!(
        store.claim(&busy, "", "run", lease).await.unwrap(),
        Claim::Claimed
    );
    assert_eq!(
        store.claim(&other, "x", "run", lease).await.unwrap(),
        Claim::Claimed
    );
    let twice = unique("twice");
    let (new_a, new_b) = (unique("new"), unique("new"));
    let keys = [&done, &busy, &other, &twice, &twice, &new_a, &new_b];
    let tasks: Vec<_> = keys
        .iter()
        .map(|k| {
            let store = store.clone();
            async move { store.claim(k, "", "run", lease).await.unwrap() }
        })
        .collect();
    let (claims, written) = hold_writes_each(tasks).await;
    written.unwrap();
    assert_eq!(
        claims[0],
        Claim::Completed {
            result: "\"out\"".into()
        }
    );
    assert!(
        matches!(claims[1], Claim::InProgress { .. }),
        "{:?}",
        claims[1]
    );
    assert!(
        matches!(claims[2], Claim::PayloadMismatch { .. }),
        "{:?}",
        claims[2]
    );
    let winners = claims[3..5]
        .iter()
        .filter(|c| **c == Claim::Claimed)
        .count();
    assert_eq!(winners, 1, "one claim of the key twice wins: {claims:?}");
    assert_eq!(claims[5], Claim::Claimed);
    assert_eq!(claims[6], Claim::Claimed);
}

/// A task that makes no claim (busy elsewhere: here it waits until the
/// other two tasks' claims are answered) is not waited for: after the idle
/// wait the two claims go without it — in one `TransactWriteItems` on a
/// store with transactions — and all three tasks end. Without the idle
/// rule this would never end (the test gives up after a minute).
pub async fn a_task_busy_elsewhere_is_not_waited_for(b: &AwsBackend, transactions: bool) {
    let lease = Duration::from_secs(30);
    let counter = RequestCounter::new();
    let store = counted(b, ManualClock::at(T0), &counter).await;
    let answered = Arc::new(tokio::sync::Semaphore::new(0));
    let claim = |key: String| {
        let (store, answered) = (store.clone(), answered.clone());
        Box::pin(async move {
            let c = store.claim(&key, "", "run", lease).await.unwrap();
            answered.add_permits(1);
            Some(c)
        }) as futures::future::BoxFuture<'static, Option<Claim>>
    };
    let elsewhere = {
        let answered = answered.clone();
        Box::pin(async move {
            let _ = answered.acquire_many(2).await;
            None
        }) as futures::future::BoxFuture<'static, Option<Claim>>
    };
    let tasks = vec![claim(unique("a")), elsewhere, claim(unique("b"))];
    let (out, written) = tokio::time::timeout(Duration::from_secs(60), hold_writes_each(tasks))
        .await
        .expect("the claims went without the busy task");
    written.unwrap();
    assert_eq!(out, [Some(Claim::Claimed), None, Some(Claim::Claimed)]);
    if transactions {
        assert_eq!(
            writes(&counter.snapshot()),
            [("TransactWriteItems".to_owned(), 1)],
            "the two claims, together"
        );
    }
}

/// An event with more runs than one transaction holds (30 workflows) is
/// still accepted whole: its runs and mark are written one by one.
pub async fn intake_of_many_runs(b: &AwsBackend) {
    let store = b.store(ManualClock::at(T0)).await;
    let intake = store.ports().intake.expect("the AWS store has an intake");
    let key = unique("ingest:forms");
    let runs: Vec<RunRecord> = (0..30).map(|_| queued_run(&key)).collect();
    let ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    let result = serde_json::to_string(&ids).unwrap();
    let messages: Vec<(String, Duration)> = (0..30)
        .map(|i| (format!("{{\"job\":{i}}}"), Duration::ZERO))
        .collect();
    let event = NewEvent {
        key: &key,
        payload_hash: "h",
        result: &result,
        window: Duration::from_secs(3600),
        messages: &messages,
        runs: &runs,
    };
    assert_eq!(intake.accept(&event).await.unwrap(), Claim::Claimed);
    for run in &runs {
        assert!(
            store.get(&run.id).await.unwrap().is_some(),
            "{} recorded",
            run.id
        );
    }
    let marked = store
        .claim(&key, "h", "x", Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(marked, Claim::Completed { result });
}
