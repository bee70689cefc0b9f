//! Translate a scheduled event into [`ferry::sync::run_sync`].
//!
//! The schedule's input names the sync:
//! - `{"sync": "crm-contacts"}`: an EventBridge rule or Scheduler schedule
//!   with a constant input (what `template.yaml` sets up);
//! - the raw `Scheduled Event` shape with the name under `detail`
//!   (`{"detail-type": "Scheduled Event", "detail": {"sync": "crm-contacts"}, …}`).
//!
//! A failed sync fails the invocation, so it shows in the function's error
//! metric (and its alarm); the next schedule resumes from the saved cursor.

use ferry::hub::Hub;
use ferry::sync::{SyncReport, run_sync};
use serde_json::Value;
use tracing::Instrument;

/// The sync a scheduled event names, or why it names none.
pub fn sync_name(event: &Value) -> Result<&str, String> {
    event
        .get("sync")
        .or_else(|| event.get("detail").and_then(|d| d.get("sync")))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            "the scheduled event does not name a sync: expected {\"sync\": \"<name>\"} as the schedule's input, or under \"detail\"".to_owned()
        })
}

/// Handle one scheduled invocation.
pub async fn handle(hub: &Hub, event: Value) -> Result<SyncReport, lambda_runtime::Error> {
    let name = sync_name(&event).inspect_err(|e| tracing::error!(error = %e, "no sync named"))?;
    let span = tracing::info_span!("sync", sync = name);
    match run_sync(hub, name).instrument(span.clone()).await {
        Ok(report) => Ok(report),
        Err(e) => {
            span.in_scope(|| tracing::error!(error = %e, "sync failed"));
            Err(e.into())
        }
    }
}
