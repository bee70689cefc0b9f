//! The [`RunLog`](crate::ports::RunLog) contract for listings that span
//! workflows: by source or by status without a workflow, the runs of every
//! workflow interleave newest first under one limit — the embedded store
//! reads them as one index range per workflow and merges them.

use std::sync::Arc;

use super::{Backend, Case, Env, T0, case_list, unique};
use crate::model::{RunQuery, RunRecord, RunStatus};

pub(super) fn cases() -> Vec<Case> {
    case_list!("runs":
        listings_across_workflows_interleave_newest_first,
    )
}

/// [`super::runs::run`] on `source`.
fn run(workflow: &str, source: &str, status: RunStatus, created_at: i64) -> RunRecord {
    RunRecord {
        source: source.into(),
        ..super::runs::run(workflow, status, created_at)
    }
}

/// Three workflows on one source, their runs interleaved in time: a
/// listing by source, by source and status, and by status alone, gives the
/// newest of all of them in order, cut at the limit; counts and summaries
/// see the same runs.
async fn listings_across_workflows_interleave_newest_first(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let runs = &env.ports.runs;
    let src = unique("src-merge");
    let wfs = [unique("wf-a"), unique("wf-b"), unique("wf-c")];
    let t = T0 + 50 * 86_400_000;
    let mut made = Vec::new();
    for i in 0..9_i64 {
        let status = if i % 2 == 0 {
            RunStatus::DeadLettered
        } else {
            RunStatus::Succeeded
        };
        let r = run(&wfs[(i * 7 % 3) as usize], &src, status, t + i * 1_000);
        runs.create(&r).await.unwrap();
        made.push(r);
    }
    // Another source's run, newer than all of them.
    runs.create(&run(
        &wfs[0],
        &unique("src"),
        RunStatus::DeadLettered,
        t + 20_000,
    ))
    .await
    .unwrap();
    let ids = |rs: Vec<RunRecord>| rs.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let newest = |pick: &dyn Fn(&RunRecord) -> bool, n: usize| {
        made.iter()
            .rev()
            .filter(|r| pick(r))
            .take(n)
            .map(|r| r.id.clone())
            .collect::<Vec<_>>()
    };
    let by_source = RunQuery {
        source: Some(src.clone()),
        limit: 4,
        ..RunQuery::default()
    };
    assert_eq!(
        ids(runs.list(&by_source).await.unwrap()),
        newest(&|_| true, 4)
    );
    let dead = RunQuery {
        status: Some(RunStatus::DeadLettered),
        limit: 3,
        ..by_source.clone()
    };
    let dead_ids = newest(&|r| r.status == RunStatus::DeadLettered, 3);
    assert_eq!(ids(runs.list(&dead).await.unwrap()), dead_ids);
    let summaries = runs.summaries(&dead).await.unwrap();
    let expected: Vec<_> = made
        .iter()
        .rev()
        .filter(|r| r.status == RunStatus::DeadLettered)
        .take(3)
        .map(|r| (r.created_at, r.status))
        .collect();
    assert_eq!(summaries, expected);
    let counts = runs
        .counts(
            &RunQuery {
                limit: 100,
                ..by_source.clone()
            },
            t + 10_000,
            3_600_000,
        )
        .await
        .unwrap();
    assert_eq!(counts.of(RunStatus::DeadLettered), 5, "{counts:?}");
    assert_eq!(counts.of(RunStatus::Succeeded), 4, "{counts:?}");

    // By status alone (other cases' runs share the store): ours in order,
    // within the time range.
    let window = RunQuery {
        status: Some(RunStatus::Succeeded),
        since: Some(t),
        until: Some(t + 9_000),
        limit: 1_000,
        ..RunQuery::default()
    };
    let listed = runs.list(&window).await.unwrap();
    assert!(listed.iter().all(|r| r.status == RunStatus::Succeeded));
    assert!(
        listed
            .windows(2)
            .all(|w| (w[0].created_at, &w[0].id) >= (w[1].created_at, &w[1].id)),
        "newest first"
    );
    let ours: Vec<String> = listed
        .into_iter()
        .filter(|r| r.source == src)
        .map(|r| r.id)
        .collect();
    assert_eq!(ours, newest(&|r| r.status == RunStatus::Succeeded, 9));
}
