//! Scheduled syncs: poll an API for what changed since the saved watermark,
//! page by page, and enqueue one run per new or changed record (one-way), or
//! merge the changes of two systems field by field (two-way).
//!
//! - **Incremental.** A pass reads the records changed since the watermark
//!   (`{{ watermark }}` in the request), page by page. After each page, once
//!   that page's runs are durably enqueued, the position (next page, highest
//!   watermark seen) is saved; when the pass ends its highest watermark
//!   becomes the next pass's filter.
//! - **Resumable.** Before each page, a run checks its deadline (the Lambda
//!   deadline, or the budget); when the next page would not fit it stops, and
//!   the next run continues the pass where this one stopped.
//! - **One at a time.** A run holds a lease (an idempotency claim on
//!   `sync-lease:<name>`), and every save is conditional on the state's
//!   version: two overlapping runs never both advance the cursor.
//! - **Deduplicated.** A record becomes a run only once per id and version
//!   (the event id `<id>@<version>` through [`crate::ingest::accept`]), so
//!   records refetched at an inclusive watermark are skipped, not re-sent.
//!
//! The state lives in the cursors port, see [`state`].

mod finish;
mod one_way;
mod pass;
mod poll;
pub mod state;
mod two_way;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::clock::Millis;
use crate::hub::Hub;
use crate::model::new_run_id;
use crate::ports::{Claim, StoreError};
use pass::Run;
use state::Saved;
pub use state::{Counts, LastRun, PagePos, Pass, PollState, SyncState};

/// How long a record version is remembered (a record is re-sent only when its version changes).
pub const RECORD_MEMORY: Duration = Duration::from_secs(400 * 24 * 3600);
/// A run's budget when the sync sets none and no deadline is given.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(5 * 60);
/// The lease outlives the deadline by this much (then a crashed run's lease expires).
const LEASE_MARGIN: Duration = Duration::from_secs(60);
/// Page calls and problems kept in a sync run's run-log entry.
const LOG_LIMIT: usize = 100;

/// Why a sync run failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    /// No such sync.
    #[error("no sync named {0:?} is configured")]
    Unknown(String),
    /// The config does not fit what the API answered (a template, the records expression).
    #[error("{0}")]
    Config(String),
    /// The source API failed or answered with an error.
    #[error("{message}")]
    Source {
        /// What happened.
        message: String,
        /// A timeout, connection error, 5xx, 408 or 429.
        retryable: bool,
    },
    /// The store is unavailable; nothing past the last saved page was saved.
    #[error("store unavailable: {0}")]
    Store(String),
    /// Another run saved the cursor since this one loaded it.
    #[error(
        "another run of sync {0} moved its cursor; this run stopped (the runs it enqueued stand)"
    )]
    Moved(String),
}

impl SyncError {
    /// Whether running again later can succeed without a change.
    pub fn is_retryable(&self) -> bool {
        match self {
            SyncError::Source { retryable, .. } => *retryable,
            SyncError::Store(_) => true,
            SyncError::Unknown(_) | SyncError::Config(_) | SyncError::Moved(_) => false,
        }
    }

    pub(crate) fn store(e: StoreError) -> Self {
        SyncError::Store(e.to_string())
    }
}

/// What started a run (recorded in the run log as its source).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Trigger {
    /// The scheduler of `ferry dev`.
    #[default]
    Schedule,
    /// `ferry sync run`.
    Manual,
    /// The Lambda function, on an EventBridge schedule.
    Lambda,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
            Trigger::Lambda => "lambda",
        }
    }
}

/// Progress after each page (for progress bars).
#[derive(Debug, Clone)]
pub struct Progress {
    /// The poll (`source`, `tombstones`, `a`, `b`).
    pub poll: String,
    /// Pages read in this run.
    pub pages: u64,
    /// Counts so far in this run.
    pub counts: Counts,
    /// Records the API says match, when it says.
    pub total: Option<u64>,
}

/// A progress callback.
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// How to run a sync.
#[derive(Clone, Default)]
pub struct RunOptions {
    /// Stop before a page that would end after this time (clock ms), e.g. the Lambda deadline.
    pub deadline: Option<Millis>,
    /// Instead of the sync's `budget`.
    pub budget: Option<Duration>,
    /// What started the run.
    pub trigger: Trigger,
    /// Called after every page.
    pub progress: Option<ProgressFn>,
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("deadline", &self.deadline)
            .field("budget", &self.budget)
            .field("trigger", &self.trigger)
            .finish_non_exhaustive()
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every pass it started ran to its end.
    Completed,
    /// It stopped before a page that would not fit its deadline; the next run continues.
    Stopped,
    /// Another run holds the lease; this one did nothing.
    Busy,
}

/// What one sync run did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SyncReport {
    /// The sync.
    pub sync: String,
    /// The run's id in the run log.
    pub run_id: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Pages read.
    pub pages: u64,
    /// Counts.
    #[serde(flatten)]
    pub counts: Counts,
    /// Records that could not be read or mapped, with why.
    pub failures: Vec<String>,
    /// Two-way conflicts and how they were resolved.
    pub conflict_log: Vec<String>,
    /// The state after the run (watermarks, unfinished passes).
    pub state: SyncState,
}

/// Run sync `name` once, with its configured budget.
pub async fn run_sync(hub: &Hub, name: &str) -> Result<SyncReport, SyncError> {
    run_sync_with(hub, name, &RunOptions::default()).await
}

/// Run sync `name` once.
pub async fn run_sync_with(
    hub: &Hub,
    name: &str,
    opts: &RunOptions,
) -> Result<SyncReport, SyncError> {
    let def = hub
        .config
        .syncs
        .get(name)
        .ok_or_else(|| SyncError::Unknown(name.to_owned()))?;
    let started = hub.ports.clock.now_ms();
    let budget = opts
        .budget
        .or(def.budget.map(|b| b.get()))
        .unwrap_or(DEFAULT_BUDGET);
    let deadline = opts
        .deadline
        .unwrap_or_else(|| crate::clock::after(started, budget));
    let run_id = new_run_id();

    let lease_key = crate::keys::sync_lease(name);
    let lease = Duration::from_millis((deadline - started).max(0) as u64) + LEASE_MARGIN;
    match hub
        .ports
        .idempotency
        .claim(&lease_key, "", &run_id, lease)
        .await
        .map_err(SyncError::store)?
    {
        Claim::Claimed => {}
        Claim::InProgress { data, lease_until } => {
            tracing::info!(sync = name, holder = %data, lease_until, "sync is already running; skipped");
            return Ok(SyncReport {
                sync: name.to_owned(),
                run_id,
                outcome: Outcome::Busy,
                pages: 0,
                counts: Counts::default(),
                failures: vec![format!("run {data} holds the lease; this run did nothing")],
                conflict_log: vec![],
                state: Saved::load(hub, name).await?.state,
            });
        }
        // Never completed nor hashed: treat leftovers as absent.
        Claim::Completed { .. } | Claim::PayloadMismatch { .. } => {
            let _ = hub.ports.idempotency.release(&lease_key).await;
            return Box::pin(run_sync_with(hub, name, opts)).await;
        }
    }

    let mut run = Run {
        hub,
        name,
        def,
        id: run_id,
        deadline,
        saved: Saved::load(hub, name).await?,
        counts: Counts::default(),
        pages: 0,
        longest_page: 0,
        log: Vec::new(),
        failures: Vec::new(),
        conflicts: Vec::new(),
        progress: opts.progress.clone(),
    };
    let result = if def.two_way.is_some() {
        two_way::run(&mut run).await
    } else {
        one_way::run(&mut run).await
    };
    let report = finish::finish(&mut run, started, opts.trigger, result).await;
    if let Err(e) = hub.ports.idempotency.release(&lease_key).await {
        tracing::warn!(sync = name, error = %e, "could not release the sync lease; it expires on its own");
    }
    report
}

/// The state of sync `name` (for `ferry sync status`), and when it was last written.
pub async fn status(hub: &Hub, name: &str) -> Result<Option<(SyncState, Millis)>, SyncError> {
    let cur = hub
        .ports
        .cursors
        .get(&crate::keys::sync_cursor(name))
        .await
        .map_err(SyncError::store)?;
    match cur {
        None => Ok(None),
        Some(c) => {
            let at = c.updated_at;
            Ok(Some((Saved::load(hub, name).await?.state, at)))
        }
    }
}

/// A JSON value as an id, version or watermark: strings as they are, the rest as JSON.
pub(crate) fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Numbers compare as numbers, everything else (ISO-8601 timestamps) as text.
pub(crate) fn later(a: &str, b: &str) -> bool {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x > y,
        _ => a > b,
    }
}

pub(crate) use crate::clock::rfc3339;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::pass::max_opt;

    #[test]
    fn watermarks_compare_as_numbers_or_text() {
        assert!(later("10", "9"));
        assert!(later("2024-01-02T00:00:00Z", "2024-01-01T23:59:59Z"));
        assert_eq!(
            max_opt(Some("5".into()), Some("12".into())).as_deref(),
            Some("12")
        );
        assert_eq!(max_opt(None, Some("a".into())).as_deref(), Some("a"));
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
