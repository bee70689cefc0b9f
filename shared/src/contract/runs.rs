//! The [`RunLog`](crate::ports::RunLog) contract: insert-if-absent, replace,
//! listing, and retention (a run past its expiry is gone).

use std::sync::Arc;
use std::time::Duration;

use super::{Backend, Case, Env, T0, case_list, unique};
use crate::model::{Attempt, RunQuery, RunRecord, RunStatus, StepRecord, StepStatus};

pub(super) fn cases() -> Vec<Case> {
    case_list!("runs":
        create_is_insert_if_absent,
        put_get_roundtrip,
        list_filters_newest_first,
        list_default_limit,
        runs_expire_after_their_retention,
        list_by_source_event_and_time,
        summaries_follow_the_listing,
        counts_slice_by_time_and_status,
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

/// `list` filters by workflow and status, newest first, up to the limit, and
/// follows status changes made by `put`.
async fn list_filters_newest_first(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let runs = &env.ports.runs;
    let (wf, other) = (unique("wf"), unique("wf-other"));
    let statuses = [
        RunStatus::Succeeded,
        RunStatus::DeadLettered,
        RunStatus::Succeeded,
        RunStatus::Queued,
    ];
    let mut made = Vec::new();
    for (i, status) in statuses.into_iter().enumerate() {
        let r = run(&wf, status, T0 + i as i64 * 1_000);
        runs.create(&r).await.unwrap();
        made.push(r);
    }
    runs.create(&run(&other, RunStatus::Succeeded, T0 + 10_000))
        .await
        .unwrap();
    let ids = |rs: Vec<RunRecord>| rs.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let query = |status, limit| RunQuery {
        workflow: Some(wf.clone()),
        status,
        limit,
        ..RunQuery::default()
    };

    let all = ids(runs.list(&query(None, 0)).await.unwrap());
    assert_eq!(
        all,
        made.iter().rev().map(|r| r.id.clone()).collect::<Vec<_>>()
    );
    let ok = ids(runs
        .list(&query(Some(RunStatus::Succeeded), 0))
        .await
        .unwrap());
    assert_eq!(ok, [made[2].id.clone(), made[0].id.clone()]);
    let top = ids(runs.list(&query(None, 2)).await.unwrap());
    assert_eq!(top, [made[3].id.clone(), made[2].id.clone()]);

    let mut done = made[3].clone();
    done.status = RunStatus::Succeeded;
    runs.put(&done).await.unwrap();
    let ok = ids(runs
        .list(&query(Some(RunStatus::Succeeded), 0))
        .await
        .unwrap());
    assert_eq!(
        ok,
        [made[3].id.clone(), made[2].id.clone(), made[0].id.clone()]
    );
    assert!(
        runs.list(&query(Some(RunStatus::Queued), 0))
            .await
            .unwrap()
            .is_empty()
    );

    // Without a workflow filter: newest first, and only matching statuses.
    let any = runs
        .list(&RunQuery {
            workflow: None,
            status: Some(RunStatus::DeadLettered),
            limit: 50,
            ..RunQuery::default()
        })
        .await
        .unwrap();
    assert!(any.len() <= 50);
    assert!(any.iter().all(|r| r.status == RunStatus::DeadLettered));
    assert!(any.windows(2).all(|w| w[0].created_at >= w[1].created_at));
}

/// `limit: 0` means the default of 100.
async fn list_default_limit(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let runs = &env.ports.runs;
    let wf = unique("wf-many");
    for i in 0..105 {
        runs.create(&run(&wf, RunStatus::Succeeded, T0 + i))
            .await
            .unwrap();
    }
    let listed = runs
        .list(&RunQuery {
            workflow: Some(wf),
            ..RunQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 100);
    assert_eq!(listed[0].created_at, T0 + 104);
}

/// `list` filters by source, event id and a time range (since inclusive,
/// until exclusive), alone and combined with workflow and status.
async fn list_by_source_event_and_time(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let runs = &env.ports.runs;
    let (wf, src, other_src) = (unique("wf"), unique("src"), unique("src"));
    let mut made = Vec::new();
    for i in 0..4 {
        let mut r = run(&wf, RunStatus::Succeeded, T0 + i * 1_000);
        r.source = if i == 3 {
            other_src.clone()
        } else {
            src.clone()
        };
        if i == 2 {
            r.status = RunStatus::DeadLettered;
        }
        runs.create(&r).await.unwrap();
        made.push(r);
    }
    let ids = |rs: Vec<RunRecord>| rs.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let list = |q: RunQuery| async move { ids(runs.list(&q).await.unwrap()) };
    let id = |i: usize| made[i].id.clone();

    let by_source = RunQuery {
        source: Some(src.clone()),
        ..RunQuery::default()
    };
    assert_eq!(list(by_source.clone()).await, [id(2), id(1), id(0)]);
    assert_eq!(
        list(RunQuery {
            status: Some(RunStatus::DeadLettered),
            ..by_source.clone()
        })
        .await,
        [id(2)]
    );
    assert_eq!(
        list(RunQuery {
            since: Some(T0 + 1_000),
            until: Some(T0 + 2_000),
            ..by_source.clone()
        })
        .await,
        [id(1)],
        "since is inclusive, until exclusive"
    );
    assert_eq!(
        list(RunQuery {
            event_id: Some(made[3].event_id.clone()),
            ..RunQuery::default()
        })
        .await,
        [id(3)]
    );
    assert!(
        list(RunQuery {
            event_id: Some(made[3].event_id.clone()),
            source: Some(src.clone()),
            ..RunQuery::default()
        })
        .await
        .is_empty()
    );
    assert_eq!(
        list(RunQuery {
            workflow: Some(wf.clone()),
            source: Some(other_src.clone()),
            ..RunQuery::default()
        })
        .await,
        [id(3)]
    );
    assert_eq!(
        list(RunQuery {
            workflow: Some(wf.clone()),
            since: Some(T0 + 2_000),
            ..RunQuery::default()
        })
        .await,
        [id(3), id(2)]
    );
    // No indexed filter but time: every status, newest first, within the range.
    let window = list(RunQuery {
        since: Some(T0 + 1_000),
        until: Some(T0 + 3_000),
        limit: 1_000,
        ..RunQuery::default()
    })
    .await;
    assert!(
        window.contains(&id(1)) && window.contains(&id(2)),
        "{window:?}"
    );
    assert!(
        !window.contains(&id(0)) && !window.contains(&id(3)),
        "{window:?}"
    );
}

/// `summaries` gives each listed run's creation time and status, in the
/// listing's order, under the same filters and limit.
async fn summaries_follow_the_listing(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let runs = &env.ports.runs;
    let wf = unique("wf-sum");
    let statuses = [
        RunStatus::Succeeded,
        RunStatus::DeadLettered,
        RunStatus::Queued,
    ];
    for (i, status) in statuses.into_iter().enumerate() {
        runs.create(&run(&wf, status, T0 + i as i64 * 1_000))
            .await
            .unwrap();
    }
    let query = RunQuery {
        workflow: Some(wf.clone()),
        since: Some(T0 + 1_000),
        limit: 10,
        ..RunQuery::default()
    };
    let got = runs.summaries(&query).await.unwrap();
    assert_eq!(
        got,
        [
            (T0 + 2_000, RunStatus::Queued),
            (T0 + 1_000, RunStatus::DeadLettered)
        ]
    );
    let listed: Vec<_> = runs
        .list(&query)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.created_at, r.status))
        .collect();
    assert_eq!(got, listed);
    let one = runs
        .summaries(&RunQuery {
            limit: 1,
            ..query.clone()
        })
        .await
        .unwrap();
    assert_eq!(one, [(T0 + 2_000, RunStatus::Queued)]);
}

/// `counts` counts the runs of a query by status and by slice back from a
/// moment: every run when it says `complete`, else exactly the newest
/// `limit`.
async fn counts_slice_by_time_and_status(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let runs = &env.ports.runs;
    let wf = unique("wf-count");
    let (at, hour) = (T0 + 10 * 3_600_000, 3_600_000);
    let made = [
        (RunStatus::Succeeded, at - 1),            // slice 0
        (RunStatus::Succeeded, at - hour + 1),     // slice 0
        (RunStatus::DeadLettered, at - hour),      // slice 1
        (RunStatus::Succeeded, at - 3 * hour - 5), // slice 3
        (RunStatus::Queued, at + 2_000),           // ahead of `at`: slice 0
        (RunStatus::Succeeded, at - 9 * hour - 1), // before `since`
    ];
    for (status, created_at) in made {
        runs.create(&run(&wf, status, created_at)).await.unwrap();
    }
    runs.create(&run(&unique("wf-other"), RunStatus::Succeeded, at - 1))
        .await
        .unwrap();
    let query = RunQuery {
        workflow: Some(wf.clone()),
        since: Some(at - 9 * hour),
        limit: 100,
        ..RunQuery::default()
    };
    let got = runs.counts(&query, at, hour).await.unwrap();
    assert!(got.complete, "{got:?}");
    let cells: Vec<_> = got.cells.into_iter().collect();
    assert_eq!(
        cells,
        [
            ((0, RunStatus::Queued), 1),
            ((0, RunStatus::Succeeded), 2),
            ((1, RunStatus::DeadLettered), 1),
            ((3, RunStatus::Succeeded), 1),
        ]
    );

    // Under a limit: all of them (complete) or exactly the newest two.
    let two = runs
        .counts(
            &RunQuery {
                limit: 2,
                ..query.clone()
            },
            at,
            hour,
        )
        .await
        .unwrap();
    let total: usize = two.cells.values().sum();
    if two.complete {
        assert_eq!(total, 5, "{two:?}");
    } else {
        assert_eq!(total, 2, "{two:?}");
        assert_eq!(two.of(RunStatus::Queued), 1, "the newest first: {two:?}");
    }
}
