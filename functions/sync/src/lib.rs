//! Translate a scheduled event into [`ferry::sync::run_sync_with`].
//!
//! The schedule's input names the sync: `{"sync": "crm-contacts"}` (an
//! EventBridge rule or Scheduler target with a constant input), or the same
//! under `detail` for events that carry it there. The run stops before a page
//! that would not finish [`DEADLINE_RESERVE`] before the invocation's
//! deadline; the next scheduled run continues where it stopped.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferry::hub::Hub;
use ferry::sync::{RunOptions, SyncReport, Trigger, run_sync_with};
use serde_json::Value;

/// Time kept free before the Lambda deadline (saving, logging, the last page's slack).
pub const DEADLINE_RESERVE: Duration = Duration::from_secs(10);

/// Handle one scheduled invocation, with the sync's own budget.
pub async fn handle(hub: &Hub, event: Value) -> Result<SyncReport, lambda_runtime::Error> {
    handle_until(hub, event, None).await
}

/// Handle one scheduled invocation that must end by `deadline` (the Lambda
/// context's deadline, in ms since the epoch).
pub async fn handle_until(
    hub: &Hub,
    event: Value,
    deadline: Option<SystemTime>,
) -> Result<SyncReport, lambda_runtime::Error> {
    let name = event
        .get("sync")
        .or_else(|| event.get("detail").and_then(|d| d.get("sync")))
        .and_then(Value::as_str)
        .ok_or("the scheduled event does not name a sync: expected {\"sync\": \"<name>\"}")?;
    let deadline = deadline.map(|d| {
        let ms = d
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .saturating_sub(DEADLINE_RESERVE)
            .as_millis();
        i64::try_from(ms).unwrap_or(i64::MAX)
    });
    let opts = RunOptions {
        deadline,
        trigger: Trigger::Lambda,
        ..RunOptions::default()
    };
    Ok(run_sync_with(hub, name, &opts).await?)
}
