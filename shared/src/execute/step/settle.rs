//! After a step's call: its attempts added to the step's record, the one
//! retry decision ([`crate::retry::decide`]) applied, and a halt turned into
//! what the queue does with the message.

use super::*;

/// Add the call's attempts to the step's record; the last one's verdict and answer.
pub(super) fn record(
    hub: &Hub,
    rec: &mut StepRecord,
    called: Called,
) -> Result<(Verdict, Option<Response>), Halt> {
    let tries: Vec<Tried> = match called {
        Called::Later(d) => return Err(Halt::Wait(Disposition::Requeue(d))),
        Called::StoreDown(why) => return Err(Halt::StoreDown(why)),
        Called::Refused(why) => return Err(Halt::Fail(why, Failure::AuthFailed)),
        Called::NotAllowed(why) => return Err(Halt::Fail(why, Failure::Rejected)),
        Called::Done(tries) => tries,
    };
    let mut last = None;
    for t in tries {
        let mut attempt = t.attempt;
        attempt.n = rec.attempts.len() as u32 + 1;
        attempt.error = attempt.error.map(|e| hub.redact(&e));
        rec.last_error.clone_from(&attempt.error);
        rec.attempts.push(attempt);
        last = Some((t.verdict, t.response));
    }
    last.ok_or_else(|| Halt::StoreDown("the call made no attempt".into()))
}

/// Decide: the output of a success (stored by the caller), or halt to
/// retry or fail.
pub(super) fn settle(
    hub: &Hub,
    rec: &mut StepRecord,
    policy: &Policy,
    verdict: Verdict,
    response: Option<Response>,
) -> Result<Value, Halt> {
    let now = hub.ports.clock.now_ms();
    let history = history(rec).unwrap_or(History {
        attempts: 0,
        first_at: now,
    });
    // The last attempt's status: a response's, or a refused redirect's.
    let status = rec.attempts.last().and_then(|a| a.status_code);
    let jitter = hub.ports.clock.jitter();
    let error = rec.last_error.clone().unwrap_or_default();
    let decision = retry::decide(&verdict, status, history, policy, now, jitter);
    if let Some(last) = rec.attempts.last_mut() {
        last.decision = Some(decided(&decision, &verdict, &error, hub));
    }
    match decision {
        Decision::Done => {
            // Kept 7 days in the store: redacted as the run log is (a target
            // may echo the credential it was sent).
            let output = response
                .map(|r| hub.redact_json(&output_of(r)))
                .unwrap_or(Value::Null);
            rec.status = StepStatus::Succeeded;
            rec.last_error = None;
            Ok(output)
        }
        Decision::RetryIn(delay) => Err(Halt::Retry(delay)),
        Decision::GiveUp(g) => Err(Halt::Fail(g.reason(&error), g.failure)),
    }
}

/// A succeeded step's output, `{"response": Response::to_output()}`, built
/// from the response it takes (`json!` would copy the body twice over).
fn output_of(r: Response) -> Value {
    let headers = r.headers.into_iter().map(|(k, v)| (k, Value::String(v)));
    let response = serde_json::Map::from_iter([
        ("status".to_owned(), Value::from(r.status)),
        ("headers".to_owned(), Value::Object(headers.collect())),
        ("body".to_owned(), r.body),
    ]);
    Value::Object(serde_json::Map::from_iter([(
        "response".to_owned(),
        Value::Object(response),
    )]))
}

/// The decision as the run record shows it.
fn decided(d: &Decision, verdict: &Verdict, error: &str, hub: &Hub) -> Decided {
    match d {
        Decision::Done => Decided::Done,
        Decision::RetryIn(delay) => Decided::Retry {
            in_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            retry_after_honoured: matches!(
                verdict,
                Verdict::Retry { after: Some(_) } | Verdict::RateLimited { after: Some(_) }
            ),
        },
        Decision::GiveUp(g) => Decided::GaveUp {
            why: hub.redact(&g.reason(error)),
        },
    }
}

/// What the queue does with the message, the run saved accordingly.
pub(super) async fn settle_halt(
    hub: &Hub,
    run: &mut RunRecord,
    i: usize,
    step: &Step,
    halt: Halt,
) -> Disposition {
    match halt {
        Halt::Wait(then) => save(hub, run, then).await,
        Halt::StoreDown(why) | Halt::Unrecorded(why) => {
            tracing::warn!(run_id = %run.id, step = %step.id, error = %why, "store unavailable");
            save(hub, run, Disposition::RetryIn(STORE_RETRY)).await
        }
        Halt::Retry(delay) => {
            let rec = &mut run.steps[i];
            let n = rec.attempts.len();
            let error = rec.last_error.clone().unwrap_or_default();
            tracing::warn!(run_id = %run.id, step = %step.id, attempt = n, retry_in_ms = delay.as_millis() as u64, error = %error, "step failed; will retry");
            rec.status = StepStatus::Retrying;
            run.status = RunStatus::Retrying;
            run.error = Some(format!(
                "step {}: attempt {n} failed: {error}; retrying in {}",
                step.id,
                humantime::format_duration(Duration::from_millis(delay.as_millis() as u64))
            ));
            save(hub, run, Disposition::RetryIn(delay)).await
        }
        Halt::Fail(why, failure) => {
            let reason = format!("step {}: {why}", step.id);
            fail_step(hub, run, i, reason, failure).await
        }
    }
}

/// The step's attempts in its current retry budget (since its last replay), if any.
pub(super) fn history(rec: &StepRecord) -> Option<History> {
    let budget = rec.budget();
    budget.first().map(|first| History {
        attempts: budget.len() as u32,
        first_at: first.started_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The output built from a response is what `to_output` describes.
    #[test]
    fn a_response_output_is_what_to_output_describes() {
        let r = Response {
            status: 201,
            headers: [("content-type".to_owned(), "application/json".to_owned())].into(),
            body: json!({ "id": "c-1", "tags": ["a", 2, null], "n": { "x": 1.5 } }),
            elapsed: Duration::from_millis(3),
        };
        let want = json!({ "response": r.to_output() });
        assert_eq!(output_of(r), want);
        assert_eq!(super::super::text(&want), want.to_string());
        let empty = Response {
            status: 204,
            headers: Default::default(),
            body: Value::Null,
            elapsed: Duration::ZERO,
        };
        assert_eq!(
            output_of(empty),
            json!({ "response": { "status": 204, "headers": {}, "body": null } })
        );
    }
}
