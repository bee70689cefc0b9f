//! The real `ferry-execute` binary, run as Lambda runs it, against a stand-in
//! Runtime API on 127.0.0.1.

use std::path::Path;

use ferry_testkit::runtime_api::{
    Outcome, assert_broken_config_fails_at_init, events_env, serve_one,
};
use ferry_testkit::target::Target;
use ferry_testkit::{events_dir, sqs};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ferry-execute");

#[tokio::test]
async fn a_broken_config_fails_at_init_with_one_clear_json_line() {
    let line = assert_broken_config_fails_at_init(Path::new(BIN)).await;
    assert_eq!(line["function"], "execute");
}

#[tokio::test]
async fn the_binary_runs_the_batch_and_logs_each_record_with_its_run() {
    let target = Target::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = events_env(dir.path());
    for (k, p) in [
        ("CRM_URL", "crm"),
        ("CHAT_URL", "chat"),
        ("AUDIT_URL", "audit"),
    ] {
        env.push((k.into(), format!("{}/{p}", target.url())));
    }
    env.push(("FERRY_LOG".into(), "debug".into()));
    let text = std::fs::read_to_string(events_dir().join("sqs/batch.json")).unwrap();
    let event: Value = serde_json::from_str(&text).unwrap();

    let (outcome, logs) = serve_one(Path::new(BIN), &env, event.clone()).await;
    let Outcome::Response(resp) = outcome else {
        panic!("{outcome:?}")
    };
    // The two jobs ran; the two malformed records could not be moved to this
    // store's dead-letter queue (their receipts are SQS's), so they are
    // reported for SQS to retry rather than dropped.
    let id = |i: usize| {
        event["Records"][i]["messageId"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(sqs::failed_ids(&resp), vec![id(2), id(3)], "{resp}");
    assert_eq!(target.seen_at("/crm/contacts").len(), 1);
    assert_eq!(target.seen_at("/audit/events/github").len(), 1);

    let executed: Vec<&Value> = logs.iter().filter(|l| l["message"] == "executed").collect();
    assert_eq!(executed.len(), 2, "{logs:#?}");
    // The records run together: find each run's line by its run id.
    let lead = executed
        .iter()
        .find(|l| l["span"]["run_id"] == "018bd0a4-6c00-7000-8000-000000000001")
        .unwrap_or_else(|| panic!("no line for the lead run: {executed:#?}"));
    assert_eq!(lead["span"]["event_id"], "sub_0001");
    assert_eq!(lead["span"]["message_id"], id(0));
    assert!(
        executed.iter().any(
            |l| l["span"]["run_id"] == "018bd0a4-6c00-7000-8000-000000000002"
                && l["span"]["message_id"] == id(1)
        ),
        "{executed:#?}"
    );

    // What the invocation counted, as EMF lines: two runs of two workflows,
    // three calls on three connections (crm, chat, audit). A root member
    // holds one value of a dimension, so three lines (see docs/metrics.md).
    let emf: Vec<&Value> = logs.iter().filter(|l| l.get("_aws").is_some()).collect();
    let shown: Vec<String> = emf.iter().map(|l| l.to_string()).collect();
    assert_eq!(emf.len(), 3, "{}", shown.join("\n"));
    let total = |name: &str| emf.iter().filter_map(|l| l[name].as_u64()).sum::<u64>();
    assert_eq!(total("ferry_runs_total"), 2, "{}", shown.join("\n"));
    let calls = target.seen().len() as u64;
    assert_eq!(
        (calls, total("ferry_calls_total")),
        (3, 3),
        "{}",
        shown.join("\n")
    );
    for line in &emf {
        assert_eq!(line["_aws"]["CloudWatchMetrics"][0]["Namespace"], "ferry");
    }
}
