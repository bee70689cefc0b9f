use std::time::Duration;

use serde_json::json;

use super::emf::{Series, documents};
use super::*;
use crate::model::RunRecord;

fn reply(status: u16, body: serde_json::Value) -> Reply {
    Reply { status, body }
}

fn run(workflow: &str, status: RunStatus, failure: Option<Failure>) -> RunRecord {
    RunRecord {
        id: "r".into(),
        workflow: workflow.into(),
        source: "s".into(),
        event_id: "e".into(),
        status,
        attempts: 1,
        created_at: 0,
        updated_at: 0,
        error: None,
        failure,
        steps: Vec::new(),
        event: None,
        expires_at: None,
        rerun_of: None,
        reruns: Vec::new(),
    }
}

#[test]
fn outcomes_follow_ingest_answers() {
    let of = |s, b| Outcome::of(&reply(s, b));
    assert_eq!(
        of(202, json!({"status": "accepted"})),
        Some(Outcome::Accepted)
    );
    assert_eq!(
        of(200, json!({"status": "duplicate"})),
        Some(Outcome::Duplicate)
    );
    assert_eq!(
        of(401, json!({"error": "bad_signature"})),
        Some(Outcome::Rejected)
    );
    assert_eq!(of(413, json!({})), Some(Outcome::Rejected));
    // A Slack URL challenge is no event; a 503 asks the sender to retry.
    assert_eq!(of(200, json!({"challenge": "x"})), None);
    assert_eq!(of(503, json!({"error": "store_unavailable"})), None);
}

#[test]
fn classes_by_status() {
    let classes: Vec<&str> = [Some(204), Some(302), Some(429), Some(503), None]
        .into_iter()
        .map(|s| Class::of(s).as_str())
        .collect();
    assert_eq!(classes, ["2xx", "3xx", "4xx", "5xx", "error"]);
}

#[test]
fn prometheus_text_has_every_count_with_its_labels() {
    let m = Metrics::new();
    m.event(Some("form"), &reply(202, json!({})));
    m.event(Some("form"), &reply(202, json!({})));
    m.event(Some("form"), &reply(401, json!({})));
    m.event(None, &reply(404, json!({})));
    let dead = run("lead", RunStatus::DeadLettered, Some(Failure::Mapping));
    m.run_saved(&dead, &Disposition::DeadLetter("x".into()));
    m.run_saved(&run("lead", RunStatus::Succeeded, None), &Disposition::Done);
    m.run_saved(&run("lead", RunStatus::Retrying, None), &Disposition::Done);
    m.call("crm", Some(201), Duration::from_millis(30));
    m.call("crm", None, Duration::from_millis(5));
    m.rate_limit_wait("crm");
    let text = m.prometheus();
    for line in [
        r#"ferry_events_total{source="form",outcome="accepted"} 2"#,
        r#"ferry_events_total{source="form",outcome="duplicate"} 0"#,
        r#"ferry_events_total{source="form",outcome="rejected"} 1"#,
        r#"ferry_runs_total{workflow="lead",status="dead_lettered",failure="mapping"} 1"#,
        r#"ferry_runs_total{workflow="lead",status="succeeded",failure="none"} 1"#,
        r#"ferry_dlq_sends_total{workflow="lead"} 1"#,
        r#"ferry_calls_total{connection="crm",class="2xx"} 1"#,
        r#"ferry_calls_total{connection="crm",class="error"} 1"#,
        r#"ferry_call_duration_seconds_count{connection="crm"} 2"#,
        r#"ferry_call_duration_seconds_bucket{connection="crm",le="0.005"} 1"#,
        r#"ferry_rate_limit_waits_total{connection="crm"} 1"#,
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }
    assert!(!text.contains("retrying"), "{text}");
}

#[test]
fn a_take_reports_each_count_once() {
    let m = Metrics::new();
    m.event(Some("form"), &reply(202, json!({})));
    m.call("crm", Some(200), Duration::from_millis(250));
    let first = m.take();
    assert_eq!(
        first,
        vec![
            Series {
                name: EVENTS,
                unit: "Count",
                dims: vec![("source", "form".into()), ("outcome", "accepted".into())],
                value: json!(1),
            },
            Series {
                name: CALLS,
                unit: "Count",
                dims: vec![("connection", "crm".into()), ("class", "2xx".into())],
                value: json!(1),
            },
            Series {
                name: CALL_DURATION,
                unit: "Seconds",
                dims: vec![("connection", "crm".into())],
                value: json!([0.25]),
            },
        ]
    );
    assert_eq!(m.take(), vec![]);
    m.event(Some("form"), &reply(202, json!({})));
    assert_eq!(m.take()[0].value, json!(1));
    // Prometheus keeps the running total.
    assert!(
        m.prometheus()
            .contains(r#"ferry_events_total{source="form",outcome="accepted"} 2"#)
    );
}

#[test]
fn one_document_unless_a_dimension_needs_two_values() {
    let m = Metrics::new();
    m.event(Some("form"), &reply(202, json!({})));
    m.run_saved(&run("lead", RunStatus::Succeeded, None), &Disposition::Done);
    m.call("crm", Some(200), Duration::from_millis(10));
    let docs = documents(m.take(), 1_700_000_000_000);
    assert_eq!(docs.len(), 1, "{docs:#?}");
    let doc = &docs[0];
    assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000_i64);
    assert_eq!(doc["source"], "form");
    assert_eq!(doc["ferry_events_total"], 1);
    assert_eq!(doc["ferry_runs_total"], 1);
    assert_eq!(doc["status"], "succeeded");
    assert_eq!(doc["ferry_calls_total"], 1);

    // Two statuses of one workflow cannot share a `status` member.
    m.run_saved(&run("lead", RunStatus::Succeeded, None), &Disposition::Done);
    let dead = run("lead", RunStatus::DeadLettered, Some(Failure::Rejected));
    m.run_saved(&dead, &Disposition::DeadLetter("x".into()));
    let docs = documents(m.take(), 0);
    assert_eq!(docs.len(), 2, "{docs:#?}");
    let statuses: Vec<&str> = docs.iter().map(|d| d["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["succeeded", "dead_lettered"]);
    assert_eq!(docs[0]["ferry_dlq_sends_total"], 1);
}
