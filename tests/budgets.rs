//! End to end: a hostile template fails its own run as a mapping error, at
//! once and without calling the target, while other runs go through.
//! The real `ferry dev` binary, real HTTP on 127.0.0.1.

mod support;

use serde_json::json;
use support::{Answer, Hub, Target};

const SECRET: &str = "form-secret-for-tests";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_over_budget_dead_letters_its_run_only() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    target.behave("/contacts", |_| {
        Some(Answer::status(200, json!({"ok": true})))
    });
    let config = "version: 1\nconnections:\n  api: { base_url: \"${env:TARGET}\" }\nsources:\n  s:\n    verify: { scheme: hmac-sha256, header: X-Signature, secret: \"${env:FORM_SECRET}\" }\n    event_id: \"{{ body.id }}\"\nworkflows:\n  w:\n    trigger: { source: s }\n    steps:\n      - id: create_contact\n        connection: api\n        request: { method: POST, path: /contacts, json: { name: \"{{ body.s * body.n }}\" } }\n";
    let url = target.url();
    let hub = Hub::start(
        dir.path(),
        config,
        &[("TARGET", &url), ("FORM_SECRET", SECRET)],
    );
    let mut runs = Vec::new();
    for (id, n) in [("huge", 100_000_000u64), ("loop", 0), ("fine", 3)] {
        let body = if id == "loop" {
            json!({"id": id, "s": "x", "n": "{% for i in range(100000) %}{% endfor %}"})
        } else {
            json!({"id": id, "s": "ab", "n": n})
        };
        let (status, reply) = hub.post_signed("s", SECRET, &body).await;
        assert_eq!(status, 202, "{reply}");
        runs.push(reply["run_id"].as_str().unwrap().to_owned());
    }
    let huge = hub.finished(&runs[0]).await;
    assert_eq!(
        (huge["status"].as_str(), huge["failure"].as_str()),
        (Some("dead_lettered"), Some("mapping")),
        "{huge}"
    );
    let error = huge["error"].as_str().unwrap();
    assert!(
        error.starts_with("step create_contact: ") && error.contains("over the template budget"),
        "{error}"
    );
    let fine = hub.finished(&runs[2]).await;
    assert_eq!(fine["status"], "succeeded", "{fine}");
    let names: Vec<_> = target
        .seen_at("/contacts")
        .into_iter()
        .map(|s| s.body["name"].clone())
        .collect();
    assert_eq!(
        names,
        [json!("ababab")],
        "only the fine run called the target"
    );
    // Data is data: a template sent in the payload is not run, only multiplied
    // (a string times a string), which is a mapping error too.
    let payload_template = hub.finished(&runs[1]).await;
    assert_eq!(payload_template["failure"], "mapping", "{payload_template}");
}
