//! The dead-letter queue, for people: see what failed for good and why, and
//! replay it once the cause is fixed. A replayed run resumes at the step that
//! failed, with a fresh retry budget; steps that had succeeded are not
//! called again.

use crate::clock::Millis;
use crate::hub::Hub;
use crate::model::{Job, RunRecord, RunStatus, StepStatus};
use crate::ports::DeadLetter;

/// The newest dead letters, up to `limit`, with the run each belongs to.
pub async fn list(hub: &Hub, limit: usize) -> Result<Vec<(DeadLetter, Option<String>)>, String> {
    let letters = hub
        .ports
        .queue
        .dead_letters(limit)
        .await
        .map_err(|e| e.to_string())?;
    Ok(letters
        .into_iter()
        .map(|d| {
            let run = match Job::decode(&d.body) {
                Ok(Job::Run(j)) => Some(j.run_id),
                Err(_) => None,
            };
            (d, run)
        })
        .collect())
}

/// A run that failed for good, made ready to run again as a replay: queued,
/// its failed step pending with a fresh retry budget (`max_attempts` and
/// `max_age` count from now; the earlier attempts stay on the record), the
/// steps that succeeded left as they are (their outputs are reused).
pub fn reopen(run: &mut RunRecord, now: Millis) {
    run.status = RunStatus::Queued;
    run.error = None;
    run.failure = None;
    for step in &mut run.steps {
        if matches!(step.status, StepStatus::Failed | StepStatus::Retrying) {
            step.status = StepStatus::Pending;
            step.budget_from = step.attempts.len();
        }
    }
    run.updated_at = now;
}

/// Put dead letter `id` back on the queue. Its run goes back to `queued`
/// (its history kept) so the workers pick it up again. Returns the run id.
pub async fn replay(hub: &Hub, id: &str) -> Result<Option<String>, String> {
    let letters = hub
        .ports
        .queue
        .dead_letters(10_000)
        .await
        .map_err(|e| e.to_string())?;
    let letter = letters
        .iter()
        .find(|d| d.id == id)
        .ok_or_else(|| format!("no dead letter with id {id}"))?;
    let run_id = match Job::decode(&letter.body) {
        Ok(Job::Run(job)) => Some(job.run_id),
        Err(_) => None,
    };
    if let Some(run_id) = &run_id
        && let Some(mut run) = hub
            .ports
            .runs
            .get(run_id)
            .await
            .map_err(|e| e.to_string())?
    {
        reopen(&mut run, hub.ports.clock.now_ms());
        hub.ports.runs.put(&run).await.map_err(|e| e.to_string())?;
    }
    hub.ports
        .queue
        .redrive(id)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(dead_letter = id, run_id = ?run_id, "replayed dead letter");
    Ok(run_id)
}
