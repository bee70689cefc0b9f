//! Records the domain writes: queue payloads (`Job`) and the run log (`RunRecord`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::Millis;
use crate::runlog::{DEFAULT_RETENTION, Decided, GotResponse, ReceivedEvent, SentRequest};

mod ids;
mod job_decode;
pub use ids::{new_run_id, ordered_run_id, run_id_for};

/// What arrived: the parts of a request that templates see.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Request headers, names lower-cased (verification headers removed).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Query parameters.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// The parsed body (JSON, form fields as an object, or text as a string).
    #[serde(default)]
    pub body: Value,
    /// When it was accepted.
    #[serde(default)]
    pub received_at: Millis,
}

/// The queue's wire format: versioned, so it can evolve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Job {
    /// Execute one run of a workflow.
    #[serde(rename = "run.v1")]
    Run(RunJob),
}

impl Job {
    /// The message body: the one place a job is encoded.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("a job always serializes")
    }

    /// The message body of [`Job::Run`] for `job`, encoded from a borrow:
    /// the same bytes as `Job::Run(job.clone()).encode()`, without copying
    /// the event first (ingest encodes one per accepted event).
    pub fn encode_run(job: RunJobRef<'_>) -> String {
        /// [`Job`]'s wire format over a borrowed job.
        #[derive(Serialize)]
        #[serde(tag = "type")]
        enum Borrowed<'a> {
            #[serde(rename = "run.v1")]
            Run(RunJobRef<'a>),
        }
        serde_json::to_string(&Borrowed::Run(job)).expect("a job always serializes")
    }

    /// Read a message body written by [`Job::encode`].
    pub fn decode(body: &str) -> Result<Job, serde_json::Error> {
        job_decode::decode(body)
    }
}

/// Execute `workflow` for `event`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunJob {
    /// The run id.
    pub run_id: String,
    /// Workflow name (`sync:<name>` for a sync's steps).
    pub workflow: String,
    /// Source name (`sync:<name>` for syncs).
    pub source: String,
    /// Event id used for dedupe.
    pub event_id: String,
    /// The event.
    pub event: Event,
}

impl RunJob {
    /// This job over borrowed parts.
    pub fn borrowed(&self) -> RunJobRef<'_> {
        RunJobRef {
            run_id: &self.run_id,
            workflow: &self.workflow,
            source: &self.source,
            event_id: &self.event_id,
            event: &self.event,
        }
    }
}

/// A [`RunJob`] over borrowed parts (it serializes as one): ingest encodes
/// and records each workflow's run of an event without copying the event.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RunJobRef<'a> {
    /// The run id.
    pub run_id: &'a str,
    /// Workflow name.
    pub workflow: &'a str,
    /// Source name.
    pub source: &'a str,
    /// Event id used for dedupe.
    pub event_id: &'a str,
    /// The event.
    pub event: &'a Event,
}

/// Status of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Accepted, waiting for a worker.
    Queued,
    /// A worker is executing it.
    Running,
    /// A step failed and will be tried again.
    Retrying,
    /// Every step succeeded (or was skipped by its own `when`).
    Succeeded,
    /// The workflow's `when` was false.
    Skipped,
    /// Failed for good; the reason is in `error`.
    DeadLettered,
    /// A connection's credentials were refused (a `401` after a fresh token, or
    /// the token endpoint refused the client or its refresh token): dead-lettered
    /// without retries, and worth an alert — every run on the connection fails
    /// the same way until the credentials are fixed.
    AuthFailed,
}

impl RunStatus {
    /// The status as written in the run log and `--json` output.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Retrying => "retrying",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Skipped => "skipped",
            RunStatus::DeadLettered => "dead_lettered",
            RunStatus::AuthFailed => "auth_failed",
        }
    }

    /// Every status, in lifecycle order.
    pub const ALL: [RunStatus; 7] = [
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Retrying,
        RunStatus::Succeeded,
        RunStatus::Skipped,
        RunStatus::DeadLettered,
        RunStatus::AuthFailed,
    ];
    /// Whether the run will not change any more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded
                | RunStatus::Skipped
                | RunStatus::DeadLettered
                | RunStatus::AuthFailed
        )
    }
}

/// Why a run failed for good, so alerts can tell an outage from a broken
/// mapping or a revoked credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// A template or expression failed (a missing field, a bad `when`).
    Mapping,
    /// The target refused the request (a 4xx other than 401/403/408/429, or a configured `fail`).
    Rejected,
    /// `403`: the credentials work but lack a permission.
    PermissionDenied,
    /// The credentials were refused (see [`RunStatus::AuthFailed`]).
    AuthFailed,
    /// Retries ran out (`max_attempts` or `max_age`) on a retryable failure.
    Exhausted,
    /// The config no longer has the workflow, step or connection.
    Config,
}

/// Status of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Not reached yet.
    Pending,
    /// Failed, will be retried.
    Retrying,
    /// Done.
    Succeeded,
    /// Its `when` was false.
    Skipped,
    /// Failed for good.
    Failed,
}

/// One call of a step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// 1-based attempt number.
    pub n: u32,
    /// When the call started.
    pub started_at: Millis,
    /// How long it took.
    pub duration_ms: u64,
    /// HTTP status, when a response arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// What went wrong, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The request as sent (capped, redacted; see [`crate::runlog`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<SentRequest>,
    /// The response as read (capped, redacted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<GotResponse>,
    /// What the retry decision made of this attempt (on a step's last attempt
    /// of each delivery).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decided>,
}

/// A step of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Step id.
    pub id: String,
    /// Status.
    pub status: StepStatus,
    /// Every attempt, oldest first.
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    /// Where the current retry budget begins in `attempts`: a replay sets it
    /// to the number of attempts made so far, so `max_attempts` and `max_age`
    /// count from the replay while the earlier attempts stay on the record.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub budget_from: usize,
    /// The last error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl StepRecord {
    /// A step not reached yet.
    pub fn pending(id: &str) -> Self {
        StepRecord {
            id: id.to_owned(),
            status: StepStatus::Pending,
            attempts: Vec::new(),
            budget_from: 0,
            last_error: None,
        }
    }

    /// The attempts of the current retry budget (since the last replay).
    pub fn budget(&self) -> &[Attempt] {
        self.attempts.get(self.budget_from..).unwrap_or_default()
    }
}

/// A run: one event through one workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Run id.
    pub id: String,
    /// Workflow name.
    pub workflow: String,
    /// Source name.
    pub source: String,
    /// Event id.
    pub event_id: String,
    /// Status.
    pub status: RunStatus,
    /// Deliveries of the run's job to a worker.
    pub attempts: u32,
    /// When it was accepted.
    pub created_at: Millis,
    /// Last change.
    pub updated_at: Millis,
    /// Why it is retrying or dead-lettered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For a run that failed for good: what kind of failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// Steps, in workflow order.
    #[serde(default)]
    pub steps: Vec<StepRecord>,
    /// The run this one re-runs (`ferry runs rerun`), if it is a re-run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerun_of: Option<String>,
    /// Runs started as re-runs of this one, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reruns: Vec<String>,
    /// The event as received (capped, redacted; see [`crate::runlog`]).
    /// Absent on runs recorded before it was kept, and on sync runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<ReceivedEvent>,
    /// When the run (and its payload) expires: `retention` after its last
    /// change; gone from reads from then on, deleted by the store later.
    /// Absent (runs written before retention): `updated_at` + 30 days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Millis>,
}

impl RunRecord {
    /// When the run expires (see [`RunRecord::expires_at`]).
    pub fn expiry(&self) -> Millis {
        self.expires_at
            .unwrap_or_else(|| crate::runlog::expiry(self.updated_at, DEFAULT_RETENTION))
    }
}

/// A filter over the run log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunQuery {
    /// Only runs of this workflow.
    pub workflow: Option<String>,
    /// Only runs with this status.
    pub status: Option<RunStatus>,
    /// Only runs of events from this source.
    pub source: Option<String>,
    /// Only runs of this event id.
    pub event_id: Option<String>,
    /// Only runs created at or after this time.
    pub since: Option<Millis>,
    /// Only runs created before this time.
    pub until: Option<Millis>,
    /// At most this many (0: the adapter's default of 100).
    pub limit: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_job_encodes_the_same_from_a_borrow() {
        let job = RunJob {
            run_id: "r-1".into(),
            workflow: "new-lead".into(),
            source: "form".into(),
            event_id: "e-1".into(),
            event: Event {
                headers: [("x-a".to_owned(), "1".to_owned())].into(),
                query: BTreeMap::new(),
                body: serde_json::json!({ "email": "a@example.com", "n": [1, 2] }),
                received_at: 42,
            },
        };
        let body = Job::encode_run(job.borrowed());
        assert_eq!(body, Job::Run(job.clone()).encode());
        assert!(body.starts_with(r#"{"type":"run.v1","#), "{body}");
        assert_eq!(Job::decode(&body).unwrap(), Job::Run(job));
    }
}
