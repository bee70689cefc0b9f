//! Lambda: EventBridge schedule (`{"sync": "<name>"}`) → one sync run.

use ferry_sync::handle_until;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    ferry::boot::init_json_logs();
    let hub = ferry::boot::hub_from_env()
        .await
        .inspect_err(|e| tracing::error!(error = %e, "cannot start: bad config or store"))?;
    run(service_fn(move |ev: LambdaEvent<serde_json::Value>| {
        let hub = hub.clone();
        async move { handle_until(&hub, ev.payload, Some(ev.context.deadline())).await }
    }))
    .await
}
