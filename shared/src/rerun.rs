//! `ferry runs rerun ID`: a new run of a finished run's event, through the
//! workflow as the config says now (after a fix to a mapping, say), linked
//! both ways (`rerun_of` on the new run, `reruns` on the old one).
//!
//! Unlike a replay, a re-run starts from scratch: new run id, so every step
//! is called again, with a new `Idempotency-Key` (`<new run id>:<step>`).
//!
//! The event comes from the run's dead letter while it is in the
//! dead-letter queue. A run that succeeded, or whose dead letter is gone,
//! can be re-run only once the run record keeps its event (issue 11, the
//! run record's detail); until then it is refused with that reason.

use std::time::Duration;

use crate::execute::new_record;
use crate::hub::Hub;
use crate::model::{Job, RunJob, RunRecord, new_run_id};

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
    let mut new = new_record(&job, ports.clock.now_ms());
    new.rerun_of = Some(old.id.clone());
    ports.runs.create(&new).await.map_err(|e| e.to_string())?;
    old.reruns.push(job.run_id.clone());
    ports.runs.put(&old).await.map_err(|e| e.to_string())?;
    ports
        .queue
        .send(&Job::Run(job.clone()).encode(), Duration::ZERO)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(run_id = %job.run_id, rerun_of = %old.id, "re-run queued");
    Ok(job.run_id)
}

/// The job that ran `run`: from its dead letter, while there is one.
async fn stored_job(hub: &Hub, run: &RunRecord) -> Result<RunJob, String> {
    let letters = hub
        .ports
        .queue
        .dead_letters(crate::dlq::SCAN)
        .await
        .map_err(|e| e.to_string())?;
    letters
        .iter()
        .find_map(|d| match Job::decode(&d.body) {
            Ok(Job::Run(j)) if j.run_id == run.id => Some(j),
            _ => None,
        })
        .ok_or_else(|| {
            format!(
                "the event of run {} is not stored (no dead letter holds it): \
                 it cannot be re-run yet",
                run.id
            )
        })
}
