//! Translate a scheduled event into [`ferry::sync::run_sync_with`].
//!
//! The schedule's input names the sync:
//! - `{"sync": "crm-contacts"}`: an EventBridge rule or Scheduler schedule
//!   with a constant input (what `template.yaml` sets up);
//! - the raw `Scheduled Event` shape with the name under `detail`
//!   (`{"detail-type": "Scheduled Event", "detail": {"sync": "crm-contacts"}, …}`).
//!
//! The run stops before a page that would not finish [`DEADLINE_RESERVE`]
//! before the invocation's deadline; the next scheduled run continues where it
//! stopped. A failed sync fails the invocation, so it shows in the function's
//! error metric (and its alarm).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferry::hub::Hub;
use ferry::sync::{RunOptions, SyncReport, Trigger, run_sync_with};
use serde_json::Value;
use tracing::Instrument;

/// Time kept free before the Lambda deadline (saving, logging, the last page's slack).
pub const DEADLINE_RESERVE: Duration = Duration::from_secs(10);

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

/// Handle one scheduled invocation, with the sync's own budget.
pub async fn handle(hub: &Hub, event: Value) -> Result<SyncReport, lambda_runtime::Error> {
    handle_until(hub, event, None).await
}

/// Handle one scheduled invocation that must end by `deadline` (the Lambda
/// context's deadline).
pub async fn handle_until(
    hub: &Hub,
    event: Value,
    deadline: Option<SystemTime>,
) -> Result<SyncReport, lambda_runtime::Error> {
    let name = sync_name(&event).inspect_err(|e| tracing::error!(error = %e, "no sync named"))?;
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
    let span = tracing::info_span!("sync", sync = name);
    match run_sync_with(hub, name, &opts)
        .instrument(span.clone())
        .await
    {
        Ok(report) => Ok(report),
        Err(e) => {
            span.in_scope(|| tracing::error!(error = %e, "sync failed"));
            Err(e.into())
        }
    }
}
