//! Lambda: EventBridge schedule (`{"sync": "<name>"}`) → one sync run.
//!
//! Cold start: the config is loaded and checked and the store and HTTP
//! clients are built once, here; a broken config stops the function at init
//! with one JSON log line naming every problem (see `ferry::boot`).
//! Each invocation ends with what it counted, as an EMF line (`ferry::metrics::emf`).

use ferry_sync::handle_until;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let hub = ferry::boot::start_or_exit("sync").await;
    run(service_fn(move |ev: LambdaEvent<serde_json::Value>| {
        let hub = hub.clone();
        async move {
            let out = handle_until(&hub, ev.payload, Some(ev.context.deadline())).await;
            ferry::metrics::emf::print(&hub);
            out
        }
    }))
    .await
}
