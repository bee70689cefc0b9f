//! The filters over the run log that `ferry runs list` and the console share:
//! the indexed ones go to the store as a [`RunQuery`], `search` (text in the
//! event's payload) to the store's [`RunLog::search`]; `where` (an expression
//! in the language of `when`) is evaluated here, after the store's answer,
//! paging back in time until enough runs pass.
//!
//! `where` sees what the run record holds, in the shape a workflow's
//! templates see it: `body`, `headers`, `query` (the event as received,
//! redacted and capped), `event` (`id`, `source`, `received_at`), `steps`
//! (by step id: `status`, `attempts`, `last_error`, and `response` — the
//! last answer it got: `status`, `headers`, `body`) and `run` (the whole record).

use std::collections::HashSet;

use serde::Deserialize;

use crate::clock::Millis;
use crate::model::{RunQuery, RunRecord, RunStatus};
use crate::ports::RunLog;
use crate::template::{Templates, context};

pub use crate::run_search::payload_contains;

/// Runs read per page while `where` drops some.
const SCAN_PAGE: usize = 200;
/// Pages read at most for one filtered listing.
const SCAN_PAGES: usize = 50;
/// The default page size.
pub const DEFAULT_LIMIT: usize = 50;

/// The filters of a run listing. Empty strings count as unset (an HTML form
/// sends its empty fields).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct RunFilter {
    /// Only this workflow.
    pub workflow: Option<String>,
    /// Only this status (`queued`, `running`, …; see [`RunStatus::as_str`]).
    pub status: Option<String>,
    /// Only runs of events from this source.
    pub source: Option<String>,
    /// Only runs of this event id.
    pub event_id: Option<String>,
    /// Only runs created at or after this: RFC 3339 or a time ago (`24h`).
    pub since: Option<String>,
    /// Only runs created before this: RFC 3339 or a time ago.
    pub until: Option<String>,
    /// Only runs for which this expression is true (the language of `when`).
    #[serde(rename = "where")]
    pub where_: Option<String>,
    /// Only runs whose event payload (as JSON text) contains this text.
    pub search: Option<String>,
    /// At most this many.
    pub limit: usize,
}

impl Default for RunFilter {
    fn default() -> Self {
        RunFilter {
            workflow: None,
            status: None,
            source: None,
            event_id: None,
            since: None,
            until: None,
            where_: None,
            search: None,
            limit: DEFAULT_LIMIT,
        }
    }
}

fn set(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Why a listing could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// A filter's value is wrong; the message starts with the filter's name
    /// (`status "x": …`), so the CLI can put `--` before it.
    #[error("{0}")]
    Field(String),
    /// The store could not be read.
    #[error("{0}")]
    Store(String),
}

/// `s` as a run status, or an error listing the statuses.
pub fn parse_status(s: &str) -> Result<RunStatus, String> {
    RunStatus::ALL
        .into_iter()
        .find(|st| st.as_str() == s)
        .ok_or_else(|| {
            let all: Vec<&str> = RunStatus::ALL.iter().map(|s| s.as_str()).collect();
            format!("status {s:?}: unknown; one of {}", all.join(", "))
        })
}

/// `t` as clock milliseconds: RFC 3339, or a duration before `now`. `flag`
/// names the field in the error.
pub fn parse_time(flag: &str, t: &str, now: Millis) -> Result<Millis, String> {
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(t) {
        return Ok(at.timestamp_millis());
    }
    if let Ok(ago) = humantime::parse_duration(t) {
        let ago = Millis::try_from(ago.as_millis()).unwrap_or(Millis::MAX);
        return Ok(now.saturating_sub(ago));
    }
    Err(format!(
        "{flag} {t:?}: expected RFC 3339 (2026-01-31T09:00:00Z) or a time ago (24h)"
    ))
}

impl RunFilter {
    /// The indexed part, as the store's query.
    pub fn query(&self, now: Millis) -> Result<RunQuery, FilterError> {
        self.query_inner(now).map_err(FilterError::Field)
    }

    fn query_inner(&self, now: Millis) -> Result<RunQuery, String> {
        Ok(RunQuery {
            workflow: set(&self.workflow).map(str::to_owned),
            status: set(&self.status).map(parse_status).transpose()?,
            source: set(&self.source).map(str::to_owned),
            event_id: set(&self.event_id).map(str::to_owned),
            since: set(&self.since)
                .map(|t| parse_time("since", t, now))
                .transpose()?,
            until: set(&self.until)
                .map(|t| parse_time("until", t, now))
                .transpose()?,
            limit: self.limit,
        })
    }

    /// The matching runs, newest first, at most `limit`.
    pub async fn list(
        &self,
        runs: &dyn RunLog,
        now: Millis,
    ) -> Result<Vec<RunRecord>, FilterError> {
        let query = self.query(now)?;
        self.list_from(runs, query).await
    }

    /// [`list`](Self::list) over an already built query (the console narrows
    /// `until` to page back).
    pub async fn list_from(
        &self,
        runs: &dyn RunLog,
        query: RunQuery,
    ) -> Result<Vec<RunRecord>, FilterError> {
        let store = |e: crate::ports::StoreError| FilterError::Store(e.to_string());
        let (expr, search) = (set(&self.where_), set(&self.search));
        if expr.is_none() && search.is_none() {
            return runs.list(&query).await.map_err(store);
        }
        let templates = Templates::new();
        // Page back in time with `until` until enough runs pass.
        let mut page = RunQuery {
            limit: query.limit.max(SCAN_PAGE),
            ..query.clone()
        };
        let (mut out, mut seen, mut first_error) = (Vec::new(), HashSet::new(), None);
        // A bounded search reads its newest runs once, not once per page.
        let pages = match (search, runs.search_bound()) {
            (Some(_), Some(_)) => 1,
            _ => SCAN_PAGES,
        };
        for _ in 0..pages {
            let got = match search {
                Some(text) => runs.search(&page, text).await,
                None => runs.list(&page).await,
            }
            .map_err(store)?;
            let full = got.len() >= page.limit;
            let oldest = got.last().map(|r| r.created_at);
            for run in got {
                if !seen.insert(run.id.clone()) {
                    continue;
                }
                let pass = match expr {
                    None => true,
                    Some(expr) => match templates.is_true(expr, &context(&where_context(&run))) {
                        Ok(pass) => pass,
                        Err(e) => {
                            first_error.get_or_insert(e);
                            false
                        }
                    },
                };
                if pass {
                    out.push(run);
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
        if let (true, Some(e), Some(expr)) = (out.is_empty(), first_error, expr) {
            return Err(FilterError::Field(format!("where {expr:?}: {e}")));
        }
        Ok(out)
    }
}

/// What `where` sees of a run.
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
        assert!(err.contains("--until \"yesterday\""), "{err}");
    }

    #[test]
    fn empty_fields_are_unset() {
        let f = RunFilter {
            workflow: Some(" ".into()),
            status: Some(String::new()),
            ..RunFilter::default()
        };
        let q = f.query(0).unwrap();
        assert_eq!(q.workflow, None);
        assert_eq!(q.status, None);
        assert!(
            RunFilter {
                status: Some("nope".into()),
                ..RunFilter::default()
            }
            .query(0)
            .unwrap_err()
            .to_string()
            .starts_with("status \"nope\": unknown")
        );
    }
}
