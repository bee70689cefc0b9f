//! A header rendered from the payload with CR, LF, NUL or another character
//! HTTP does not allow is a mapping error (dead-lettered at once), not a
//! connection failure retried twelve times.

use ferry::model::{Failure, RunStatus};
use serde_json::json;

use crate::support::{SOURCE, Server, drain, hub, ok, post, runs};

#[tokio::test]
async fn a_bad_header_value_is_a_mapping_error_naming_the_step_and_header() {
    let crm = Server::start(|_| ok()).await;
    let yaml = format!(
        r#"version: 1
connections:
  crm: {{ base_url: "${{env:CRM}}" }}
{SOURCE}workflows:
  w:
    trigger: {{ source: form }}
    retry: {{ max_attempts: 3, initial_backoff: 1ms, max_backoff: 2ms }}
    steps:
      - id: notify
        connection: crm
        request: {{ method: POST, path: /notes, headers: {{ X-Note: "{{{{ body.note }}}}" }}, json: {{ n: 1 }} }}
"#
    );
    let env = hub(&yaml, &[("CRM", &crm.url)]);
    let cases = [
        (
            "crlf",
            "hello\r\nX-Injected: 1",
            "a carriage return (CR) at character 6",
        ),
        ("lf", "hello\nworld", "a line feed (LF) at character 6"),
        ("nul", "hel\0lo", "a NUL at character 4"),
        ("bell", "ring\u{7}", "the control character U+0007"),
        (
            "del",
            "x\u{7f}",
            "the control character U+007F at character 2",
        ),
    ];
    for (id, note, _) in cases {
        post(&env.hub, &json!({ "id": id, "note": note })).await;
    }
    let fine = ["Zoë (UTF-8 is sent as is)", "tab\tand spaces ok"];
    for (i, note) in fine.iter().enumerate() {
        post(&env.hub, &json!({ "id": format!("fine{i}"), "note": note })).await;
    }
    drain(&env.hub).await;
    let runs = &runs(&env.hub).await["w"];
    for (id, note, why) in cases {
        let r = runs.iter().find(|r| r.event_id == id).unwrap();
        assert_eq!(r.status, RunStatus::DeadLettered, "{id}: {r:?}");
        assert_eq!(r.failure, Some(Failure::Mapping), "{id}: {r:?}");
        assert!(r.steps[0].attempts.is_empty(), "{id}: never sent: {r:?}");
        let err = r.error.as_deref().unwrap();
        assert!(
            err.starts_with("step notify: header \"X-Note\": "),
            "{id}: {err}"
        );
        assert!(err.contains(why), "{id}: {err}");
        assert!(!err.contains(note), "{id}: the value is not shown: {err}");
    }
    for r in runs.iter().filter(|r| r.event_id.starts_with("fine")) {
        assert_eq!(r.status, RunStatus::Succeeded, "{r:?}");
    }
    let mut seen: Vec<String> = crm
        .seen()
        .into_iter()
        .map(|s| s.headers["x-note"].clone())
        .collect();
    seen.sort();
    assert_eq!(seen, fine, "accepted values arrive verbatim");
}
