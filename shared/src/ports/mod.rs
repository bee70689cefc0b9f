//! The narrow capabilities the domain needs from storage. The domain never
//! names SQLite, DynamoDB or SQS; each port has one adapter per backend and
//! one contract test suite (`crate::contract`) that every adapter must pass.

use std::sync::Arc;

use crate::clock::Clock;

mod intake;
mod queue;
mod runs;
mod state;

pub use intake::*;
pub use queue::*;
pub use runs::*;
pub use state::*;

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
