//! Step claims gathered into one request. Inside
//! [`hold_writes_each`](super::hold_writes_each) (the execute Lambda runs
//! the records of an SQS batch as its tasks), a task's
//! [`claim`](crate::ports::Idempotency::claim) waits until every task still
//! running has made one too (or has ended), and the claims go out together
//! in one `TransactWriteItems` of conditional puts: ten records, one claim
//! request, where each record used to send its own `PutItem`.
//!
//! Each claim keeps its own semantics:
//!
//! - the transaction commits: every key is claimed, as each `PutItem` would
//!   have claimed it;
//! - it is cancelled: a condition failed on some keys (a redelivered
//!   record's step is done or in progress). Those keys answer from the item
//!   the cancellation returns (`ALL_OLD`), exactly as a failed `PutItem`
//!   does; the others were not written and claim again one by one
//!   ([`Gathered::Alone`]), so one busy key never costs the rest their claim;
//! - a key twice in one gathering (the same message delivered twice in a
//!   batch) goes once into the transaction, the other copy alone after it;
//! - a store without transactions (dynalite): every claim alone, as before.
//!
//! A task busy elsewhere (a call of an earlier step, a rate-limit wait) is
//! not waited for beyond [`IDLE`] after the last claim arrived (or the last
//! read of the scope's tasks ended: a task reading its run or a pause is on
//! its way to its claim, and none is waited out while a read is in flight):
//! the claims gathered so far go then. Gathering only ever delays a claim,
//! never decides it differently.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::idempotency::holder;
use super::intake::UNKNOWN_OPERATION;
use super::item::{Item, PK, get_n, n};
use super::{error_code, unavailable};
use crate::clock::Millis;
use crate::ports::{Claim, StoreError, StoreResult};

/// How long gathered claims wait for another task's claim after the last
/// one arrived, when some task has not claimed yet.
pub(super) const IDLE: Duration = Duration::from_millis(20);
/// Items per `TransactWriteItems` (DynamoDB allows 100; moto 25).
const MAX_ITEMS: usize = 25;

/// What became of a gathered claim.
pub(super) enum Gathered {
    /// Decided: claimed, or the holder's state (or the store's error).
    Done(StoreResult<Claim>),
    /// Not decided: claim alone, as outside a gathering.
    Alone,
}

/// One claim waiting to go.
pub(super) struct Pending {
    /// The client and table to write with.
    pub client: aws_sdk_dynamodb::Client,
    /// The table.
    pub table: String,
    /// The whole claim item (as `claim` puts it).
    pub item: Item,
    /// The payload hash, to answer `PayloadMismatch` from a holder.
    pub payload_hash: String,
    /// The claim's `now` (clock ms) for its condition.
    pub now: Millis,
    /// Whether the store has transactions (cleared when it has not).
    pub transactions: std::sync::Arc<AtomicBool>,
}

/// The claims of a scope's tasks.
#[derive(Default)]
pub(super) struct Gather {
    inner: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Tasks of the scope still running; below two nothing is gathered.
    live: usize,
    /// Reads of the scope's tasks in flight ([`Gather::reading`]): a task
    /// reading the store is on its way to its claim, so the gathered claims
    /// wait for it, and the idle time counts from when its read ends.
    reading: usize,
    /// Claims waiting, with where to answer.
    pending: Vec<(Pending, oneshot::Sender<Gathered>)>,
    /// When the latest pending claim arrived.
    last: Option<Instant>,
}

type Batch = Vec<(Pending, oneshot::Sender<Gathered>)>;

impl Gather {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `n` more tasks run in the scope.
    pub(super) fn enter(&self, n: usize) {
        self.lock().live += n;
    }

    /// A read of the store starts (the run, a pause): until `done` is
    /// called, gathered claims do not go for want of company.
    pub(super) fn reading(&self) {
        self.lock().reading += 1;
    }

    /// The read [`Gather::reading`] noted has ended.
    pub(super) fn read_done(&self) {
        let mut state = self.lock();
        state.reading = state.reading.saturating_sub(1);
        if !state.pending.is_empty() {
            state.last = Some(Instant::now());
        }
    }

    /// A task ended: if every task left has a claim waiting, they go now.
    pub(super) async fn leave(&self) {
        let batch = {
            let mut state = self.lock();
            state.live = state.live.saturating_sub(1);
            take_if_all_waiting(&mut state)
        };
        if let Some(batch) = batch {
            send(batch).await;
        }
    }

    /// Gather `claim` with the other tasks' claims, or [`Gathered::Alone`]
    /// when there is nobody to gather with.
    pub(super) async fn claim(&self, claim: Pending) -> Gathered {
        let (tx, mut rx) = oneshot::channel();
        let batch = {
            let mut state = self.lock();
            if state.live < 2 {
                return Gathered::Alone;
            }
            state.pending.push((claim, tx));
            state.last = Some(Instant::now());
            take_if_all_waiting(&mut state)
        };
        if let Some(batch) = batch {
            send(batch).await;
        }
        loop {
            let wait = {
                let state = self.lock();
                state.last.map_or(IDLE, |t| {
                    (t + IDLE).saturating_duration_since(Instant::now())
                })
            };
            match tokio::time::timeout(wait, &mut rx).await {
                Ok(Ok(gathered)) => return gathered,
                // The sender went without answering (a panicked task).
                Ok(Err(_)) => return Gathered::Alone,
                Err(_) => {
                    let batch = {
                        let mut state = self.lock();
                        let idle = state.last.is_none_or(|t| t.elapsed() >= IDLE);
                        if idle && state.reading == 0 && !state.pending.is_empty() {
                            state.last = None;
                            Some(std::mem::take(&mut state.pending))
                        } else {
                            None
                        }
                    };
                    if let Some(batch) = batch {
                        send(batch).await;
                    }
                }
            }
        }
    }
}

/// The pending claims, when every live task has one waiting.
fn take_if_all_waiting(state: &mut State) -> Option<Batch> {
    if state.pending.is_empty() || state.pending.len() < state.live {
        return None;
    }
    state.last = None;
    Some(std::mem::take(&mut state.pending))
}

/// Send `batch` in transactions of distinct keys; answer every claim.
async fn send(batch: Batch) {
    let mut seen = HashSet::new();
    let mut together: Batch = Vec::new();
    for (claim, tx) in batch {
        let first = together.first().map(|(c, _)| c.table.clone());
        let same_table = first.is_none_or(|t| t == claim.table);
        let fresh = seen.insert((claim.table.clone(), item_pk(&claim.item)));
        if fresh && same_table && claim.transactions.load(Ordering::Relaxed) {
            together.push((claim, tx));
        } else {
            let _ = tx.send(Gathered::Alone);
        }
    }
    if together.len() < 2 {
        // One claim is cheaper as its own PutItem (half the write units).
        for (_, tx) in together {
            let _ = tx.send(Gathered::Alone);
        }
        return;
    }
    let mut rest = together;
    while !rest.is_empty() {
        let chunk: Batch = rest.drain(..rest.len().min(MAX_ITEMS)).collect();
        transact(chunk).await;
    }
}

/// One `TransactWriteItems` of the chunk's claims, and every answer.
async fn transact(chunk: Batch) {
    let mut items = Vec::with_capacity(chunk.len());
    for (claim, _) in &chunk {
        let put = Put::builder()
            .table_name(&claim.table)
            .set_item(Some(claim.item.clone()))
            .condition_expression("attribute_not_exists(#pk) OR valid_until <= :now")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":now", n(claim.now))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .expect("table, item and condition are set");
        items.push(TransactWriteItem::builder().put(put).build());
    }
    let client = chunk[0].0.client.clone();
    let sent = client
        .transact_write_items()
        .set_transact_items(Some(items))
        // An SDK retry of a transaction that did commit then succeeds
        // instead of failing every condition on its own items.
        .client_request_token(uuid::Uuid::now_v7().to_string())
        .send()
        .await;
    let e = match sent {
        Ok(_) => {
            for (_, tx) in chunk {
                let _ = tx.send(Gathered::Done(Ok(Claim::Claimed)));
            }
            return;
        }
        Err(e) => e,
    };
    if let Some(TransactWriteItemsError::TransactionCanceledException(c)) = e.as_service_error() {
        let reasons = c.cancellation_reasons();
        for (i, (claim, tx)) in chunk.into_iter().enumerate() {
            let failed = reasons
                .get(i)
                .filter(|r| r.code() == Some("ConditionalCheckFailed"))
                .and_then(|r| r.item());
            let answer = match failed {
                // Held by someone (live at the condition's `now`): as a
                // failed PutItem answers. Anything else claims again alone.
                Some(held) if get_n::<Millis>(held, "valid_until").is_ok_and(|v| v > claim.now) => {
                    Gathered::Done(holder(held, &claim.payload_hash))
                }
                _ => Gathered::Alone,
            };
            let _ = tx.send(answer);
        }
        return;
    }
    if error_code(&e) == Some(UNKNOWN_OPERATION) {
        if let Some((claim, _)) = chunk.first() {
            claim.transactions.store(false, Ordering::Relaxed);
        }
        for (_, tx) in chunk {
            let _ = tx.send(Gathered::Alone);
        }
        return;
    }
    let message = match unavailable("idempotency claims", e) {
        StoreError::Unavailable(m) => m,
        other => other.to_string(),
    };
    for (_, tx) in chunk {
        let _ = tx.send(Gathered::Done(Err(StoreError::Unavailable(
            message.clone(),
        ))));
    }
}

fn item_pk(item: &Item) -> String {
    item.get(PK)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}
