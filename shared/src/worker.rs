//! The queue loop `ferry dev` runs (the Lambda execute function gets its
//! messages from SQS instead, and runs the records of a batch together the
//! same way, in `functions/execute`):
//! receive, execute, and settle each message according to its [`Disposition`]
//! (a run that succeeds deletes its message with its final record).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};

use crate::execute::{Disposition, execute_acking};
use crate::hub::Hub;
use crate::ports::{Message, WorkQueue};

/// How long a received message stays hidden while a worker runs it.
pub const VISIBILITY: Duration = Duration::from_secs(120);
/// Most messages taken per receive.
pub const BATCH: usize = 100;
/// Long-poll wait per receive.
pub const POLL_WAIT: Duration = Duration::from_secs(1);

/// Apply a disposition to a received message.
pub async fn settle(queue: &dyn WorkQueue, msg: &Message, d: Disposition) {
    let d = within_redrive(queue, msg, d).await;
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

/// A retry by visibility timeout counts as one more receive. When the next
/// receive would reach the backend's own dead-letter limit, re-send the
/// message fresh (same body, same delay) instead: ferry's retry policy bounds
/// retries, the backend's limit is for messages that crash their worker.
pub async fn within_redrive(queue: &dyn WorkQueue, msg: &Message, d: Disposition) -> Disposition {
    match d {
        Disposition::RetryIn(delay) => match queue.max_receives().await {
            Some(max) if msg.receive_count + 1 >= max => Disposition::Requeue(delay),
            _ => Disposition::RetryIn(delay),
        },
        other => other,
    }
}

/// Execute up to `n` runs at once (0: accept only) until `stop` turns true.
///
/// One loop receives as many messages as there are free slots (up to
/// [`BATCH`] per receive) and starts each at once in its own task, so runs
/// that wait (a rate limit, a slow target, a batch filling up) do not hold
/// up the others, and runs received together can share a batched call.
/// On stop, nothing more is received and runs in flight finish.
pub async fn run_workers(hub: Arc<Hub>, n: usize, mut stop: watch::Receiver<bool>) {
    if n == 0 {
        let _ = stop.wait_for(|s| *s).await;
        return;
    }
    let slots = Arc::new(Semaphore::new(n));
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        while tasks.try_join_next().is_some() {}
        if *stop.borrow() {
            break;
        }
        let first = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stop.changed() => break,
        };
        let mut permits = vec![first];
        while permits.len() < BATCH {
            match slots.clone().try_acquire_owned() {
                Ok(p) => permits.push(p),
                Err(_) => break,
            }
        }
        let received = tokio::select! {
            r = hub.ports.queue.receive(permits.len(), VISIBILITY, POLL_WAIT) => r,
            _ = stop.changed() => break,
        };
        let messages = match received {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "queue unavailable");
                drop(permits);
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        for (msg, permit) in messages.into_iter().zip(permits) {
            let hub = hub.clone();
            tasks.spawn(async move {
                let ran = execute_acking(&hub, &msg).await;
                if !ran.acked {
                    settle(hub.ports.queue.as_ref(), &msg, ran.disposition).await;
                }
                drop(permit);
            });
        }
    }
    while tasks.join_next().await.is_some() {}
}
