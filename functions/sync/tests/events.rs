//! The scheduled events in `events/` through the sync handler: the sync
//! polls a local server from its cursor and queues a run per record.

use ferry::model::Job;
use ferry_sync::handle;
use ferry_testkit::events::committed;
use ferry_testkit::target::Target;
use ferry_testkit::{Fixture, events_dir};
use serde_json::{Value, json};
use std::time::Duration;

fn contacts(target: &Target) {
    target.respond(
        "/crm/contacts",
        200,
        json!({ "results": [
            { "id": "c-1", "email": "ada@example.com", "updated_at": "2023-11-14T10:00:00Z" },
            { "id": "c-2", "email": "grace@example.com", "updated_at": "2023-11-14T11:30:00Z" }
        ] }),
    );
}

#[tokio::test]
async fn every_scheduled_event_runs_its_sync() {
    let files: Vec<String> = committed()
        .into_iter()
        .filter(|p| p.starts_with("schedule/"))
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    for path in files {
        let text = std::fs::read_to_string(events_dir().join(&path)).unwrap();
        let event: Value = serde_json::from_str(&text).unwrap();
        let target = Target::start().await;
        contacts(&target);
        let fx = Fixture::new(&target);

        let report = handle(&fx.hub, event.clone())
            .await
            .unwrap_or_else(|e| panic!("events/{path}: {e}"));
        assert_eq!(
            (report.counts.seen, report.counts.sent),
            (2, 2),
            "events/{path}: {report:?}"
        );
        let polls = target.seen_at("/crm/contacts");
        assert_eq!(
            polls[0].query.as_deref(),
            Some("updated_since=2023-11-01T00%3A00%3A00Z"),
            "events/{path}: the first run starts at `start`"
        );
        let msgs = fx
            .ports()
            .queue
            .receive(10, Duration::from_secs(30), Duration::ZERO)
            .await
            .unwrap();
        let mut ids: Vec<String> = msgs
            .iter()
            .map(|m| match Job::decode(&m.body).unwrap() {
                Job::Run(j) => {
                    assert_eq!(j.workflow, "sync:crm-contacts");
                    j.event_id
                }
            })
            .collect();
        ids.sort();
        assert_eq!(
            ids,
            ["c-1@2023-11-14T10:00:00Z", "c-2@2023-11-14T11:30:00Z"]
        );

        // The next schedule resumes from the saved cursor; nothing is sent twice.
        let report = handle(&fx.hub, event).await.unwrap();
        assert_eq!(
            (report.counts.sent, report.counts.skipped),
            (0, 2),
            "events/{path}"
        );
        assert_eq!(
            target.seen_at("/crm/contacts")[1].query.as_deref(),
            Some("updated_since=2023-11-14T11%3A30%3A00Z")
        );
    }
}

#[tokio::test]
async fn an_event_that_names_no_sync_or_an_unknown_one_fails_the_invocation() {
    let target = Target::start().await;
    let fx = Fixture::new(&target);
    let raw: Value = serde_json::from_str(
        &std::fs::read_to_string(events_dir().join("schedule/scheduled-event.json")).unwrap(),
    )
    .unwrap();
    let mut bare = raw.clone();
    bare["detail"] = json!({});
    let err = handle(&fx.hub, bare).await.unwrap_err().to_string();
    assert!(err.contains("does not name a sync"), "{err}");

    let err = handle(&fx.hub, json!({ "sync": "nope" }))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no sync named \"nope\""), "{err}");
    assert!(target.seen().is_empty());
}

#[tokio::test]
async fn a_failing_source_fails_the_invocation_and_keeps_the_cursor() {
    let target = Target::start().await;
    target.respond("/crm/contacts", 500, json!({ "error": "down" }));
    let fx = Fixture::new(&target);
    let err = handle(&fx.hub, json!({ "sync": "crm-contacts" }))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("HTTP 500"), "{err}");
    // The failure is recorded as the last run; no watermark moved.
    let cursor = fx
        .ports()
        .cursors
        .get("sync:crm-contacts")
        .await
        .unwrap()
        .expect("the sync state");
    let state: serde_json::Value = serde_json::from_str(&cursor.value).unwrap();
    assert_eq!(state["polls"], json!({}), "{state}");
    assert_eq!(state["last_run"]["outcome"], "failed", "{state}");
}
