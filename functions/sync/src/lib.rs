//! Translate a scheduled event into [`ferry::sync::run_sync`].
//!
//! The schedule's input names the sync: `{"sync": "crm-contacts"}` (an
//! EventBridge rule or Scheduler target with a constant input), or the same
//! under `detail` for events that carry it there.

use ferry::hub::Hub;
use ferry::sync::{SyncReport, run_sync};
use serde_json::Value;

/// Handle one scheduled invocation.
pub async fn handle(hub: &Hub, event: Value) -> Result<SyncReport, lambda_runtime::Error> {
    let name = event
        .get("sync")
        .or_else(|| event.get("detail").and_then(|d| d.get("sync")))
        .and_then(Value::as_str)
        .ok_or("the scheduled event does not name a sync: expected {\"sync\": \"<name>\"}")?;
    Ok(run_sync(hub, name).await?)
}
