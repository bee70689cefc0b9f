//! The end of a sync run: its run-log entry, last run and totals, and the report.

use super::pass::{PassEnd, Run};
use super::state::Saved;
use super::{LastRun, Outcome, SyncError, SyncReport, Trigger};
use crate::clock::Millis;
use crate::model::{RunRecord, RunStatus, StepRecord, StepStatus};

/// Record the run (run log, last run, totals) and make the report.
pub(super) async fn finish(
    run: &mut Run<'_>,
    started: Millis,
    trigger: Trigger,
    result: Result<PassEnd, SyncError>,
) -> Result<SyncReport, SyncError> {
    let hub = run.hub;
    let now = hub.ports.clock.now_ms();
    let (outcome, detail, status) = match &result {
        Ok(PassEnd::Finished) => ("completed", None, RunStatus::Succeeded),
        Ok(PassEnd::OutOfTime) => (
            "stopped",
            Some(format!(
                "stopped after {} page(s) to stay within the deadline; the next run continues",
                run.pages
            )),
            RunStatus::Succeeded,
        ),
        Err(e) => (
            "failed",
            Some(hub.redact(&e.to_string())),
            RunStatus::DeadLettered,
        ),
    };
    let mut steps = std::mem::take(&mut run.log);
    for (i, f) in run.failures.iter().enumerate() {
        steps.push(StepRecord {
            id: format!("record[{i}]"),
            status: StepStatus::Failed,
            attempts: vec![],
            budget_from: 0,
            last_error: Some(f.clone()),
        });
    }
    for (i, c) in run.conflicts.iter().enumerate() {
        steps.push(StepRecord {
            id: format!("conflict[{i}]"),
            status: StepStatus::Succeeded,
            attempts: vec![],
            budget_from: 0,
            last_error: Some(c.clone()),
        });
    }
    let mut record = RunRecord {
        id: run.id.clone(),
        workflow: crate::flow::FlowName::SyncRecords(run.name).to_string(),
        source: trigger.as_str().to_owned(),
        event_id: format!("sync-run@{started}"),
        status,
        attempts: 1,
        created_at: started,
        updated_at: now,
        error: detail.clone(),
        failure: None,
        steps,
        event: None,
        expires_at: None,
        rerun_of: None,
        reruns: Vec::new(),
    };
    hub.keep(&mut record);
    match hub.ports.runs.put(&record).await {
        Ok(()) => crate::alerts::note::finished(hub, &record).await,
        Err(e) => tracing::warn!(sync = run.name, error = %e, "could not record the sync run"),
    }

    // Last run and totals, on top of whatever the run saved (reload if it failed mid-way).
    if result.is_err()
        && let Ok(fresh) = Saved::load(hub, run.name).await
    {
        run.saved = fresh;
    }
    let st = &mut run.saved.state;
    st.totals.add(&run.counts);
    if outcome != "failed" {
        st.last_success = Some(now);
    }
    st.last_run = Some(LastRun {
        run_id: run.id.clone(),
        started_at: started,
        finished_at: now,
        outcome: outcome.to_owned(),
        detail,
        pages: run.pages,
        counts: run.counts,
    });
    if let Err(e) = run.saved.save(hub, run.name).await {
        tracing::warn!(sync = run.name, error = %e, "could not record the run's totals");
    }
    tracing::info!(
        sync = run.name,
        outcome,
        pages = run.pages,
        seen = run.counts.seen,
        sent = run.counts.sent,
        skipped = run.counts.skipped,
        failed = run.counts.failed,
        "sync ran"
    );
    let end = result?;
    Ok(SyncReport {
        sync: run.name.to_owned(),
        run_id: run.id.clone(),
        outcome: match end {
            PassEnd::Finished => Outcome::Completed,
            PassEnd::OutOfTime => Outcome::Stopped,
        },
        pages: run.pages,
        counts: run.counts,
        failures: run.failures.clone(),
        conflict_log: run.conflicts.clone(),
        state: run.saved.state.clone(),
    })
}
