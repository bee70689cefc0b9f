//! The `quickbooks` preset against the QuickBooks fake: OAuth 2.0 refresh
//! with HTTP Basic client auth and rotating refresh tokens; `Fault` bodies
//! (`3200` → a refresh, validation faults final); `429` throttling pauses
//! the connection; `intuit-signature` webhooks.

use ferry::config::Method;
use ferry::retry::Verdict;
use ferry_testkit::vendors::quickbooks::{self, QuickBooks};
use serde_json::json;

use crate::support::{self, Bench, last, request};

pub const CLIENT_ID: &str = "ABqbClientId";
pub const CLIENT_SECRET: &str = "qb-client-secret";
pub const FIRST_RT: &str = "qb-rt-initial";
const VERIFIER: &str = "qb-verifier-token";
const REALM: &str = "9130350000000000";

const CONFIG: &str = r#"
version: 1
connections:
  qbo:
    preset: quickbooks
    base_url: "${env:QB_URL}"
    auth:
      token_url: "${env:QB_TOKEN_URL}"
      client_id: "${env:QB_CLIENT_ID}"
      client_secret: "${env:QB_CLIENT_SECRET}"
      refresh_token: "${env:QB_REFRESH_TOKEN}"
  sink:
    base_url: "${env:SINK_URL}"
sources:
  qbo:
    preset: quickbooks
    verify: { secret: "${env:QB_VERIFIER}" }
  orders:
    verify: { scheme: api-key, header: X-Key, secret: "${env:QB_VERIFIER}" }
    event_id: "{{ body.id }}"
workflows:
  invoice:
    trigger: { source: orders }
    steps:
      - id: invoice
        connection: qbo
        request:
          path: /invoice
          json:
            bId: "{{ body.id }}"
            operation: create
            Invoice:
              CustomerRef: { value: "{{ body.customer }}" }
              Line: [{ Amount: 10, DetailType: SalesItemLineDetail, SalesItemLineDetail: { ItemRef: { value: "1" } } }]
        batch:
          max_items: 30
          path: /batch
          json: { BatchItemRequest: "{{ items }}" }
          results: response.body.BatchItemResponse
          item_id: item.bId
          result_id: result.bId
          item_status: "400 if result.Fault is defined else 200"
  changes:
    trigger: { source: qbo }
    steps:
      - { id: note, connection: sink, request: { path: /changes, json: "{{ body.eventNotifications[0].dataChangeEvent.entities[0] }}" } }
"#;

async fn bench() -> (Bench, QuickBooks, ferry_testkit::target::Target) {
    let fake = QuickBooks::start(CLIENT_ID, CLIENT_SECRET, FIRST_RT).await;
    let sink = ferry_testkit::target::Target::start().await;
    let b = support::start(
        CONFIG,
        &[
            ("QB_URL", fake.company_url(REALM)),
            ("QB_TOKEN_URL", fake.token_url()),
            ("QB_CLIENT_ID", CLIENT_ID.to_owned()),
            ("QB_CLIENT_SECRET", CLIENT_SECRET.to_owned()),
            ("QB_REFRESH_TOKEN", FIRST_RT.to_owned()),
            ("QB_VERIFIER", VERIFIER.to_owned()),
            ("SINK_URL", sink.url()),
        ],
    );
    (b, fake, sink)
}

fn customer(name: &str) -> ferry::config::RequestSpec {
    let mut r = request(Method::Post, "/customer");
    r.json = Some(json!({"DisplayName": name}));
    r
}

/// The token endpoint answers `refresh_token` with a new access token and a
/// new refresh token; the old one is refused (`invalid_grant`) — a direct
/// request, as anyone still holding it would make.
pub async fn old_refresh_token_is_refused(fake: &QuickBooks, old: &str) {
    let resp = reqwest::Client::new()
        .post(fake.token_url())
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", old)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn a_3200_fault_refreshes_with_basic_auth_and_the_rotated_refresh_token() {
    let (b, fake, _) = bench().await;
    assert_eq!(
        last(&b.call("qbo", customer("Ada"), "k1").await).0,
        Verdict::Success
    );
    assert_eq!(
        fake.refresh_token(),
        "qb-rt-1",
        "the first refresh rotated it"
    );
    fake.expire_access_tokens();
    assert_eq!(
        last(&b.call("qbo", customer("Bea"), "k2").await).0,
        Verdict::Success
    );
    assert_eq!(fake.customers().len(), 2);
    let grants: Vec<_> = fake.target.seen_at("/oauth2/v1/tokens/bearer");
    let used: Vec<String> = grants
        .iter()
        .map(|s| s.form("refresh_token").unwrap())
        .collect();
    assert_eq!(
        used,
        [FIRST_RT, "qb-rt-1"],
        "the second refresh used the rotated token"
    );
    assert!(
        grants
            .iter()
            .all(|s| s.header("authorization").starts_with("Basic "))
    );
    assert!(grants.iter().all(|s| s.form("client_secret").is_none()));
    let api = fake.target.seen_under("/v3/company/");
    assert_eq!(
        api.iter().map(|s| s.status).collect::<Vec<_>>(),
        [200, 401, 200]
    );
    old_refresh_token_is_refused(&fake, FIRST_RT).await;
    old_refresh_token_is_refused(&fake, "qb-rt-1").await;
}

#[tokio::test]
async fn a_throttle_fault_pauses_the_connection_and_a_validation_fault_is_final() {
    let (b, fake, _) = bench().await;
    fake.throttle_next(1);
    let (verdict, status) = last(&b.call("qbo", customer("Ada"), "k1").await);
    assert_eq!(
        (verdict, status),
        (Verdict::RateLimited { after: None }, Some(429))
    );
    assert!(b.paused_until("qbo").await > 0);
    b.clock.advance(1000);
    assert_eq!(
        last(&b.call("qbo", customer("Ada"), "k1").await).0,
        Verdict::Success
    );
    // A second customer of the same name: 400 ValidationFault 6240.
    let (verdict, status) = last(&b.call("qbo", customer("Ada"), "k2").await);
    assert_eq!((verdict, status), (Verdict::Fail, Some(400)));
    assert_eq!(fake.customers().len(), 1);
}

#[tokio::test]
async fn intuit_signed_notifications_run_and_a_bad_signature_is_401() {
    let (b, _fake, sink) = bench().await;
    let body = json!({"eventNotifications": [{"realmId": REALM, "dataChangeEvent": {"entities": [
        {"name": "Invoice", "id": "130", "operation": "Create", "lastUpdated": "2026-11-30T10:00:00.000-08:00"}
    ]}}]})
    .to_string();
    let sig = quickbooks::signature(VERIFIER, body.as_bytes());
    let reply = b
        .post("qbo", &[("intuit-signature", &sig)], body.as_bytes())
        .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let run = reply.body["run_id"].as_str().unwrap().to_owned();
    b.drive_all(&[&run]).await;
    assert_eq!(sink.seen_at("/changes")[0].body["id"], "130");
    let bad = quickbooks::signature("another-token", body.as_bytes());
    assert_eq!(
        b.post("qbo", &[("intuit-signature", &bad)], body.as_bytes())
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn ready_runs_share_one_batch_call_and_a_faulted_item_fails_alone() {
    let (b, fake, _) = bench().await;
    let id = fake.seed_customer("Ada", "ada@example.com");
    let mut runs = Vec::new();
    for (n, customer) in [
        ("o1", id.as_str()),
        ("o2", "999"),
        ("o3", id.as_str()),
        ("o4", id.as_str()),
    ] {
        let body = json!({"id": n, "customer": customer}).to_string();
        let reply = b
            .post("orders", &[("x-key", VERIFIER)], body.as_bytes())
            .await;
        assert_eq!(reply.status, 202, "{}", reply.body);
        runs.push(reply.body["run_id"].as_str().unwrap().to_owned());
    }
    let ids: Vec<&str> = runs.iter().map(String::as_str).collect();
    let done = b.drive_all(&ids).await;
    let statuses: Vec<_> = done.iter().map(|r| r.status).collect();
    use ferry::model::RunStatus::{DeadLettered, Succeeded};
    assert_eq!(statuses, [Succeeded, DeadLettered, Succeeded, Succeeded]);
    let batches = fake
        .target
        .seen_under("/v3/company/")
        .into_iter()
        .filter(|s| s.path.ends_with("/batch"))
        .collect::<Vec<_>>();
    assert_eq!(batches.len(), 1, "one batch call for the four runs");
    assert_eq!(
        batches[0].body["BatchItemRequest"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert_eq!(fake.invoices().len(), 3);
    assert_eq!(
        done[1].failure,
        Some(ferry::model::Failure::Rejected),
        "{:?}",
        done[1]
    );
}
