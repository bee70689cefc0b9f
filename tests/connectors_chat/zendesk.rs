//! The `zendesk` preset against the fake Zendesk
//! (`ferry_testkit::vendors::zendesk`): API-token and OAuth auth, `429`
//! with `Retry-After`, the incremental export until `end_of_stream`, and
//! webhooks signed with an ISO-8601 timestamp.

use ferry::clock::Clock;
use ferry::model::RunStatus;
use ferry_testkit::target::Target;
use ferry_testkit::vendors::zendesk::{self, Zendesk};
use serde_json::json;

use crate::support::{self, Bench, run_id, step};

const SECRET: &str = "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ==";

const CONFIG: &str = r#"
version: 1
connections:
  zendesk:
    preset: zendesk
    base_url: "${env:ZENDESK_URL}"
    auth: { type: basic, username: "${env:ZENDESK_EMAIL}/token", password: "${env:ZENDESK_API_TOKEN}" }
  zendesk-oauth:
    preset: zendesk
    base_url: "${env:ZENDESK_URL}"
    auth: { type: bearer, token: "${env:ZENDESK_OAUTH_TOKEN}" }
    rate_limit: { requests: 700 }
  sink: { base_url: "${env:SINK_URL}" }
sources:
  zendesk:
    preset: zendesk
    verify: { secret: "${env:ZENDESK_WEBHOOK_SECRET}" }
workflows:
  note:
    trigger: { source: zendesk }
    when: "body.type == 'zen:event-type:ticket.created'"
    steps:
      - id: comment
        connection: zendesk
        request:
          method: PUT
          path: "/api/v2/tickets/{{ body.detail.id }}.json"
          json: { ticket: { comment: { body: "Seen by ferry", public: false } } }
      - id: read
        connection: zendesk-oauth
        request: { method: GET, path: "/api/v2/tickets/{{ body.detail.id }}.json" }
syncs:
  tickets:
    schedule: rate(5 minutes)
    source:
      preset: zendesk
      connection: zendesk
      start: "0"
    steps:
      - id: copy
        connection: sink
        request: { method: POST, path: /tickets, json: { id: "{{ body.id }}" } }
"#;

async fn bench(api_token: &str) -> (Bench, Zendesk, Target) {
    let fake = Zendesk::start().await;
    let sink = Target::start().await;
    let bench = support::start(
        CONFIG,
        &[
            ("ZENDESK_URL", fake.url()),
            ("ZENDESK_EMAIL", zendesk::EMAIL.to_owned()),
            ("ZENDESK_API_TOKEN", api_token.to_owned()),
            ("ZENDESK_OAUTH_TOKEN", zendesk::OAUTH_TOKEN.to_owned()),
            ("ZENDESK_WEBHOOK_SECRET", SECRET.to_owned()),
            ("SINK_URL", sink.url()),
        ],
    );
    fake.add_user(7, "Ada", "ada@acme.example", None);
    fake.add_ticket(35436, "Printer on fire", 7, 1_796_000_000);
    (bench, fake, sink)
}

/// A `ticket.created` event for ticket 35436, signed like Zendesk at `at_ms`.
async fn created(bench: &Bench, invocation: &str, at_ms: i64) -> ferry::respond::Wire {
    let body = json!({
        "type": "zen:event-type:ticket.created",
        "id": "cbe4028c-7239-495d-b020-f22348516046",
        "subject": "zen:ticket:35436",
        "time": zendesk::iso(at_ms),
        "detail": { "id": "35436", "subject": "Printer on fire", "requester_id": "7" },
    })
    .to_string();
    let headers = zendesk::sign(SECRET, &zendesk::iso(at_ms), invocation, body.as_bytes());
    bench.post_wire("zendesk", &headers, body.as_bytes()).await
}

/// Zendesk's signature over `timestamp + body`, with an ISO-8601
/// timestamp, verifies and the workflow runs; the same request ten minutes
/// old is refused (`timestamp_too_old`), and so is a wrong secret.
#[tokio::test]
async fn a_webhook_signed_like_zendesk_verifies_and_a_stale_one_is_401() {
    let (bench, fake, _sink) = bench(zendesk::API_TOKEN).await;
    let now = bench.clock.now_ms();
    let stale = created(&bench, "inv-0", now - 10 * 60_000).await;
    assert_eq!(stale.status, 401);
    assert_eq!(stale.body.unwrap()["error"], json!("timestamp_too_old"));
    let wire = created(&bench, "inv-1", now).await;
    assert_eq!(wire.status, 202, "{:?}", wire.body);
    let run = bench.drive(&run_id(&wire)).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    let ticket = fake.ticket(35436).unwrap();
    assert_eq!(
        ticket["comments"][0],
        json!({ "body": "Seen by ferry", "public": false })
    );
    // Zendesk retries with the same invocation id: a duplicate.
    let retry = created(&bench, "inv-1", bench.clock.now_ms()).await;
    assert_eq!(retry.body.unwrap()["status"], json!("duplicate"));
}

/// The API token goes as Basic `{email}/token:{token}`, an OAuth token as
/// `Bearer`; a wrong API token is `401` → `auth_failed`, after one call.
#[tokio::test]
async fn the_api_token_authenticates_and_a_wrong_one_is_auth_failed() {
    let (bench, fake, _sink) = bench(zendesk::API_TOKEN).await;
    let run = bench
        .drive(&run_id(
            &created(&bench, "inv-1", bench.clock.now_ms()).await,
        ))
        .await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    let calls = fake.target.seen_under("/api/v2/tickets/");
    assert!(calls[0].header("authorization").starts_with("Basic "));
    assert_eq!(
        calls[1].header("authorization"),
        format!("Bearer {}", zendesk::OAUTH_TOKEN)
    );

    let (bench, fake, _sink) = bench_wrong().await;
    let run = bench
        .drive(&run_id(
            &created(&bench, "inv-1", bench.clock.now_ms()).await,
        ))
        .await;
    assert_eq!(run.status, RunStatus::AuthFailed, "{run:?}");
    assert_eq!(fake.target.seen_under("/api/v2/tickets/").len(), 1);
}

async fn bench_wrong() -> (Bench, Zendesk, Target) {
    bench("not-the-token").await
}

/// `429` with `Retry-After: 30` pauses the connection for 30 s; the
/// update then goes through once.
#[tokio::test]
async fn a_429_pauses_for_retry_after_then_succeeds() {
    let (bench, fake, _sink) = bench(zendesk::API_TOKEN).await;
    fake.limit_next(1, 30);
    let run = bench
        .drive(&run_id(
            &created(&bench, "inv-1", bench.clock.now_ms()).await,
        ))
        .await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    let attempts = &step(&run, "comment").attempts;
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].status_code, Some(429));
    assert!(attempts[1].started_at - attempts[0].started_at >= 30_000);
    assert_eq!(
        fake.ticket(35436).unwrap()["comments"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// The poll reads the incremental export from `start_time`, page by page
/// (`after_url`), until `end_of_stream`; the next run starts from the
/// watermark and sees only what changed since.
#[tokio::test]
async fn the_incremental_export_reads_every_page_until_end_of_stream() {
    let (bench, fake, sink) = bench(zendesk::API_TOKEN).await;
    for id in 1..=4 {
        fake.add_ticket(id, "Old", 7, 1_795_000_000 + id as i64);
    }
    let report = ferry::sync::run_sync(&bench.hub, "tickets").await.unwrap();
    assert_eq!(report.pages, 3, "{report:?}");
    let calls = fake
        .target
        .seen_at("/api/v2/incremental/tickets/cursor.json");
    assert_eq!(calls[0].param("start_time").as_deref(), Some("0"));
    assert!(
        calls[1].param("cursor").is_some(),
        "the second page follows after_url"
    );
    bench.drain(5).await;
    assert_eq!(sink.seen_at("/tickets").len(), 5);

    fake.add_ticket(99, "New", 7, 1_797_000_000);
    ferry::sync::run_sync(&bench.hub, "tickets").await.unwrap();
    bench.drain(5).await;
    let ids: Vec<String> = sink
        .seen_at("/tickets")
        .iter()
        .map(|s| s.body["id"].to_string())
        .collect();
    assert_eq!(ids.len(), 6, "{ids:?}");
    assert_eq!(ids[5], "99");
}
