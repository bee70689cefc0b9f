//! `ferry runs rerun ID`: a new run of a finished run's event, through the
//! workflow as the config says now (after a fix to a mapping, say), linked
//! both ways (`rerun_of` on the new run, `reruns` on the old one).
//!
//! Unlike a replay, a re-run starts from scratch: new run id, so every step
//! is called again, with a new `Idempotency-Key` (`<new run id>:<step>`).
//!
//! The event comes from the run's dead letter while it is in the
//! dead-letter queue (the event exactly as accepted); otherwise from the run
//! record, which keeps the event as received — redacted (a config secret in
//! the payload stays `[redacted]`) and without credential headers. A record
//! whose payload was cut (over 64 KiB) cannot be re-run, and says so.

use std::time::Duration;

use crate::execute::new_record;
use crate::hub::Hub;
use crate::model::{Event, Job, RunJob, RunRecord, new_run_id};

/// Start a re-run of run `id`; the new run's id.
pub async fn rerun(hub: &Hub, id: &str) -> Result<String, String> {
    let ports = &hub.ports;
    let mut old = ports
        .runs
        .get(id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no run with id {id}"))?;
    if !old.status.is_final() {
        return Err(format!(
            "run {id} is {}: re-run it once it has finished",
            old.status.as_str()
        ));
    }
    let job = RunJob {
        run_id: new_run_id(),
        ..stored_job(hub, &old).await?
    };
    let mut new = new_record(hub, &job, ports.clock.now_ms());
    new.rerun_of = Some(old.id.clone());
    ports.runs.create(&new).await.map_err(|e| e.to_string())?;
    old.reruns.push(job.run_id.clone());
    ports.runs.put(&old).await.map_err(|e| e.to_string())?;
    ports
        .queue
        .send(&Job::encode_run(job.borrowed()), Duration::ZERO)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(run_id = %job.run_id, rerun_of = %old.id, "re-run queued");
    Ok(job.run_id)
}

/// The job that ran `run`: from its dead letter while there is one, else
/// from the event on its record.
async fn stored_job(hub: &Hub, run: &RunRecord) -> Result<RunJob, String> {
    if let Some(job) = dead_letter_job(hub, run).await? {
        return Ok(job);
    }
    let Some(ev) = &run.event else {
        return Err(format!(
            "the event of run {} is not stored (recorded before runs kept their event, and no dead letter holds it): it cannot be re-run",
            run.id
        ));
    };
    if ev.truncated {
        return Err(format!(
            "the payload of run {} was over 64 KiB and is stored cut: it cannot be re-run from the run log",
            run.id
        ));
    }
    Ok(RunJob {
        run_id: run.id.clone(),
        workflow: run.workflow.clone(),
        source: run.source.clone(),
        event_id: run.event_id.clone(),
        event: Event {
            headers: ev.headers.clone(),
            query: ev.query.clone(),
            body: ev.payload.clone(),
            received_at: ev.received_at,
        },
    })
}

/// The job in `run`'s dead letter, if the dead-letter queue holds one.
async fn dead_letter_job(hub: &Hub, run: &RunRecord) -> Result<Option<RunJob>, String> {
    let letters = hub
        .ports
        .queue
        .dead_letters(crate::dlq::SCAN)
        .await
        .map_err(|e| e.to_string())?;
    Ok(letters.iter().find_map(|d| match Job::decode(&d.body) {
        Ok(Job::Run(j)) if j.run_id == run.id => Some(j),
        _ => None,
    }))
}
