//! The `hubspot` preset against the HubSpot fake: private-app auth, 207
//! batch answers matched by id and by index, 429s and the rate-limit
//! headers, `paging.next.after`, v3 webhook signatures.

use ferry::model::{Failure, RunStatus};
use ferry_testkit::vendors::hubspot::HubSpot;
use serde_json::{Value, json};

use crate::support::{self, Bench, T0, errors, hubspot_signed};

const TOKEN: &str = "pat-na1-test";
const CLIENT_SECRET: &str = "hubspot-client-secret";
const PUBLIC_URL: &str = "https://hooks.example.com";

const CONFIG: &str = r#"
version: 1
connections:
  hubspot:
    preset: hubspot
    base_url: "${env:HUBSPOT_API_URL}"
    auth: { token: "${env:HUBSPOT_TOKEN}" }
sources:
  form:
    verify: { scheme: api-key, header: X-Key, secret: "${env:KEY}" }
    event_id: "{{ body.id }}"
  hubspot:
    preset: hubspot
    verify:
      secret: "${env:HUBSPOT_CLIENT_SECRET}"
      signed_content: "POST${env:PUBLIC_URL}/hooks/hubspot{body}{timestamp}"
workflows:
  upsert:
    trigger: { source: form }
    steps:
      - id: contact
        connection: hubspot
        request:
          method: POST
          path: /crm/v3/objects/contacts/batch/upsert
          json: { inputs: [ { idProperty: email, id: "{{ body.email }}", properties: { firstname: "{{ body.name }}" } } ] }
        batch:
          max_items: 3
          wait: 10s
          path: /crm/v3/objects/contacts/batch/upsert
          json: { inputs: "{{ items | map(attribute='inputs') | map('first') | list }}" }
          results: response.body.results
          item_id: item.inputs[0].id
          result_id: result.properties.email
          errors: response.body.errors
          error_index: error.context.index
  new-contact:
    trigger: { source: hubspot }
    when: "body[0].subscriptionType == 'contact.creation'"
    steps:
      - id: task
        connection: hubspot
        request:
          method: POST
          path: /crm/v3/objects/tasks
          json: { properties: { hs_task_subject: "Welcome contact {{ body[0].objectId }}" } }
syncs:
  contacts:
    schedule: rate(5 minutes)
    source:
      preset: hubspot
      connection: hubspot
      # Merged over the preset's query: `properties` stays.
      request: { query: { limit: "10" } }
    steps:
      - id: mirror
        connection: hubspot
        request: { method: POST, path: /crm/v3/objects/tasks, json: { properties: { hs_task_subject: "{{ body.properties.email }}" } } }
"#;

async fn bench(token: &str) -> (Bench, HubSpot) {
    let fake = HubSpot::start(TOKEN).await;
    let b = support::start(
        CONFIG,
        &[
            ("HUBSPOT_API_URL", fake.url()),
            ("HUBSPOT_TOKEN", token.to_owned()),
            ("KEY", "k".into()),
            ("HUBSPOT_CLIENT_SECRET", CLIENT_SECRET.into()),
            ("PUBLIC_URL", PUBLIC_URL.into()),
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

/// Three runs share one batch upsert; HubSpot answers `207` with two
/// results (matched by e-mail) and one error whose `context` names the
/// input's index: that run alone fails `rejected` with HubSpot's sentence.
#[tokio::test]
async fn hubspot_batch_upsert_207_errors_by_index_fail_only_their_items() {
    let (b, fake) = bench(TOKEN).await;
    let a = send(
        &b,
        json!({"id": "1", "email": "ada@example.com", "name": "Ada"}),
    )
    .await;
    let bad = send(
        &b,
        json!({"id": "2", "email": "not-an-email", "name": "Bad"}),
    )
    .await;
    let c = send(
        &b,
        json!({"id": "3", "email": "cy@example.com", "name": "Cy"}),
    )
    .await;
    b.until("three runs final", || async {
        let mut all = true;
        for id in [&a, &bad, &c] {
            all &= b.run(id).await.is_some_and(|r| r.status.is_final());
        }
        all
    })
    .await;
    let calls = fake.target.seen_at("/crm/v3/objects/contacts/batch/upsert");
    assert_eq!(calls.len(), 1, "one batch call for the three runs");
    assert_eq!(calls[0].status, 207);
    assert_eq!(calls[0].body["inputs"].as_array().unwrap().len(), 3);
    assert_eq!(calls[0].header("authorization"), format!("Bearer {TOKEN}"));
    for id in [&a, &c] {
        let run = b.run(id).await.unwrap();
        assert_eq!(run.status, RunStatus::Succeeded, "{}", errors(&run));
    }
    let run = b.run(&bad).await.unwrap();
    assert_eq!(run.status, RunStatus::DeadLettered);
    assert_eq!(run.failure, Some(Failure::Rejected));
    assert!(
        errors(&run).contains("Email address not-an-email is invalid"),
        "{}",
        errors(&run)
    );
    let stored = fake.contacts();
    assert_eq!(
        stored.keys().collect::<Vec<_>>(),
        ["ada@example.com", "cy@example.com"]
    );
    assert_eq!(stored["ada@example.com"].properties["firstname"], "Ada");
}

/// A wrong private-app token: `401 INVALID_AUTHENTICATION`, the run ends
/// `auth_failed` and says so.
#[tokio::test]
async fn hubspot_bad_token_is_auth_failed_with_the_vendor_message() {
    let (b, fake) = bench("pat-na1-wrong").await;
    let id = send(
        &b,
        json!({"id": "1", "email": "ada@example.com", "name": "Ada"}),
    )
    .await;
    let run = b.drive(&id).await;
    assert_eq!(run.status, RunStatus::AuthFailed, "{}", errors(&run));
    assert!(
        errors(&run).contains("INVALID_AUTHENTICATION"),
        "{}",
        errors(&run)
    );
    assert!(fake.contacts().is_empty());
}

/// A `429` with HubSpot's body and no `Retry-After` pauses the whole
/// connection for the preset's 2 s (the rolling window), then the call goes
/// through; the contact is written once.
#[tokio::test]
async fn hubspot_429_pauses_the_connection_then_succeeds() {
    let (b, fake) = bench(TOKEN).await;
    fake.limit_next(1);
    let id = send(
        &b,
        json!({"id": "1", "email": "ada@example.com", "name": "Ada"}),
    )
    .await;
    b.step().await;
    let key = ferry::keys::connection("hubspot");
    let until = b.hub.ports.limits.paused_until(&key).await.unwrap();
    assert_eq!(until, T0 + 2_000, "paused for the preset's 2 s");
    let run = b.drive(&id).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", errors(&run));
    let calls = fake.target.seen_at("/crm/v3/objects/contacts/batch/upsert");
    assert_eq!(
        calls.iter().map(|s| s.status).collect::<Vec<_>>(),
        [429, 200]
    );
    assert!(calls[1].at >= calls[0].at);
    assert_eq!(fake.contacts().len(), 1);
}

/// `X-HubSpot-RateLimit-Remaining` at the preset's watermark (2) pauses the
/// connection before HubSpot ever answers `429`.
#[tokio::test]
async fn hubspot_remaining_header_at_the_watermark_pauses_before_a_429() {
    let (b, fake) = bench(TOKEN).await;
    fake.set_remaining(3);
    let id = send(
        &b,
        json!({"id": "1", "email": "ada@example.com", "name": "Ada"}),
    )
    .await;
    let run = b.drive(&id).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", errors(&run));
    let calls = fake.target.seen();
    assert_eq!(calls[0].status, 200);
    let key = ferry::keys::connection("hubspot");
    let until = b.hub.ports.limits.paused_until(&key).await.unwrap();
    assert!(
        until > 0,
        "the answer said 2 calls left: the connection paused"
    );
}

/// A webhook signed as HubSpot signs (v3: method + URI + body + ms
/// timestamp) starts the workflow, filtered on `subscriptionType`; a bad
/// signature or a stale timestamp is `401`; a redelivery is deduplicated by
/// the preset's event id (the events' `eventId`s).
#[tokio::test]
async fn hubspot_v3_signed_webhook_runs_and_a_bad_signature_is_401() {
    let (b, fake) = bench(TOKEN).await;
    let body = json!([{"eventId": 1001, "subscriptionId": 7, "portalId": 62515, "occurredAt": T0, "subscriptionType": "contact.creation", "attemptNumber": 0, "objectId": 42}]).to_string();
    let uri = format!("{PUBLIC_URL}/hooks/hubspot");
    let headers = hubspot_signed(CLIENT_SECRET, &uri, body.as_bytes(), T0 - 1_000);
    let ok = b.post("hubspot", &headers, body.as_bytes()).await;
    assert_eq!(ok.status, 202, "{:?}", ok.body);
    let again = b.post("hubspot", &headers, body.as_bytes()).await;
    assert_eq!(again.body["status"], "duplicate", "{:?}", again.body);
    let run = b.drive(ok.body["run_id"].as_str().unwrap()).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", errors(&run));
    assert_eq!(run.event_id, "hubspot:1001");
    assert_eq!(
        fake.tasks()[0].properties["hs_task_subject"],
        "Welcome contact 42"
    );

    let wrong = hubspot_signed("another-secret", &uri, body.as_bytes(), T0);
    assert_eq!(b.post("hubspot", &wrong, body.as_bytes()).await.status, 401);
    let elsewhere = hubspot_signed(
        CLIENT_SECRET,
        "https://evil.example/hooks/hubspot",
        body.as_bytes(),
        T0,
    );
    assert_eq!(
        b.post("hubspot", &elsewhere, body.as_bytes()).await.status,
        401
    );
    let stale = hubspot_signed(CLIENT_SECRET, &uri, body.as_bytes(), T0 - 301_000);
    let reply = b.post("hubspot", &stale, body.as_bytes()).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.body["error"], "timestamp_too_old", "{:?}", reply.body);
}

/// The preset's poll follows `paging.next.after` through every page (the
/// last has no `paging`); the user's `limit` is merged over the preset's query.
#[tokio::test]
async fn hubspot_poll_follows_paging_next_after() {
    let (b, fake) = bench(TOKEN).await;
    for i in 0..25 {
        fake.put_contact(json!({"email": format!("p{i:03}@example.com")}));
    }
    let report = ferry::sync::run_sync(&b.hub, "contacts").await.unwrap();
    b.drain(3).await;
    let pages: Vec<Option<String>> = fake
        .target
        .seen_at("/crm/v3/objects/contacts")
        .iter()
        .map(|s| s.param("after"))
        .collect();
    assert_eq!(
        pages,
        [None, Some("10".into()), Some("20".into())],
        "{report:?}"
    );
    let first = &fake.target.seen_at("/crm/v3/objects/contacts")[0];
    assert_eq!(first.param("limit").as_deref(), Some("10"));
    assert_eq!(
        first.param("properties").as_deref(),
        Some("email,firstname,lastname,phone,lifecyclestage")
    );
    let subjects: std::collections::BTreeSet<String> = fake
        .tasks()
        .iter()
        .map(|t| t.properties["hs_task_subject"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(subjects.len(), 25);
}
