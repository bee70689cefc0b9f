//! The work queue: messages, deliveries, dead letters.

use std::time::Duration;

use async_trait::async_trait;

use super::StoreResult;
use crate::clock::Millis;

// ---------------------------------------------------------------- work queue

/// A received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Stable message id.
    pub id: String,
    /// Handle for delete / change-visibility / dead-letter; valid until the next
    /// receive of the message (then `NotFound`).
    pub receipt: String,
    /// The payload.
    pub body: String,
    /// How many times it has been received, this time included (starts at 1).
    pub receive_count: u32,
    /// Set when the message came back from the dead-letter queue by a redrive
    /// ferry did not make (SQS's own "start DLQ redrive"): a token unique to
    /// that trip through the dead-letter queue (the SQS message id). Its run,
    /// already dead-lettered, is then replayed once per token. `None` for
    /// every other message, and always on the embedded store (ferry's own
    /// replay reopens the run before it moves the message).
    pub redrive: Option<String>,
}

/// A message handed over by the queue's own delivery mechanism rather than
/// by [`WorkQueue::receive`]: the Lambda SQS event source.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// `messageId`.
    pub message_id: &'a str,
    /// `receiptHandle`.
    pub receipt_handle: &'a str,
    /// `body`.
    pub body: &'a str,
    /// `attributes.ApproximateReceiveCount` (1 when absent).
    pub receive_count: u32,
    /// The string values of `messageAttributes`.
    pub attributes: &'a std::collections::HashMap<String, String>,
}

/// A message in the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Message id.
    pub id: String,
    /// The payload, unchanged.
    pub body: String,
    /// Why it was dead-lettered.
    pub reason: String,
    /// Receives before it was dead-lettered.
    pub receive_count: u32,
    /// When.
    pub dead_at: Millis,
}

/// Durable queue with delay, visibility timeout, receive count, dead-letter.
///
/// Delays and visibility timeouts follow the backend's time: the port's clock
/// for the embedded adapter, the server's for SQS. A long poll (`wait`) is
/// real time. A stale or unknown receipt is `NotFound`.
#[async_trait]
pub trait WorkQueue: Send + Sync {
    /// The [`Message`] for a delivery made outside [`receive`](Self::receive),
    /// with a receipt this adapter's `delete`, `change_visibility` and
    /// `dead_letter` accept. By default, the delivery's own id and receipt.
    fn delivered(&self, d: Delivery<'_>) -> Message {
        Message {
            id: d.message_id.to_owned(),
            receipt: d.receipt_handle.to_owned(),
            body: d.body.to_owned(),
            receive_count: d.receive_count,
            redrive: None,
        }
    }
    /// How long a delivery made outside [`receive`](Self::receive) must still
    /// wait before it is due (a delay longer than the backend can express in
    /// one hop, e.g. SQS's 15 minutes). By default, none.
    fn not_due_for(&self, _d: &Delivery<'_>) -> Option<Duration> {
        None
    }
    /// Receives after which the backend dead-letters a message on its own
    /// (SQS's redrive `maxReceiveCount`), when it has such a limit. A retry
    /// that would cross it is re-sent as a fresh message instead, so only
    /// crash loops hit the limit, never ferry's own (bounded) retries.
    async fn max_receives(&self) -> Option<u32> {
        None
    }
    /// Enqueue `body`, invisible for `delay`. Returns the message id.
    async fn send(&self, body: &str, delay: Duration) -> StoreResult<String>;
    /// Enqueue several bodies; all or nothing for the embedded adapter, per item for SQS.
    async fn send_batch(&self, items: &[(String, Duration)]) -> StoreResult<Vec<String>>;
    /// Receive up to `max` visible messages, oldest visible first (SQS: best
    /// effort), hiding them for `visibility`; each gets a new receipt.
    /// Waits up to `wait` for one to become available (long poll).
    /// A message already received `max_receives` times goes to the dead-letter
    /// queue instead of being delivered again.
    async fn receive(
        &self,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> StoreResult<Vec<Message>>;
    /// Delete a received message (done).
    async fn delete(&self, receipt: &str) -> StoreResult<()>;
    /// Make a received message visible again after `timeout` (retry with backoff, or release).
    async fn change_visibility(&self, receipt: &str, timeout: Duration) -> StoreResult<()>;
    /// Move a received message to the dead-letter queue at once, with a reason.
    async fn dead_letter(&self, receipt: &str, reason: &str) -> StoreResult<()>;
    /// The newest dead letters first, up to `limit`.
    async fn dead_letters(&self, limit: usize) -> StoreResult<Vec<DeadLetter>>;
    /// How many dead letters there are, counting at least up to `at_most`
    /// (SQS: its approximate count, which touches no message). By default,
    /// the length of [`dead_letters`](Self::dead_letters).
    async fn dead_letter_depth(&self, at_most: usize) -> StoreResult<usize> {
        Ok(self.dead_letters(at_most).await?.len())
    }
    /// Move a dead letter back to the queue (replay), visible at once with its
    /// receive count reset. Returns the new message id (may be the same).
    /// `NotFound` when no dead letter has that id.
    async fn redrive(&self, id: &str) -> StoreResult<String>;
}
