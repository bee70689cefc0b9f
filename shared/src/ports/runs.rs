//! The run log: every run, step and attempt, queryable by a person.

use std::time::Duration;

use async_trait::async_trait;

use super::{Claim, Idempotency, StoreResult, WorkQueue};
use crate::clock::Millis;
use crate::model::{RunQuery, RunRecord, RunStatus};

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
    /// [`put_claiming`](Self::put_claiming) only when the stored run is
    /// `expected`: a first delivery marks its run running from the queued
    /// record it rebuilt from its message, without reading the stored one
    /// first. When the stored run is another (or there is none, or it has
    /// expired), nothing is written or claimed and [`Fresh::Stored`] hands
    /// back what [`get`](Self::get) would have. The embedded store checks and
    /// writes in one operation (the stored JSON compared with `expected`'s);
    /// by default [`get`](Self::get), then `put_claiming` when they are equal.
    async fn put_claiming_if(
        &self,
        expected: &RunRecord,
        run: &RunRecord,
        idempotency: &dyn Idempotency,
        claim: ClaimArgs<'_>,
    ) -> StoreResult<Fresh> {
        put_claiming_if_in_turn(self, expected, run, idempotency, claim).await
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

/// What [`RunLog::put_claiming_if`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Fresh {
    /// The stored run was the expected one: the run is written, and this is
    /// the claim's answer.
    Claimed(Claim),
    /// The stored run is not the expected one; nothing was written. This is
    /// the stored run (`None`: there is none, or it has expired).
    Stored(Option<Box<RunRecord>>),
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

/// [`RunLog::put_claiming_if`] by default: [`RunLog::get`], then
/// [`RunLog::put_claiming`] when the stored run is `expected`.
pub async fn put_claiming_if_in_turn<R: RunLog + ?Sized>(
    runs: &R,
    expected: &RunRecord,
    run: &RunRecord,
    idempotency: &dyn Idempotency,
    claim: ClaimArgs<'_>,
) -> StoreResult<Fresh> {
    match runs.get(&run.id).await? {
        Some(stored) if stored == *expected => runs
            .put_claiming(run, idempotency, claim)
            .await
            .map(Fresh::Claimed),
        stored => Ok(Fresh::Stored(stored.map(Box::new))),
    }
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
