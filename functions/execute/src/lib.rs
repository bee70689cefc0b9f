//! Translate an SQS batch into [`ferry::execute::execute`] calls, and their
//! dispositions into a partial batch response (`ReportBatchItemFailures`).
//!
//! The event source mapping deletes every message the response does not
//! name, and makes the named ones visible again when their visibility
//! timeout ends. So, per record:
//!
//! | disposition | what the handler does | reported as failed |
//! |---|---|---|
//! | done | nothing (SQS deletes it) | no |
//! | retry in `d` | sets its visibility to `d` | yes |
//! | requeue after `d` (rate limit) | sends a copy delayed by `d` | no; yes if the send fails |
//! | dead letter (`reason`) | moves it to the dead-letter queue with `reason` | no; yes if that fails |
//!
//! A record that cannot be parsed — a body that is not a job, or a record
//! that is not even an SQS message — is dead-lettered with the reason like any
//! other non-retryable failure: it never blocks the batch and never fails the
//! invocation. When moving something to the dead-letter queue fails, the
//! record is reported instead, so it is retried and, after `maxReceiveCount`
//! receives, dead-lettered by the queue's redrive policy: nothing is dropped.
//!
//! The records of a batch run **together**, as `ferry dev`'s workers run the
//! messages of one receive: runs that reach the same batched step share its
//! call (see docs/execution.md, Batching), and each record still gets its own
//! disposition. A batch that arrives within [`DEADLINE_MARGIN`] of the
//! invocation's deadline is handed back at once (visible again, reported as
//! failed) rather than lost to a timeout, which would retry the whole batch.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsMessage};
use ferry::execute::{Disposition, execute};
use ferry::hub::Hub;
use ferry::ports::{Delivery, Message};
use ferry::store::aws::hold_writes_each;
use serde::Deserialize;
use serde_json::Value;
use tracing::{Instrument, field};

/// Records are not started closer than this to the invocation's deadline:
/// a step's call may take a connection's whole timeout (10 s by default).
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(15);

/// An SQS event, read record by record: one record that does not have the
/// SQS message shape must not make the whole batch undeserializable.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Batch {
    /// The records, as sent.
    #[serde(rename = "Records")]
    pub records: Vec<Value>,
}

/// When the invocation times out, from its context (`None` when the context
/// has no deadline, as in `Context::default()`).
pub fn deadline(ctx: &lambda_runtime::Context) -> Option<Instant> {
    if ctx.deadline == 0 {
        return None;
    }
    let left = ctx
        .deadline()
        .duration_since(std::time::SystemTime::now())
        .unwrap_or(Duration::ZERO);
    Some(Instant::now() + left)
}

/// Handle one SQS batch. `deadline` is when the invocation times out (from
/// the Lambda context); `None` means no limit.
///
/// Two phases: every record runs (together) to its disposition with the
/// run log's writes held back and then written in a few `BatchWriteItem`
/// requests, and the step claims the records make together sent in one
/// `TransactWriteItems` ([`ferry::store::aws::hold_writes_each`]; on the
/// embedded store nothing is held or gathered); then each disposition is
/// applied. If the held writes
/// could not be written, no record is acknowledged: each is retried.
pub async fn handle(hub: &Hub, batch: Batch, deadline: Option<Instant>) -> SqsBatchResponse {
    let late = deadline.is_some_and(|d| Instant::now() + DEADLINE_MARGIN >= d);
    let records: Vec<_> = batch
        .records
        .iter()
        .map(|record| async move {
            let parsed = parse_record(hub, record);
            // SQS's own id: the one the event source mapping knows the record by.
            let id = record
                .get("messageId")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let span = record_span(&parsed.message);
            let disposition = if late {
                None
            } else {
                Some(decide(hub, &parsed).instrument(span.clone()).await)
            };
            (id, parsed.message, span, disposition)
        })
        .collect();
    let (decided, written) = hold_writes_each(records).await;
    if let Err(e) = &written {
        tracing::error!(error = %e, "the batch's run-log writes failed; every record is retried");
    }
    let settled = decided.into_iter().map(|(id, msg, span, disposition)| {
        let written = written.is_ok();
        async move {
            let retry = match disposition {
                None => hand_back(hub, &msg).instrument(span).await,
                Some(_) if !written => {
                    let again = Disposition::RetryIn(ferry::execute::STORE_RETRY);
                    settle(hub, &msg, again).instrument(span).await
                }
                Some(d) => settle(hub, &msg, d).instrument(span).await,
            };
            (id, retry)
        }
    });
    let mut failures = Vec::new();
    for (id, retry) in futures::future::join_all(settled).await {
        if retry {
            if id.is_empty() {
                // An empty identifier makes Lambda retry the whole batch: the
                // only way left to keep this record (steps never run twice).
                tracing::error!("a record to retry has no messageId; the whole batch is retried");
            }
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failures.push(failure);
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}

/// A record turned into a queue [`Message`], or why it could not be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The message (fields the record lacked are empty).
    pub message: Message,
    /// Set when the record is not an SQS message at all.
    pub malformed: Option<String>,
    /// Set when the message is not due yet (a delay longer than SQS's 15 minutes).
    pub not_due_for: Option<std::time::Duration>,
}

/// Read one record into the hub's queue's [`Message`]
/// ([`WorkQueue::delivered`](ferry::ports::WorkQueue::delivered): each
/// adapter makes the receipt it needs). A record that is not an SQS message
/// is read field by field, so it can still be dead-lettered by its receipt.
pub fn parse_record(hub: &Hub, record: &Value) -> Parsed {
    let (fields, malformed) = match SqsMessage::deserialize(record) {
        Ok(m) => (
            Fields {
                receive_count: m
                    .attributes
                    .get("ApproximateReceiveCount")
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1),
                attributes: m
                    .message_attributes
                    .into_iter()
                    .filter_map(|(k, v)| Some((k, v.string_value?)))
                    .collect(),
                id: m.message_id.unwrap_or_default(),
                receipt: m.receipt_handle.unwrap_or_default(),
                body: m.body.unwrap_or_default(),
            },
            None,
        ),
        Err(e) => {
            let text = |k: &str| record.get(k).and_then(Value::as_str).unwrap_or_default();
            (
                Fields {
                    id: text("messageId").to_owned(),
                    receipt: text("receiptHandle").to_owned(),
                    body: record.get("body").map(json_text).unwrap_or_default(),
                    receive_count: 1,
                    attributes: HashMap::new(),
                },
                Some(format!("malformed SQS record: {e}")),
            )
        }
    };
    let delivery = Delivery {
        message_id: &fields.id,
        receipt_handle: &fields.receipt,
        body: &fields.body,
        receive_count: fields.receive_count,
        attributes: &fields.attributes,
    };
    let not_due_for = hub.ports.queue.not_due_for(&delivery);
    let message = hub.ports.queue.delivered(delivery);
    Parsed {
        message,
        malformed,
        not_due_for,
    }
}

struct Fields {
    id: String,
    receipt: String,
    body: String,
    receive_count: u32,
    attributes: HashMap<String, String>,
}

fn json_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// What to do with a record: run its job, unless it cannot be parsed or is
/// not due yet.
async fn decide(hub: &Hub, parsed: &Parsed) -> Disposition {
    match (&parsed.malformed, parsed.not_due_for) {
        (Some(reason), _) => Disposition::DeadLetter(reason.clone()),
        // Not due yet: another hop of the long delay, not an attempt.
        (None, Some(wait)) => Disposition::Requeue(wait),
        (None, None) => execute(hub, &parsed.message).await,
    }
}

/// Apply a disposition the way the event source mapping expects; `true`
/// when the record must be reported as failed.
async fn settle(hub: &Hub, msg: &Message, disposition: Disposition) -> bool {
    let queue = hub.ports.queue.as_ref();
    match ferry::worker::within_redrive(queue, msg, disposition).await {
        Disposition::Done => false,
        Disposition::RetryIn(delay) => {
            if let Err(e) = queue.change_visibility(&msg.receipt, delay).await {
                tracing::warn!(error = %e, "could not set the retry delay; SQS retries after the visibility timeout");
            }
            true
        }
        Disposition::Requeue(delay) => match queue.send(&msg.body, delay).await {
            Ok(_) => false,
            Err(e) => {
                tracing::warn!(error = %e, "could not requeue; SQS retries after the visibility timeout");
                true
            }
        },
        Disposition::DeadLetter(reason) => match queue.dead_letter(&msg.receipt, &reason).await {
            Ok(()) => {
                tracing::warn!(reason = %reason, "dead-lettered");
                false
            }
            Err(e) => {
                tracing::error!(error = %e, reason = %reason, "could not dead-letter; retried until the redrive policy dead-letters it");
                true
            }
        },
    }
}

/// Give a record back unstarted: visible again at once, reported as failed.
async fn hand_back(hub: &Hub, msg: &Message) -> bool {
    tracing::warn!("too close to the deadline to start; handed back");
    if let Err(e) = hub
        .ports
        .queue
        .change_visibility(&msg.receipt, Duration::ZERO)
        .await
    {
        tracing::warn!(error = %e, "could not make the record visible again");
    }
    true
}

/// The ids a job message carries, for the log span of its record.
#[derive(Deserialize)]
struct JobIds {
    run_id: Option<String>,
    event_id: Option<String>,
    workflow: Option<String>,
}

/// A span with the message id, and the run, event and workflow when the
/// body names them: every log line of the record carries them.
fn record_span(msg: &Message) -> tracing::Span {
    let span = tracing::info_span!(
        "record",
        message_id = %msg.id,
        receive_count = msg.receive_count,
        run_id = field::Empty,
        event_id = field::Empty,
        workflow = field::Empty,
    );
    if let Ok(ids) = serde_json::from_str::<JobIds>(&msg.body) {
        if let Some(v) = &ids.run_id {
            span.record("run_id", v.as_str());
        }
        if let Some(v) = &ids.event_id {
            span.record("event_id", v.as_str());
        }
        if let Some(v) = &ids.workflow {
            span.record("workflow", v.as_str());
        }
    }
    span
}
