//! The DynamoDB part of the port contract (idempotency, run log, cursors,
//! rate limits, claims across instances) against the AWS adapter with
//! DynamoDB on dynalite, a second, independent emulator (SQS, which dynalite
//! does not have, stays on moto). A contract that passes on two emulators is
//! evidence about the adapter, not about one emulator; dynalite applies each
//! conditional write under a per-item lock, so its concurrency cases (one
//! claim winner, one cursor writer, exactly `burst` tokens) cannot pass by luck.
//!
//! The endpoints come from `FERRY_TEST_DYNALITE_ENDPOINT` and
//! `FERRY_TEST_AWS_ENDPOINT`, both set by `scripts/emulators run -- …` (so by
//! `scripts/test`), with `FERRY_REQUIRE_AWS=1`: there a missing endpoint FAILS
//! these tests; without it they skip loudly. Run ad hoc with
//!
//! ```sh
//! scripts/emulators run -- cargo test -p ferry-shared --test dynalite_contract
//! ```
//!
//! Every case of these ports runs here; none is skipped for dynalite. The
//! one thing dynalite lacks, `UpdateTimeToLive`, is acknowledged by its
//! launcher (`scripts/dynalite/server.js`): no case relies on TTL deletion.

use std::collections::HashMap;
use std::sync::Arc;

use ferry::contract::{self, aws};

/// `maxReceiveCount` of the (unused here) queues each case gets.
const MAX_RECEIVES: u32 = 3;

async fn backend(test: &str) -> Option<Arc<aws::AwsBackend>> {
    aws::AwsBackend::on_dynalite(test, MAX_RECEIVES).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idempotency_contract() {
    let Some(b) = backend("idempotency_contract").await else {
        return;
    };
    contract::run(b, "idempotency").await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_across_instances() {
    let Some(b) = backend("concurrent_claims_across_instances").await else {
        return;
    };
    aws::claims_across_instances(&b).await;
}

// ---------------------------------------------------------------- the harness

fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| vars.get(name).cloned()
}

/// Under `FERRY_REQUIRE_AWS=1` (as `scripts/test` runs), a test that needs
/// dynalite fails when its endpoint is missing, even with moto's present.
#[test]
#[should_panic(expected = "FERRY_TEST_DYNALITE_ENDPOINT is not set")]
fn a_missing_dynalite_fails_when_required() {
    let env = env(&[
        (aws::REQUIRE_VAR, "1"),
        (aws::ENDPOINT_VAR, "http://127.0.0.1:1"),
    ]);
    aws::endpoint(&env, aws::DYNALITE_VAR, "a_test");
}

/// Without it, the test skips (no endpoint, no panic); with it, it runs.
#[test]
fn a_missing_dynalite_skips_when_not_required() {
    assert_eq!(aws::endpoint(&env(&[]), aws::DYNALITE_VAR, "a_test"), None);
    assert_eq!(
        aws::endpoint(
            &env(&[
                (aws::DYNALITE_VAR, "http://127.0.0.1:2"),
                (aws::REQUIRE_VAR, "1")
            ]),
            aws::DYNALITE_VAR,
            "a_test"
        ),
        Some("http://127.0.0.1:2".to_owned())
    );
}

/// dynalite has no `TransactWriteItems`: ingest's intake falls back to one
/// write each, with the same answers (claim, duplicate, mismatch, an event
/// back after its window).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn intake_without_transactions() {
    let Some(b) = backend("intake_without_transactions").await else {
        return;
    };
    contract::aws_batching::intake_in_two_writes(&b, false).await;
}

/// dynalite has no `TransactWriteItems`: the claims of an execute batch go
/// one `PutItem` each, with the same answers as gathered ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gathered_claims_without_transactions() {
    let Some(b) = backend("gathered_claims_without_transactions").await else {
        return;
    };
    contract::aws_batching::gathered_claims(&b, false).await;
}

/// Without transactions too, a record busy elsewhere does not hold back the
/// others' claims.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_task_busy_elsewhere_is_not_waited_for() {
    let Some(b) = backend("a_task_busy_elsewhere_is_not_waited_for").await else {
        return;
    };
    contract::aws_batching::a_task_busy_elsewhere_is_not_waited_for(&b, false).await;
}
