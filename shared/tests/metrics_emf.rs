//! EMF lines against the CloudWatch Embedded Metric Format specification:
//! its JSON schema (tests/fixtures/emf.schema.json, copied from the
//! specification, which cites its source) and the rules the schema cannot
//! state (targets on the root node, numbers or at most 100 of them, string
//! dimensions, at most 100 metric definitions per directive).

use std::time::Duration;

use ferry::execute::Disposition;
use ferry::ingest::Reply;
use ferry::metrics::Metrics;
use ferry::metrics::emf::{documents, write};
use ferry::model::{Failure, RunRecord, RunStatus};
use serde_json::{Value, json};

fn validator() -> jsonschema::Validator {
    let text = include_str!("fixtures/emf.schema.json");
    let schema: Value = serde_json::from_str(text).unwrap();
    jsonschema::draft7::new(&schema).expect("the specification's schema compiles")
}

/// Every problem with `doc` as an EMF document (empty: valid).
fn problems(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    let mut out: Vec<String> = v.iter_errors(doc).map(|e| e.to_string()).collect();
    let directives = doc["_aws"]["CloudWatchMetrics"].as_array();
    for d in directives.into_iter().flatten() {
        for set in d["Dimensions"].as_array().into_iter().flatten() {
            for key in set.as_array().into_iter().flatten() {
                let key = key.as_str().unwrap_or_default();
                if !doc[key].is_string() {
                    out.push(format!(
                        "dimension {key:?} is not a string member of the root"
                    ));
                }
            }
        }
        let metrics = d["Metrics"].as_array().map_or(&[][..], |m| m.as_slice());
        if metrics.len() > 100 {
            out.push(format!(
                "{} metric definitions in a directive",
                metrics.len()
            ));
        }
        for m in metrics {
            let name = m["Name"].as_str().unwrap_or_default();
            match &doc[name] {
                Value::Number(_) => {}
                Value::Array(a) if a.len() <= 100 && a.iter().all(Value::is_number) => {}
                other => out.push(format!("metric {name:?} has target {other}")),
            }
        }
    }
    out
}

fn run(workflow: &str, status: RunStatus, failure: Option<Failure>) -> RunRecord {
    RunRecord {
        id: format!("{workflow}-{}", status.as_str()),
        workflow: workflow.into(),
        source: "form".into(),
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

fn reply(status: u16) -> Reply {
    Reply {
        status,
        body: json!({ "status": if status == 200 { "duplicate" } else { "" } }),
    }
}

/// A mixed load: two sources, two workflows in three statuses, two
/// connections with every class, more durations than one array may hold.
fn mixed(m: &Metrics) {
    for (source, status, n) in [("form", 202, 5), ("form", 200, 2), ("shop", 401, 3)] {
        for _ in 0..n {
            m.event(Some(source), &reply(status));
        }
    }
    m.run_saved(&run("lead", RunStatus::Succeeded, None), &Disposition::Done);
    m.run_saved(&run("lead", RunStatus::Skipped, None), &Disposition::Done);
    let dead = run("order", RunStatus::DeadLettered, Some(Failure::Exhausted));
    m.run_saved(&dead, &Disposition::DeadLetter("x".into()));
    for i in 0..150_u64 {
        let status = [Some(200), Some(301), Some(404), Some(500), None][(i % 5) as usize];
        m.call("crm", status, Duration::from_millis(i));
    }
    m.call("chat", Some(200), Duration::from_millis(12));
    m.rate_limit_wait("chat");
}

#[test]
fn the_validator_refuses_what_the_specification_refuses() {
    let v = validator();
    let good = json!({
        "_aws": { "Timestamp": 1, "CloudWatchMetrics": [
            { "Namespace": "ferry", "Dimensions": [["source"]], "Metrics": [{ "Name": "n", "Unit": "Count" }] }
        ]},
        "source": "form", "n": 1,
    });
    assert_eq!(problems(&v, &good), Vec::<String>::new());
    let mut no_time = good.clone();
    no_time["_aws"].as_object_mut().unwrap().remove("Timestamp");
    let mut bad_unit = good.clone();
    bad_unit["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = json!("Things");
    let mut no_dimension = good.clone();
    no_dimension.as_object_mut().unwrap().remove("source");
    let mut text_value = good.clone();
    text_value["n"] = json!("1");
    for bad in [no_time, bad_unit, no_dimension, text_value] {
        assert!(!problems(&v, &bad).is_empty(), "accepted {bad}");
    }
}

#[test]
fn every_document_of_a_mixed_load_is_valid_and_adds_up() {
    let v = validator();
    let m = Metrics::new();
    mixed(&m);
    let docs = documents(m.take(), 1_764_000_000_000);
    assert!(!docs.is_empty());
    for doc in &docs {
        assert_eq!(problems(&v, doc), Vec::<String>::new(), "{doc:#}");
        assert_eq!(doc["_aws"]["Timestamp"], 1_764_000_000_000_i64);
        for d in doc["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
            assert_eq!(d["Namespace"], "ferry");
        }
    }
    // The values add up to what was counted, per dimension values.
    let sum = |name: &str, dims: &[(&str, &str)]| -> u64 {
        docs.iter()
            .filter(|d| dims.iter().all(|(k, v)| d[*k] == *v))
            .filter_map(|d| d[name].as_u64())
            .sum()
    };
    let events = "ferry_events_total";
    assert_eq!(
        sum(events, &[("source", "form"), ("outcome", "accepted")]),
        5
    );
    assert_eq!(
        sum(events, &[("source", "form"), ("outcome", "duplicate")]),
        2
    );
    assert_eq!(
        sum(events, &[("source", "shop"), ("outcome", "rejected")]),
        3
    );
    let runs = "ferry_runs_total";
    assert_eq!(
        sum(runs, &[("workflow", "lead"), ("status", "succeeded")]),
        1
    );
    assert_eq!(sum(runs, &[("workflow", "lead"), ("status", "skipped")]), 1);
    let dead = [
        ("workflow", "order"),
        ("status", "dead_lettered"),
        ("failure", "exhausted"),
    ];
    assert_eq!(sum(runs, &dead), 1);
    assert_eq!(sum("ferry_dlq_sends_total", &[("workflow", "order")]), 1);
    for class in ["2xx", "3xx", "4xx", "5xx", "error"] {
        let dims = [("connection", "crm"), ("class", class)];
        assert_eq!(sum("ferry_calls_total", &dims), 30, "{class}");
    }
    assert_eq!(
        sum("ferry_rate_limit_waits_total", &[("connection", "chat")]),
        1
    );
    let durations: Vec<&Value> = docs
        .iter()
        .filter(|d| d["connection"] == "crm")
        .filter_map(|d| d["ferry_call_duration_seconds"].as_array())
        .flatten()
        .collect();
    assert_eq!(durations.len(), 100, "at most 100 values per line");
}

#[test]
fn write_prints_one_json_document_per_line_then_nothing() {
    let m = Metrics::new();
    m.event(Some("form"), &reply(202));
    m.call("crm", Some(201), Duration::from_millis(40));
    let mut out = Vec::new();
    assert_eq!(write(&m, 7, &mut out).unwrap(), 1);
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    let doc: Value = serde_json::from_str(text.trim_end()).unwrap();
    assert_eq!(problems(&validator(), &doc), Vec::<String>::new());
    assert_eq!(doc["ferry_events_total"], 1);
    assert_eq!(doc["ferry_call_duration_seconds"], json!([0.04]));

    let mut again = Vec::new();
    assert_eq!(write(&m, 8, &mut again).unwrap(), 0);
    assert!(again.is_empty(), "nothing counted since: no line");
}
