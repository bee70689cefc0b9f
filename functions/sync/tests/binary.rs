//! The real `ferry-sync` binary, run as Lambda runs it, against a stand-in
//! Runtime API on 127.0.0.1.

use std::path::Path;

use ferry_testkit::runtime_api::{
    Outcome, assert_broken_config_fails_at_init, events_env, serve_one,
};
use ferry_testkit::target::Target;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_ferry-sync");

#[tokio::test]
async fn a_broken_config_fails_at_init_with_one_clear_json_line() {
    let line = assert_broken_config_fails_at_init(Path::new(BIN)).await;
    assert_eq!(line["function"], "sync");
}

#[tokio::test]
async fn the_binary_runs_the_named_sync_and_reports_an_unnamed_one_as_an_error() {
    let target = Target::start().await;
    target.respond(
        "/crm/contacts",
        200,
        json!({ "results": [{ "id": "c-1", "email": "ada@example.com", "updated_at": "2023-11-14T10:00:00Z" }] }),
    );
    let dir = tempfile::tempdir().unwrap();
    let mut env = events_env(dir.path());
    env.push(("CRM_URL".into(), format!("{}/crm", target.url())));

    let (outcome, logs) = serve_one(Path::new(BIN), &env, json!({ "sync": "crm-contacts" })).await;
    let Outcome::Response(report) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(
        (report["seen"].as_u64(), report["sent"].as_u64()),
        (Some(1), Some(1)),
        "{report}"
    );
    let ran = logs
        .iter()
        .find(|l| l["message"] == "sync ran")
        .expect("a sync line");
    assert_eq!(ran["span"]["sync"], "crm-contacts");

    let (outcome, _) = serve_one(Path::new(BIN), &env, json!({ "detail": {} })).await;
    let Outcome::Error(err) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(err.to_string().contains("does not name a sync"), "{err}");
}
