//! The [`RunLog`](crate::ports::RunLog) contract: insert-if-absent, replace,
//! and retention (a run past its expiry is gone). Listings: `run_lists.rs`.

use std::sync::Arc;
use std::time::Duration;

use super::{Backend, Case, Env, T0, case_list, unique};
use crate::model::{Attempt, RunQuery, RunRecord, RunStatus, StepRecord, StepStatus};

pub(super) fn cases() -> Vec<Case> {
    case_list!("runs":
        create_is_insert_if_absent,
        put_get_roundtrip,
        put_replaces_every_column,
        runs_expire_after_their_retention,
    )
}

/// A run of `workflow` from source `github` with `status`, created at `created_at`.
pub(super) fn run(workflow: &str, status: RunStatus, created_at: i64) -> RunRecord {
    RunRecord {
        id: crate::model::new_run_id(),
        workflow: workflow.into(),
        source: "github".into(),
        event_id: unique("evt"),
        status,
        attempts: 0,
        created_at,
        updated_at: created_at,
        error: None,
        failure: None,
        steps: Vec::new(),
        event: None,
        expires_at: None,
        rerun_of: None,
        reruns: Vec::new(),
    }
}

/// A run past its `expires_at` (by the store's clock) is gone from `get`
/// and every listing, and its id may be created anew; a younger run stays.
/// A record without `expires_at` (written before retention) keeps 30 days
/// from its last change.
async fn runs_expire_after_their_retention(b: Arc<dyn Backend>) {
    const HOUR: i64 = 3_600_000;
    let env = Env::new(&*b).await;
    let runs = &env.ports.runs;
    let wf = unique("wf");
    let mut old = run(&wf, RunStatus::Succeeded, T0);
    old.expires_at = Some(T0 + HOUR);
    let mut young = run(&wf, RunStatus::Succeeded, T0 + 1);
    young.expires_at = Some(T0 + 3 * HOUR);
    let legacy = run(&wf, RunStatus::Succeeded, T0 + 2);
    for r in [&old, &young, &legacy] {
        assert!(runs.create(r).await.unwrap());
    }
    let ids = |rs: Vec<RunRecord>| rs.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let by_wf = RunQuery {
        workflow: Some(wf.clone()),
        ..RunQuery::default()
    };
    let listed = ids(runs.list(&by_wf).await.unwrap());
    assert_eq!(
        listed,
        [legacy.id.clone(), young.id.clone(), old.id.clone()]
    );

    env.advance(Duration::from_millis(2 * HOUR as u64));
    assert_eq!(runs.get(&old.id).await.unwrap(), None);
    assert_eq!(runs.get(&young.id).await.unwrap().as_ref(), Some(&young));
    assert_eq!(
        ids(runs.list(&by_wf).await.unwrap()),
        [legacy.id.clone(), young.id.clone()]
    );
    let by_status = RunQuery {
        workflow: Some(wf.clone()),
        status: Some(RunStatus::Succeeded),
        limit: 0,
        ..RunQuery::default()
    };
    assert_eq!(
        ids(runs.list(&by_status).await.unwrap()),
        [legacy.id.clone(), young.id.clone()]
    );
    let everything = ids(runs
        .list(&RunQuery {
            limit: 10_000,
            ..RunQuery::default()
        })
        .await
        .unwrap());
    assert!(everything.contains(&young.id) && !everything.contains(&old.id));
    // The expired id is free again (the same event, re-sent after the retention).
    let mut again = old.clone();
    again.created_at = T0 + 2 * HOUR;
    again.updated_at = again.created_at;
    again.expires_at = Some(T0 + 5 * HOUR);
    assert!(runs.create(&again).await.unwrap());
    assert_eq!(runs.get(&old.id).await.unwrap(), Some(again));

    // 30 days after its last change, the record without an expiry goes too.
    env.advance(Duration::from_secs(30 * 24 * 3600));
    for r in [&young, &legacy] {
        assert_eq!(runs.get(&r.id).await.unwrap(), None);
    }
    assert!(runs.list(&by_wf).await.unwrap().is_empty());
}

/// `create` inserts once; a second create with the same id changes nothing.
async fn create_is_insert_if_absent(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let runs = &env.ports.runs;
    let first = run(&unique("wf"), RunStatus::Queued, T0);
    assert!(runs.create(&first).await.unwrap());
    let mut second = first.clone();
    second.status = RunStatus::Running;
    assert!(!runs.create(&second).await.unwrap());
    assert_eq!(runs.get(&first.id).await.unwrap(), Some(first));
}

/// `put` replaces the whole record; `get` returns exactly what was put.
async fn put_get_roundtrip(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let runs = &env.ports.runs;
    let mut r = run(&unique("wf"), RunStatus::Queued, T0);
    assert_eq!(runs.get(&r.id).await.unwrap(), None);
    runs.put(&r).await.unwrap();
    assert_eq!(runs.get(&r.id).await.unwrap().as_ref(), Some(&r));
    r.status = RunStatus::Retrying;
    r.attempts = 2;
    r.updated_at = T0 + 5_000;
    r.error = Some("slack: 503 Service Unavailable".into());
    r.steps = vec![StepRecord {
        id: "notify".into(),
        status: StepStatus::Retrying,
        attempts: vec![Attempt {
            n: 1,
            started_at: T0 + 1_000,
            duration_ms: 120,
            status_code: Some(503),
            error: Some("503".into()),
            request: Some(crate::runlog::SentRequest {
                method: "POST".into(),
                url: "https://api.example.com/v1/x?a=1".into(),
                headers: [("content-type".to_owned(), "application/json".to_owned())].into(),
                body: serde_json::json!({ "a": 1 }),
                truncated: false,
            }),
            response: Some(crate::runlog::GotResponse {
                status: 503,
                headers: [("retry-after".to_owned(), "2".to_owned())].into(),
                body: serde_json::json!("busy"),
                truncated: true,
            }),
            decision: Some(crate::runlog::Decided::Retry {
                in_ms: 2_000,
                retry_after_honoured: true,
            }),
        }],
        last_error: Some("503".into()),
        budget_from: 0,
    }];
    r.event = Some(crate::runlog::ReceivedEvent {
        received_at: T0,
        headers: [("x-github-event".to_owned(), "push".to_owned())].into(),
        query: Default::default(),
        payload: serde_json::json!({ "ref": "main", "n": [1, 2] }),
        truncated: false,
    });
    runs.put(&r).await.unwrap();
    assert_eq!(runs.get(&r.id).await.unwrap(), Some(r));
    assert_eq!(runs.get(&unique("no-such-run")).await.unwrap(), None);
}

/// `put` over a run with the same id but another workflow, source and
/// creation time replaces those too: the listings find it by its new ones.
async fn put_replaces_every_column(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let runs = &env.ports.runs;
    let old = run(&unique("wf"), RunStatus::Queued, T0);
    runs.put(&old).await.unwrap();
    let mut new = run(&unique("wf"), RunStatus::Running, T0 + 1_000);
    new.id.clone_from(&old.id);
    new.source = "stripe".into();
    runs.put(&new).await.unwrap();
    assert_eq!(runs.get(&old.id).await.unwrap().as_ref(), Some(&new));
    let listed = |workflow: &str, source: &str| RunQuery {
        workflow: Some(workflow.into()),
        source: Some(source.into()),
        ..RunQuery::default()
    };
    assert!(
        runs.list(&listed(&old.workflow, "github"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        runs.list(&listed(&new.workflow, "stripe")).await.unwrap(),
        [new]
    );
}
