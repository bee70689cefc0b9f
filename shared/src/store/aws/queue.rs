//! [`WorkQueue`] on SQS (a standard queue whose redrive policy names the
//! dead-letter queue); dead letters and redrive are in `dlq.rs`.
//!
//! - **Delays beyond 15 minutes.** SQS's `DelaySeconds` stops at 900. A longer
//!   delay is sent with 900 and a [`NOT_BEFORE_ATTRIBUTE`] (clock ms); a
//!   receive that gets it early sends it again with the rest of the delay (at
//!   most 900 s, same ferry id, same "not before") and deletes the early copy,
//!   so waiting never counts as a receive. Delays round up to whole seconds.
//! - **Ids.** A message's id is SQS's `MessageId`, or its [`ID_ATTRIBUTE`]
//!   when it is a re-sent copy (re-delay, dead letter, redrive).
//! - **Receive** long-polls at most 20 s per call (longer waits loop), takes at
//!   most 10, hides for the visibility timeout (whole seconds, at most 12 h),
//!   and counts receives with `ApproximateReceiveCount`. Receipts are this
//!   adapter's (`receipt.rs`), so stale ones are `NotFound`.
//! - **Retry backoff** is `ChangeMessageVisibility` (at most 12 h; SQS also
//!   caps a message's total in-flight time at 12 h from its first receive).
//! - **Max receives**: SQS's redrive policy moves a message received
//!   `maxReceiveCount` times to the dead-letter queue.
//!
//! The Lambda event source receives on the function's behalf: build each
//! record's [`Message`] with [`message_from_sqs`] (so `dead_letter` has the
//! body), and requeue a record that [`due_in`] says is early.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::types::{
    Message as SqsMessage, MessageSystemAttributeName, SendMessageBatchRequestEntry,
};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::batch::{self, Outcome};
use super::dlq::REASON_ATTRIBUTE;
use super::message::{
    ID_ATTRIBUTE, MAX_DELAY, MAX_VISIBILITY, NOT_BEFORE_ATTRIBUTE, attr, due_in, ferry_id,
    is_bad_receipt, number_attr, plan_delay, secs, string_attr, system_attr,
};
use super::receipt::{Receipt, Settle};
use super::{AwsStore, error_code, error_message, unavailable};
use crate::ports::{DeadLetter, Message, StoreError, StoreResult, WorkQueue};

/// Longest `WaitTimeSeconds` SQS accepts.
const MAX_WAIT: Duration = Duration::from_secs(20);
/// Most messages one `ReceiveMessage` returns.
const MAX_RECEIVE: usize = 10;

#[async_trait]
impl WorkQueue for AwsStore {
    async fn max_receives(&self) -> Option<u32> {
        self.redrive_max_receives().await.ok().flatten()
    }

    fn delivered(&self, d: crate::ports::Delivery<'_>) -> Message {
        super::message::message_from_sqs(super::message::SqsRecord {
            message_id: d.message_id,
            receipt_handle: d.receipt_handle,
            body: d.body,
            receive_count: d.receive_count,
            ferry_id: d.attributes.get(ID_ATTRIBUTE).map(String::as_str),
            redriven: d.attributes.contains_key(REASON_ATTRIBUTE),
        })
    }

    fn not_due_for(&self, d: &crate::ports::Delivery<'_>) -> Option<Duration> {
        due_in(
            d.attributes.get(NOT_BEFORE_ATTRIBUTE).map(String::as_str),
            self.clock.now_ms(),
        )
    }

    async fn send(&self, body: &str, delay: Duration) -> StoreResult<String> {
        let (delay_secs, not_before) = plan_delay(self.now(), delay);
        let mut send = self
            .sqs
            .send_message()
            .queue_url(&self.names.queue_url)
            .message_body(body)
            .delay_seconds(delay_secs);
        if let Some(at) = not_before {
            send = send.message_attributes(NOT_BEFORE_ATTRIBUTE, number_attr(at));
        }
        let sent = send.send().await.map_err(|e| unavailable("send", e))?;
        Ok(sent.message_id.unwrap_or_default())
    }

    async fn send_batch(&self, items: &[(String, Duration)]) -> StoreResult<Vec<String>> {
        let now = self.now();
        let sizes: Vec<usize> = items.iter().map(|(body, _)| body.len()).collect();
        batch::send_all(&sizes, |chunk| async move {
            let entries = chunk
                .iter()
                .map(|&i| {
                    let (body, delay) = &items[i];
                    let (delay_secs, not_before) = plan_delay(now, *delay);
                    let mut entry = SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .delay_seconds(delay_secs);
                    if let Some(at) = not_before {
                        entry = entry.message_attributes(NOT_BEFORE_ATTRIBUTE, number_attr(at));
                    }
                    entry.build().expect("id and body are set")
                })
                .collect();
            let out = self
                .sqs
                .send_message_batch()
                .queue_url(&self.names.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| unavailable("send batch", e))?;
            let mut outcomes = Vec::new();
            for ok in out.successful {
                if let Ok(i) = ok.id.parse() {
                    outcomes.push((i, Outcome::Sent(ok.message_id)));
                }
            }
            for failed in out.failed {
                if let Ok(i) = failed.id.parse() {
                    let reason = format!("{}: {}", failed.code, failed.message.unwrap_or_default());
                    outcomes.push((
                        i,
                        Outcome::Failed {
                            sender_fault: failed.sender_fault,
                            reason,
                        },
                    ));
                }
            }
            Ok(outcomes)
        })
        .await
    }

    async fn receive(
        &self,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> StoreResult<Vec<Message>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let got = self
                .sqs
                .receive_message()
                .queue_url(&self.names.queue_url)
                .max_number_of_messages(i32::try_from(max.min(MAX_RECEIVE)).unwrap_or(1))
                .visibility_timeout(secs(visibility, MAX_VISIBILITY))
                .wait_time_seconds(secs(left, MAX_WAIT))
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .message_attribute_names("All")
                .send()
                .await
                .map_err(|e| unavailable("receive", e))?;
            let mut out = Vec::new();
            let mut receipts = Vec::new();
            for m in got.messages.unwrap_or_default() {
                if let Some(rest) = due_in(attr(&m, NOT_BEFORE_ATTRIBUTE), self.now()) {
                    self.redelay(&m, rest).await;
                    continue;
                }
                let receipt = Receipt {
                    handle: m.receipt_handle.clone().unwrap_or_default(),
                    sqs_id: m.message_id.clone().unwrap_or_default(),
                    id: ferry_id(&m),
                    count: system_attr(&m, MessageSystemAttributeName::ApproximateReceiveCount)
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(1),
                    body: m.body.clone().unwrap_or_default(),
                };
                out.push(Message {
                    id: receipt.id.clone(),
                    receipt: receipt.encode(),
                    body: receipt.body.clone(),
                    receive_count: receipt.count,
                    redrive: attr(&m, REASON_ATTRIBUTE).map(|_| receipt.sqs_id.clone()),
                });
                receipts.push(receipt);
            }
            self.ledger_receives(receipts).await;
            if !out.is_empty() || Instant::now() >= deadline {
                return Ok(out);
            }
        }
    }

    async fn delete(&self, receipt: &str) -> StoreResult<()> {
        let Some(r) = Receipt::decode(receipt)? else {
            return self.delete_handle(receipt).await;
        };
        self.ledger_settle(&r, Settle::Finish).await?;
        let deleted = self.delete_handle(&r.handle).await;
        if deleted.is_err() {
            self.ledger_unsettle(&r).await;
        }
        deleted
    }

    async fn change_visibility(&self, receipt: &str, timeout: Duration) -> StoreResult<()> {
        let handle = match Receipt::decode(receipt)? {
            Some(r) => {
                self.ledger_settle(&r, Settle::Keep).await?;
                r.handle
            }
            None => receipt.to_owned(),
        };
        let changed = self
            .sqs
            .change_message_visibility()
            .queue_url(&self.names.queue_url)
            .receipt_handle(handle)
            .visibility_timeout(secs(timeout, MAX_VISIBILITY))
            .send()
            .await;
        match changed {
            Ok(_) => Ok(()),
            Err(e) if is_bad_receipt(error_code(&e), error_message(&e)) => Err(
                StoreError::NotFound(format!("receipt: {}", unavailable("change visibility", e))),
            ),
            Err(e) => Err(unavailable("change visibility", e)),
        }
    }

    async fn dead_letter(&self, receipt: &str, reason: &str) -> StoreResult<()> {
        self.dead_letter_receipt(receipt, reason).await
    }

    async fn dead_letters(&self, limit: usize) -> StoreResult<Vec<DeadLetter>> {
        self.list_dead_letters(limit).await
    }

    async fn dead_letter_depth(&self, _at_most: usize) -> StoreResult<usize> {
        self.dead_letter_depth().await
    }

    async fn redrive(&self, id: &str) -> StoreResult<String> {
        self.redrive_dead_letter(id).await
    }
}

impl AwsStore {
    /// Delete by SQS handle; an invalid handle is `NotFound`.
    pub(super) async fn delete_handle(&self, handle: &str) -> StoreResult<()> {
        self.delete_from(&self.names.queue_url, handle).await
    }

    pub(super) async fn delete_from(&self, queue_url: &str, handle: &str) -> StoreResult<()> {
        let deleted = self
            .sqs
            .delete_message()
            .queue_url(queue_url)
            .receipt_handle(handle)
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(()),
            Err(e) if is_bad_receipt(error_code(&e), error_message(&e)) => Err(
                StoreError::NotFound(format!("receipt: {}", unavailable("delete", e))),
            ),
            Err(e) => Err(unavailable("delete", e)),
        }
    }

    /// Record the receipts in the ledger, concurrently.
    async fn ledger_receives(&self, receipts: Vec<Receipt>) {
        let mut tasks = JoinSet::new();
        for r in receipts {
            let store = self.clone();
            tasks.spawn(async move { store.ledger_receive(&r).await });
        }
        while tasks.join_next().await.is_some() {}
    }

    /// A message received before its "not before": send it again with the
    /// rest of its delay and delete this copy. If that fails, hide it for the
    /// rest instead (which counts as a receive).
    async fn redelay(&self, m: &SqsMessage, rest: Duration) {
        let id = ferry_id(m);
        let sent = self
            .sqs
            .send_message()
            .queue_url(&self.names.queue_url)
            .message_body(m.body().unwrap_or_default())
            .delay_seconds(secs(rest, MAX_DELAY))
            .message_attributes(ID_ATTRIBUTE, string_attr(&id))
            .message_attributes(
                NOT_BEFORE_ATTRIBUTE,
                number_attr(attr(m, NOT_BEFORE_ATTRIBUTE).unwrap_or_default()),
            )
            .send()
            .await;
        let handle = m.receipt_handle().unwrap_or_default();
        let settled = match sent {
            Ok(_) => self.delete_handle(handle).await,
            Err(e) => {
                tracing::warn!(message_id = %id, error = %unavailable("re-delay", e), "hiding the early message instead");
                self.sqs
                    .change_message_visibility()
                    .queue_url(&self.names.queue_url)
                    .receipt_handle(handle)
                    .visibility_timeout(secs(rest, MAX_VISIBILITY))
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| unavailable("change visibility", e))
            }
        };
        if let Err(e) = settled {
            tracing::warn!(message_id = %id, error = %e, "early message not re-delayed; it comes back after its visibility timeout");
        }
    }
}
