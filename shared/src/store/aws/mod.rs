//! The AWS adapter: idempotency, run log, cursors and rate limits on one
//! DynamoDB table; the work queue on SQS with a dead-letter queue (see
//! `docs/store.md` for the table layout and the queue's semantics); the
//! token cache's data keys, when asked for, from KMS ([`kms`]).
//!
//! - Time for leases, TTLs, cursors, rate limits and "not before" comes from
//!   the injected [`Clock`] (conditions are computed client-side); SQS delays
//!   and visibility timeouts follow the server's clock.
//! - The SDK clients are built once, from an [`aws_config::SdkConfig`]
//!   (region, credentials, and an endpoint override such as
//!   `AWS_ENDPOINT_URL` for an emulator); [`AwsStore::counted`] adds a
//!   request counter ([`requests`]) for tests and benchmarks.
//! - Inside [`hold_writes`] (the execute Lambda's batches), run-log puts and
//!   the results of the scope's own claims are held and sent together in
//!   `BatchWriteItem` requests when the scope ends; inside
//!   [`hold_writes_each`] the claims its tasks make together are also sent
//!   together, in one `TransactWriteItems` (`gather.rs`).
//! - Ingest's [`Intake`](crate::ports::Intake): claim, send, then the runs
//!   and the "seen" mark in one transaction (`intake.rs`).
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! # use std::sync::Arc;
//! # use ferry::clock::SystemClock;
//! # use ferry::store::aws::{AwsNames, AwsStore};
//! let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
//! let names = AwsNames {
//!     table: "ferry".into(),
//!     queue_url: "https://sqs.us-east-1.amazonaws.com/123456789012/ferry-work".into(),
//!     dlq_url: "https://sqs.us-east-1.amazonaws.com/123456789012/ferry-dead".into(),
//! };
//! let ports = AwsStore::new(&config, names, Arc::new(SystemClock)).ports();
//! # Ok(()) }
//! ```

mod batch;
mod breakers;
mod cursors;
mod dlq;
mod gather;
mod held;
mod idempotency;
mod intake;
mod item;
pub mod kms;
mod limits;
mod message;
pub mod provision;
mod queue;
mod receipt;
pub mod requests;
mod runs;
mod tallies;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::SharedInterceptor;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use tokio::sync::OnceCell;

use crate::clock::{Clock, Millis};
use crate::ports::{DataKeys, Ports, StoreError, StoreResult};

pub use held::{IDLE_CLAIM_WAIT, hold_writes, hold_writes_each};
pub use message::{
    ID_ATTRIBUTE, MAX_DELAY, NOT_BEFORE_ATTRIBUTE, SqsRecord, due_in, message_from_sqs,
};

/// Each DynamoDB call attempt's timeout (when the SDK config sets none).
pub const DYNAMODB_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Each SQS call attempt's timeout (when the SDK config sets none): above the
/// longest long poll (20 s).
pub const SQS_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(25);

/// Where the adapter keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsNames {
    /// The DynamoDB table (layout: [`provision::create_table`]).
    pub table: String,
    /// The work queue's URL; its redrive policy names the dead-letter queue.
    pub queue_url: String,
    /// The dead-letter queue's URL.
    pub dlq_url: String,
}

/// Every port on DynamoDB + SQS. Build with [`AwsStore::new`] (or
/// [`AwsStore::from_clients`] to share clients), hand out with [`AwsStore::ports`].
/// Clones share the clients' connection pools.
#[derive(Clone)]
pub struct AwsStore {
    dynamo: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    names: AwsNames,
    clock: Arc<dyn Clock>,
    /// The queue's `maxReceiveCount`, read from its redrive policy once.
    max_receives: OnceCell<Option<u32>>,
    /// Envelope keys for the token cache ([`AwsStore::with_data_keys`]).
    data_keys: Option<Arc<dyn DataKeys>>,
    /// Whether to try `TransactWriteItems`: cleared, for every clone, the
    /// first time the endpoint does not know it (dynalite); the same items
    /// are then written one request each.
    transactions: Arc<AtomicBool>,
}

impl std::fmt::Debug for AwsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsStore")
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

impl AwsStore {
    /// Build the SDK clients from `config` (once; they pool connections).
    ///
    /// Unless `config` sets one, each attempt of a call gets a timeout, so a
    /// stalled connection fails over to a retry instead of eating a Lambda's
    /// time: [`DYNAMODB_ATTEMPT_TIMEOUT`], and [`SQS_ATTEMPT_TIMEOUT`] (above
    /// the 20 s long poll).
    pub fn new(
        config: &aws_config::SdkConfig,
        names: AwsNames,
        clock: Arc<dyn Clock>,
    ) -> Arc<Self> {
        Self::build(config, names, clock, None)
    }

    /// As [`AwsStore::new`], with every DynamoDB and SQS request the store
    /// sends noted in `counter` (see [`requests`]).
    pub fn counted(
        config: &aws_config::SdkConfig,
        names: AwsNames,
        clock: Arc<dyn Clock>,
        counter: &requests::RequestCounter,
    ) -> Arc<Self> {
        Self::build(config, names, clock, Some(counter))
    }

    fn build(
        config: &aws_config::SdkConfig,
        names: AwsNames,
        clock: Arc<dyn Clock>,
        counter: Option<&requests::RequestCounter>,
    ) -> Arc<Self> {
        let timeouts = |attempt: Duration| {
            let base = config
                .timeout_config()
                .cloned()
                .unwrap_or_else(TimeoutConfig::disabled);
            if base.operation_attempt_timeout().is_some() {
                base
            } else {
                base.to_builder().operation_attempt_timeout(attempt).build()
            }
        };
        let mut dynamo = aws_sdk_dynamodb::config::Builder::from(config)
            .timeout_config(timeouts(DYNAMODB_ATTEMPT_TIMEOUT));
        let mut sqs = aws_sdk_sqs::config::Builder::from(config)
            .timeout_config(timeouts(SQS_ATTEMPT_TIMEOUT));
        if let Some(counter) = counter {
            dynamo.push_interceptor(SharedInterceptor::new(counter.interceptor()));
            sqs.push_interceptor(SharedInterceptor::new(counter.interceptor()));
        }
        let (dynamo, sqs) = (dynamo.build(), sqs.build());
        Self::from_clients(
            aws_sdk_dynamodb::Client::from_conf(dynamo),
            aws_sdk_sqs::Client::from_conf(sqs),
            names,
            clock,
        )
    }

    /// Use existing clients (cheap clones of one connection pool).
    pub fn from_clients(
        dynamo: aws_sdk_dynamodb::Client,
        sqs: aws_sdk_sqs::Client,
        names: AwsNames,
        clock: Arc<dyn Clock>,
    ) -> Arc<Self> {
        Arc::new(Self {
            dynamo,
            sqs,
            names,
            clock,
            max_receives: OnceCell::new(),
            data_keys: None,
            transactions: Arc::new(AtomicBool::new(true)),
        })
    }

    /// This store, sealing the OAuth 2.0 token cache with data keys from
    /// `keys` (see [`kms::KmsDataKeys`]) instead of keys derived from the
    /// connections' secrets.
    pub fn with_data_keys(self: Arc<Self>, keys: Arc<dyn DataKeys>) -> Arc<Self> {
        let mut store = Arc::unwrap_or_clone(self);
        store.data_keys = Some(keys);
        Arc::new(store)
    }

    /// Where it keeps its data.
    pub fn names(&self) -> &AwsNames {
        &self.names
    }

    /// The store as every port, sharing this store's clock; with an
    /// [`Intake`](crate::ports::Intake) that accepts an event in two
    /// DynamoDB write requests (see `intake.rs`).
    pub fn ports(self: &Arc<Self>) -> Ports {
        Ports {
            idempotency: self.clone(),
            queue: self.clone(),
            runs: self.clone(),
            cursors: self.clone(),
            limits: self.clone(),
            breakers: self.clone(),
            tallies: self.clone(),
            clock: self.clock.clone(),
            data_keys: self.data_keys.clone(),
            intake: Some(self.clone()),
        }
    }

    fn now(&self) -> Millis {
        self.clock.now_ms()
    }
}

/// Map an SDK error: every failure to reach or use the service is the
/// retryable `Unavailable` (throttling, 5xx, timeouts, a missing table, …).
impl AwsStore {
    /// The item `kind#name`, read consistently; `what` names the operation in errors.
    async fn read_item(
        &self,
        kind: &str,
        name: &str,
        what: &str,
    ) -> StoreResult<Option<item::Item>> {
        let _reading = held::Held::reading();
        let got = self
            .dynamo
            .get_item()
            .table_name(&self.names.table)
            .set_key(Some(item::key(kind, name)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable(what, e))?;
        Ok(got.item)
    }
}

fn unavailable<E, R>(op: &str, e: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    StoreError::Unavailable(format!("{op}: {}", DisplayErrorContext(&e)))
}

/// The service's error code, when it answered with one.
fn error_code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    e.as_service_error().and_then(ProvideErrorMetadata::code)
}

/// The service's error message, when it answered with one.
fn error_message<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> &str {
    e.as_service_error()
        .and_then(ProvideErrorMetadata::message)
        .unwrap_or_default()
}

/// `now + d` in clock milliseconds, saturating.
fn after(now: Millis, d: Duration) -> Millis {
    now.saturating_add(Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;

    fn names() -> AwsNames {
        AwsNames {
            table: "t".into(),
            queue_url: "http://127.0.0.1:1/q".into(),
            dlq_url: "http://127.0.0.1:1/d".into(),
        }
    }

    fn attempt_timeouts(store: &AwsStore) -> (Option<Duration>, Option<Duration>) {
        let dynamo = store.dynamo.config().timeout_config().cloned();
        let sqs = store.sqs.config().timeout_config().cloned();
        (
            dynamo.and_then(|t| t.operation_attempt_timeout()),
            sqs.and_then(|t| t.operation_attempt_timeout()),
        )
    }

    #[tokio::test]
    async fn attempts_time_out_unless_the_config_says_otherwise() {
        let config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let store = AwsStore::new(&config, names(), Arc::new(SystemClock));
        assert_eq!(
            attempt_timeouts(&store),
            (Some(DYNAMODB_ATTEMPT_TIMEOUT), Some(SQS_ATTEMPT_TIMEOUT))
        );
        let mine = TimeoutConfig::builder()
            .operation_attempt_timeout(Duration::from_secs(60))
            .build();
        let config = config.to_builder().timeout_config(mine).build();
        let store = AwsStore::new(&config, names(), Arc::new(SystemClock));
        let sixty = Some(Duration::from_secs(60));
        assert_eq!(attempt_timeouts(&store), (sixty, sixty));
    }
}
