//! The dead-letter queue: direct dead-lettering, listing and redrive.
//!
//! - `dead_letter` sends the body to the DLQ with the reason and the original
//!   id, receive count and time as message attributes, then deletes the
//!   original. Messages the queue's redrive policy moved there have none of
//!   these: their reason is `exceeded max receives (N)` (N the policy's
//!   `maxReceiveCount`, also their receive count), and their `dead_at` is
//!   when they were first sent (SQS records no move time).
//! - `dead_letters` and `redrive` read the DLQ by receiving from it: every
//!   message is hidden for [`SCAN_VISIBILITY`] while the scan runs, then made
//!   visible again (so a concurrent scan sees fewer). At most [`MAX_SCAN`]
//!   messages are looked at; "newest first" is among those. Receiving from the
//!   DLQ raises its `ApproximateReceiveCount`, which is not used.

use std::time::Duration;

use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, Message as SqsMessage, MessageSystemAttributeName,
};

use super::message::{ID_ATTRIBUTE, attr, ferry_id, number_attr, secs, string_attr, system_attr};
use super::receipt::{Receipt, Settle};
use super::{AwsStore, unavailable};
use crate::clock::Millis;
use crate::ports::{DeadLetter, StoreError, StoreResult};

/// Message attribute (String): why it was dead-lettered.
pub const REASON_ATTRIBUTE: &str = "ferry-reason";
/// Message attribute (Number): receives before it was dead-lettered.
pub const RECEIVE_COUNT_ATTRIBUTE: &str = "ferry-receive-count";
/// Message attribute (Number, clock ms): when it was dead-lettered.
pub const DEAD_AT_ATTRIBUTE: &str = "ferry-dead-at";
/// Most DLQ messages a listing or redrive looks at.
pub const MAX_SCAN: usize = 1_000;
/// How long a scan hides the messages it has seen.
const SCAN_VISIBILITY: Duration = Duration::from_secs(30);
/// Long poll of each scan receive: it returns as soon as there is a message,
/// and an empty answer after a long poll (unlike a short one) means "none left".
const SCAN_WAIT: Duration = Duration::from_secs(1);

/// A DLQ message seen by a scan.
struct Seen {
    handle: String,
    dead: DeadLetter,
}

impl AwsStore {
    pub(super) async fn dead_letter_receipt(&self, receipt: &str, reason: &str) -> StoreResult<()> {
        let Some(r) = Receipt::decode(receipt)? else {
            return Err(StoreError::NotFound(
                "not a receipt of this adapter: build Lambda records' messages with \
                 store::aws::message_from_sqs so the body can be dead-lettered"
                    .into(),
            ));
        };
        self.ledger_settle(&r, Settle::Finish).await?;
        let sent = self
            .sqs
            .send_message()
            .queue_url(&self.names.dlq_url)
            .message_body(&r.body)
            .message_attributes(ID_ATTRIBUTE, string_attr(&r.id))
            .message_attributes(REASON_ATTRIBUTE, string_attr(non_empty(reason)))
            .message_attributes(RECEIVE_COUNT_ATTRIBUTE, number_attr(r.count))
            .message_attributes(DEAD_AT_ATTRIBUTE, number_attr(self.now()))
            .send()
            .await;
        if let Err(e) = sent {
            self.ledger_unsettle(&r).await;
            return Err(unavailable("dead-letter send", e));
        }
        self.delete_handle(&r.handle).await.inspect_err(|e| {
            tracing::warn!(message_id = %r.id, error = %e, "dead-lettered, but the original was not deleted: it will be delivered again");
        })
    }

    pub(super) async fn list_dead_letters(&self, limit: usize) -> StoreResult<Vec<DeadLetter>> {
        let seen = self.scan().await;
        let released = self.release(seen.as_deref().unwrap_or_default()).await;
        let mut dead: Vec<DeadLetter> = seen?.into_iter().map(|s| s.dead).collect();
        released?;
        dead.sort_by(|a, b| (b.dead_at, &b.id).cmp(&(a.dead_at, &a.id)));
        dead.truncate(limit);
        Ok(dead)
    }

    pub(super) async fn redrive_dead_letter(&self, id: &str) -> StoreResult<String> {
        let mut seen = self.scan().await?;
        let found = seen.iter().position(|s| s.dead.id == id);
        let outcome = match found {
            None => Err(StoreError::NotFound(format!("dead letter {id:?}"))),
            Some(pos) => {
                let s = seen.remove(pos);
                self.redrive_one(s).await
            }
        };
        self.release(&seen).await?;
        outcome
    }

    /// Back to the work queue, visible at once, with its ferry id.
    async fn redrive_one(&self, s: Seen) -> StoreResult<String> {
        self.sqs
            .send_message()
            .queue_url(&self.names.queue_url)
            .message_body(&s.dead.body)
            .message_attributes(ID_ATTRIBUTE, string_attr(&s.dead.id))
            .send()
            .await
            .map_err(|e| unavailable("redrive send", e))?;
        self.delete_from(&self.names.dlq_url, &s.handle).await?;
        Ok(s.dead.id)
    }

    /// Receive every DLQ message (up to [`MAX_SCAN`]), hiding each.
    async fn scan(&self) -> StoreResult<Vec<Seen>> {
        let max_receives = self.redrive_max_receives().await?;
        let mut seen: Vec<Seen> = Vec::new();
        while seen.len() < MAX_SCAN {
            let got = self
                .sqs
                .receive_message()
                .queue_url(&self.names.dlq_url)
                .max_number_of_messages(10)
                .visibility_timeout(secs(SCAN_VISIBILITY, SCAN_VISIBILITY))
                .wait_time_seconds(secs(SCAN_WAIT, SCAN_WAIT))
                .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
                .message_attribute_names("All")
                .send()
                .await;
            let messages = match got {
                Ok(got) => got.messages.unwrap_or_default(),
                Err(e) => {
                    // Put back what was hidden so far before failing.
                    let err = unavailable("dead letters", e);
                    self.release(&seen).await.ok();
                    return Err(err);
                }
            };
            if messages.is_empty() {
                break;
            }
            seen.extend(messages.iter().map(|m| Seen {
                handle: m.receipt_handle().unwrap_or_default().to_owned(),
                dead: dead_letter(m, max_receives),
            }));
        }
        Ok(seen)
    }

    /// Make scanned messages visible again.
    async fn release(&self, seen: &[Seen]) -> StoreResult<()> {
        for chunk in seen.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&s.handle)
                        .visibility_timeout(0)
                        .build()
                        .expect("id and handle are set")
                })
                .collect();
            self.sqs
                .change_message_visibility_batch()
                .queue_url(&self.names.dlq_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| unavailable("dead letters release", e))?;
        }
        Ok(())
    }

    /// The dead-letter queue's approximate depth (visible and in flight),
    /// from its attributes: one call, no message touched.
    pub(super) async fn dead_letter_depth(&self) -> StoreResult<usize> {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let got = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.names.dlq_url)
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| unavailable("dead-letter queue attributes", e))?;
        let n = |name: A| {
            got.attributes()
                .and_then(|a| a.get(&name))
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0)
        };
        Ok(n(A::ApproximateNumberOfMessages) + n(A::ApproximateNumberOfMessagesNotVisible))
    }

    /// The work queue's `maxReceiveCount` (`None` without a redrive policy),
    /// read once.
    pub(super) async fn redrive_max_receives(&self) -> StoreResult<Option<u32>> {
        self.max_receives
            .get_or_try_init(|| async {
                let got = self
                    .sqs
                    .get_queue_attributes()
                    .queue_url(&self.names.queue_url)
                    .attribute_names(aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy)
                    .send()
                    .await
                    .map_err(|e| unavailable("queue attributes", e))?;
                let policy = got
                    .attributes()
                    .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy))
                    .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok());
                let count = policy.as_ref().and_then(|p| match &p["maxReceiveCount"] {
                    serde_json::Value::Number(n) => n.as_u64(),
                    serde_json::Value::String(s) => s.parse().ok(),
                    _ => None,
                });
                Ok(count.and_then(|c| u32::try_from(c).ok()))
            })
            .await
            .copied()
    }
}

/// What a DLQ message says about itself.
fn dead_letter(m: &SqsMessage, max_receives: Option<u32>) -> DeadLetter {
    let number = |name: &str| attr(m, name).and_then(|v| v.parse::<Millis>().ok());
    let moved = || match max_receives {
        Some(n) => format!("exceeded max receives ({n})"),
        None => "moved by the queue's redrive policy".to_owned(),
    };
    DeadLetter {
        id: ferry_id(m),
        body: m.body().unwrap_or_default().to_owned(),
        reason: attr(m, REASON_ATTRIBUTE).map_or_else(moved, str::to_owned),
        receive_count: number(RECEIVE_COUNT_ATTRIBUTE)
            .and_then(|c| u32::try_from(c).ok())
            .or(max_receives)
            .unwrap_or(0),
        dead_at: number(DEAD_AT_ATTRIBUTE)
            .or_else(|| {
                system_attr(m, MessageSystemAttributeName::SentTimestamp)
                    .and_then(|t| t.parse().ok())
            })
            .unwrap_or(0),
    }
}

/// SQS refuses empty attribute values.
fn non_empty(reason: &str) -> &str {
    if reason.is_empty() {
        "(no reason given)"
    } else {
        reason
    }
}
