//! The narrow capabilities the domain needs from storage. The domain never
//! names SQLite, DynamoDB or SQS; each port has one adapter per backend and
//! one contract test suite (`crate::contract`) that every adapter must pass.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::clock::{Clock, Millis};
use crate::model::{RunQuery, RunRecord, RunStatus};

/// Errors a storage backend can raise.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot be reached or refused the write; the caller may retry.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A receipt handle or key that does not (or no longer) exists.
    #[error("not found: {0}")]
    NotFound(String),
    /// Stored data could not be decoded.
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether trying again later can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// Result of a port call.
pub type StoreResult<T> = Result<T, StoreError>;

// ---------------------------------------------------------------- idempotency

/// Outcome of trying to claim an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The caller now owns the key (it was absent, or its lease/TTL expired).
    Claimed,
    /// Someone else holds a live lease; `data` is what they stored at claim time.
    InProgress {
        /// Data stored by the holder when it claimed the key.
        data: String,
        /// When the holder's lease ends.
        lease_until: Millis,
    },
    /// The key was completed; `result` is what the completer stored.
    Completed {
        /// The stored result.
        result: String,
    },
    /// The key exists (in progress or completed) with a different payload hash.
    PayloadMismatch {
        /// Hash stored with the key.
        stored_hash: String,
    },
}

/// Claim a key once: lease while in progress, result when done, expiry by TTL.
///
/// A lease or TTL has expired once the port's clock reaches its end; an expired
/// key behaves exactly as an absent one.
#[async_trait]
pub trait Idempotency: Send + Sync {
    /// Claim `key` with a lease of `lease`, storing `payload_hash` and `data`.
    /// A live key with another payload hash is `PayloadMismatch`, whatever its state.
    async fn claim(
        &self,
        key: &str,
        payload_hash: &str,
        data: &str,
        lease: Duration,
    ) -> StoreResult<Claim>;
    /// Mark `key` completed with `result`; it expires after `ttl`.
    /// `NotFound` when nobody holds the key (never claimed, or released).
    async fn complete(&self, key: &str, result: &str, ttl: Duration) -> StoreResult<()>;
    /// Give up a claim so another caller can claim the key at once.
    /// Releasing an absent key is not an error.
    async fn release(&self, key: &str) -> StoreResult<()>;
}

// ---------------------------------------------------------------- intake

/// A new event for [`Intake::accept`]: its dedupe key and everything that
/// is written when the key is free.
#[derive(Debug, Clone, Copy)]
pub struct NewEvent<'a> {
    /// The dedupe key (see [`crate::keys::ingest`]).
    pub key: &'a str,
    /// Hash of the payload, stored with the key.
    pub payload_hash: &'a str,
    /// Stored with the key once accepted (the run ids, as JSON): what a
    /// duplicate gets back as [`Claim::Completed`].
    pub result: &'a str,
    /// How long the key is remembered.
    pub window: Duration,
    /// Queue messages to send: body and delay.
    pub messages: &'a [(String, Duration)],
    /// Runs to record, as [`RunLog::create`] would.
    pub runs: &'a [RunRecord],
}

/// Accept an event in one durable step, where a store can write several
/// tables atomically (the embedded store: one SQLite transaction), or in
/// fewer requests than the composed path (DynamoDB + SQS: claim, send, then
/// the runs and the mark in one transaction; see `store/aws/intake.rs`).
/// Without it ingest composes [`Idempotency`], [`WorkQueue`] and
/// [`RunLog`], each a write of its own.
#[async_trait]
pub trait Intake: Send + Sync {
    /// When `event.key` is free (absent or expired): send its messages,
    /// create its runs and store the key completed with its result for its
    /// window — all of it or nothing — and answer [`Claim::Claimed`] once
    /// durable. Otherwise write nothing and answer what holds the key, as
    /// [`Idempotency::claim`] would. A store that cannot send and write in
    /// one step (SQS and DynamoDB) holds the key with a lease while it
    /// sends, and answers `Claimed` once the messages are sent: a failure
    /// to record the runs or complete the key after that is what the
    /// composed path tolerates too (execute records the run; a redelivery
    /// maps to the same runs).
    async fn accept(&self, event: &NewEvent<'_>) -> StoreResult<Claim>;
}

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

// ---------------------------------------------------------------- run log

/// Every run, step and attempt, queryable by a person.
#[async_trait]
pub trait RunLog: Send + Sync {
    /// Insert `run` unless a run with its id exists. Returns whether it was inserted.
    async fn create(&self, run: &RunRecord) -> StoreResult<bool>;
    /// Insert or replace `run`.
    async fn put(&self, run: &RunRecord) -> StoreResult<()>;
    /// One run by id.
    async fn get(&self, id: &str) -> StoreResult<Option<RunRecord>>;
    /// Runs matching `query`, newest first (by `created_at`, then id).
    async fn list(&self, query: &RunQuery) -> StoreResult<Vec<RunRecord>>;
    /// When each run matching `query` was created, and its status, in the
    /// order of [`list`](Self::list): for counts and charts, which need no
    /// record. By default, from `list`; an adapter that can read these
    /// without decoding records (the embedded store) does.
    async fn summaries(&self, query: &RunQuery) -> StoreResult<Vec<(Millis, RunStatus)>> {
        Ok(self
            .list(query)
            .await?
            .into_iter()
            .map(|r| (r.created_at, r.status))
            .collect())
    }
    /// Runs matching `query` counted by status and by `width`-ms slice back
    /// from `at` ([`crate::run_counts::slice_of`]), without reading them:
    /// the overview's 24-hour counts.
    ///
    /// By default from [`summaries`](Self::summaries), so bounded by
    /// `query.limit`; the embedded store counts every run of the query with
    /// one `GROUP BY` over an index and ignores the limit.
    async fn counts(
        &self,
        query: &RunQuery,
        at: Millis,
        width: Millis,
    ) -> StoreResult<crate::run_counts::RunCounts> {
        crate::run_counts::from_summaries(self, query, at, width).await
    }
    /// Runs matching `query` whose event payload, as JSON text, contains
    /// `text` (ASCII case-insensitive), in the order of [`list`](Self::list),
    /// at most `query.limit` (0: the adapter's default).
    ///
    /// By default a bounded scan ([`crate::run_search::scan`]): it reads the
    /// newest [`search_bound`](Self::search_bound) runs of `query` and
    /// decodes each. The embedded store searches inside SQLite, without
    /// decoding, over a larger bound.
    async fn search(&self, query: &RunQuery, text: &str) -> StoreResult<Vec<RunRecord>> {
        crate::run_search::scan(self, query, text, crate::run_search::SCAN_RUNS).await
    }
    /// How many of the newest runs of a query [`search`](Self::search)
    /// reads at most; `None` when it searches them all.
    fn search_bound(&self) -> Option<usize> {
        Some(crate::run_search::SCAN_RUNS)
    }
    /// Insert or replace `run`, then claim a key in `idempotency` (a run
    /// marked running as its first step is claimed): one durable write where
    /// the backend can make it one (the embedded store, when `idempotency`
    /// is the same store). By default [`put`](Self::put), then
    /// [`Idempotency::claim`]; a crash between them leaves a running run
    /// with an unclaimed step, which its redelivery claims.
    async fn put_claiming(
        &self,
        run: &RunRecord,
        idempotency: &dyn Idempotency,
        claim: ClaimArgs<'_>,
    ) -> StoreResult<Claim> {
        put_claiming_in_turn(self, run, idempotency, claim).await
    }
    /// A run's last write: complete `done` in `idempotency` (the last
    /// step's result), insert or replace `run`, then delete the message
    /// `ack` from `queue`; one durable write where the backend can make it
    /// one. When `done` cannot be completed (`NotFound`: the claim is gone)
    /// nothing is written and that error is returned. The ack is best
    /// effort: `Ok(true)` when the message was deleted, `Ok(false)` when it
    /// was not (a stale receipt, or no `ack`), and the caller settles it.
    ///
    /// By default one write after the other, in that order: a crash after
    /// the completion redelivers a message whose step is done (skipped),
    /// after the run's write one whose run is final (dropped).
    async fn put_settling(
        &self,
        run: &RunRecord,
        idempotency: &dyn Idempotency,
        done: Option<Completion<'_>>,
        queue: &dyn WorkQueue,
        ack: Option<&str>,
    ) -> StoreResult<bool> {
        put_settling_in_turn(self, run, idempotency, done, queue, ack).await
    }
}

/// [`RunLog::put_claiming`] by default: [`RunLog::put`], then the claim.
pub async fn put_claiming_in_turn<R: RunLog + ?Sized>(
    runs: &R,
    run: &RunRecord,
    idempotency: &dyn Idempotency,
    claim: ClaimArgs<'_>,
) -> StoreResult<Claim> {
    runs.put(run).await?;
    idempotency
        .claim(claim.key, claim.payload_hash, claim.data, claim.lease)
        .await
}

/// [`RunLog::put_settling`] by default: the completion, [`RunLog::put`],
/// then the ack, one after the other.
pub async fn put_settling_in_turn<R: RunLog + ?Sized>(
    runs: &R,
    run: &RunRecord,
    idempotency: &dyn Idempotency,
    done: Option<Completion<'_>>,
    queue: &dyn WorkQueue,
    ack: Option<&str>,
) -> StoreResult<bool> {
    if let Some(done) = done {
        idempotency
            .complete(done.key, done.result, done.ttl)
            .await?;
    }
    runs.put(run).await?;
    match ack {
        Some(receipt) => Ok(queue.delete(receipt).await.is_ok()),
        None => Ok(false),
    }
}

/// The arguments of an [`Idempotency::claim`] made together with another
/// write ([`RunLog::put_claiming`]).
#[derive(Debug, Clone, Copy)]
pub struct ClaimArgs<'a> {
    /// The key.
    pub key: &'a str,
    /// The payload hash stored with it.
    pub payload_hash: &'a str,
    /// The data stored with it.
    pub data: &'a str,
    /// The lease.
    pub lease: Duration,
}

/// The arguments of an [`Idempotency::complete`] made together with another
/// write ([`RunLog::put_settling`]).
#[derive(Debug, Clone, Copy)]
pub struct Completion<'a> {
    /// The claimed key.
    pub key: &'a str,
    /// The result stored with it.
    pub result: &'a str,
    /// How long it is kept.
    pub ttl: Duration,
}

// ---------------------------------------------------------------- cursors

/// A saved sync checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Opaque value (watermark or page token, often JSON).
    pub value: String,
    /// Optimistic version; starts at 1 and increases on every put.
    pub version: u64,
    /// When it was last written.
    pub updated_at: Millis,
}

/// Sync checkpoints with optimistic versioning.
#[async_trait]
pub trait Cursors: Send + Sync {
    /// The cursor named `name`.
    async fn get(&self, name: &str) -> StoreResult<Option<Cursor>>;
    /// Write `value` if the stored version equals `expected` (`None`: must not exist).
    /// Returns the new version, or `None` when the version did not match.
    async fn put(&self, name: &str, value: &str, expected: Option<u64>)
    -> StoreResult<Option<u64>>;
}

// ---------------------------------------------------------------- rate limits

/// A token bucket's shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Tokens added per second.
    pub rate_per_sec: f64,
    /// Most tokens the bucket holds (burst).
    pub burst: f64,
}

/// Answer of a rate-limit acquire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquire {
    /// A token was taken; call now.
    Granted,
    /// No token; try again after this long (bucket empty or connection paused).
    Wait(Duration),
}

/// A token per call per connection (or key), shared by every worker and instance,
/// and a shared "paused until" after a 429.
#[async_trait]
pub trait RateLimits: Send + Sync {
    /// Take one token from bucket `key`. A bucket starts full and refills at
    /// `rate_per_sec` up to `burst`. `Wait` is the time until the next token or
    /// the end of a pause, whichever is later, rounded up to a whole millisecond.
    async fn acquire(&self, key: &str, bucket: Bucket) -> StoreResult<Acquire> {
        self.acquire_n(key, bucket, 1.0).await
    }
    /// Take `cost` tokens from bucket `key` (a token budget's cost of one
    /// call): granted once the bucket holds `cost`, or is full when `cost`
    /// is above the burst (the bucket then goes into debt, below zero, and
    /// refills from there). `Wait` as for [`RateLimits::acquire`]. A cost
    /// that is not a positive number counts as one.
    async fn acquire_n(&self, key: &str, bucket: Bucket, cost: f64) -> StoreResult<Acquire>;
    /// Pause `key` for everyone until `until` (e.g. after a 429 with Retry-After).
    /// A pause only extends: an earlier `until` than the current one changes nothing.
    async fn pause(&self, key: &str, until: Millis) -> StoreResult<()>;
    /// When the pause on `key` ends (0: never paused). Only a read: for
    /// people (`ferry connections`), and for calls on a connection without
    /// a rate limit, which only a pause holds.
    async fn paused_until(&self, key: &str) -> StoreResult<Millis>;
}

// ---------------------------------------------------------------- circuit breakers

/// An open circuit breaker, as the store keeps it. A closed breaker is absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breaker {
    /// The connection's name.
    pub name: String,
    /// When it opened (kept while it re-opens after failed probes).
    pub since: Millis,
    /// Calls wait until then; after it, one probe may go out.
    pub until: Millis,
    /// Why it opened (or re-opened): the last failure, redacted.
    pub why: String,
    /// When the lease of the probe in flight ends (0: no probe).
    pub probe_until: Millis,
}

/// Circuit breakers per connection, shared by every worker and instance: the
/// opening and closing every caller honours, and the one probe after `until`.
///
/// Times compare against the port's clock, like idempotency leases.
#[async_trait]
pub trait Breakers: Send + Sync {
    /// The breaker of connection `name`, `None` while closed.
    async fn get(&self, name: &str) -> StoreResult<Option<Breaker>>;
    /// Open `name` until `until` because of `why`. A closed breaker opens with
    /// `since` = now; an open one keeps its `since`, takes the new `why`, and
    /// its `until` only extends. Either way a probe in flight is over.
    async fn open(&self, name: &str, until: Millis, why: &str) -> StoreResult<Breaker>;
    /// Claim the probe of an open breaker whose `until` has come, for `lease`:
    /// `true` for one caller only, until its lease ends or the breaker is
    /// opened, released or closed. `false` when closed, not yet due, or
    /// another caller holds a live lease.
    async fn probe(&self, name: &str, lease: Duration) -> StoreResult<bool>;
    /// End a probe without a verdict (its call never went out): another caller
    /// may probe at once. Releasing a closed breaker is not an error.
    async fn release(&self, name: &str) -> StoreResult<()>;
    /// Close `name` (forget it). Closing a closed breaker is not an error.
    async fn close(&self, name: &str) -> StoreResult<()>;
}

// ---------------------------------------------------------------- tallies

/// How many times something happened to one subject in one window, kept for
/// alerts (`crate::alerts`): runs that failed for good, credentials refused,
/// runs finished late, runs finished (for error rates).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    /// What was counted, e.g. `run_failed:new-lead` (built by [`crate::keys`]).
    pub subject: String,
    /// The start of the window (a multiple of the window's length).
    pub window: Millis,
    /// How many.
    pub count: u64,
    /// When the first was counted.
    pub first: Millis,
    /// When the latest was counted.
    pub last: Millis,
    /// A short description of the latest (e.g. its reason), for the message.
    pub sample: String,
}

/// Counters noted as things happen, read by the alert evaluator per window.
///
/// Every add is atomic across workers and instances (no read first), so a
/// thousand failures in one window make a count of a thousand. A tally is
/// kept for at least [`TALLY_KEEP`] after its window starts, then expires.
#[async_trait]
pub trait Tallies: Send + Sync {
    /// Count one of `subject` in the window starting at `window`, at `at`:
    /// `count` + 1, `first` kept (set by the first add), `last` and `sample`
    /// this add's.
    async fn add(&self, subject: &str, window: Millis, at: Millis, sample: &str)
    -> StoreResult<()>;
    /// Every tally of the window starting at `window`, by subject.
    async fn window(&self, window: Millis) -> StoreResult<Vec<Tally>>;
}

/// How long a tally is kept after its window starts.
pub const TALLY_KEEP: Duration = Duration::from_secs(2 * 24 * 3600);

// ---------------------------------------------------------------- data keys

/// A data key for envelope encryption: the plaintext seals, the wrapped form
/// is stored beside what it sealed.
#[derive(Clone)]
pub struct DataKey {
    /// The 256-bit key; never stored, never logged.
    pub plain: [u8; 32],
    /// The key encrypted under the key-management service's key.
    pub wrapped: Vec<u8>,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

/// Data keys from a key-management service (KMS on AWS), each bound to an
/// encryption context (name/value pairs) that opening must repeat.
#[async_trait]
pub trait DataKeys: Send + Sync {
    /// A data key bound to `context`.
    async fn generate(&self, context: &[(&str, &str)]) -> StoreResult<DataKey>;
    /// The plaintext of `wrapped` under `context`; `Ok(None)` when the service
    /// refuses it as not its own (another context, another key, garbage).
    async fn unwrap(
        &self,
        wrapped: &[u8],
        context: &[(&str, &str)],
    ) -> StoreResult<Option<[u8; 32]>>;
}

// ---------------------------------------------------------------- the set

/// Every port the domain uses, as one bundle of shared handles.
#[derive(Clone)]
pub struct Ports {
    /// Idempotency keys (ingest dedupe, step claims).
    pub idempotency: Arc<dyn Idempotency>,
    /// The work queue.
    pub queue: Arc<dyn WorkQueue>,
    /// The run log.
    pub runs: Arc<dyn RunLog>,
    /// Sync cursors.
    pub cursors: Arc<dyn Cursors>,
    /// Rate limits.
    pub limits: Arc<dyn RateLimits>,
    /// Circuit breakers.
    pub breakers: Arc<dyn Breakers>,
    /// Counters for alerts.
    pub tallies: Arc<dyn Tallies>,
    /// The clock every adapter and the domain share.
    pub clock: Arc<dyn Clock>,
    /// Envelope keys for the OAuth 2.0 token cache (KMS, when
    /// `FERRY_TOKEN_KMS_KEY` names a key); `None`: sealed with a key derived
    /// from the connection's secrets (see [`crate::token_cache`]).
    pub data_keys: Option<Arc<dyn DataKeys>>,
    /// One-step ingest writes ([`Intake`]); `None`: ingest composes
    /// `idempotency`, `queue` and `runs`. A wrapper that replaces those ports
    /// (to inject faults, say) sets this to `None`, or ingest bypasses it.
    pub intake: Option<Arc<dyn Intake>>,
}
