//! The real `ferry-ingest` binary, run as Lambda runs it, against a stand-in
//! Runtime API on 127.0.0.1.

use std::path::Path;

use ferry_testkit::events_dir;
use ferry_testkit::runtime_api::{
    Outcome, assert_broken_config_fails_at_init, events_env, serve_one,
};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ferry-ingest");

#[tokio::test]
async fn a_broken_config_fails_at_init_with_one_clear_json_line() {
    let line = assert_broken_config_fails_at_init(Path::new(BIN)).await;
    assert_eq!(line["function"], "ingest");
}

#[tokio::test]
async fn without_ferry_store_it_refuses_a_store_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let env: Vec<(String, String)> = events_env(dir.path())
        .into_iter()
        .filter(|(k, _)| k != "FERRY_STORE")
        .collect();
    let api = ferry_testkit::runtime_api::RuntimeApi::start().await;
    let out = api.spawn(Path::new(BIN), &env).wait_with_output().unwrap();
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line: Value = stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|l| l["level"] == "ERROR")
        .unwrap_or_else(|| panic!("no error line: {stdout}"));
    assert!(
        line["error"]
            .as_str()
            .unwrap()
            .contains("FERRY_STORE is not set"),
        "{line}"
    );
    assert!(api.first_poll().is_none());
}

#[tokio::test]
async fn the_binary_answers_signed_events_from_both_apis() {
    for path in [
        "ingest/http-v2/hmac-sha256.json",
        "ingest/rest-v1/github-base64.json",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(events_dir().join(path)).unwrap();
        let event: Value = serde_json::from_str(&text).unwrap();
        let (outcome, logs) = serve_one(Path::new(BIN), &events_env(dir.path()), event).await;
        let Outcome::Response(resp) = outcome else {
            panic!("{path}: {outcome:?}")
        };
        assert_eq!(resp["statusCode"], 202, "{path}: {resp}");
        let body: Value = serde_json::from_str(resp["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["status"], "accepted", "{path}");

        let ready = logs
            .iter()
            .find(|l| l["message"] == "ready")
            .expect("a ready line");
        assert_eq!(ready["function"], "ingest");
        assert!(ready["init_us"].as_u64().is_some(), "{ready}");
        // The accepted line carries the request's source and event id in its span.
        let accepted = logs
            .iter()
            .find(|l| l["message"] == "accepted event")
            .unwrap_or_else(|| panic!("{logs:#?}"));
        assert_eq!(accepted["span"]["event_id"], body["event_id"], "{accepted}");
        assert!(accepted["spans"][0]["requestId"].is_string(), "{accepted}");
    }
}

/// One invocation prints exactly one EMF line, valid against the schema of
/// the CloudWatch Embedded Metric Format specification, with what it counted.
#[tokio::test]
async fn one_invocation_prints_one_emf_line_with_its_counts() {
    let dir = tempfile::tempdir().unwrap();
    let text =
        std::fs::read_to_string(events_dir().join("ingest/http-v2/hmac-sha256.json")).unwrap();
    let event: Value = serde_json::from_str(&text).unwrap();
    let (outcome, logs) = serve_one(Path::new(BIN), &events_env(dir.path()), event).await;
    assert!(matches!(outcome, Outcome::Response(_)), "{outcome:?}");
    let emf: Vec<&Value> = logs.iter().filter(|l| l.get("_aws").is_some()).collect();
    assert_eq!(emf.len(), 1, "{logs:#?}");
    let line = emf[0];

    let schema_path = ferry_testkit::repo_root().join("shared/tests/fixtures/emf.schema.json");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    let validator = jsonschema::draft7::new(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(line).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}: {line}");

    let directives = line["_aws"]["CloudWatchMetrics"].as_array().unwrap();
    assert_eq!(directives.len(), 1, "{line}");
    assert_eq!(directives[0]["Namespace"], "ferry");
    assert_eq!(
        directives[0]["Dimensions"],
        serde_json::json!([["source", "outcome"]])
    );
    assert_eq!(
        directives[0]["Metrics"],
        serde_json::json!([{ "Name": "ferry_events_total", "Unit": "Count" }])
    );
    assert_eq!(line["source"], "website-form");
    assert_eq!(line["outcome"], "accepted");
    assert_eq!(line["ferry_events_total"], 1);
    assert!(
        line["_aws"]["Timestamp"].as_i64().is_some_and(|t| t > 0),
        "{line}"
    );
}
