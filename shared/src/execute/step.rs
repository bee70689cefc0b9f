//! One step of a run, in phases: **claim** `(run, step)` → **guard** (the
//! step's `when`, its connection, its age) → **prepare** the request →
//! **dispatch** it (alone through [`crate::call`], or with others through
//! [`crate::batch`]) → **record** the attempts in the run → **settle** with
//! the one retry decision, [`crate::retry::decide`] (the last two in
//! [`settle`]).
//!
//! A phase that cannot go on returns a [`Halt`]; [`run`] gives the claim
//! back for every halt after it was taken (except when the call succeeded
//! but its result could not be recorded) and turns the halt into what the
//! queue does with the message.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Disposition, STEP_RESULT_TTL, STORE_RETRY, fail_step, save};
use crate::batch::{Item, Target};
use crate::call::{Called, Tried, call};
use crate::config::Step;
use crate::hub::{Conn, Flow, Hub, step_lease};
use crate::keys;
use crate::model::{Failure, RunRecord, RunStatus, StepRecord, StepStatus};
use crate::outbound::{self, Prepared, Response};
use crate::ports::{Claim, ClaimArgs};
use crate::retry::{self, Decision, History, Policy, Rules, Verdict};
use crate::runlog::Decided;
use crate::template::context;

mod settle;
use settle::{history, record, settle, settle_halt};

/// How a step ended for now.
pub(super) enum StepOutcome {
    /// Done (or skipped): its output, for later steps' templates, and for
    /// the run's last step the result still to store (with the run's final
    /// record, [`crate::ports::RunLog::put_settling`]).
    Output(Value, Option<Unrecorded>),
    /// The run stops here; the queue does this with the message.
    Stop(Disposition),
}

/// A succeeded step's result, not stored yet: the caller completes `key`
/// with it. Until then the step's claim stays in progress.
pub(super) struct Unrecorded {
    /// The step's idempotency key.
    pub key: String,
    /// Its output as JSON text.
    pub result: String,
}

/// Why a step stops before it has an output.
enum Halt {
    /// Not the step's failure: give the message back after this long
    /// (`RetryIn` for another worker's claim, `Requeue` for a rate limit).
    Wait(Disposition),
    /// The store could not be asked or written.
    StoreDown(String),
    /// The call succeeded but its output could not be stored: keep the
    /// claim (the retry calls again with the same `Idempotency-Key`).
    Unrecorded(String),
    /// The attempt failed and is retried after this long.
    Retry(Duration),
    /// The step failed for good.
    Fail(String, Failure),
}

/// Run step `i` of `flow` in `run`, with `ctx` the run's template context.
/// The first step's claim also writes `run` (marked running by the
/// caller), unless the caller made it (`claimed`: its answer); the last
/// step leaves its result [`Unrecorded`].
pub(super) async fn run(
    hub: &Hub,
    flow: Flow<'_>,
    step: &Step,
    run: &mut RunRecord,
    i: usize,
    ctx: &Value,
    claimed: Option<Claim>,
) -> StepOutcome {
    let key = keys::step(&run.id, &step.id);
    let conn = hub.connection(&step.connection);
    let last = i + 1 == flow.steps.len();
    let was = run.steps[i].status;
    let halt = match claim(hub, &key, conn, run, i, claimed).await {
        Ok(Some(output)) => return StepOutcome::Output(output, None),
        Ok(None) => match attempt(hub, flow, step, conn, run, i, ctx).await {
            Ok(output) if last => {
                let result = text(&output);
                return StepOutcome::Output(output, Some(Unrecorded { key, result }));
            }
            Ok(output) => match complete(hub, &key, &output).await {
                Ok(()) => return StepOutcome::Output(output, None),
                Err(halt) => {
                    run.steps[i].status = was;
                    halt
                }
            },
            Err(halt) => {
                if !matches!(halt, Halt::Unrecorded(_)) {
                    release(hub, &key).await;
                }
                halt
            }
        },
        // Not ours: nothing to give back.
        Err(halt) => halt,
    };
    StepOutcome::Stop(settle_halt(hub, run, i, step, halt).await)
}

/// How long a step's claim on `conn` is leased.
fn lease(conn: Option<&Conn>) -> Duration {
    conn.map_or_else(|| step_lease(outbound::DEFAULT_TIMEOUT), |c| c.step_lease)
}

/// The claim of step `key` of run `run_id` on `conn`: no payload hash, the
/// run id as its data, the connection's step lease.
pub(super) fn claim_args<'a>(key: &'a str, run_id: &'a str, conn: Option<&Conn>) -> ClaimArgs<'a> {
    ClaimArgs {
        key,
        payload_hash: "",
        data: run_id,
        lease: lease(conn),
    }
}

/// Claim the step: `Some(output)` when it already succeeded, `None` when it
/// is ours to run. The first step's claim is written with the run, unless
/// it was made already (`made`).
async fn claim(
    hub: &Hub,
    key: &str,
    conn: Option<&Conn>,
    run: &mut RunRecord,
    i: usize,
    made: Option<Claim>,
) -> Result<Option<Value>, Halt> {
    let ports = &hub.ports;
    let claimed = if let Some(made) = made {
        Ok(made)
    } else if i == 0 {
        let args = claim_args(key, &run.id, conn);
        let idempotency = ports.idempotency.as_ref();
        ports.runs.put_claiming(run, idempotency, args).await
    } else {
        let c = claim_args(key, &run.id, conn);
        ports
            .idempotency
            .claim(c.key, c.payload_hash, c.data, c.lease)
            .await
    };
    let rec = &mut run.steps[i];
    match claimed {
        Ok(Claim::Completed { result }) => {
            if rec.status != StepStatus::Skipped {
                rec.status = StepStatus::Succeeded;
            }
            Ok(Some(serde_json::from_str(&result).unwrap_or(Value::Null)))
        }
        Ok(Claim::InProgress { lease_until, .. }) => {
            let wait = Duration::from_millis((lease_until - ports.clock.now_ms()).max(100) as u64);
            Err(Halt::Wait(Disposition::RetryIn(wait)))
        }
        Ok(Claim::Claimed | Claim::PayloadMismatch { .. }) => Ok(None),
        Err(e) => Err(Halt::StoreDown(format!("idempotency store: {e}"))),
    }
}

/// Everything after the claim: guard → prepare → dispatch → record → settle.
async fn attempt(
    hub: &Hub,
    flow: Flow<'_>,
    step: &Step,
    conn: Option<&Conn>,
    run: &mut RunRecord,
    i: usize,
    ctx: &Value,
) -> Result<Value, Halt> {
    let tctx = context(ctx);
    let policy = Policy::resolve(step.retry.as_ref(), flow.retry);
    let conn = match guard(hub, step, conn, &run.steps[i], &policy, &tctx)? {
        Guarded::Skipped(output) => {
            run.steps[i].status = StepStatus::Skipped;
            return Ok(output);
        }
        Guarded::Go(conn) => conn,
    };
    let (prepared, limit_key, item) = prepare(hub, step, conn, &tctx)?;
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
                rules: rules(step, conn),
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
            let (name, rules) = (&step.connection, rules(step, conn));
            call(
                hub,
                name,
                conn,
                &prepared,
                &idem_key,
                rules,
                limit_key.as_deref(),
            )
            .await
        }
    };
    let (verdict, response) = record(hub, &mut run.steps[i], called)?;
    settle(hub, &mut run.steps[i], &policy, verdict, response)
}

/// Store a succeeded step's output under its key.
async fn complete(hub: &Hub, key: &str, output: &Value) -> Result<(), Halt> {
    hub.ports
        .idempotency
        .complete(key, &text(output), STEP_RESULT_TTL)
        .await
        .map_err(|e| Halt::Unrecorded(format!("could not record the step's result: {e}")))
}

/// A step's output as stored: compact JSON (as `Display` writes it, with
/// fewer instructions).
fn text(output: &Value) -> String {
    serde_json::to_string(output).expect("a JSON value always serializes")
}

enum Guarded<'c> {
    /// The step's `when` is false: its output.
    Skipped(Value),
    /// Go on, with the step's connection.
    Go(&'c Conn),
}

/// The step's `when`, its connection, and its age (`max_age`).
fn guard<'c>(
    hub: &Hub,
    step: &Step,
    conn: Option<&'c Conn>,
    rec: &StepRecord,
    policy: &Policy,
    tctx: &minijinja::Value,
) -> Result<Guarded<'c>, Halt> {
    if let Some(when) = &step.when {
        match hub.templates.is_true(when, tctx) {
            Ok(true) => {}
            // Stored like a result, so a redelivery skips it too.
            Ok(false) => return Ok(Guarded::Skipped(json!({ "skipped": true }))),
            Err(e) => return Err(Halt::Fail(format!("when: {e}"), Failure::Mapping)),
        }
    }
    let conn = conn.ok_or_else(|| {
        let why = format!("connection {:?} is not in the config", step.connection);
        Halt::Fail(why, Failure::Config)
    })?;
    retry::may_attempt(history(rec), policy, hub.ports.clock.now_ms()).map_err(|g| {
        let last = rec.last_error.clone().unwrap_or_default();
        Halt::Fail(g.reason(&last), g.failure)
    })?;
    Ok(Guarded::Go(conn))
}

/// The request, the rendered `rate_limit.key`, and the batch item's body.
fn prepare(
    hub: &Hub,
    step: &Step,
    conn: &Conn,
    tctx: &minijinja::Value,
) -> Result<(Prepared, Option<String>, Option<Value>), Halt> {
    let t = &hub.templates;
    let mapped = outbound::prepare(t, conn, &step.request, tctx).and_then(|p| {
        let limit_key = conn
            .rate_limit
            .as_ref()
            .and_then(|rl| rl.key.as_ref())
            .map(|k| t.render(k, &key_context(&p, tctx)))
            .transpose()?;
        let item = match &step.batch {
            Some(_) => {
                Some(t.render_json(step.request.json.as_ref().unwrap_or(&Value::Null), tctx)?)
            }
            None => None,
        };
        Ok((p, limit_key, item))
    });
    mapped.map_err(|e| Halt::Fail(e.to_string(), Failure::Mapping))
}

/// What a `rate_limit.key` template sees: the step's context and the
/// `request` as prepared (`method`, `url`, `query`, `json`, `form`), so a
/// limit can follow what is sent (Slack's per-channel limit:
/// `{{ request.json.channel }}`).
fn key_context(p: &Prepared, tctx: &minijinja::Value) -> minijinja::Value {
    let (json, form) = match &p.body {
        outbound::Body::Json(v) => (v.clone(), Value::Null),
        outbound::Body::Form(f) => (
            Value::Null,
            json!(
                f.iter()
                    .cloned()
                    .collect::<std::collections::BTreeMap<_, _>>()
            ),
        ),
        outbound::Body::None => (Value::Null, Value::Null),
    };
    let query: std::collections::BTreeMap<_, _> = p.query.iter().cloned().collect();
    let request = json!({
        "method": p.method.as_str(), "url": p.url.as_str(), "query": query, "json": json, "form": form,
    });
    minijinja::context! { request => context(&request), ..tctx.clone() }
}

fn rules<'a>(step: &'a Step, conn: &'a Conn) -> Rules<'a> {
    Rules {
        step: Some(&step.classify),
        connection: Some(&conn.classify),
    }
}

async fn release(hub: &Hub, key: &str) {
    if let Err(e) = hub.ports.idempotency.release(key).await {
        // The lease expires on its own; the retry waits for it at worst.
        tracing::warn!(key, error = %e, "could not release step claim");
    }
}
