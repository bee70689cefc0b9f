//! Lambda: API Gateway (HTTP API v2 or REST v1) → ingest.

use ferry_ingest::handle;
use lambda_http::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    ferry::boot::init_json_logs();
    let hub = ferry::boot::hub_from_env()
        .await
        .inspect_err(|e| tracing::error!(error = %e, "cannot start: bad config or store"))?;
    run(service_fn(move |req| {
        let hub = hub.clone();
        async move { handle(&hub, req).await }
    }))
    .await
}
