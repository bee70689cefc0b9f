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
