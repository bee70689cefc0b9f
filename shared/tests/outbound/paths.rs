//! A value substituted into a path is one segment, and the URL stays under
//! the connection's base URL: for steps, batch calls and sync polls.

use ferry::model::{Failure, RunStatus};
use percent_encoding::percent_decode_str;
use serde_json::json;

use crate::support::{SOURCE, Server, drain, hub, ok, post, runs};

/// The values issue 9 reproduced escapes with, and a few more.
const HOSTILE: &[&str] = &[
    "../../../admin",
    "%2e%2e/%2e%2e/%2e%2e/admin",
    r"..\..\admin",
    "x?admin=1",
    "a/b",
    "x#frag",
    ".%2e",
    "...",
    "Zoë 100%",
];

fn config() -> String {
    format!(
        r#"version: 1
connections:
  crm: {{ base_url: "${{env:CRM}}/base/v1" }}
{SOURCE}workflows:
  w:
    trigger: {{ source: form }}
    steps:
      - id: upsert
        connection: crm
        request: {{ method: PUT, path: "/contacts/{{{{ body.contact }}}}", json: {{ n: 1 }} }}
"#
    )
}

#[tokio::test]
async fn a_path_value_is_exactly_one_segment_under_the_base_url() {
    let crm = Server::start(|_| ok()).await;
    let env = hub(&config(), &[("CRM", &crm.url)]);
    for (i, v) in HOSTILE.iter().enumerate() {
        post(&env.hub, &json!({ "id": format!("e{i}"), "contact": v })).await;
    }
    drain(&env.hub).await;
    let runs = runs(&env.hub).await;
    for r in &runs["w"] {
        assert_eq!(r.status, RunStatus::Succeeded, "{r:?}");
    }
    let seen = crm.seen();
    assert_eq!(seen.len(), HOSTILE.len());
    let mut got: Vec<String> = seen
        .iter()
        .map(|s| {
            assert_eq!(s.query, None, "no value adds a query: {s:?}");
            let segs: Vec<&str> = s.path.split('/').collect();
            assert_eq!(
                segs[..4],
                ["", "base", "v1", "contacts"],
                "stays under the base path: {s:?}"
            );
            assert_eq!(segs.len(), 5, "exactly one segment: {s:?}");
            percent_decode_str(segs[4])
                .decode_utf8()
                .unwrap()
                .into_owned()
        })
        .collect();
    got.sort();
    let mut want: Vec<String> = HOSTILE.iter().map(|s| (*s).to_owned()).collect();
    want.sort();
    assert_eq!(got, want, "each value round-trips as its segment");
}

#[tokio::test]
async fn a_dot_segment_value_is_a_mapping_error_naming_the_step_and_value() {
    let crm = Server::start(|_| ok()).await;
    let env = hub(&config(), &[("CRM", &crm.url)]);
    post(&env.hub, &json!({ "id": "dots", "contact": ".." })).await;
    post(&env.hub, &json!({ "id": "dot", "contact": "." })).await;
    drain(&env.hub).await;
    for r in &runs(&env.hub).await["w"] {
        assert_eq!(r.status, RunStatus::DeadLettered, "{r:?}");
        assert_eq!(r.failure, Some(Failure::Mapping), "{r:?}");
        let err = r.error.as_deref().unwrap();
        assert!(err.starts_with("step upsert: "), "{err}");
        assert!(err.contains("dot-segment"), "{err}");
        let v = if r.event_id == "dots" {
            "\"..\""
        } else {
            "\".\""
        };
        assert!(err.contains(v), "names the value: {err}");
        assert!(r.steps[0].attempts.is_empty(), "nothing was sent: {r:?}");
    }
    assert!(crm.seen().is_empty());
}

#[tokio::test]
async fn a_literal_path_that_leaves_the_base_url_is_a_mapping_error() {
    let crm = Server::start(|_| ok()).await;
    let yaml = config().replace("/contacts/{{ body.contact }}", "/../../admin");
    let env = hub(&yaml, &[("CRM", &crm.url)]);
    post(&env.hub, &json!({ "id": "e1", "contact": "x" })).await;
    drain(&env.hub).await;
    let r = &runs(&env.hub).await["w"][0];
    assert_eq!(r.failure, Some(Failure::Mapping), "{r:?}");
    let err = r.error.as_deref().unwrap();
    assert!(err.contains("outside the connection's base URL"), "{err}");
    assert!(crm.seen().is_empty());
}

#[tokio::test]
async fn batch_paths_follow_the_same_rule() {
    let crm = Server::start(|req| {
        let n = req.body["records"].as_array().map_or(0, Vec::len);
        let results: Vec<_> = (0..n).map(|i| json!({ "status": 200, "i": i })).collect();
        (200, vec![], json!({ "results": results }))
    })
    .await;
    let yaml = format!(
        r#"version: 1
connections:
  crm: {{ base_url: "${{env:CRM}}/base/v1" }}
{SOURCE}workflows:
  w:
    trigger: {{ source: form }}
    steps:
      - id: upsert
        connection: crm
        request: {{ method: POST, path: /one, json: {{ id: "{{{{ body.id }}}}", tenant: "{{{{ body.tenant }}}}" }} }}
        batch: {{ max_items: 2, wait: 10s, path: "/bulk/{{{{ items[0].tenant }}}}", json: {{ records: "{{{{ items }}}}" }}, results: response.body.results, item_status: result.status }}
"#
    );
    let env = hub(&yaml, &[("CRM", &crm.url)]);
    post(&env.hub, &json!({ "id": "a1", "tenant": "../../admin" })).await;
    post(&env.hub, &json!({ "id": "a2", "tenant": "../../admin" })).await;
    drain(&env.hub).await;
    for r in &runs(&env.hub).await["w"] {
        assert_eq!(r.status, RunStatus::Succeeded, "{r:?}");
    }
    let paths: Vec<String> = crm.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(paths, ["/base/v1/bulk/..%2F..%2Fadmin"]);

    post(&env.hub, &json!({ "id": "b1", "tenant": ".." })).await;
    post(&env.hub, &json!({ "id": "b2", "tenant": ".." })).await;
    drain(&env.hub).await;
    let all = runs(&env.hub).await;
    let failed: Vec<_> = all["w"]
        .iter()
        .filter(|r| r.event_id.starts_with('b'))
        .collect();
    assert_eq!(failed.len(), 2);
    for r in failed {
        assert_eq!(r.failure, Some(Failure::Mapping), "{r:?}");
        let err = r.error.as_deref().unwrap();
        assert!(
            err.contains("step upsert") && err.contains("batch.path"),
            "{err}"
        );
        assert!(
            err.contains("dot-segment") && err.contains("\"..\""),
            "{err}"
        );
    }
    assert_eq!(crm.seen().len(), 1, "the refused batch was not sent");
}

#[tokio::test]
async fn sync_polls_render_paths_and_follow_next_urls_only_under_the_base() {
    let api = Server::start(|req| match req.path.as_str() {
        "/base/v1/items/t%2F..%2Fx" => (
            200,
            vec![],
            json!({ "items": [{ "id": "1", "v": "1" }], "next": "http://evil.invalid/base/v1/items?page=2" }),
        ),
        _ => ok(),
    })
    .await;
    let yaml = r#"version: 1
connections:
  api: { base_url: "${env:API}/base/v1" }
syncs:
  s:
    schedule: rate(1 hour)
    source:
      connection: api
      request: { method: GET, path: "/items/{{ watermark }}" }
      records: response.body.items
      id: record.id
      version: record.v
      watermark: record.v
      start: "t/../x"
      pagination: { style: next_url, next: response.body.next }
    steps:
      - { id: put, connection: api, request: { method: PUT, path: "/put/{{ body.id }}" } }
"#;
    let env = hub(yaml, &[("API", &api.url)]);
    let err = ferry::sync::run_sync(&env.hub, "s").await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("outside the connection's base URL"), "{msg}");
    assert!(msg.contains("http://evil.invalid/base/v1/items"), "{msg}");
    assert!(!msg.contains("page=2"), "no query in the reason: {msg}");
    assert!(!err.is_retryable());
    let paths: Vec<String> = api.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(
        paths,
        ["/base/v1/items/t%2F..%2Fx"],
        "the next page was never asked for"
    );
}
