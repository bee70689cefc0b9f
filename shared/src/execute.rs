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

use crate::batch::{Item, Target};
use crate::call::{Called, call};
use crate::config::Step;
use crate::hub::{Flow, Hub};
use crate::model::{Failure, Job, RunJob, RunRecord, RunStatus, StepRecord, StepStatus};
use crate::outbound;
use crate::ports::{Claim, Message};
use crate::retry::{Policy, Rules, Verdict};
use crate::template::context;

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

/// Run the job in `msg` as far as it can go now.
pub async fn execute(hub: &Hub, msg: &Message) -> Disposition {
    let job = match serde_json::from_str::<Job>(&msg.body) {
        Ok(Job::Run(job)) => job,
        Err(e) => return Disposition::DeadLetter(format!("malformed job message: {e}")),
    };
    let run_id = job.run_id.clone();
    // ---- per-key concurrency (crate::concurrency): with a workflow's
    // `concurrency`, the run executes holding a slot of its key, or waits.
    let out = crate::concurrency::around(hub, job, |job| run_job(hub, job)).await;
    // ---- end per-key concurrency
    tracing::debug!(run_id = %run_id, disposition = ?out, "executed");
    out
}

async fn run_job(hub: &Hub, job: RunJob) -> Disposition {
    let ports = &hub.ports;
    let now = ports.clock.now_ms();
    let mut run = match ports.runs.get(&job.run_id).await {
        Ok(Some(run)) => run,
        Ok(None) => new_record(&job, now),
        Err(e) => {
            tracing::warn!(run_id = %job.run_id, error = %e, "run log unavailable");
            return Disposition::RetryIn(STORE_RETRY);
        }
    };
    if run.status.is_final() {
        return Disposition::Done;
    }
    let Some(flow) = hub.flow(&job.workflow) else {
        let reason = format!("workflow {:?} is not in the config", job.workflow);
        return finish_dead(hub, &mut run, reason, Failure::Config).await;
    };
    align_steps(&mut run, flow);
    run.status = RunStatus::Running;
    run.attempts += 1;
    run.updated_at = now;
    if let Err(e) = ports.runs.put(&run).await {
        tracing::warn!(run_id = %run.id, error = %e, "run log unavailable");
        return Disposition::RetryIn(STORE_RETRY);
    }

    let mut ctx = json!({
        "body": job.event.body,
        "headers": job.event.headers,
        "query": job.event.query,
        "event": { "id": job.event_id, "source": job.source, "received_at": job.event.received_at },
        "run": { "id": run.id, "workflow": run.workflow },
        "steps": {},
    });
    if let Some(when) = flow.when {
        match hub.templates.is_true(when, &context(&ctx)) {
            Ok(true) => {}
            Ok(false) => {
                run.status = RunStatus::Skipped;
                for s in &mut run.steps {
                    s.status = StepStatus::Skipped;
                }
                return save(hub, &mut run, Disposition::Done).await;
            }
            Err(e) => {
                return finish_dead(hub, &mut run, format!("when: {e}"), Failure::Mapping).await;
            }
        }
    }

    for (i, step) in flow.steps.iter().enumerate() {
        match run_step(hub, flow, step, &mut run, i, &ctx).await {
            StepOutcome::Output(output) => {
                ctx["steps"][&step.id] = output;
            }
            StepOutcome::Stop(d) => return d,
        }
    }
    run.status = RunStatus::Succeeded;
    run.error = None;
    run.failure = None;
    save(hub, &mut run, Disposition::Done).await
}

enum StepOutcome {
    Output(Value),
    Stop(Disposition),
}

async fn run_step(
    hub: &Hub,
    flow: Flow<'_>,
    step: &Step,
    run: &mut RunRecord,
    i: usize,
    ctx: &Value,
) -> StepOutcome {
    let ports = &hub.ports;
    let key = format!("step:{}:{}", run.id, step.id);
    let conn = hub.connection(&step.connection);
    let timeout = conn
        .and_then(|c| c.timeout)
        .map_or(outbound::DEFAULT_TIMEOUT, |d| d.get());
    // Long enough for the call (and a refresh after a 401), the in-process
    // rate-limit waits and a batch's wait.
    let lease = timeout
        .saturating_mul(2)
        .saturating_add(Duration::from_secs(30));
    match ports.idempotency.claim(&key, "", &run.id, lease).await {
        Ok(Claim::Completed { result }) => {
            if run.steps[i].status != StepStatus::Skipped {
                run.steps[i].status = StepStatus::Succeeded;
            }
            return StepOutcome::Output(serde_json::from_str(&result).unwrap_or(Value::Null));
        }
        Ok(Claim::InProgress { lease_until, .. }) => {
            let wait = Duration::from_millis((lease_until - ports.clock.now_ms()).max(100) as u64);
            return StepOutcome::Stop(save(hub, run, Disposition::RetryIn(wait)).await);
        }
        Ok(Claim::Claimed | Claim::PayloadMismatch { .. }) => {}
        Err(e) => {
            tracing::warn!(run_id = %run.id, error = %e, "idempotency store unavailable");
            return StepOutcome::Stop(Disposition::RetryIn(STORE_RETRY));
        }
    }
    let tctx = context(ctx);

    if let Some(when) = &step.when {
        match hub.templates.is_true(when, &tctx) {
            Ok(true) => {}
            Ok(false) => {
                let output = json!({ "skipped": true });
                if let Err(e) = ports
                    .idempotency
                    .complete(&key, &output.to_string(), STEP_RESULT_TTL)
                    .await
                {
                    tracing::warn!(run_id = %run.id, error = %e, "idempotency store unavailable");
                    return StepOutcome::Stop(Disposition::RetryIn(STORE_RETRY));
                }
                run.steps[i].status = StepStatus::Skipped;
                return StepOutcome::Output(output);
            }
            Err(e) => {
                release(hub, &key).await;
                let reason = format!("step {}: when: {e}", step.id);
                return StepOutcome::Stop(fail_step(hub, run, i, reason, Failure::Mapping).await);
            }
        }
    }
    let Some(conn) = conn else {
        release(hub, &key).await;
        let reason = format!(
            "step {}: connection {:?} is not in the config",
            step.id, step.connection
        );
        return StepOutcome::Stop(fail_step(hub, run, i, reason, Failure::Config).await);
    };
    let policy = Policy::resolve(step.retry.as_ref(), flow.retry);
    let now = ports.clock.now_ms();
    let deadline = run.steps[i]
        .attempts
        .first()
        .map(|a| crate::clock::after(a.started_at, policy.max_age));
    if let Some(deadline) = deadline
        && now >= deadline
    {
        release(hub, &key).await;
        let reason = format!(
            "step {}: gave up after {} (max_age); last error: {}",
            step.id,
            humantime::format_duration(policy.max_age),
            run.steps[i].last_error.clone().unwrap_or_default()
        );
        return StepOutcome::Stop(fail_step(hub, run, i, reason, Failure::Exhausted).await);
    }

    let mapped = outbound::prepare(&hub.templates, conn, &step.request, &tctx).and_then(|p| {
        let limit_key = conn
            .rate_limit
            .as_ref()
            .and_then(|rl| rl.key.as_ref())
            .map(|k| hub.templates.render(k, &tctx))
            .transpose()?;
        let item = match &step.batch {
            Some(_) => Some(
                hub.templates
                    .render_json(step.request.json.as_ref().unwrap_or(&Value::Null), &tctx)?,
            ),
            None => None,
        };
        Ok((p, limit_key, item))
    });
    let (prepared, limit_key, item) = match mapped {
        Ok(m) => m,
        Err(e) => {
            release(hub, &key).await;
            let reason = format!("step {}: {e}", step.id);
            return StepOutcome::Stop(fail_step(hub, run, i, reason, Failure::Mapping).await);
        }
    };

    let rules = Rules {
        step: Some(&step.classify),
        connection: Some(&conn.classify),
    };
    let idem_key = format!("{}:{}", run.id, step.id);
    let called = match (&step.batch, item) {
        (Some(batch), Some(body)) => {
            let group = format!(
                "{}\u{1f}{}\u{1f}{}",
                flow.name,
                step.id,
                limit_key.as_deref().unwrap_or("")
            );
            let target = Target {
                name: &step.connection,
                conn,
                batch,
                rules,
                limit_key: limit_key.as_deref(),
            };
            let item = Item {
                key: idem_key,
                body,
                single: prepared,
            };
            hub.batcher.submit(hub, &group, target, item).await
        }
        _ => {
            call(
                hub,
                &step.connection,
                conn,
                &prepared,
                &idem_key,
                rules,
                limit_key.as_deref(),
            )
            .await
        }
    };

    let tries = match called {
        Called::Later(d) => {
            release(hub, &key).await;
            return StepOutcome::Stop(save(hub, run, Disposition::Requeue(d)).await);
        }
        Called::StoreDown(why) => {
            release(hub, &key).await;
            tracing::warn!(run_id = %run.id, error = %why, "store unavailable");
            return StepOutcome::Stop(save(hub, run, Disposition::RetryIn(STORE_RETRY)).await);
        }
        Called::Refused(why) => {
            release(hub, &key).await;
            let reason = format!("step {}: {why}", step.id);
            return StepOutcome::Stop(fail_step(hub, run, i, reason, Failure::AuthFailed).await);
        }
        Called::Done(tries) => tries,
    };
    let mut last = None;
    for t in tries {
        let mut attempt = t.attempt;
        attempt.n = run.steps[i].attempts.len() as u32 + 1;
        attempt.error = attempt.error.map(|e| hub.redact(&e));
        run.steps[i].last_error.clone_from(&attempt.error);
        run.steps[i].attempts.push(attempt);
        last = Some((t.verdict, t.response));
    }
    let Some((verdict, response)) = last else {
        release(hub, &key).await;
        return StepOutcome::Stop(save(hub, run, Disposition::RetryIn(STORE_RETRY)).await);
    };
    let n = run.steps[i].attempts.len() as u32;
    let error = run.steps[i].last_error.clone().unwrap_or_default();
    // The last attempt's status: a response's, or a refused redirect's.
    let status_code = run.steps[i].attempts.last().and_then(|a| a.status_code);

    match verdict {
        Verdict::Success => {
            // Kept 7 days in the store: redacted as the run log is (a target
            // may echo the credential it was sent).
            let output = response
                .map(|r| hub.redact_json(&json!({ "response": r.to_output() })))
                .unwrap_or(Value::Null);
            if let Err(e) = ports
                .idempotency
                .complete(&key, &output.to_string(), STEP_RESULT_TTL)
                .await
            {
                // The call succeeded but its result is not recorded: the retry
                // calls again with the same Idempotency-Key.
                tracing::warn!(run_id = %run.id, error = %e, "could not record step result");
                return StepOutcome::Stop(save(hub, run, Disposition::RetryIn(STORE_RETRY)).await);
            }
            run.steps[i].status = StepStatus::Succeeded;
            run.steps[i].last_error = None;
            StepOutcome::Output(output)
        }
        Verdict::Retry { after } => {
            release(hub, &key).await;
            let now = ports.clock.now_ms();
            let started = run.steps[i].attempts.first().map_or(now, |a| a.started_at);
            let deadline = crate::clock::after(started, policy.max_age);
            if n >= policy.max_attempts || now >= deadline {
                let why = if n >= policy.max_attempts {
                    format!("{n} attempts")
                } else {
                    format!("{} (max_age)", humantime::format_duration(policy.max_age))
                };
                let reason = format!("step {}: gave up after {why}; last error: {error}", step.id);
                return StepOutcome::Stop(fail_step(hub, run, i, reason, Failure::Exhausted).await);
            }
            let left = Duration::from_millis((deadline - now).max(0) as u64);
            let delay = after.unwrap_or_else(|| policy.backoff(n)).min(left);
            tracing::warn!(run_id = %run.id, step = %step.id, attempt = n, retry_in_ms = delay.as_millis() as u64, error = %hub.redact(&error), "step failed; will retry");
            run.status = RunStatus::Retrying;
            run.steps[i].status = StepStatus::Retrying;
            run.error = Some(format!(
                "step {}: attempt {n} failed: {error}; retrying in {}",
                step.id,
                humantime::format_duration(round_ms(delay))
            ));
            StepOutcome::Stop(save(hub, run, Disposition::RetryIn(delay)).await)
        }
        Verdict::Unauthorized => {
            release(hub, &key).await;
            let reason = format!("step {}: {error}", step.id);
            StepOutcome::Stop(fail_step(hub, run, i, reason, Failure::AuthFailed).await)
        }
        Verdict::Fail => {
            release(hub, &key).await;
            let kind = match status_code {
                Some(403) => Failure::PermissionDenied,
                Some(_) => Failure::Rejected,
                None => Failure::Mapping,
            };
            let reason = format!("step {}: {error}", step.id);
            StepOutcome::Stop(fail_step(hub, run, i, reason, kind).await)
        }
    }
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

async fn release(hub: &Hub, key: &str) {
    if let Err(e) = hub.ports.idempotency.release(key).await {
        // The lease expires on its own; the retry waits for it at worst.
        tracing::warn!(key, error = %e, "could not release step claim");
    }
}

async fn fail_step(
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
async fn save(hub: &Hub, run: &mut RunRecord, then: Disposition) -> Disposition {
    run.updated_at = hub.ports.clock.now_ms();
    if let Some(e) = &run.error {
        run.error = Some(hub.redact(e));
    }
    match hub.ports.runs.put(run).await {
        Ok(()) => then,
        Err(e) => {
            tracing::warn!(run_id = %run.id, error = %e, "run log unavailable");
            Disposition::RetryIn(STORE_RETRY)
        }
    }
}

/// The run record ingest writes (and execute writes if ingest's write was lost).
pub fn new_record(job: &RunJob, now: i64) -> RunRecord {
    RunRecord {
        id: job.run_id.clone(),
        workflow: job.workflow.clone(),
        source: job.source.clone(),
        event_id: job.event_id.clone(),
        status: RunStatus::Queued,
        attempts: 0,
        created_at: now,
        updated_at: now,
        error: None,
        failure: None,
        steps: Vec::new(),
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
            None => StepRecord {
                id: s.id.clone(),
                status: StepStatus::Pending,
                attempts: Vec::new(),
                last_error: None,
            },
        })
        .collect();
}
