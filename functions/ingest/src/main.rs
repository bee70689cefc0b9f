//! Lambda: API Gateway (HTTP API v2 or REST API v1) → ingest.
//!
//! Cold start: the config is loaded and checked and the store and HTTP
//! clients are built once, here; a broken config stops the function at init
//! with one JSON log line naming every problem (see `ferry::boot`).
//! Each invocation ends with what it counted, as an EMF line (`ferry::metrics::emf`).

use ferry_ingest::handle;
use lambda_http::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let hub = ferry::boot::start_or_exit("ingest").await;
    run(service_fn(move |req| {
        let hub = hub.clone();
        async move {
            let out = handle(&hub, req).await;
            ferry::metrics::emf::print(&hub);
            out
        }
    }))
    .await
}
