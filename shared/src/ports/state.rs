//! The small state instances share: sync cursors, rate-limit buckets,
//! circuit breakers, alert tallies and envelope data keys.

use std::time::Duration;

use async_trait::async_trait;

use super::StoreResult;
use crate::clock::Millis;

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
