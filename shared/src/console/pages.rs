//! The reading pages: the overview, the run list and a run's timeline.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use minijinja::context;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Console;
use super::access::Session;
use super::view::{fail, render, v};
use crate::model::{RunRecord, RunStatus};
use crate::run_filter::{FilterError, RunFilter};
use crate::status::WorkflowDay;

/// Most runs on one page of the run list.
const MAX_PAGE: usize = 200;
/// Dead letters looked through to find a run's (run detail).
const DLQ_LOOKUP: usize = 1_000;
const CHART_W: usize = 8;
const CHART_H: usize = 40;

/// One bar of a workflow's 24-hour chart (SVG coordinates).
#[derive(Debug, Serialize)]
struct Bar {
    x: usize,
    /// (y, height) of succeeded, failed, waiting, bottom up.
    parts: [(usize, usize); 3],
    title: String,
}

fn bars(day: &WorkflowDay) -> Vec<Bar> {
    let max = day
        .hourly
        .iter()
        .map(|h| h.iter().sum::<usize>())
        .max()
        .unwrap_or(0)
        .max(1);
    day.hourly
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let mut y = CHART_H;
            let parts = [0, 1, 2].map(|k| {
                let height = h[k] * CHART_H / max + usize::from(h[k] > 0 && h[k] * CHART_H < max);
                y = y.saturating_sub(height);
                (y, height)
            });
            Bar {
                x: i * CHART_W,
                parts,
                title: format!(
                    "{} h ago: {} succeeded, {} failed, {} waiting",
                    23 - i,
                    h[0],
                    h[1],
                    h[2]
                ),
            }
        })
        .collect()
}

/// The run list's `where` for the statuses the overview counts in `bucket`
/// (`crate::status::bucket_of`: 1 failed, 2 waiting), so a count's link
/// lists exactly the runs it counts (a single `status` cannot).
fn bucket_where(bucket: usize) -> String {
    let names: Vec<String> = RunStatus::ALL
        .iter()
        .filter(|s| crate::status::bucket_of(**s) == bucket)
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    format!("run.status in [{}]", names.join(", "))
}

/// `GET /`: the overview.
pub(super) async fn overview(
    State(c): State<Arc<Console>>,
    Extension(s): Extension<Session>,
) -> Response {
    let report = match crate::status::report(&c.hub).await {
        Ok(r) => r,
        Err(e) => return fail(&c, &s, StatusCode::SERVICE_UNAVAILABLE, &e),
    };
    let workflows: Vec<_> = report
        .workflows
        .iter()
        .map(|w| {
            let held = report
                .paused
                .iter()
                .find(|p| p.kind == "workflow" && p.name == w.workflow);
            json!({
                "name": w.workflow,
                "runs": w.runs,
                "totals": w.totals(),
                "truncated": w.truncated,
                "bars": bars(w),
                "held": held.is_some(),
                "held_by": held.map(|p| p.by),
            })
        })
        .collect();
    render(
        &c,
        &s,
        "overview.html",
        "overview",
        context! {
            report => v(&report),
            workflows => v(workflows),
            chart_w => 24 * CHART_W,
            chart_h => CHART_H,
            bar_w => CHART_W - 2,
            failed_where => bucket_where(1),
            waiting_where => bucket_where(2),
        },
    )
}

/// Where the next page of the run list starts: after this run.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Page {
    /// `<created_at>~<id>` of the last run of the previous page.
    before: Option<String>,
}

fn parse_before(b: &str) -> Option<(i64, &str)> {
    let (ms, id) = b.split_once('~')?;
    Some((ms.parse().ok()?, id))
}

/// `GET /runs`: the run list, with the CLI's filters, a page at a time.
pub(super) async fn runs(
    State(c): State<Arc<Console>>,
    Extension(s): Extension<Session>,
    filter: Result<Query<RunFilter>, axum::extract::rejection::QueryRejection>,
    Query(page): Query<Page>,
) -> Response {
    let mut filter = match filter {
        Ok(Query(f)) => f,
        Err(e) => return fail(&c, &s, StatusCode::BAD_REQUEST, &e.body_text()),
    };
    filter.limit = filter.limit.clamp(1, MAX_PAGE);
    let now = c.hub.ports.clock.now_ms();
    let mut query = match filter.query(now) {
        Ok(q) => q,
        Err(e) => return fail(&c, &s, StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let cursor = page.before.as_deref().and_then(parse_before);
    if let Some((ms, _)) = cursor {
        query.until = Some(query.until.map_or(ms + 1, |u| u.min(ms + 1)));
        // Runs of the cursor's millisecond already shown are dropped below.
        query.limit = 2 * filter.limit + 1;
    } else {
        query.limit = filter.limit + 1;
    }
    let got = match filter.list_from(&*c.hub.ports.runs, query).await {
        Ok(r) => r,
        Err(FilterError::Field(e)) => return fail(&c, &s, StatusCode::BAD_REQUEST, &e),
        Err(FilterError::Store(e)) => return fail(&c, &s, StatusCode::SERVICE_UNAVAILABLE, &e),
    };
    let mut rows: Vec<&RunRecord> = got
        .iter()
        .filter(|r| match cursor {
            Some((ms, id)) => r.created_at < ms || (r.created_at == ms && r.id.as_str() < id),
            None => true,
        })
        .collect();
    let more = rows.len() > filter.limit;
    rows.truncate(filter.limit);
    let next = more
        .then(|| rows.last().map(|r| format!("{}~{}", r.created_at, r.id)))
        .flatten();
    let rows: Vec<_> = rows.iter().map(|r| row(r)).collect();
    let statuses: Vec<&str> = RunStatus::ALL.iter().map(|s| s.as_str()).collect();
    let cli = cli_list(&filter);
    render(
        &c,
        &s,
        "runs.html",
        "runs",
        context! {
            filter => v(json!({
                "workflow": filter.workflow, "status": filter.status, "source": filter.source,
                "event_id": filter.event_id, "since": filter.since, "until": filter.until,
                "where": filter.where_, "search": filter.search, "limit": filter.limit,
            })),
            rows => v(rows),
            next,
            first_page => cursor.is_none(),
            search_bound => filter.search.as_deref().map(str::trim).filter(|t| !t.is_empty())
                .and(c.hub.ports.runs.search_bound()),
            statuses,
            workflows => v(c.hub.config.workflows.keys().collect::<Vec<_>>()),
            sources => v(c.hub.config.sources.keys().collect::<Vec<_>>()),
            cli,
        },
    )
}

/// A run-list row.
fn row(r: &RunRecord) -> serde_json::Value {
    json!({
        "id": r.id, "workflow": r.workflow, "source": r.source, "event_id": r.event_id,
        "status": r.status.as_str(), "attempts": r.attempts, "created_at": r.created_at,
        "updated_at": r.updated_at, "error": r.error,
    })
}

/// The `ferry runs list` command for `f`.
fn cli_list(f: &RunFilter) -> String {
    let mut cmd = String::from("ferry runs list");
    let flags = [
        ("--workflow", &f.workflow),
        ("--status", &f.status),
        ("--source", &f.source),
        ("--event-id", &f.event_id),
        ("--since", &f.since),
        ("--until", &f.until),
        ("--where", &f.where_),
        ("--search", &f.search),
    ];
    for (flag, v) in flags {
        if let Some(v) = v.as_deref().filter(|v| !v.trim().is_empty()) {
            cmd.push_str(&format!(" {flag} '{}'", v.replace('\'', r"'\''")));
        }
    }
    cmd
}

/// `GET /runs/{id}`: one run as a timeline.
pub(super) async fn run(
    State(c): State<Arc<Console>>,
    Extension(s): Extension<Session>,
    Path(id): Path<String>,
) -> Response {
    let run = match c.hub.ports.runs.get(&id).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return fail(
                &c,
                &s,
                StatusCode::NOT_FOUND,
                &format!("no run with id {id}"),
            );
        }
        Err(e) => return fail(&c, &s, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let dead_letter = if matches!(run.status, RunStatus::DeadLettered | RunStatus::AuthFailed) {
        match crate::dlq::list(&c.hub, DLQ_LOOKUP).await {
            Ok(all) => all
                .into_iter()
                .find(|(_, r)| r.as_deref() == Some(run.id.as_str()))
                .map(|(d, _)| d.id),
            Err(e) => return fail(&c, &s, StatusCode::SERVICE_UNAVAILABLE, &e),
        }
    } else {
        None
    };
    let steps: Vec<_> = run
        .steps
        .iter()
        .map(|st| {
            let attempts: Vec<_> = st
                .attempts
                .iter()
                .map(|a| {
                    json!({
                        "n": a.n, "started_at": a.started_at, "duration_ms": a.duration_ms,
                        "status_code": a.status_code, "error": a.error,
                        "request": a.request, "response": a.response,
                        "decision": a.decision.as_ref().map(ToString::to_string),
                    })
                })
                .collect();
            json!({
                "id": st.id,
                "status": serde_json::to_value(st.status).unwrap_or_default(),
                "last_error": st.last_error,
                "attempts": attempts,
            })
        })
        .collect();
    render(
        &c,
        &s,
        "run.html",
        "runs",
        context! {
            run => v(&run),
            status => run.status.as_str(),
            is_final => run.status.is_final(),
            failure => v(run.failure),
            steps => v(steps),
            dead_letter,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_command_quotes_its_values() {
        let f = RunFilter {
            workflow: Some("new-lead".into()),
            search: Some("it's".into()),
            status: Some(String::new()),
            ..RunFilter::default()
        };
        assert_eq!(
            cli_list(&f),
            r"ferry runs list --workflow 'new-lead' --search 'it'\''s'"
        );
    }
}
