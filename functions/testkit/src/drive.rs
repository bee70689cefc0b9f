//! Driving a hub's queue by hand in tests: receive what is due, execute
//! each message at once (as workers in parallel would) and settle it.

use std::sync::Arc;
use std::time::Duration;

use ferry::execute::execute;
use ferry::hub::Hub;
use ferry::worker::settle;

/// Receive up to 100 messages due now, execute them concurrently and settle
/// each; how many there were.
pub async fn step(hub: &Arc<Hub>) -> usize {
    let got = hub
        .ports
        .queue
        .receive(100, Duration::from_secs(120), Duration::ZERO)
        .await
        .unwrap();
    let n = got.len();
    let mut tasks = tokio::task::JoinSet::new();
    for msg in got {
        let hub = hub.clone();
        tasks.spawn(async move {
            let d = execute(&hub, &msg).await;
            settle(hub.ports.queue.as_ref(), &msg, d).await;
        });
    }
    while tasks.join_next().await.is_some() {}
    n
}
