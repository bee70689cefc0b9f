//! Execute: one queue message → one run of a workflow, step by step.
//!
//! Each step claims `(run, step)` in the idempotency store before it calls out,
//! and stores its output when it succeeds; a redelivered or retried message
//! therefore skips finished steps (reusing their outputs) and resumes at the
//! one that failed. Every call of a step carries the same `Idempotency-Key`.
//! Whether to retry is decided in [`crate::retry`].

use std::time::Duration;

use serde_json::{Value, json};

use crate::config::Step;
use crate::hub::{Flow, Hub, bucket};
use crate::model::{Attempt, Job, RunJob, RunRecord, RunStatus, StepRecord, StepStatus};
use crate::outbound::{self, Response};
use crate::ports::{Acquire, Claim, Message};
use crate::retry::{Policy, Verdict, judge_status};
use crate::template::context;

/// How long a finished step's output is kept for resumption.
pub const STEP_RESULT_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Waits for a rate-limit token up to this long happen in-process; longer
/// ones put the message back on the queue with a delay.
pub const MAX_INLINE_WAIT: Duration = Duration::from_secs(2);
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
    let out = run_job(hub, job).await;
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
        return finish_dead(hub, &mut run, reason).await;
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
            Err(e) => return finish_dead(hub, &mut run, format!("when: {e}")).await,
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
    let lease = conn
        .and_then(|c| c.timeout)
        .map_or(outbound::DEFAULT_TIMEOUT, |d| d.get())
        + Duration::from_secs(30);
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
                return StepOutcome::Stop(
                    fail_step(hub, run, i, format!("step {}: when: {e}", step.id)).await,
                );
            }
        }
    }
    let Some(conn) = conn else {
        release(hub, &key).await;
        let reason = format!(
            "step {}: connection {:?} is not in the config",
            step.id, step.connection
        );
        return StepOutcome::Stop(fail_step(hub, run, i, reason).await);
    };
    let prepared = match outbound::prepare(&hub.templates, conn, &step.request, &tctx) {
        Ok(p) => p,
        Err(e) => {
            release(hub, &key).await;
            return StepOutcome::Stop(
                fail_step(hub, run, i, format!("step {}: {e}", step.id)).await,
            );
        }
    };

    // Spend a rate-limit token; waiting for one is not an attempt.
    let limit_key = format!("conn:{}", step.connection);
    if let Some(rl) = &conn.rate_limit {
        let b = bucket(rl);
        loop {
            match ports.limits.acquire(&limit_key, b).await {
                Ok(Acquire::Granted) => break,
                Ok(Acquire::Wait(d)) if d <= MAX_INLINE_WAIT => tokio::time::sleep(d).await,
                Ok(Acquire::Wait(d)) => {
                    release(hub, &key).await;
                    return StepOutcome::Stop(save(hub, run, Disposition::Requeue(d)).await);
                }
                Err(e) => {
                    release(hub, &key).await;
                    tracing::warn!(run_id = %run.id, error = %e, "rate-limit store unavailable");
                    return StepOutcome::Stop(
                        save(hub, run, Disposition::RetryIn(STORE_RETRY)).await,
                    );
                }
            }
        }
    }

    let n = run.steps[i].attempts.len() as u32 + 1;
    let started_at = ports.clock.now_ms();
    let idem_key = format!("{}:{}", run.id, step.id);
    let result = hub.http.send(conn, &prepared, &idem_key).await;
    let now = ports.clock.now_ms();
    let (verdict, status_code, error) = match &result {
        Ok(resp) => {
            let verdict = judge_status(
                resp.status,
                resp.headers.get("retry-after").map(String::as_str),
                now,
            );
            let error = (verdict != Verdict::Success)
                .then(|| describe_status(hub, &prepared.method, &prepared.url, resp));
            (verdict, Some(resp.status), error)
        }
        Err(e) => (
            Verdict::Retry { after: None },
            None,
            Some(format!("{} {}: {e}", prepared.method, prepared.url)),
        ),
    };
    let duration_ms = match &result {
        Ok(resp) => resp.elapsed.as_millis() as u64,
        Err(_) => (now - started_at).max(0) as u64,
    };
    run.steps[i].attempts.push(Attempt {
        n,
        started_at,
        duration_ms,
        status_code,
        error: error.clone(),
    });
    run.steps[i].last_error.clone_from(&error);

    match verdict {
        Verdict::Success => {
            let output = result
                .map(|r| json!({ "response": r.to_output() }))
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
            if let (Some(after), Some(429)) = (after, status_code) {
                let _ = ports
                    .limits
                    .pause(&limit_key, now + after.as_millis() as i64)
                    .await;
            }
            let policy = Policy::resolve(step.retry.as_ref(), flow.retry);
            let error = error.unwrap_or_default();
            if n >= policy.max_attempts {
                let reason = format!(
                    "step {}: gave up after {n} attempts; last error: {error}",
                    step.id
                );
                return StepOutcome::Stop(fail_step(hub, run, i, reason).await);
            }
            let delay = after.unwrap_or_else(|| policy.backoff(n));
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
        Verdict::Fail => {
            release(hub, &key).await;
            let reason = format!("step {}: {}", step.id, error.unwrap_or_default());
            StepOutcome::Stop(fail_step(hub, run, i, reason).await)
        }
    }
}

fn describe_status(hub: &Hub, method: &http::Method, url: &str, resp: &Response) -> String {
    let reason = http::StatusCode::from_u16(resp.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let kind = match resp.status {
        401 => " (authentication failed)",
        403 => " (permission denied)",
        _ => "",
    };
    let body = hub.redact(&outbound::excerpt(&resp.body, 300));
    format!(
        "HTTP {} {reason}{kind} from {method} {url}: {body}",
        resp.status
    )
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

async fn fail_step(hub: &Hub, run: &mut RunRecord, i: usize, reason: String) -> Disposition {
    run.steps[i].status = StepStatus::Failed;
    run.steps[i].last_error = Some(hub.redact(&reason));
    finish_dead(hub, run, reason).await
}

async fn finish_dead(hub: &Hub, run: &mut RunRecord, reason: String) -> Disposition {
    let reason = hub.redact(&reason);
    tracing::error!(run_id = %run.id, workflow = %run.workflow, event_id = %run.event_id, reason = %reason, "run dead-lettered");
    run.status = RunStatus::DeadLettered;
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
