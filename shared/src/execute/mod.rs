//! Execute: one queue message → one run of a workflow, step by step.
//!
//! Each step claims `(run, step)` in the idempotency store before it calls out,
//! and stores its output when it succeeds; a redelivered or retried message
//! therefore skips finished steps (reusing their outputs) and resumes at the
//! one that failed. Every call of a step carries the same `Idempotency-Key`.
//! Whether to retry is decided in [`crate::retry`]; the call itself (rate
//! limit, auth, verdict) is made in [`crate::call`], or in [`crate::batch`]
//! for a batched step.

use std::time::Duration;

use serde_json::{Value, json};

use crate::concurrency::{self, Entered};
use crate::hub::{Flow, Hub};
use crate::model::{Failure, Job, RunJob, RunRecord, RunStatus, StepRecord, StepStatus};
use crate::pause;
use crate::ports::{Claim, Message, StoreResult};
use crate::template::context;

mod finish;
mod fresh;
mod record;
mod step;
use fresh::First;
pub use record::{new_record, new_record_of, queued_record};
use step::StepOutcome;

/// How long a finished step's output is kept for resumption.
pub const STEP_RESULT_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Retry delay when the store itself is unavailable.
pub const STORE_RETRY: Duration = Duration::from_secs(5);

/// What the queue should do with the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Finished (or nothing to do): delete it.
    Done,
    /// A step failed and will be retried: make the message visible again after this long.
    RetryIn(Duration),
    /// Waiting for a rate-limit token, not a failure: re-enqueue with this delay
    /// (a fresh message, so waiting never counts towards the receive limit).
    Requeue(Duration),
    /// Failed for good: move it to the dead-letter queue with this reason.
    DeadLetter(String),
}

/// What [`execute_acking`] did with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executed {
    /// What the queue should do with the message.
    pub disposition: Disposition,
    /// The message is already deleted, in the same durable write as its
    /// run's final record: there is nothing left to settle.
    pub acked: bool,
}

impl From<Disposition> for Executed {
    fn from(disposition: Disposition) -> Self {
        Self {
            disposition,
            acked: false,
        }
    }
}

/// Run the job in `msg` as far as it can go now.
pub async fn execute(hub: &Hub, msg: &Message) -> Disposition {
    run_message(hub, msg, None).await.disposition
}

/// [`execute`], deleting the message from the hub's queue together with the
/// run's final record when the run succeeds (one durable write where the
/// store allows it, [`crate::ports::RunLog::put_settling`]): for a loop
/// that received `msg` from `hub.ports.queue` itself. When `acked` is
/// false, settle the message as usual ([`crate::worker::settle`]).
pub async fn execute_acking(hub: &Hub, msg: &Message) -> Executed {
    run_message(hub, msg, Some(&msg.receipt)).await
}

async fn run_message(hub: &Hub, msg: &Message, ack: Option<&str>) -> Executed {
    let job = match Job::decode(&msg.body) {
        Ok(Job::Run(job)) => job,
        Err(e) => return Disposition::DeadLetter(format!("malformed job message: {e}")).into(),
    };
    // A first delivery's run is most likely still the queued record ingest
    // wrote: rebuilt from the job instead of read ([`fresh`]).
    let stored = match msg.receive_count <= 1 && msg.redrive.is_none() {
        true => match fresh::first_delivery(hub, &job, ack).await {
            First::Ran(out) => {
                tracing::debug!(run_id = %job.run_id, disposition = ?out.disposition, acked = out.acked, "executed");
                return out;
            }
            First::Stored(stored) => Some(stored.map(|run| run.map(|run| *run))),
            First::NotTried => None,
        },
        false => None,
    };
    let run_id = job.run_id.clone();
    let out = run_job(hub, job, stored, msg.redrive.as_deref(), ack).await;
    tracing::debug!(run_id = %run_id, disposition = ?out.disposition, acked = out.acked, "executed");
    out
}

/// Run `job` from its stored run: `stored` when already read, else read now.
async fn run_job(
    hub: &Hub,
    job: RunJob,
    stored: Option<StoreResult<Option<RunRecord>>>,
    redrive: Option<&str>,
    ack: Option<&str>,
) -> Executed {
    let ports = &hub.ports;
    let stored = match stored {
        Some(stored) => stored,
        None => ports.runs.get(&job.run_id).await,
    };
    let now = ports.clock.now_ms();
    let mut run = match stored {
        Ok(Some(run)) => run,
        Ok(None) => new_record(hub, &job, now),
        Err(e) => {
            tracing::warn!(run_id = %job.run_id, error = %e, "run log unavailable");
            return Disposition::RetryIn(STORE_RETRY).into();
        }
    };
    if run.status.is_final() {
        match redriven(hub, &mut run, redrive).await {
            Ok(true) => {}
            Ok(false) => return Disposition::Done.into(),
            Err(d) => return d.into(),
        }
    }
    let Some(flow) = hub.flow(&job.workflow) else {
        let reason = format!("workflow {:?} is not in the config", job.workflow);
        return finish_dead(hub, &mut run, reason, Failure::Config)
            .await
            .into();
    };
    // A paused workflow holds its runs: back on the queue, not an attempt.
    match pause::held(hub, pause::Kind::Workflow, flow.name).await {
        Ok(false) => {}
        Ok(true) => return Disposition::Requeue(pause::HOLD).into(),
        Err(e) => {
            tracing::warn!(run_id = %run.id, error = %e, "cursor store unavailable");
            return Disposition::RetryIn(STORE_RETRY).into();
        }
    }
    align_steps(&mut run, flow);
    let mut ctx = context_of(&job, &run);
    if let Some(when) = flow.when {
        match hub.templates.is_true(when, &context(&ctx)) {
            Ok(true) => {}
            Ok(false) => {
                run.status = RunStatus::Skipped;
                for s in &mut run.steps {
                    s.status = StepStatus::Skipped;
                }
                return save(hub, &mut run, Disposition::Done).await.into();
            }
            Err(e) => {
                return finish_dead(hub, &mut run, format!("when: {e}"), Failure::Mapping)
                    .await
                    .into();
            }
        }
    }
    // A workflow's `concurrency`: execute holding a slot of the run's key, or wait.
    let slot = match concurrency::enter(hub, flow.name, &run.id, &context(&ctx)).await {
        Entered::Free => None,
        Entered::Held(slot) => Some(slot),
        Entered::Wait(d) => return Disposition::Requeue(d).into(),
        Entered::Unmapped(why) => {
            return finish_dead(hub, &mut run, why, Failure::Mapping)
                .await
                .into();
        }
        Entered::StoreDown => return Disposition::RetryIn(STORE_RETRY).into(),
    };
    let out = run_steps(hub, flow, &mut run, &mut ctx, ack).await;
    if let Some(slot) = slot {
        concurrency::release(ports.idempotency.as_ref(), &slot).await;
    }
    out
}

/// A message for a run that is already final is a duplicate delivery (done
/// with), unless it came back from the dead-letter queue by SQS's own redrive
/// for a run that failed for good: that is a replay, once per trip through
/// the dead-letter queue (`keys::redrive` is claimed, so a duplicate of the
/// redriven message does not replay it a second time). `Ok(true)`: reopened.
async fn redriven(
    hub: &Hub,
    run: &mut RunRecord,
    token: Option<&str>,
) -> Result<bool, Disposition> {
    let Some(token) = token else { return Ok(false) };
    if !matches!(run.status, RunStatus::DeadLettered | RunStatus::AuthFailed) {
        return Ok(false);
    }
    let ports = &hub.ports;
    let key = crate::keys::redrive(token);
    match ports
        .idempotency
        .claim(&key, "", &run.id, REDRIVE_TTL)
        .await
    {
        Ok(crate::ports::Claim::Claimed) => {}
        Ok(_) => return Ok(false),
        Err(e) => {
            tracing::warn!(run_id = %run.id, error = %e, "idempotency store unavailable");
            return Err(Disposition::RetryIn(STORE_RETRY));
        }
    }
    if let Err(e) = ports.idempotency.complete(&key, "", REDRIVE_TTL).await {
        tracing::warn!(run_id = %run.id, error = %e, "redrive claim not completed; its lease keeps it");
    }
    tracing::info!(run_id = %run.id, "redriven from the dead-letter queue: replaying");
    crate::dlq::reopen(run, ports.clock.now_ms());
    Ok(true)
}

/// How long a redriven message's token is remembered: SQS keeps a message
/// at most 14 days.
const REDRIVE_TTL: Duration = Duration::from_secs(15 * 24 * 3600);

/// The run's template context: its event and ids (`steps` filled in as
/// they finish).
fn context_of(job: &RunJob, run: &RunRecord) -> Value {
    json!({
        "body": job.event.body,
        "headers": job.event.headers,
        "query": job.event.query,
        "event": { "id": job.event_id, "source": job.source, "received_at": job.event.received_at },
        "run": { "id": run.id, "workflow": run.workflow },
        "steps": {},
    })
}

/// The run marked running, one attempt more (written with its first step's claim).
fn mark_running(hub: &Hub, run: &mut RunRecord) {
    run.status = RunStatus::Running;
    run.attempts += 1;
    run.updated_at = hub.ports.clock.now_ms();
    hub.keep(run);
}

/// Mark the run running (written with the first step's claim), then run
/// its steps in order as far as they go now. The last step's result is
/// stored with the run's final record (and `ack`, the message's deletion).
async fn run_steps(
    hub: &Hub,
    flow: Flow<'_>,
    run: &mut RunRecord,
    ctx: &mut Value,
    ack: Option<&str>,
) -> Executed {
    mark_running(hub, run);
    if flow.steps.is_empty()
        && let Err(e) = hub.ports.runs.put(run).await
    {
        tracing::warn!(run_id = %run.id, error = %e, "run log unavailable");
        return Disposition::RetryIn(STORE_RETRY).into();
    }
    steps(hub, flow, run, ctx, ack, None).await
}

/// The steps of a run marked running, in order, as far as they go now;
/// `claimed`: the first step's claim, when the caller made it (with the run).
async fn steps(
    hub: &Hub,
    flow: Flow<'_>,
    run: &mut RunRecord,
    ctx: &mut Value,
    ack: Option<&str>,
    mut claimed: Option<Claim>,
) -> Executed {
    let mut last = None;
    for (i, step) in flow.steps.iter().enumerate() {
        let was = run.steps[i].status;
        match step::run(hub, flow, step, run, i, ctx, claimed.take()).await {
            StepOutcome::Output(output, unrecorded) => {
                ctx["steps"][&step.id] = output;
                last = unrecorded.map(|result| (i, was, result));
            }
            StepOutcome::Stop(d) => return d.into(),
        }
    }
    run.status = RunStatus::Succeeded;
    run.error = None;
    run.failure = None;
    finish::succeeded(hub, run, last, ack).await
}

pub(crate) async fn fail_step(
    hub: &Hub,
    run: &mut RunRecord,
    i: usize,
    reason: String,
    failure: Failure,
) -> Disposition {
    run.steps[i].status = StepStatus::Failed;
    run.steps[i].last_error = Some(hub.redact(&reason));
    finish_dead(hub, run, reason, failure).await
}

async fn finish_dead(
    hub: &Hub,
    run: &mut RunRecord,
    reason: String,
    failure: Failure,
) -> Disposition {
    let reason = hub.redact(&reason);
    tracing::error!(run_id = %run.id, workflow = %run.workflow, event_id = %run.event_id, reason = %reason, "run dead-lettered");
    run.status = if failure == Failure::AuthFailed {
        RunStatus::AuthFailed
    } else {
        RunStatus::DeadLettered
    };
    run.failure = Some(failure);
    run.error = Some(reason.clone());
    save(hub, run, Disposition::DeadLetter(reason)).await
}

/// Write the run; when that fails, retry the message later instead of
/// acknowledging work the run log does not show.
pub(crate) async fn save(hub: &Hub, run: &mut RunRecord, then: Disposition) -> Disposition {
    run.updated_at = hub.ports.clock.now_ms();
    if let Some(e) = &run.error {
        run.error = Some(hub.redact(e));
    }
    hub.keep(run);
    match hub.ports.runs.put(run).await {
        Ok(()) => {
            hub.metrics.run_saved(run, &then);
            if run.status.is_final() {
                crate::alerts::note::finished(hub, run).await;
            }
            then
        }
        Err(e) => {
            tracing::warn!(run_id = %run.id, error = %e, "run log unavailable");
            Disposition::RetryIn(STORE_RETRY)
        }
    }
}

/// Make `run.steps` follow the flow's steps (by id), keeping recorded history.
fn align_steps(run: &mut RunRecord, flow: Flow<'_>) {
    if run.steps.len() == flow.steps.len()
        && run.steps.iter().zip(flow.steps).all(|(r, s)| r.id == s.id)
    {
        return;
    }
    let mut old = std::mem::take(&mut run.steps);
    run.steps = flow
        .steps
        .iter()
        .map(|s| match old.iter().position(|r| r.id == s.id) {
            Some(p) => old.swap_remove(p),
            None => StepRecord::pending(&s.id),
        })
        .collect();
}
