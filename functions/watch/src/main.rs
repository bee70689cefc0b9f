//! Lambda: every minute (EventBridge schedule) → evaluate alerts, deliver them.
//!
//! Cold start: the config is loaded and checked, the store, HTTP and SNS
//! clients are built once, here (see `ferry::boot`).

use ferry_watch::handle;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let hub = ferry::boot::start_or_exit("watch").await;
    let senders = ferry::alerts::Senders::new().with_sns_from_env().await;
    run(service_fn(move |_tick: LambdaEvent<serde_json::Value>| {
        let (hub, senders) = (hub.clone(), senders.clone());
        async move { handle(&hub, &senders).await }
    }))
    .await
}
