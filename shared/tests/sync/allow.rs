//! A connection's `allow` list holds for every page of a poll: a next-page
//! URL the API hands back is checked on its rendered path, so an API (or a
//! crafted response) cannot lead the sync outside the list.

use ferry::sync::run_sync;
use ferry_testkit::target::Target;
use serde_json::json;

use crate::support::hub;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_next_page_outside_the_allow_list_is_refused_unsent() {
    let api = Target::start().await;
    let escape = format!("{}/v1/contacts/../admin/export", api.url());
    api.respond(
        "/v1/contacts",
        200,
        json!({ "results": [{ "id": "c1" }], "next": escape }),
    );
    let yaml = r#"version: 1
connections:
  api: { base_url: "${env:API_URL}/v1", allow: ["GET /contacts*", "PUT /warehouse/*"] }
syncs:
  contacts:
    schedule: rate(5 minutes)
    source:
      connection: api
      request: { method: GET, path: /contacts }
      pagination: { style: next_url, next: response.body.next }
      records: response.body.results
      id: record.id
    steps:
      - { id: put, connection: api, request: { method: PUT, path: "/warehouse/{{ body.id }}", json: { id: "{{ body.id }}" } } }
"#;
    let env = hub(yaml, &[("API_URL", &api.url())], None);
    let err = format!("{:?}", run_sync(&env.hub, "contacts").await);
    assert!(
        err.contains("GET /admin/export is outside the connection's allow list"),
        "{err}"
    );
    assert_eq!(api.count("/v1/contacts"), 1, "the first page was read");
    assert_eq!(
        api.count_where(|s| s.path.contains("admin")),
        0,
        "the next page was not requested: {:?}",
        api.seen()
    );
}
