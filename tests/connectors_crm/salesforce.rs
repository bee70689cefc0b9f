//! The `salesforce` preset against the Salesforce fake: OAuth 2.0 refresh,
//! `INVALID_SESSION_ID` refreshed once, `REQUEST_LIMIT_EXCEEDED` as a
//! pause (not `permission_denied`), sObject Collections answered in order,
//! `nextRecordsUrl` pagination.

use ferry::clock::Clock;
use ferry::model::{Failure, RunStatus};
use ferry_testkit::vendors::salesforce::Salesforce;
use serde_json::{Value, json};

use crate::support::{self, Bench, T0, errors};

const CONFIG: &str = r#"
version: 1
connections:
  salesforce:
    preset: salesforce
    base_url: "${env:SF_URL}"
    auth:
      token_url: "${env:SF_URL}/services/oauth2/token"
      client_id: ferry-app
      client_secret: "${env:SF_SECRET}"
      refresh_token: "${env:SF_REFRESH}"
sources:
  form:
    verify: { scheme: api-key, header: X-Key, secret: "${env:KEY}" }
    event_id: "{{ body.id }}"
workflows:
  upsert:
    trigger: { source: form }
    steps:
      - id: contact
        connection: salesforce
        request:
          method: PATCH
          path: /services/data/v62.0/composite/sobjects/Contact/Sync_Email__c
          json: { allOrNone: false, records: [ { attributes: { type: Contact }, Sync_Email__c: "{{ body.email }}", Email: "{{ body.email }}", LastName: "{{ body.name }}" } ] }
        classify:
          - when: "response.body is sequence and response.body | length == 1 and response.body[0].success == false"
            outcome: rejected
        batch:
          max_items: 3
          wait: 10s
          method: PATCH
          path: /services/data/v62.0/composite/sobjects/Contact/Sync_Email__c
          json: { allOrNone: false, records: "{{ items | map(attribute='records') | map('first') | list }}" }
          results: response.body
          item_status: "200 if result.success else 400"
syncs:
  contacts:
    schedule: rate(5 minutes)
    source:
      preset: salesforce
      connection: salesforce
    steps:
      - id: seen
        connection: salesforce
        request: { method: PATCH, path: "/services/data/v62.0/composite/sobjects/Contact/Sync_Email__c", json: { allOrNone: false, records: [ { Sync_Email__c: "copy-{{ body.Email }}", Email: "copy-{{ body.Email }}" } ] } }
"#;

async fn bench() -> (Bench, Salesforce) {
    let fake = Salesforce::start("ferry-app", "sf-secret", "sf-refresh").await;
    let b = support::start(
        CONFIG,
        &[
            ("SF_URL", fake.url()),
            ("SF_SECRET", "sf-secret".into()),
            ("SF_REFRESH", "sf-refresh".into()),
            ("KEY", "k".into()),
        ],
    );
    (b, fake)
}

async fn send(b: &Bench, body: Value) -> String {
    let reply = b
        .post("form", &[("x-key", "k")], body.to_string().as_bytes())
        .await;
    assert_eq!(reply.status, 202, "{:?}", reply.body);
    reply.body["run_id"].as_str().unwrap().to_owned()
}

const COLLECTION: &str = "/services/data/v62.0/composite/sobjects/Contact/Sync_Email__c";

/// Three runs share one sObject Collections upsert (`allOrNone: false`);
/// Salesforce answers `200` with one result per record in order, the second
/// `success: false`: that run alone is `rejected`, with Salesforce's reason.
#[tokio::test]
async fn salesforce_collection_results_in_order_fail_only_their_items() {
    let (b, fake) = bench().await;
    let ids = [
        send(
            &b,
            json!({"id": "1", "email": "ada@example.com", "name": "Lovelace"}),
        )
        .await,
        send(&b, json!({"id": "2", "email": "nobody", "name": "Bad"})).await,
        send(
            &b,
            json!({"id": "3", "email": "cy@example.com", "name": "Young"}),
        )
        .await,
    ];
    b.until("three runs final", || async {
        let mut all = true;
        for id in &ids {
            all &= b.run(id).await.is_some_and(|r| r.status.is_final());
        }
        all
    })
    .await;
    let calls = fake.target.seen_at(COLLECTION);
    assert_eq!(calls.len(), 1, "one collections call");
    assert_eq!(calls[0].body["records"].as_array().unwrap().len(), 3);
    assert_eq!(calls[0].body["allOrNone"], false);
    let runs = [
        b.run(&ids[0]).await.unwrap(),
        b.run(&ids[1]).await.unwrap(),
        b.run(&ids[2]).await.unwrap(),
    ];
    assert_eq!(runs[0].status, RunStatus::Succeeded, "{}", errors(&runs[0]));
    assert_eq!(runs[2].status, RunStatus::Succeeded, "{}", errors(&runs[2]));
    assert_eq!(runs[1].failure, Some(Failure::Rejected));
    assert!(
        errors(&runs[1]).contains("INVALID_EMAIL_ADDRESS"),
        "{}",
        errors(&runs[1])
    );
    assert_eq!(
        fake.contact("ada@example.com").unwrap()["LastName"],
        "Lovelace"
    );
    assert!(fake.contact("nobody").is_none());
    assert_eq!(
        fake.tokens_issued(),
        1,
        "one access token for the three runs"
    );
}

/// A session that expires (`401 [{"errorCode": "INVALID_SESSION_ID"}]`) is
/// refreshed once with the refresh token, and the call is made again.
#[tokio::test]
async fn salesforce_invalid_session_refreshes_once_then_succeeds() {
    let (b, fake) = bench().await;
    let first = send(
        &b,
        json!({"id": "1", "email": "ada@example.com", "name": "Lovelace"}),
    )
    .await;
    assert_eq!(b.drive(&first).await.status, RunStatus::Succeeded);
    fake.expire_sessions();
    let second = send(
        &b,
        json!({"id": "2", "email": "cy@example.com", "name": "Young"}),
    )
    .await;
    let run = b.drive(&second).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", errors(&run));
    let statuses: Vec<u16> = fake
        .target
        .seen_at(COLLECTION)
        .iter()
        .map(|s| s.status)
        .collect();
    assert_eq!(statuses, [200, 401, 200]);
    assert_eq!(fake.tokens_issued(), 2);
    let token_calls = fake.target.seen_at("/services/oauth2/token");
    assert_eq!(
        token_calls[1].form("grant_type").as_deref(),
        Some("refresh_token")
    );
}

/// `403 [{"errorCode": "REQUEST_LIMIT_EXCEEDED"}]` is the org's API limit,
/// not a missing permission: the connection pauses for the preset's 15
/// minutes (Salesforce names no reset), then the call goes through.
#[tokio::test]
async fn salesforce_request_limit_exceeded_pauses_rather_than_permission_denied() {
    let (b, fake) = bench().await;
    fake.limit_next(1);
    let id = send(
        &b,
        json!({"id": "1", "email": "ada@example.com", "name": "Lovelace"}),
    )
    .await;
    b.step().await;
    let key = ferry::keys::connection("salesforce");
    let until = b.hub.ports.limits.paused_until(&key).await.unwrap();
    assert_eq!(
        until,
        T0 + 15 * 60_000,
        "paused for the preset's 15 minutes"
    );
    let run = b.drive(&id).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", errors(&run));
    let calls = fake.target.seen_at(COLLECTION);
    assert_eq!(
        calls.iter().map(|s| s.status).collect::<Vec<_>>(),
        [403, 200]
    );
    assert!(
        b.clock.now_ms() >= T0 + 15 * 60_000,
        "the second call waited out the pause"
    );
}

/// The preset's poll follows `nextRecordsUrl` through every batch of a query.
#[tokio::test]
async fn salesforce_poll_follows_next_records_url() {
    let (b, fake) = bench().await;
    fake.page_size(2);
    for i in 0..5 {
        fake.put_contact(
            json!({"Email": format!("p{i}@example.com"), "LastName": format!("P{i}")}),
        );
    }
    let report = ferry::sync::run_sync(&b.hub, "contacts").await.unwrap();
    b.drain(3).await;
    let pages: Vec<String> = fake
        .target
        .seen_under("/services/data/v62.0/query")
        .iter()
        .map(|s| s.path.clone())
        .collect();
    assert_eq!(
        pages,
        [
            "/services/data/v62.0/query",
            "/services/data/v62.0/query/01gFERRY-2",
            "/services/data/v62.0/query/01gFERRY-4"
        ],
        "{report:?}"
    );
    let q = fake.target.seen_at("/services/data/v62.0/query")[0]
        .param("q")
        .unwrap();
    assert!(
        q.starts_with("SELECT Id, Email") && q.contains("LastModifiedDate >= 1970-01-01T00:00:00Z"),
        "{q}"
    );
    for i in 0..5 {
        assert!(
            fake.contact(&format!("copy-p{i}@example.com")).is_some(),
            "record {i} was sent"
        );
    }
}
