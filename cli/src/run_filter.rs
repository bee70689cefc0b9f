//! `ferry runs list` filters, as flags. The filtering itself is
//! [`ferry::run_filter::RunFilter`], which the console uses too.

use clap::Args;
use ferry::clock::Millis;
use ferry::model::RunRecord;
use ferry::ports::RunLog;

/// The filters of `ferry runs list`.
#[derive(Debug, Clone, Args)]
pub struct RunFilter {
    /// Only this workflow.
    #[arg(long)]
    pub workflow: Option<String>,
    /// Only this status (queued, running, retrying, succeeded, skipped, dead_lettered, auth_failed).
    #[arg(long)]
    pub status: Option<String>,
    /// Only runs of events from this source.
    #[arg(long)]
    pub source: Option<String>,
    /// Only runs of this event id.
    #[arg(long)]
    pub event_id: Option<String>,
    /// Only runs created at or after T: RFC 3339 (`2026-01-31T09:00:00Z`) or a time ago (`24h`).
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Only runs created before T: RFC 3339 or a time ago.
    #[arg(long, value_name = "T")]
    pub until: Option<String>,
    /// Only runs for which EXPR is true (the language of `when`), over `run`, `event` and `steps`.
    #[arg(long = "where", value_name = "EXPR")]
    pub where_: Option<String>,
    /// Only runs whose event payload contains TEXT (case-insensitive).
    #[arg(long, value_name = "TEXT")]
    pub search: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = ferry::run_filter::DEFAULT_LIMIT)]
    pub limit: usize,
}

impl RunFilter {
    /// The shared filter these flags make.
    pub fn shared(&self) -> ferry::run_filter::RunFilter {
        ferry::run_filter::RunFilter {
            workflow: self.workflow.clone(),
            status: self.status.clone(),
            source: self.source.clone(),
            event_id: self.event_id.clone(),
            since: self.since.clone(),
            until: self.until.clone(),
            where_: self.where_.clone(),
            search: self.search.clone(),
            limit: self.limit,
        }
    }

    /// The matching runs, newest first, at most `limit`.
    pub async fn list(&self, runs: &dyn RunLog, now: Millis) -> anyhow::Result<Vec<RunRecord>> {
        self.shared().list(runs, now).await.map_err(|e| match e {
            ferry::run_filter::FilterError::Field(e) => anyhow::anyhow!("--{e}"),
            ferry::run_filter::FilterError::Store(e) => anyhow::anyhow!(e),
        })
    }
}
