//! The [`RunLog::search`](crate::ports::RunLog::search) contract: text in
//! the event payload, ASCII case-insensitive, under the query's filters and
//! limit, newest first; `LIKE`'s wildcards are plain text; text outside the
//! payload (the workflow's name, a step's error) does not match.

use std::sync::Arc;

use serde_json::json;

use super::{Backend, Case, Env, T0, case_list, unique};
use crate::model::{RunQuery, RunRecord, RunStatus};
use crate::runlog::ReceivedEvent;

pub(super) fn cases() -> Vec<Case> {
    case_list!("runs":
        search_finds_payload_text,
    )
}

fn run(workflow: &str, created_at: i64, payload: serde_json::Value) -> RunRecord {
    RunRecord {
        id: crate::model::new_run_id(),
        workflow: workflow.into(),
        source: "form".into(),
        event_id: unique("evt"),
        status: RunStatus::Succeeded,
        attempts: 0,
        created_at,
        updated_at: created_at,
        error: Some("needle in the error, not the payload".into()),
        failure: None,
        steps: Vec::new(),
        event: Some(ReceivedEvent {
            received_at: created_at,
            headers: Default::default(),
            query: Default::default(),
            payload,
            truncated: false,
        }),
        expires_at: None,
        rerun_of: None,
        reruns: Vec::new(),
    }
}

async fn search_finds_payload_text(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let runs = &env.ports.runs;
    let wf = unique("wf-search");
    let made = [
        run(&wf, T0, json!({ "email": "Ada@Example.com", "n": 1 })),
        run(
            &wf,
            T0 + 1,
            json!({ "email": "grace@example.com", "note": "50%_off" }),
        ),
        run(&wf, T0 + 2, json!({ "email": "ADA@example.com" })),
        run(&wf, T0 + 3, json!("a bare string payload")),
    ];
    for r in &made {
        assert!(runs.create(r).await.unwrap());
    }
    let query = RunQuery {
        workflow: Some(wf.clone()),
        limit: 10,
        ..RunQuery::default()
    };
    let ids = |rs: Vec<RunRecord>| rs.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let found = runs.search(&query, "ada@EXAMPLE").await.unwrap();
    assert_eq!(ids(found), [made[2].id.clone(), made[0].id.clone()]);
    // The payload as JSON text: keys and quotes count.
    let found = runs.search(&query, "\"email\":\"grace").await.unwrap();
    assert_eq!(ids(found), [made[1].id.clone()]);
    let found = runs.search(&query, "\"a bare").await.unwrap();
    assert_eq!(ids(found), [made[3].id.clone()]);
    // `%` and `_` are text, not wildcards.
    let found = runs.search(&query, "0%_o").await.unwrap();
    assert_eq!(ids(found), [made[1].id.clone()]);
    assert!(runs.search(&query, "5_%off").await.unwrap().is_empty());
    // Only the payload: the workflow's name and the run's error are not searched.
    assert!(runs.search(&query, "needle").await.unwrap().is_empty());
    assert!(runs.search(&query, &wf).await.unwrap().is_empty());
    // The query's filters and limit hold.
    let newest = RunQuery {
        limit: 1,
        ..query.clone()
    };
    let found = runs.search(&newest, "example.com").await.unwrap();
    assert_eq!(ids(found), [made[2].id.clone()]);
    let older = RunQuery {
        until: Some(T0 + 2),
        ..query.clone()
    };
    let found = runs.search(&older, "ada").await.unwrap();
    assert_eq!(ids(found), [made[0].id.clone()]);
    let other = RunQuery {
        workflow: Some(unique("wf-none")),
        ..query.clone()
    };
    assert!(runs.search(&other, "ada").await.unwrap().is_empty());
}
