//! The `shopify` preset against the Shopify fake: the access-token header;
//! `X-Shopify-Shop-Api-Call-Limit` pausing before the bucket is full; a
//! REST `429` with `Retry-After`; GraphQL's `200 THROTTLED`, paused for as
//! long as the bucket needs to hold the query's cost (a rule's `until`);
//! Link-header pages; signed webhooks deduplicated by `X-Shopify-Event-Id`.

use std::time::Duration;

use ferry::config::Method;
use ferry::model::Failure;
use ferry::retry::Verdict;
use ferry_testkit::vendors::shopify::{self, Shopify};
use serde_json::json;

use crate::support::{Bench, T0, last, request};

const TOKEN: &str = "shpat_0123456789abcdef";
const SECRET: &str = "shopify-app-secret";

const CONFIG: &str = r#"
version: 1
connections:
  shop:
    preset: shopify
    base_url: "${env:SHOP_URL}"
    auth: { key: "${env:SHOP_TOKEN}" }
  sink:
    base_url: "${env:SINK_URL}"
sources:
  shop:
    preset: shopify
    verify: { secret: "${env:SHOP_SECRET}" }
workflows:
  paid:
    trigger: { source: shop }
    when: "headers['x-shopify-topic'] == 'orders/paid'"
    steps:
      - { id: note, connection: sink, request: { path: /orders, json: { id: "{{ body.id }}" } } }
syncs:
  orders:
    schedule: rate(5 minutes)
    source:
      preset: shopify
      connection: shop
      request: { path: /orders.json, query: { limit: "4" } }
      records: response.body.orders
    steps:
      - { id: copy, connection: sink, request: { path: /copies, json: { id: "{{ body.id }}" } } }
"#;

async fn bench_with(token: &str) -> (Bench, Shopify, ferry_testkit::target::Target) {
    let sink = ferry_testkit::target::Target::start().await;
    // The fake's buckets leak on the hub's virtual clock; the bench needs
    // its URL first, so the clock is shared through a cell.
    let clock = ferry::clock::VirtualClock::at(T0);
    let c = clock.clone();
    let fake = Shopify::start(
        TOKEN,
        std::sync::Arc::new(move || {
            use ferry::clock::Clock;
            c.now_ms()
        }),
    )
    .await;
    let b = Bench::start(
        CONFIG,
        &[
            ("SHOP_URL", fake.url()),
            ("SHOP_TOKEN", token.to_owned()),
            ("SHOP_SECRET", SECRET.to_owned()),
            ("SINK_URL", sink.url()),
        ],
        clock,
    );
    (b, fake, sink)
}

async fn bench() -> (Bench, Shopify, ferry_testkit::target::Target) {
    bench_with(TOKEN).await
}

fn graphql() -> ferry::config::RequestSpec {
    let mut r = request(Method::Post, "/graphql.json");
    r.json = Some(json!({"query": "{ shop { name } }"}));
    r
}

#[tokio::test]
async fn the_call_limit_header_pauses_the_connection_before_the_bucket_is_full() {
    let (b, fake, _) = bench().await;
    assert_eq!(
        last(
            &b.call("shop", request(Method::Get, "/orders.json"), "k")
                .await
        )
        .0,
        Verdict::Success
    );
    let seen = &fake.target.seen()[0];
    assert_eq!(seen.header("x-shopify-access-token"), TOKEN);
    assert_eq!(b.paused_until("shop").await, 0, "1/40 used: no pause");
    // 36 in the bucket: this call makes 37/40, 3 left, at the watermark of 4.
    fake.set_rest_used(36.0);
    assert_eq!(
        last(
            &b.call("shop", request(Method::Get, "/orders.json"), "k")
                .await
        )
        .0,
        Verdict::Success
    );
    assert_eq!(b.paused_until("shop").await, T0 + 2000);
}

#[tokio::test]
async fn a_rest_429_pauses_for_retry_after_then_succeeds() {
    let (b, fake, _) = bench().await;
    fake.set_rest_used(40.0);
    let (verdict, status) = last(
        &b.call("shop", request(Method::Get, "/orders.json"), "k")
            .await,
    );
    assert_eq!(status, Some(429));
    assert_eq!(
        verdict,
        Verdict::RateLimited {
            after: Some(Duration::from_secs(1))
        }
    );
    // The answer's call-limit header (40/40) may pause it longer; wait it out.
    let until = b.paused_until("shop").await;
    assert!(until >= T0 + 1000, "paused until {until}");
    b.clock.advance_to(until);
    let (verdict, status) = last(
        &b.call("shop", request(Method::Get, "/orders.json"), "k")
            .await,
    );
    assert_eq!((verdict, status), (Verdict::Success, Some(200)));
}

#[tokio::test]
async fn a_graphql_200_throttled_pauses_until_the_bucket_holds_the_cost() {
    let (b, fake, _) = bench().await;
    // 10 points left, the query costs 110, 50 come back a second: 2 s.
    fake.set_graphql(10.0, 110.0);
    let (verdict, status) = last(&b.call("shop", graphql(), "k").await);
    assert_eq!(status, Some(200));
    assert_eq!(
        verdict,
        Verdict::RateLimited {
            after: Some(Duration::from_secs(2))
        }
    );
    assert_eq!(b.paused_until("shop").await, T0 + 2000);
    b.clock.advance(2000);
    assert_eq!(
        last(&b.call("shop", graphql(), "k").await).0,
        Verdict::Success
    );
}

#[tokio::test]
async fn a_wrong_access_token_is_auth_failed() {
    let (b, _fake, _) = bench_with("shpat_wrong").await;
    let (verdict, status) = last(
        &b.call("shop", request(Method::Get, "/orders.json"), "k")
            .await,
    );
    assert_eq!((verdict, status), (Verdict::Unauthorized, Some(401)));
    let _ = Failure::AuthFailed;
}

#[tokio::test]
async fn the_poll_preset_follows_the_link_header() {
    let (b, fake, _) = bench().await;
    fake.seed_orders(10);
    let report = ferry::sync::run_sync(&b.hub, "orders").await.unwrap();
    assert_eq!(report.pages, 3);
    let infos: Vec<Option<String>> = fake
        .target
        .seen_at(&format!("/admin/api/{}/orders.json", shopify::VERSION))
        .iter()
        .map(|s| s.param("page_info"))
        .collect();
    assert_eq!(infos, [None, Some("idx4".into()), Some("idx8".into())]);
}

#[tokio::test]
async fn signed_webhooks_run_once_per_event_id_and_a_bad_hmac_is_401() {
    let (b, _fake, sink) = bench().await;
    let body = json!({"id": 820982911946154508_u64, "name": "#1001", "financial_status": "paid"})
        .to_string();
    let hmac = shopify::hmac_header(SECRET, body.as_bytes());
    let headers = |webhook_id: &'static str, hmac: &str| {
        vec![
            ("x-shopify-hmac-sha256", hmac.to_owned()),
            ("x-shopify-topic", "orders/paid".to_owned()),
            ("x-shopify-webhook-id", webhook_id.to_owned()),
            (
                "x-shopify-event-id",
                "98880550-7158-44d4-b7cd-2c97c8a091b5".to_owned(),
            ),
            (
                "x-shopify-shop-domain",
                "ferry-test.myshopify.com".to_owned(),
            ),
        ]
    };
    let send = |h: Vec<(&'static str, String)>| {
        let body = body.clone();
        let b = &b;
        async move {
            let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
            b.post("shop", &h, body.as_bytes()).await
        }
    };
    let first = send(headers("b54557e4-bdd9-4b37-8a5f-bf7d70bcd043", &hmac)).await;
    assert_eq!(first.status, 202, "{}", first.body);
    assert_eq!(
        first.body["event_id"],
        "98880550-7158-44d4-b7cd-2c97c8a091b5"
    );
    // Another delivery of the same event (a second subscription, a retry):
    // a new webhook id, the same event id: dropped.
    let again = send(headers("0b1e4d2c-0000-4000-8000-000000000001", &hmac)).await;
    assert_eq!(again.status, 200, "{}", again.body);
    let run = first.body["run_id"].as_str().unwrap().to_owned();
    b.drive_all(&[&run]).await;
    assert_eq!(sink.count("/orders"), 1);
    let forged = send(headers("x", "AAAA")).await;
    assert_eq!(forged.status, 401, "{}", forged.body);
}
