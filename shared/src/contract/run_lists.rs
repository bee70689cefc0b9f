//! The [`RunLog`](crate::ports::RunLog) contract's listings: filters, order,
//! limits, summaries and counts (the records themselves: `runs.rs`).

use std::sync::Arc;

use super::runs::run;
use super::{Backend, Case, Env, T0, case_list, unique};
use crate::model::{RunQuery, RunRecord, RunStatus};

pub(super) fn cases() -> Vec<Case> {
    case_list!("runs":
        list_filters_newest_first,
        list_default_limit,
        list_by_source_event_and_time,
        summaries_follow_the_listing,
        counts_slice_by_time_and_status,
    )
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
