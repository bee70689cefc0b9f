//! The `stripe` preset against the Stripe fake: form-encoded calls with the
//! secret key and an `Idempotency-Key`; `402` card errors final;
//! `Stripe-Should-Retry` honoured; `429` rate limits pause the connection
//! and `lock_timeout` is retried; `409` key-in-use retried, a key reused
//! with other parameters final; `starting_after` pages; signed webhooks.

use std::collections::BTreeMap;
use std::time::Duration;

use ferry::clock::Clock;
use ferry::config::Method;
use ferry::model::Failure;
use ferry::retry::Verdict;
use ferry_testkit::vendors::stripe::{self, Fault, Stripe};
use serde_json::json;

use crate::support::{self, Bench, T0, last, request};

const KEY: &str = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";
const WHSEC: &str = "whsec_test_secret";

const CONFIG: &str = r#"
version: 1
connections:
  stripe:
    preset: stripe
    base_url: "${env:STRIPE_URL}"
    auth: { type: bearer, token: "${env:STRIPE_KEY}" }
  sink:
    base_url: "${env:SINK_URL}"
sources:
  stripe:
    preset: stripe
    verify: { secret: "${env:STRIPE_WHSEC}" }
workflows:
  events:
    trigger: { source: stripe }
    when: "body.type == 'invoice.paid'"
    steps:
      - { id: note, connection: sink, request: { path: /events, json: { id: "{{ body.id }}" } } }
syncs:
  customers:
    schedule: rate(5 minutes)
    source:
      preset: stripe
      connection: stripe
      request: { path: /v1/customers, query: { limit: "10" } }
    steps:
      - { id: copy, connection: sink, request: { path: /customers, json: { id: "{{ body.id }}" } } }
"#;

async fn bench() -> (Bench, Stripe, ferry_testkit::target::Target) {
    let fake = Stripe::start(KEY).await;
    let sink = ferry_testkit::target::Target::start().await;
    let b = support::start(
        CONFIG,
        &[
            ("STRIPE_URL", fake.url()),
            ("STRIPE_KEY", KEY.to_owned()),
            ("STRIPE_WHSEC", WHSEC.to_owned()),
            ("SINK_URL", sink.url()),
        ],
    );
    (b, fake, sink)
}

fn form(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

fn create_customer(email: &str) -> ferry::config::RequestSpec {
    let mut r = request(Method::Post, "/v1/customers");
    r.form = form(&[("email", email)]);
    r
}

#[tokio::test]
async fn the_preset_sends_form_bodies_with_the_secret_key_and_an_idempotency_key() {
    let (b, fake, _) = bench().await;
    let called = b
        .call("stripe", create_customer("ada@example.com"), "run-1:a")
        .await;
    assert_eq!(last(&called), (Verdict::Success, Some(200)));
    assert_eq!(fake.customers()[0]["email"], "ada@example.com");
    let seen = &fake.target.seen_at("/v1/customers")[0];
    assert_eq!(seen.header("authorization"), format!("Bearer {KEY}"));
    assert_eq!(seen.header("idempotency-key"), "run-1:a");
    assert!(
        seen.header("content-type")
            .starts_with("application/x-www-form-urlencoded")
    );
    // A retry under the same key is replayed by Stripe, not done twice.
    let again = b
        .call("stripe", create_customer("ada@example.com"), "run-1:a")
        .await;
    assert_eq!(last(&again).0, Verdict::Success);
    assert_eq!(fake.customers().len(), 1);
}

#[tokio::test]
async fn a_402_card_error_is_final() {
    let (b, fake, _) = bench().await;
    let mut r = request(Method::Post, "/v1/payment_intents");
    r.form = form(&[
        ("amount", "2000"),
        ("currency", "usd"),
        ("confirm", "true"),
        ("payment_method", "pm_card_chargeDeclined"),
    ]);
    let (verdict, status) = last(&b.call("stripe", r, "run-2:a").await);
    assert_eq!(
        (verdict, status),
        (Verdict::Final(Failure::Rejected), Some(402))
    );
    assert_eq!(fake.payment_intents().len(), 1);
}

#[tokio::test]
async fn stripe_should_retry_false_makes_a_500_final() {
    let (b, fake, _) = bench().await;
    fake.fail_next(1, Fault::ServerNoRetry);
    let (verdict, status) = last(
        &b.call("stripe", create_customer("a@example.com"), "k")
            .await,
    );
    assert_eq!(
        (verdict, status),
        (Verdict::Final(Failure::Rejected), Some(500))
    );
    assert!(fake.customers().is_empty());
}

#[tokio::test]
async fn a_429_rate_limit_pauses_the_connection_and_a_lock_timeout_is_retried() {
    let (b, fake, _) = bench().await;
    fake.fail_next(1, Fault::LockTimeout);
    let (verdict, status) = last(
        &b.call("stripe", create_customer("a@example.com"), "k1")
            .await,
    );
    assert_eq!(
        (verdict, status),
        (Verdict::Retry { after: None }, Some(429))
    );
    // Like every 429, it pauses the connection briefly (1 s without Retry-After).
    assert_eq!(b.paused_until("stripe").await, T0 + 1000);
    b.clock.advance(1000);

    fake.fail_next(1, Fault::RateLimit);
    let (verdict, _) = last(
        &b.call("stripe", create_customer("a@example.com"), "k2")
            .await,
    );
    assert_eq!(verdict, Verdict::RateLimited { after: None });
    assert_eq!(
        b.paused_until("stripe").await,
        T0 + 2000,
        "1 s without Retry-After"
    );
    // A pause this short is waited out in-process (on the clock), and the
    // call goes out only once it has ended.
    let (verdict, _) = last(
        &b.call("stripe", create_customer("a@example.com"), "k2")
            .await,
    );
    assert_eq!(verdict, Verdict::Success);
    assert_eq!(fake.customers().len(), 1);
    assert!(
        b.clock.now_ms() >= T0 + 2000,
        "the call went out at {} during the pause",
        b.clock.now_ms()
    );
}

#[tokio::test]
async fn a_409_key_in_use_retries_and_a_key_reused_with_other_parameters_is_final() {
    let (b, fake, _) = bench().await;
    fake.fail_next(1, Fault::KeyInUse);
    let (verdict, status) = last(
        &b.call("stripe", create_customer("a@example.com"), "k")
            .await,
    );
    assert_eq!(
        (verdict, status),
        (Verdict::Retry { after: None }, Some(409))
    );
    assert_eq!(
        last(
            &b.call("stripe", create_customer("a@example.com"), "k")
                .await
        )
        .0,
        Verdict::Success
    );
    let (verdict, status) = last(
        &b.call("stripe", create_customer("b@example.com"), "k")
            .await,
    );
    assert_eq!(
        (verdict, status),
        (Verdict::Final(Failure::Rejected), Some(400))
    );
    assert_eq!(fake.customers().len(), 1);
}

#[tokio::test]
async fn the_poll_preset_pages_with_starting_after_the_last_id() {
    let (b, fake, sink) = bench().await;
    fake.seed_customers(25);
    let report = ferry::sync::run_sync(&b.hub, "customers").await.unwrap();
    assert_eq!(report.pages, 3);
    let pages = fake.target.seen_at("/v1/customers");
    let after: Vec<Option<String>> = pages.iter().map(|s| s.param("starting_after")).collect();
    assert_eq!(
        after,
        [None, Some("cus_0010".into()), Some("cus_0020".into())]
    );
    // Every customer becomes one run.
    let started = std::time::Instant::now();
    while sink.count("/customers") < 25 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "runs never finished"
        );
        if b.step().await == 0 {
            b.clock.advance(100);
        }
    }
    assert_eq!(sink.count("/customers"), 25);
}

#[tokio::test]
async fn webhooks_signed_by_stripe_run_and_a_bad_signature_is_401() {
    let (b, _fake, sink) = bench().await;
    let body = json!({"id": "evt_1", "object": "event", "type": "invoice.paid", "data": {"object": {"id": "in_1"}}}).to_string();
    let t = (T0 / 1000).to_string();
    let good = stripe::signature(WHSEC, T0 / 1000, body.as_bytes());
    let reply = b
        .post("stripe", &[("stripe-signature", &good)], body.as_bytes())
        .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.body["event_id"], "evt_1");
    let run = reply.body["run_id"].as_str().unwrap().to_owned();
    b.drive_all(&[&run]).await;
    assert_eq!(sink.seen_at("/events")[0].body["id"], "evt_1");
    // A redelivery is the same event.
    assert_eq!(
        b.post("stripe", &[("stripe-signature", &good)], body.as_bytes())
            .await
            .status,
        200
    );
    let forged = format!("t={t},v1={}", "0".repeat(64));
    let reply = b
        .post("stripe", &[("stripe-signature", &forged)], body.as_bytes())
        .await;
    assert_eq!(reply.status, 401);
}
