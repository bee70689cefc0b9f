//! `ferry runs list` filters: the indexed ones go to the store as a
//! [`RunQuery`]; `--where` is evaluated here, after the indexed query, with
//! the template engine's expression evaluator (the language of `when`).
//!
//! `--where` sees what the run record holds, in the shape a workflow's
//! templates see it: `body`, `headers`, `query` (the event as received,
//! redacted and capped), `event` (`id`, `source`, `received_at`), `steps`
//! (by step id: `status`, `attempts`, `last_error`, and `response` — the
//! last answer it got: `status`, `headers`, `body`) and `run` (the whole record).

use std::collections::HashSet;

use clap::Args;
use ferry::clock::Millis;
use ferry::model::{RunQuery, RunRecord, RunStatus};
use ferry::ports::RunLog;
use ferry::template::{Templates, context};

/// Runs read per page while `--where` drops some.
const WHERE_PAGE: usize = 200;
/// Pages read at most for one `--where` listing.
const WHERE_PAGES: usize = 50;

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
    /// At most this many.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

fn parse_status(s: &str) -> anyhow::Result<RunStatus> {
    RunStatus::ALL
        .into_iter()
        .find(|st| st.as_str() == s)
        .ok_or_else(|| {
            let all: Vec<&str> = RunStatus::ALL.iter().map(|s| s.as_str()).collect();
            anyhow::anyhow!("unknown status {s:?}; one of {}", all.join(", "))
        })
}

/// `T` as clock milliseconds: RFC 3339, or a duration before `now`.
pub fn parse_time(flag: &str, t: &str, now: Millis) -> anyhow::Result<Millis> {
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(t) {
        return Ok(at.timestamp_millis());
    }
    if let Ok(ago) = humantime::parse_duration(t) {
        let ago = Millis::try_from(ago.as_millis()).unwrap_or(Millis::MAX);
        return Ok(now.saturating_sub(ago));
    }
    anyhow::bail!("{flag} {t:?}: expected RFC 3339 (2026-01-31T09:00:00Z) or a time ago (24h)")
}

impl RunFilter {
    /// The indexed part, as the store's query.
    pub fn query(&self, now: Millis) -> anyhow::Result<RunQuery> {
        Ok(RunQuery {
            workflow: self.workflow.clone(),
            status: self.status.as_deref().map(parse_status).transpose()?,
            source: self.source.clone(),
            event_id: self.event_id.clone(),
            since: self
                .since
                .as_deref()
                .map(|t| parse_time("--since", t, now))
                .transpose()?,
            until: self
                .until
                .as_deref()
                .map(|t| parse_time("--until", t, now))
                .transpose()?,
            limit: self.limit,
        })
    }

    /// The matching runs, newest first, at most `limit`.
    pub async fn list(&self, runs: &dyn RunLog, now: Millis) -> anyhow::Result<Vec<RunRecord>> {
        let query = self.query(now)?;
        let Some(expr) = &self.where_ else {
            return Ok(runs.list(&query).await?);
        };
        let templates = Templates::new();
        // Page back in time with `until` until enough runs pass.
        let mut page = RunQuery {
            limit: query.limit.max(WHERE_PAGE),
            ..query.clone()
        };
        let (mut out, mut seen, mut first_error) = (Vec::new(), HashSet::new(), None);
        for _ in 0..WHERE_PAGES {
            let got = runs.list(&page).await?;
            let full = got.len() >= page.limit;
            let oldest = got.last().map(|r| r.created_at);
            for run in got {
                if !seen.insert(run.id.clone()) {
                    continue;
                }
                match templates.is_true(expr, &context(&where_context(&run))) {
                    Ok(true) => out.push(run),
                    Ok(false) => {}
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
                if out.len() >= query.limit.max(1) {
                    return Ok(out);
                }
            }
            match oldest {
                // Runs of the oldest millisecond may continue on the next page.
                Some(at) if full && page.until != Some(at + 1) => page.until = Some(at + 1),
                Some(at) if full => page.until = Some(at),
                _ => break,
            }
        }
        if let (true, Some(e)) = (out.is_empty(), first_error) {
            anyhow::bail!("--where {expr:?}: {e}");
        }
        Ok(out)
    }
}

/// What `--where` sees of a run.
pub fn where_context(run: &RunRecord) -> serde_json::Value {
    use serde_json::{Value, json};
    let steps: serde_json::Map<String, Value> = run
        .steps
        .iter()
        .map(|s| {
            let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
            let response = s.attempts.iter().rev().find_map(|a| a.response.as_ref());
            v["response"] = serde_json::to_value(response).unwrap_or(Value::Null);
            (s.id.clone(), v)
        })
        .collect();
    let ev = run.event.as_ref();
    json!({
        "run": run,
        "body": ev.map_or(Value::Null, |e| e.payload.clone()),
        "headers": ev.map(|e| &e.headers),
        "query": ev.map(|e| &e.query),
        "event": {
            "id": run.event_id,
            "source": run.source,
            "received_at": ev.map(|e| e.received_at),
        },
        "steps": steps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_or_a_time_ago() {
        let now = 1_800_000_000_000;
        assert_eq!(
            parse_time("--since", "2027-01-15T08:00:00Z", now).unwrap(),
            1_800_000_000_000
        );
        assert_eq!(parse_time("--since", "1h", now).unwrap(), now - 3_600_000);
        let err = parse_time("--until", "yesterday", now).unwrap_err();
        assert!(err.to_string().contains("--until \"yesterday\""), "{err}");
    }
}
