//! The run record of a job as first written: by ingest when it accepts the
//! event ([`queued_record`]), by execute when ingest's write was lost, and
//! by a re-run ([`new_record`]).

use crate::hub::Hub;
use crate::model::{RunJob, RunJobRef, RunRecord, RunStatus};
use crate::runlog::ReceivedEvent;

/// The run record execute writes if ingest's write was lost (and a re-run's),
/// created `now`, with the event as received ([`ReceivedEvent`]: capped,
/// redacted).
pub fn new_record(hub: &Hub, job: &RunJob, now: i64) -> RunRecord {
    new_record_of(hub, job.borrowed(), now)
}

/// The run record ingest writes for `job`: [`new_record`], created when its
/// event was received. Built again from the job, it is the same record, so a
/// first delivery need not read it ([`RunLog::put_claiming_if`]).
///
/// [`RunLog::put_claiming_if`]: crate::ports::RunLog::put_claiming_if
pub fn queued_record(hub: &Hub, job: RunJobRef<'_>) -> RunRecord {
    new_record_of(hub, job, job.event.received_at)
}

/// [`new_record`] for a borrowed job (the event is not copied).
pub fn new_record_of(hub: &Hub, job: RunJobRef<'_>, now: i64) -> RunRecord {
    RunRecord {
        id: job.run_id.to_owned(),
        workflow: job.workflow.to_owned(),
        source: job.source.to_owned(),
        event_id: job.event_id.to_owned(),
        status: RunStatus::Queued,
        attempts: 0,
        created_at: now,
        updated_at: now,
        error: None,
        failure: None,
        steps: Vec::new(),
        event: Some(ReceivedEvent::new(hub, job.event)),
        expires_at: Some(crate::runlog::expiry(now, hub.retention())),
        rerun_of: None,
        reruns: Vec::new(),
    }
}
