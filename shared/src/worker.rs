//! The queue loop `ferry dev` runs (the Lambda execute function gets its
//! messages from SQS instead): receive, execute, and settle each message
//! according to its [`Disposition`].

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::execute::{Disposition, execute};
use crate::hub::Hub;
use crate::ports::{Message, WorkQueue};

/// How long a received message stays hidden while a worker runs it.
pub const VISIBILITY: Duration = Duration::from_secs(120);
/// Messages taken per receive.
pub const BATCH: usize = 10;
/// Long-poll wait per receive.
pub const POLL_WAIT: Duration = Duration::from_secs(1);

/// Apply a disposition to a received message.
pub async fn settle(queue: &dyn WorkQueue, msg: &Message, d: Disposition) {
    let result = match &d {
        Disposition::Done => queue.delete(&msg.receipt).await,
        Disposition::RetryIn(delay) => queue.change_visibility(&msg.receipt, *delay).await,
        Disposition::Requeue(delay) => match queue.send(&msg.body, *delay).await {
            Ok(_) => queue.delete(&msg.receipt).await,
            Err(e) => Err(e),
        },
        Disposition::DeadLetter(reason) => queue.dead_letter(&msg.receipt, reason).await,
    };
    if let Err(e) = result {
        // The message reappears after its visibility timeout and is settled then.
        tracing::warn!(message_id = %msg.id, error = %e, disposition = ?d, "could not settle message");
    }
}

/// Run `n` workers (0: accept only) until `stop` turns true. In-flight runs finish; messages
/// received but not started are released at once for the next start.
pub async fn run_workers(hub: Arc<Hub>, n: usize, stop: watch::Receiver<bool>) {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let hub = hub.clone();
        let mut stop = stop.clone();
        tasks.spawn(async move {
            loop {
                if *stop.borrow() {
                    break;
                }
                let received = tokio::select! {
                    r = hub.ports.queue.receive(BATCH, VISIBILITY, POLL_WAIT) => r,
                    _ = stop.changed() => break,
                };
                let messages = match received {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!(error = %e, "queue unavailable");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                };
                let mut pending = messages.into_iter();
                for msg in pending.by_ref() {
                    let d = execute(&hub, &msg).await;
                    settle(hub.ports.queue.as_ref(), &msg, d).await;
                    if *stop.borrow() {
                        break;
                    }
                }
                for msg in pending {
                    let _ = hub
                        .ports
                        .queue
                        .change_visibility(&msg.receipt, Duration::ZERO)
                        .await;
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}
