//! A connection's `allow` list: `ferry validate` refuses a step outside it,
//! and the call path refuses a rendered request outside it without sending
//! (the step fails as `rejected`, naming the list).

use ferry::model::{Failure, RunStatus};
use serde_json::json;

use crate::support::{SOURCE, Server, drain, hub_with, ok, post, runs};

fn config(path: &str, method: &str) -> String {
    format!(
        r#"version: 1
connections:
  crm:
    base_url: "${{env:CRM}}/base/v1"
    allow: ["GET /contacts*", "POST /contacts"]
{SOURCE}workflows:
  w:
    trigger: {{ source: form }}
    steps:
      - id: call
        connection: crm
        request: {{ method: {method}, path: "{path}", json: {{ n: 1 }} }}
"#
    )
}

#[test]
fn validate_names_the_step_outside_the_list() {
    let env = |n: &str| Some(format!("http://127.0.0.1:9/{n}"));
    let yaml = config("/contacts/{{ body.id }}", "DELETE");
    let err = ferry::config::load_str(&yaml, &env)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("workflows.w.steps[0].request.path")
            && err.contains("DELETE /contacts/{{…}} is outside the connection's allow list"),
        "{err}"
    );
    let line = format!(
        "line {}",
        yaml.lines().position(|l| l.contains("DELETE")).unwrap() + 1
    );
    assert!(err.contains(&line), "{line} in {err}");
    let dots = config("/contacts/../admin", "GET");
    let err = ferry::config::load_str(&dots, &env)
        .unwrap_err()
        .to_string();
    assert!(err.contains("GET /admin is outside"), "{err}");
    assert!(ferry::config::load_str(&config("/contacts", "POST"), &env).is_ok());
    let bad = yaml.replace("\"POST /contacts\"", "\"FETCH /contacts\"");
    let err = ferry::config::load_str(&bad, &env).unwrap_err().to_string();
    assert!(
        err.contains("connections.crm.allow[1]") && err.contains("unknown method"),
        "{err}"
    );
}

#[tokio::test]
async fn a_rendered_request_outside_the_list_is_refused_unsent() {
    let crm = Server::start(|_| ok()).await;
    // Load an allowed step, then swap in a path that escapes with `..` once
    // the URL is normalised, as if validation had been skipped.
    let env = hub_with(&config("/contacts", "POST"), &[("CRM", &crm.url)], |c| {
        let w = c.workflows.get_mut("w").unwrap();
        w.steps[0].request.path = "/contacts/{{ body.id }}/../../admin".into();
    });
    post(&env.hub, &json!({ "id": "e1" })).await;
    drain(&env.hub).await;
    let runs = runs(&env.hub).await;
    let r = &runs["w"][0];
    assert_eq!(r.status, RunStatus::DeadLettered, "{r:?}");
    assert_eq!(r.failure, Some(Failure::Rejected), "{r:?}");
    let why = r.error.as_deref().unwrap_or_default();
    assert!(
        why.contains("POST /admin is outside the connection's allow list")
            && why.contains("\"GET /contacts*\""),
        "{why}"
    );
    assert!(crm.seen().is_empty(), "nothing was sent: {:?}", crm.seen());
}

#[tokio::test]
async fn a_request_inside_the_list_is_sent() {
    let crm = Server::start(|_| ok()).await;
    let env = hub_with(&config("/contacts", "POST"), &[("CRM", &crm.url)], |_| {});
    post(&env.hub, &json!({ "id": "e1" })).await;
    drain(&env.hub).await;
    let runs = runs(&env.hub).await;
    assert_eq!(
        runs["w"][0].status,
        RunStatus::Succeeded,
        "{:?}",
        runs["w"][0]
    );
    let seen = crm.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("POST", "/base/v1/contacts")
    );
}

/// A poll and a batch call are judged like steps: by their own method and
/// path (a batched step by its batch endpoint, which is what is sent).
#[test]
fn validate_judges_polls_and_batch_calls_too() {
    let yaml = r#"version: 1
connections:
  crm:
    base_url: "https://crm.example.com/v1"
    allow: ["GET /contacts", "POST /contacts/batch"]
sources:
  form: { verify: { scheme: none } }
workflows:
  w:
    trigger: { source: form }
    steps:
      - id: many
        connection: crm
        request: { method: POST, path: /not-sent, json: { n: 1 } }
        batch: { max_items: 10, path: /contacts/bulk }
syncs:
  pull:
    schedule: rate(5 minutes)
    source: { connection: crm, request: { method: GET, path: /deals }, records: response.body, id: record.id }
    steps:
      - { id: put, connection: crm, request: { method: POST, path: /contacts/batch, json: { n: 1 } } }
"#;
    let err = ferry::config::load_str(yaml, &|_| None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("workflows.w.steps[0].batch.path: POST /contacts/bulk is outside"),
        "{err}"
    );
    assert!(
        err.contains("syncs.pull.source.request.path: GET /deals is outside"),
        "{err}"
    );
    assert!(
        !err.contains("/not-sent"),
        "the batched step's own path is not sent: {err}"
    );
    assert!(
        !err.contains("syncs.pull.steps[0]"),
        "inside the list: {err}"
    );
}
