//! Translate an SQS batch into [`ferry::execute::execute`] calls and their
//! dispositions into a partial batch response (`ReportBatchItemFailures`).
//!
//! - done, re-enqueued or dead-lettered with a reason → not reported (SQS deletes it);
//! - retry later → its visibility is set to the backoff and it is reported as
//!   failed, so SQS delivers it again after the backoff;
//! - a record that cannot be parsed is dead-lettered with its reason; it never
//!   blocks the batch and never crashes the function.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use ferry::execute::{Disposition, execute};
use ferry::hub::Hub;
use ferry::ports::Message;

/// Handle one SQS batch.
pub async fn handle(hub: &Hub, event: SqsEvent) -> SqsBatchResponse {
    let mut failures = Vec::new();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        if handle_record(hub, record).await {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failures.push(failure);
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}

/// `true` when the record must be retried by SQS.
async fn handle_record(hub: &Hub, record: SqsMessage) -> bool {
    let msg = Message {
        id: record.message_id.unwrap_or_default(),
        receipt: record.receipt_handle.unwrap_or_default(),
        body: record.body.unwrap_or_default(),
        receive_count: record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|c| c.parse().ok())
            .unwrap_or(1),
    };
    let disposition = execute(hub, &msg).await;
    let queue = hub.ports.queue.as_ref();
    let retry = matches!(disposition, Disposition::RetryIn(_));
    if let Disposition::RetryIn(delay) = &disposition {
        if let Err(e) = queue.change_visibility(&msg.receipt, *delay).await {
            tracing::warn!(message_id = %msg.id, error = %e, "could not set retry delay; SQS retries after the visibility timeout");
        }
    } else if !matches!(disposition, Disposition::Done) {
        ferry::worker::settle(queue, &msg, disposition).await;
    }
    retry
}
