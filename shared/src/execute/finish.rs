//! A succeeded run's last write: the last step's result, the run's final
//! record and (from a queue loop) the message's deletion, together
//! ([`crate::ports::RunLog::put_settling`]): one durable commit on the
//! embedded store instead of three.

use super::step::Unrecorded;
use super::{Disposition, Executed, STEP_RESULT_TTL, STORE_RETRY, save};
use crate::hub::Hub;
use crate::model::{RunRecord, RunStatus, StepStatus};
use crate::ports::Completion;

/// Record `run` (marked succeeded) with the result of its step `last.0`
/// (whose status before this attempt was `last.1`), and delete `ack`.
///
/// When that write fails nothing of it may show: the step's claim is kept
/// (its call went out; a retry calls again with the same `Idempotency-Key`
/// once the lease ends, or finds the result stored), the run goes back to
/// running and the message is retried, as when a step's result cannot be
/// recorded.
pub(super) async fn succeeded(
    hub: &Hub,
    run: &mut RunRecord,
    last: Option<(usize, StepStatus, Unrecorded)>,
    ack: Option<&str>,
) -> Executed {
    run.updated_at = hub.ports.clock.now_ms();
    hub.keep(run);
    let done = last.as_ref().map(|(_, _, u)| Completion {
        key: &u.key,
        result: &u.result,
        ttl: STEP_RESULT_TTL,
    });
    let ports = &hub.ports;
    let (idempotency, queue) = (ports.idempotency.as_ref(), ports.queue.as_ref());
    match ports
        .runs
        .put_settling(run, idempotency, done, queue, ack)
        .await
    {
        Ok(acked) => {
            hub.metrics.run_saved(run, &Disposition::Done);
            crate::alerts::note::finished(hub, run).await;
            Executed {
                disposition: Disposition::Done,
                acked,
            }
        }
        Err(e) => {
            tracing::warn!(run_id = %run.id, error = %e, "could not record the run's result");
            if let Some((i, was, _)) = last {
                run.steps[i].status = was;
            }
            run.status = RunStatus::Running;
            save(hub, run, Disposition::RetryIn(STORE_RETRY))
                .await
                .into()
        }
    }
}
