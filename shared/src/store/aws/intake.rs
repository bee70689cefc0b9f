//! [`Intake`] on DynamoDB + SQS: a new event in two DynamoDB write requests
//! and one SQS request, where the composed path (claim, send, create each
//! run, complete) takes three DynamoDB requests or more.
//!
//! 1. **Claim** the event id (`PutItem`, conditional: [`Idempotency::claim`]
//!    with [`ACCEPT_LEASE`]). Anything but `Claimed` is answered at once,
//!    with nothing written: a duplicate (`Completed`), a conflict, or a copy
//!    being accepted right now (`InProgress`, which ingest waits out).
//! 2. **Send** the messages (`SendMessageBatch`). If that fails the claim is
//!    released and the error returned: nothing is enqueued, the sender retries.
//! 3. **Record and mark seen** in one `TransactWriteItems`: the key set
//!    `COMPLETED` with its result and window (on `attribute_exists`, as
//!    [`Idempotency::complete`]), and each run put as
//!    [`RunLog::create`](crate::ports::RunLog::create) puts it (only when
//!    absent or expired). The work is enqueued by now, so the answer is
//!    `Claimed` whatever this step does; when the transaction is cancelled (a
//!    run already exists: the event came back after its dedupe window), the
//!    store has no transactions (dynalite), or the runs do not fit one (24
//!    runs, 3 MiB of records; with no run the mark is a plain `UpdateItem`),
//!    the same writes go one by one;
//!    when they fail, it is logged, as on the composed path: a lost run record
//!    is written by execute, and a lost mark makes a redelivery enqueue the
//!    same run ids again, which the step claims make a no-op.
//!
//! So a duplicate that arrives between the claim and the mark sees the lease
//! (`InProgress`) and waits, as before; a crash between the send and the
//! mark leaves the lease to expire, after which a redelivery is accepted
//! again under the same run ids. A transactional write costs twice the write
//! units of a plain one (docs/performance.md has the dollars).

use std::sync::atomic::Ordering;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};

use super::idempotency::{COMPLETED, GRACE_MS, KIND};
use super::item::{EXPIRES_AT, PK, key, n, s, ttl_seconds};
use super::runs::{CREATE_CONDITION, to_item};
use super::{AwsStore, after, error_code, unavailable};
use crate::ingest::ACCEPT_LEASE;
use crate::ports::{
    Claim, Idempotency, Intake, NewEvent, RunLog, StoreError, StoreResult, WorkQueue,
};

/// The error code of a server that does not know an operation (dynalite has
/// no transactions).
pub(super) const UNKNOWN_OPERATION: &str = "UnknownOperationException";
/// Items in one `TransactWriteItems` (DynamoDB allows 100; moto 25): an
/// event with more runs than fit next to its mark is written one by one.
const MAX_TX_ITEMS: usize = 25;
/// Bytes of run records in one transaction, under DynamoDB's 4 MB per
/// transaction with room for the keys and index attributes.
const MAX_TX_RECORD_BYTES: usize = 3 * 1024 * 1024;

#[async_trait]
impl Intake for AwsStore {
    async fn accept(&self, event: &NewEvent<'_>) -> StoreResult<Claim> {
        let claim = self
            .claim(event.key, event.payload_hash, event.result, ACCEPT_LEASE)
            .await?;
        if claim != Claim::Claimed {
            return Ok(claim);
        }
        if !event.messages.is_empty()
            && let Err(e) = self.send_batch(event.messages).await
        {
            if let Err(r) = self.release(event.key).await {
                tracing::warn!(key = event.key, error = %r, "could not release event claim");
            }
            return Err(e);
        }
        // Enqueued: from here on the event is accepted whatever happens.
        if let Err(e) = self.record_and_mark(event).await {
            tracing::warn!(key = event.key, error = %e, "accepted event, but could not record its runs or mark its id as seen; execute records the runs, and a redelivery maps to the same runs");
        }
        Ok(Claim::Claimed)
    }
}

impl AwsStore {
    /// Step 3: the runs created and the key completed, in one transaction
    /// when the store has them, else one write each.
    async fn record_and_mark(&self, event: &NewEvent<'_>) -> StoreResult<()> {
        if self.transactions.load(Ordering::Relaxed) && fits_one_transaction(event) {
            match self.record_and_mark_at_once(event).await {
                Ok(()) => return Ok(()),
                Err(Fallback::OneByOne) => {}
                Err(Fallback::Failed(e)) => return Err(e),
            }
        }
        let mut first_error = None;
        for run in event.runs {
            if let Err(e) = self.create(run).await {
                first_error.get_or_insert(e);
            }
        }
        if let Err(e) = self.complete(event.key, event.result, event.window).await {
            first_error.get_or_insert(e);
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn record_and_mark_at_once(&self, event: &NewEvent<'_>) -> Result<(), Fallback> {
        let now = self.now();
        let valid_until = after(now, event.window);
        let table = &self.names.table;
        let mark = Update::builder()
            .table_name(table)
            .set_key(Some(key(KIND, event.key)))
            .update_expression(
                "SET #status = :done, #result = :result, valid_until = :until, #exp = :exp",
            )
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#result", "result")
            .expression_attribute_names("#exp", EXPIRES_AT)
            .expression_attribute_values(":done", s(COMPLETED))
            .expression_attribute_values(":result", s(event.result))
            .expression_attribute_values(":until", n(valid_until))
            .expression_attribute_values(":exp", ttl_seconds(valid_until.saturating_add(GRACE_MS)))
            .build()
            .map_err(|e| Fallback::Failed(StoreError::Corrupt(format!("intake mark: {e}"))))?;
        let mut items = vec![TransactWriteItem::builder().update(mark).build()];
        let mut record_bytes = 0;
        for run in event.runs {
            let item = to_item(run).map_err(Fallback::Failed)?;
            record_bytes += item
                .get("record")
                .and_then(|v| v.as_s().ok())
                .map_or(0, String::len);
            if record_bytes > MAX_TX_RECORD_BYTES {
                return Err(Fallback::OneByOne);
            }
            let put = Put::builder()
                .table_name(table)
                .set_item(Some(item))
                .condition_expression(CREATE_CONDITION)
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#exp", EXPIRES_AT)
                .expression_attribute_values(":now", n(now.max(0) / 1000))
                .build()
                .map_err(|e| Fallback::Failed(StoreError::Corrupt(format!("intake run: {e}"))))?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        let sent = self
            .dynamo
            .transact_write_items()
            .set_transact_items(Some(items))
            // An SDK retry of a transaction that did commit then succeeds.
            .client_request_token(uuid::Uuid::now_v7().to_string())
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                // A condition failed (a run exists, or the key is gone):
                // the writes one by one say which, as the composed path would.
                Some(TransactWriteItemsError::TransactionCanceledException(_)) => {
                    Err(Fallback::OneByOne)
                }
                _ if error_code(&e) == Some(UNKNOWN_OPERATION) => {
                    self.transactions.store(false, Ordering::Relaxed);
                    tracing::info!(
                        "the DynamoDB endpoint has no transactions; writing one item at a time"
                    );
                    Err(Fallback::OneByOne)
                }
                _ => Err(Fallback::Failed(unavailable("intake record and mark", e))),
            },
        }
    }
}

/// Whether the mark and the runs fit one transaction worth sending: with no
/// run, the mark alone is a plain `UpdateItem` (half the write units).
fn fits_one_transaction(event: &NewEvent<'_>) -> bool {
    !event.runs.is_empty() && event.runs.len() < MAX_TX_ITEMS
}

/// Why the transaction did not do it.
enum Fallback {
    /// Write the same items one request each.
    OneByOne,
    /// The store failed; give up.
    Failed(StoreError),
}
