//! Translate a scheduled tick into [`ferry::alerts::evaluate`]: every
//! minute, evaluate every alert condition and deliver the outbox.
//!
//! The tick's payload is not read (any EventBridge schedule event will do).
//! A store that cannot be read fails the invocation, so it shows in the
//! function's error metric; a channel that fails does not (it is retried by
//! the next tick, see `docs/alerts.md`).

use ferry::alerts::{Report, Sender, evaluate};
use ferry::hub::Hub;

/// Handle one tick.
pub async fn handle(hub: &Hub, sender: &dyn Sender) -> Result<Report, lambda_runtime::Error> {
    match evaluate(hub, sender).await {
        Ok(report) => {
            tracing::info!(
                opened = ?report.opened,
                resolved = ?report.resolved,
                queued = report.queued,
                sent = report.delivered.sent,
                failed = report.delivered.failed,
                "alerts evaluated"
            );
            Ok(report)
        }
        Err(e) => {
            tracing::error!(error = %e, "alerts not evaluated");
            Err(e.into())
        }
    }
}
