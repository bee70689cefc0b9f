//! Scheduled syncs, first cut: poll a JSON endpoint from the saved cursor,
//! enqueue one run per new or changed record (deduplicated on id and
//! version), then advance the cursor — only after the runs are enqueued.

use std::time::Duration;

use serde_json::{Value, json};

use crate::hub::Hub;
use crate::ingest::{Accepted, accept};
use crate::model::Event;
use crate::outbound;
use crate::template::context;

/// How long a record version is remembered (a record is re-sent only when its version changes).
pub const RECORD_MEMORY: Duration = Duration::from_secs(400 * 24 * 3600);

/// What one sync run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SyncReport {
    /// Records in the source's answer.
    pub seen: usize,
    /// Records that started a run.
    pub enqueued: usize,
    /// Records already sent at this version.
    pub skipped: usize,
    /// Records that could not be read (no id, bad template), with why.
    pub failed: Vec<String>,
    /// The cursor after the run.
    pub cursor: Option<String>,
}

/// Run sync `name` once.
pub async fn run_sync(hub: &Hub, name: &str) -> Result<SyncReport, String> {
    let def = hub
        .config
        .syncs
        .get(name)
        .ok_or_else(|| format!("no sync named {name:?} is configured"))?;
    let conn = hub
        .connection(&def.connection)
        .ok_or_else(|| format!("sync {name}: unknown connection {:?}", def.connection))?;
    let cursor_key = format!("sync:{name}");
    let saved = hub
        .ports
        .cursors
        .get(&cursor_key)
        .await
        .map_err(|e| e.to_string())?;
    let cursor = saved
        .as_ref()
        .map(|c| c.value.clone())
        .or_else(|| def.start.clone())
        .unwrap_or_default();

    let t = &hub.templates;
    let req = outbound::prepare(
        t,
        conn,
        &def.request,
        &context(&json!({ "cursor": cursor })),
    )
    .map_err(|e| format!("sync {name}: {e}"))?;
    let started = hub.ports.clock.now_ms();
    let resp = hub
        .http
        .send(conn, &req, &format!("sync:{name}:{started}"))
        .await
        .map_err(|e| format!("sync {name}: {} {}: {e}", req.method, req.url))?;
    if !(200..300).contains(&resp.status) {
        let body = hub.redact(&outbound::excerpt(&resp.body, 300));
        return Err(format!(
            "sync {name}: HTTP {} from {} {}: {body}",
            resp.status, req.method, req.url
        ));
    }
    let records = match t.eval_json(
        &def.records,
        &context(&json!({ "response": resp.to_output() })),
    ) {
        Ok(Value::Array(items)) => items,
        Ok(other) => {
            return Err(format!(
                "sync {name}: records: expected a list, got {}",
                kind(&other)
            ));
        }
        Err(e) => return Err(format!("sync {name}: records: {e}")),
    };

    let flow = vec![format!("sync:{name}")];
    let source = format!("sync:{name}");
    let mut report = SyncReport {
        seen: records.len(),
        ..SyncReport::default()
    };
    let mut watermark = cursor.clone();
    for record in records {
        let ctx = context(&json!({ "record": record }));
        let id = match t.eval_json(&def.id, &ctx) {
            Ok(v) if !v.is_null() => scalar(&v),
            Ok(_) => {
                report
                    .failed
                    .push(format!("record without an id ({})", def.id));
                continue;
            }
            Err(e) => {
                report.failed.push(e.to_string());
                continue;
            }
        };
        let version = match &def.version {
            Some(expr) => match t.eval_json(expr, &ctx) {
                Ok(v) => Some(scalar(&v)),
                Err(e) => {
                    report.failed.push(format!("record {id}: {e}"));
                    continue;
                }
            },
            None => None,
        };
        let event_id = match &version {
            Some(v) => format!("{id}@{v}"),
            None => id.clone(),
        };
        let payload = serde_json::to_vec(&record).unwrap_or_default();
        let event = Event {
            body: record.clone(),
            received_at: started,
            ..Event::default()
        };
        match accept(
            hub,
            &source,
            &flow,
            &event_id,
            &event,
            &payload,
            RECORD_MEMORY,
        )
        .await
        {
            Accepted::New(_) => report.enqueued += 1,
            Accepted::Duplicate(_) | Accepted::Conflict => report.skipped += 1,
            Accepted::TooLarge(n) => report.failed.push(format!(
                "record {event_id}: {n} bytes is too large for a queue message"
            )),
            Accepted::Busy => report
                .failed
                .push(format!("record {event_id}: being enqueued by another run")),
            // Stop here: the cursor must not pass a record whose run was not enqueued.
            Accepted::Unavailable(e) => return Err(format!("sync {name}: store unavailable: {e}")),
        }
        if let Ok(v) = t.eval_json(&def.cursor, &ctx) {
            let v = scalar(&v);
            if later(&v, &watermark) {
                watermark = v;
            }
        }
    }

    if watermark != cursor || saved.is_none() {
        let expected = saved.as_ref().map(|c| c.version);
        match hub
            .ports
            .cursors
            .put(&cursor_key, &watermark, expected)
            .await
        {
            Ok(Some(_)) => {}
            Ok(None) => {
                return Err(format!(
                    "sync {name}: another run moved the cursor; this run's records are enqueued, its cursor is dropped"
                ));
            }
            Err(e) => return Err(format!("sync {name}: could not save the cursor: {e}")),
        }
    }
    report.cursor = Some(watermark);
    tracing::info!(
        sync = name,
        seen = report.seen,
        enqueued = report.enqueued,
        skipped = report.skipped,
        "sync ran"
    );
    Ok(report)
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Numbers compare as numbers, everything else (ISO-8601 timestamps) as text.
fn later(a: &str, b: &str) -> bool {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x > y,
        _ => a > b,
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
