//! A sync whose source needs an OAuth 2.0 token: the poll carries the
//! connection's bearer token, fetched once and reused.

use ferry::sync::{Outcome, run_sync};
use ferry_testkit::target::{Answer, Target};
use serde_json::json;

use crate::support::hub;

#[tokio::test]
async fn a_source_behind_oauth2_is_polled_with_the_cached_token() {
    let target = Target::start().await;
    let issued = target.clone();
    target.behave("/token", move |_| {
        let n = issued.count("/token");
        Some(Answer::ok(
            json!({ "access_token": format!("tok-{n}"), "token_type": "Bearer", "expires_in": 3600 }),
        ))
    });
    target.behave("/contacts", |req| {
        Some(if req.header("authorization") != "Bearer tok-1" {
            Answer::status(401, json!({ "error": "no token" }))
        } else {
            Answer::ok(
                json!({ "results": [{ "id": "c-1", "updated_at": "2024-01-02T00:00:00Z" }] }),
            )
        })
    });
    let url = target.url();

    let yaml = r#"version: 1
connections:
  api:
    base_url: "${env:API_URL}"
    auth: { type: oauth2, token_url: "${env:API_URL}/token", client_id: ferry, client_secret: "${env:CS}" }
syncs:
  contacts:
    schedule: rate(5 minutes)
    source:
      connection: api
      request: { method: GET, path: /contacts, query: { updated_since: "{{ watermark }}" } }
      records: response.body.results
      id: record.id
      version: record.updated_at
      watermark: record.updated_at
      start: "2024-01-01T00:00:00Z"
    steps:
      - id: note
        connection: api
        when: "false"
        request: { path: /unused }
"#;
    let env = hub(yaml, &[("API_URL", &url), ("CS", "client-secret")], None);
    for _ in 0..2 {
        let report = run_sync(&env.hub, "contacts").await.unwrap();
        assert_eq!(report.outcome, Outcome::Completed, "{report:?}");
        assert_eq!(report.counts.seen, 1, "{report:?}");
    }
    assert_eq!(target.count("/token"), 1, "one token for both polls");
}
