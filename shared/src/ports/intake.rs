//! Idempotency keys (ingest dedupe, step claims) and the one-step ingest write.

use std::time::Duration;

use async_trait::async_trait;

use super::StoreResult;
use crate::clock::Millis;
use crate::model::RunRecord;

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

    /// Whether [`accept`](Intake::accept) writes all of an event in one
    /// atomic step, so that no crash or failure leaves part of it behind (the
    /// embedded store: one SQLite transaction). Then ingest gives runs
    /// time-ordered ids ([`crate::model::ordered_run_id`]), which a store
    /// indexes by appending; otherwise ids derived from the event alone
    /// ([`crate::model::run_id_for`]), so a retry after a crash between the
    /// writes maps to the same runs.
    fn atomic(&self) -> bool {
        false
    }
}
