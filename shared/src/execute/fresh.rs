//! A first delivery without reading its run first.
//!
//! Ingest records each run as [`queued_record`] of its job, so a message
//! received for the first time can rebuild its run from the job instead of
//! reading (and decoding) the stored one. It marks that run running and
//! claims the first step in one write that holds only if the stored run is
//! still exactly that record ([`RunLog::put_claiming_if`]). Anything else
//! stored — a run already final (a duplicate message), one running or
//! retrying (a message sent again), a re-run's or a replay's, none at all
//! (ingest's write lost) — writes nothing there, and the run goes on from
//! the stored run as if it had been read first.
//!
//! Before that write nothing is written: a flow whose runs would write, wait
//! or hold a slot before their first step's claim (an unknown workflow, no
//! steps, a paused workflow, a `when` that is not true, a `concurrency`
//! gate) is not tried here, and its run is read as before.
//!
//! [`RunLog::put_claiming_if`]: crate::ports::RunLog::put_claiming_if

use super::step::claim_args;
use super::{Executed, align_steps, context_of, mark_running, queued_record, steps};
use crate::hub::Hub;
use crate::model::{RunJob, RunRecord};
use crate::pause;
use crate::ports::{Fresh, StoreResult};
use crate::template::context;

/// What [`first_delivery`] did.
pub(super) enum First {
    /// The stored run was the queued record: the run went on from it.
    Ran(Executed),
    /// It was not: nothing was written; the stored run, as a read answers.
    Stored(StoreResult<Option<Box<RunRecord>>>),
    /// Not tried (see the module's doc): read the run.
    NotTried,
}

/// Run `job` from its queued record, if that is the stored run.
pub(super) async fn first_delivery(hub: &Hub, job: &RunJob, ack: Option<&str>) -> First {
    let Some(flow) = hub.flow(&job.workflow) else {
        return First::NotTried;
    };
    let Some(step) = flow.steps.first() else {
        return First::NotTried;
    };
    if crate::concurrency::limited(hub, flow.name)
        || !matches!(
            pause::held(hub, pause::Kind::Workflow, flow.name).await,
            Ok(false)
        )
    {
        return First::NotTried;
    }
    let expected = queued_record(hub, job.borrowed());
    let mut run = expected.clone();
    align_steps(&mut run, flow);
    let mut ctx = context_of(job, &run);
    if let Some(when) = flow.when
        && !matches!(hub.templates.is_true(when, &context(&ctx)), Ok(true))
    {
        return First::NotTried;
    }
    mark_running(hub, &mut run);
    let ports = &hub.ports;
    let key = crate::keys::step(&run.id, &step.id);
    let args = claim_args(&key, &run.id, hub.connection(&step.connection));
    let idempotency = ports.idempotency.as_ref();
    match ports
        .runs
        .put_claiming_if(&expected, &run, idempotency, args)
        .await
    {
        Ok(Fresh::Claimed(claim)) => {
            First::Ran(steps(hub, flow, &mut run, &mut ctx, ack, Some(claim)).await)
        }
        Ok(Fresh::Stored(stored)) => First::Stored(Ok(stored)),
        Err(e) => First::Stored(Err(e)),
    }
}
