//! The operating pages and their actions: dead letters (replay one, or a
//! filter after a confirmation), re-run, pause/resume, sources (drift),
//! connections, syncs and alerts. Every action is a POST (the gate has
//! checked its CSRF token) that calls the function the CLI calls.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use minijinja::context;
use serde::Deserialize;
use serde_json::json;

use super::Console;
use super::access::Session;
use super::view::{fail, render, v};
use crate::pause::Kind;

/// Dead letters shown on the dead-letter page at most.
const DLQ_SHOWN: usize = 500;

/// A dead-letter filter, as the CLI's `ferry dlq replay` flags.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub(super) struct DlqFilter {
    workflow: Option<String>,
    since: Option<String>,
    reason_contains: Option<String>,
    all: Option<String>,
}

impl DlqFilter {
    fn selection(&self, now: crate::clock::Millis) -> Result<crate::dlq::Selection, String> {
        let set = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
        Ok(crate::dlq::Selection {
            ids: Vec::new(),
            all: self.all.as_deref() == Some("true"),
            workflow: set(&self.workflow),
            since: set(&self.since)
                .map(|s| crate::dlq::parse_since(&s, now))
                .transpose()?,
            reason_contains: set(&self.reason_contains),
        })
    }

    fn cli(&self) -> String {
        let mut cmd = String::from("ferry dlq replay");
        if self.all.as_deref() == Some("true") {
            cmd.push_str(" --all");
        }
        for (flag, v) in [
            ("--workflow", &self.workflow),
            ("--since", &self.since),
            ("--reason-contains", &self.reason_contains),
        ] {
            if let Some(v) = v.as_deref().filter(|v| !v.trim().is_empty()) {
                cmd.push_str(&format!(" {flag} '{}'", v.replace('\'', r"'\''")));
            }
        }
        cmd
    }
}

/// `GET /dlq`: dead letters grouped by workflow and reason.
pub(super) async fn dlq(
    State(c): State<Arc<Console>>,
    Extension(s): Extension<Session>,
) -> Response {
    let letters = match crate::dlq::select(
        &c.hub,
        &crate::dlq::Selection {
            all: true,
            ..Default::default()
        },
    )
    .await
    {
        Ok(l) => l,
        Err(e) => return fail(&c, &s, StatusCode::SERVICE_UNAVAILABLE, &e),
    };
    let mut groups: BTreeMap<(String, String), usize> = BTreeMap::new();
    for l in &letters {
        let wf = l.workflow.clone().unwrap_or_default();
        *groups.entry((wf, l.dead.reason.clone())).or_insert(0) += 1;
    }
    let groups: Vec<_> = groups
        .into_iter()
        .map(|((workflow, reason), count)| json!({ "workflow": workflow, "reason": reason, "count": count }))
        .collect();
    let rows: Vec<_> = letters
        .iter()
        .take(DLQ_SHOWN)
        .map(|l| {
            json!({
                "id": l.dead.id, "run_id": l.run_id, "workflow": l.workflow,
                "reason": l.dead.reason, "receive_count": l.dead.receive_count,
                "dead_at": l.dead.dead_at,
            })
        })
        .collect();
    render(
        &c,
        &s,
        "dlq.html",
        "dlq",
        context! { total => letters.len(), groups => v(groups), rows => v(rows), shown => DLQ_SHOWN },
    )
}

/// `GET /dlq/replay?…`: how many dead letters the filter picks, and a button to replay them.
pub(super) async fn replay_confirm(
    State(c): State<Arc<Console>>,
    Extension(s): Extension<Session>,
    Query(f): Query<DlqFilter>,
) -> Response {
    let sel = match f.selection(c.hub.ports.clock.now_ms()) {
        Ok(sel) => sel,
        Err(e) => return fail(&c, &s, StatusCode::BAD_REQUEST, &e),
    };
    if sel.is_empty() {
        return fail(
            &c,
            &s,
            StatusCode::BAD_REQUEST,
            "pick dead letters to replay: all, a workflow, a time (since) or a reason",
        );
    }
    let letters = match crate::dlq::select(&c.hub, &sel).await {
        Ok(l) => l,
        Err(e) => return fail(&c, &s, StatusCode::SERVICE_UNAVAILABLE, &e),
    };
    render(
        &c,
        &s,
        "confirm.html",
        "dlq",
        context! {
            count => letters.len(),
            filter => v(json!({
                "workflow": f.workflow, "since": f.since,
                "reason_contains": f.reason_contains, "all": f.all,
            })),
            cli => f.cli(),
        },
    )
}

/// `POST /dlq/replay`: replay every dead letter the filter picks.
pub(super) async fn replay_many(
    State(c): State<Arc<Console>>,
    Extension(s): Extension<Session>,
    Form(f): Form<DlqFilter>,
) -> Response {
    let sel = match f.selection(c.hub.ports.clock.now_ms()) {
        Ok(sel) if !sel.is_empty() => sel,
        Ok(_) => return fail(&c, &s, StatusCode::BAD_REQUEST, "no dead letters picked"),
        Err(e) => return fail(&c, &s, StatusCode::BAD_REQUEST, &e),
    };
    let letters = match crate::dlq::select(&c.hub, &sel).await {
        Ok(l) => l,
        Err(e) => return fail(&c, &s, StatusCode::SERVICE_UNAVAILABLE, &e),
    };
    let done = crate::dlq::replay_all(&c.hub, &letters, |_, _| {}).await;
    let failed: Vec<_> = done
        .failed
        .iter()
        .map(|(id, why)| json!({ "id": id, "why": why }))
        .collect();
    let status = if failed.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    let mut resp = render(
        &c,
        &s,
        "done.html",
        "dlq",
        context! {
            title => "Replayed dead letters",
            replayed => v(done.replayed.iter().map(|(id, run)| json!({"id": id, "run_id": run})).collect::<Vec<_>>()),
            skipped => done.skipped,
            failed => v(failed),
        },
    );
    *resp.status_mut() = status;
    resp
}

/// `POST /dlq/{id}/replay`: replay one dead letter, then show its run.
pub(super) async fn replay_one(
    State(c): State<Arc<Console>>,
    Extension(s): Extension<Session>,
    Path(id): Path<String>,
) -> Response {
    match crate::dlq::replay(&c.hub, &id).await {
        Ok(Some(run)) => Redirect::to(&c.at(&format!("/runs/{run}?replayed=1"))).into_response(),
        Ok(None) => Redirect::to(&c.at("/dlq")).into_response(),
        Err(e) if e.starts_with("no dead letter") || e.contains("already replayed") => {
            fail(&c, &s, StatusCode::CONFLICT, &e)
        }
        Err(e) => fail(&c, &s, StatusCode::SERVICE_UNAVAILABLE, &e),
    }
}

/// `POST /runs/{id}/rerun`: start a finished run again from its event.
pub(super) async fn rerun(
    State(c): State<Arc<Console>>,
    Extension(s): Extension<Session>,
    Path(id): Path<String>,
) -> Response {
    match crate::rerun::rerun(&c.hub, &id).await {
        Ok(new) => Redirect::to(&c.at(&format!("/runs/{new}"))).into_response(),
        Err(e) => fail(&c, &s, StatusCode::CONFLICT, &e),
    }
}

/// The pause form.
#[derive(Debug, Deserialize)]
pub(super) struct PauseForm {
    kind: String,
    name: String,
    /// `pause` or `resume`.
    action: String,
    #[serde(default)]
    back: Option<String>,
}

/// `POST /pause`: pause or resume a workflow or a connection.
pub(super) async fn pause(
    State(c): State<Arc<Console>>,
    Extension(s): Extension<Session>,
    Form(f): Form<PauseForm>,
) -> Response {
    let kind = match f.kind.as_str() {
        "workflow" => Kind::Workflow,
        "connection" => Kind::Connection,
        other => {
            let msg = format!("kind {other:?}: expected workflow or connection");
            return fail(&c, &s, StatusCode::BAD_REQUEST, &msg);
        }
    };
    let paused = match f.action.as_str() {
        "pause" => true,
        "resume" => false,
        other => {
            let msg = format!("action {other:?}: expected pause or resume");
            return fail(&c, &s, StatusCode::BAD_REQUEST, &msg);
        }
    };
    if let Err(e) = crate::pause::set(&c.hub, kind, &f.name, paused).await {
        return fail(&c, &s, StatusCode::BAD_REQUEST, &e);
    }
    let back = match f.back.as_deref() {
        Some("connections") => "/connections",
        _ => "/",
    };
    Redirect::to(&c.at(back)).into_response()
}

/// `GET /sources`: each source's latest event, freshness and fields seen (drift).
pub(super) async fn sources(
    State(c): State<Arc<Console>>,
    Extension(s): Extension<Session>,
) -> Response {
    let now = c.hub.ports.clock.now_ms();
    let seen_all = match crate::status::sources(&c.hub, now).await {
        Ok(r) => r,
        Err(e) => return fail(&c, &s, StatusCode::SERVICE_UNAVAILABLE, &e),
    };
    let book = match crate::alerts::list(&c.hub).await {
        Ok(b) => b,
        Err(e) => return fail(&c, &s, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let mut rows = Vec::new();
    for seen in &seen_all {
        let name = &seen.source;
        let fields = match crate::alerts::drift::fields(&c.hub, name).await {
            Ok(f) => f,
            Err(e) => return fail(&c, &s, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
        };
        let alerts: Vec<_> = book
            .open
            .values()
            .filter(|a| a.subject == *name || a.facts.get("source") == Some(name))
            .collect();
        rows.push(json!({
            "seen": seen, "events": fields.events, "fields": fields.seen,
            "missing": fields.missing, "alerts": alerts,
        }));
    }
    render(
        &c,
        &s,
        "sources.html",
        "sources",
        context! { rows => v(rows) },
    )
}

/// `GET /connections`: breakers, 429 pauses, holds and rate limits.
pub(super) async fn connections(
    State(c): State<Arc<Console>>,
    Extension(s): Extension<Session>,
) -> Response {
    let now = c.hub.ports.clock.now_ms();
    let states = async {
        let held = crate::pause::list(&c.hub).await?;
        let book = crate::alerts::list(&c.hub)
            .await
            .map_err(|e| e.to_string())?;
        crate::status::connections(&c.hub, now, &held, &book).await
    };
    let (all, states) = match (crate::breaker::status(&c.hub).await, states.await) {
        (Ok(a), Ok(st)) => (a, st),
        (Err(e), _) => return fail(&c, &s, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
        (_, Err(e)) => return fail(&c, &s, StatusCode::SERVICE_UNAVAILABLE, &e),
    };
    let rows: Vec<_> = all
        .iter()
        .map(|b| {
            let state = states.iter().find(|x| x.connection == b.name);
            let limit = c
                .hub
                .config
                .connections
                .get(&b.name)
                .and_then(|d| d.rate_limit.as_ref())
                .map(|r| format!("{} per {}", r.requests, r.per));
            json!({
                "status": b, "state": state, "rate_limit": limit,
                "breaker": serde_json::to_value(b.breaker).unwrap_or_default(),
            })
        })
        .collect();
    render(
        &c,
        &s,
        "connections.html",
        "connections",
        context! { rows => v(rows) },
    )
}

/// `GET /syncs`: each sync's schedule, cursor and last pass.
pub(super) async fn syncs(
    State(c): State<Arc<Console>>,
    Extension(s): Extension<Session>,
) -> Response {
    let mut rows = Vec::new();
    for (name, def) in &c.hub.config.syncs {
        let state = match crate::sync::status(&c.hub, name).await {
            Ok(st) => st,
            Err(e) => return fail(&c, &s, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
        };
        rows.push(json!({
            "name": name,
            "schedule": def.schedule,
            "cursor": state.as_ref().map(|(st, _)| st.cursor_text()),
            "last": state.as_ref().and_then(|(st, _)| st.last_run.clone()),
            "totals": state.as_ref().map(|(st, _)| st.totals),
            "updated_at": state.as_ref().map(|(_, at)| *at),
        }));
    }
    render(&c, &s, "syncs.html", "syncs", context! { rows => v(rows) })
}

/// `GET /alerts`: open and resolved alerts.
pub(super) async fn alerts(
    State(c): State<Arc<Console>>,
    Extension(s): Extension<Session>,
) -> Response {
    let book = match crate::alerts::list(&c.hub).await {
        Ok(b) => b,
        Err(e) => return fail(&c, &s, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let open: Vec<_> = book.open.values().collect();
    let recent: Vec<_> = book.recent.iter().rev().collect();
    render(
        &c,
        &s,
        "alerts.html",
        "alerts",
        context! { open => v(open), recent => v(recent), outbox => book.outbox.len() },
    )
}
