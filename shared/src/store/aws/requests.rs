//! Count the requests the AWS SDK clients send, per service and operation:
//! an SDK interceptor ([`Intercept`]) on the client config that notes every
//! attempt as it goes on the wire (a retried call counts once per attempt,
//! as AWS bills it).
//!
//! For tests and benchmarks (requests per event are deterministic where
//! timings are not): build the store with [`AwsStore::counted`](super::AwsStore::counted),
//! or add [`RequestCounter::interceptor`] to any client's config, then read
//! [`RequestCounter::snapshot`] and compare two snapshots with
//! [`Requests::since`].
//!
//! ```
//! use ferry::store::aws::requests::RequestCounter;
//! let counter = RequestCounter::new();
//! let sqs = aws_sdk_sqs::config::Builder::new()
//!     .interceptor(counter.interceptor())
//!     .build();
//! # let _ = sqs;
//! assert_eq!(counter.snapshot().total(), 0);
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;

/// The service name the SDK gives DynamoDB's operations.
pub const DYNAMODB: &str = "dynamodb";
/// The service name the SDK gives SQS's operations.
pub const SQS: &str = "sqs";

/// DynamoDB operations that write (billed in write request units).
const DYNAMODB_WRITES: [&str; 5] = [
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "BatchWriteItem",
    "TransactWriteItems",
];
/// DynamoDB operations that read items (billed in read request units).
const DYNAMODB_READS: [&str; 5] = [
    "GetItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "TransactGetItems",
];

/// A shared tally of requests sent, by `(service, operation)`. Clones share
/// the tally.
#[derive(Debug, Clone, Default)]
pub struct RequestCounter {
    counts: Arc<Mutex<BTreeMap<(String, String), u64>>>,
}

impl RequestCounter {
    /// An empty tally.
    pub fn new() -> Self {
        Self::default()
    }

    /// An interceptor that adds every request a client sends to this tally;
    /// give it to a client's config builder (`.interceptor(..)`).
    pub fn interceptor(&self) -> Counting {
        Counting {
            counter: self.clone(),
        }
    }

    /// Note one request of `operation` on `service` (the interceptor does).
    pub fn note(&self, service: &str, operation: &str) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        *counts
            .entry((service.to_lowercase(), operation.to_owned()))
            .or_default() += 1;
    }

    /// The counts so far.
    pub fn snapshot(&self) -> Requests {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        Requests {
            counts: counts.clone(),
        }
    }
}

/// The interceptor of a [`RequestCounter`] (see [`RequestCounter::interceptor`]).
#[derive(Debug, Clone)]
pub struct Counting {
    counter: RequestCounter,
}

impl Intercept for Counting {
    fn name(&self) -> &'static str {
        "ferry::RequestCounter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        match cfg.load::<Metadata>() {
            Some(m) => self.counter.note(m.service(), m.name()),
            None => self.counter.note("unknown", "unknown"),
        }
        Ok(())
    }
}

/// Requests counted, by `(service, operation)` (service in lower case:
/// [`DYNAMODB`], [`SQS`], …).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requests {
    /// How many of each.
    pub counts: BTreeMap<(String, String), u64>,
}

impl Requests {
    /// Requests of one operation.
    pub fn of(&self, service: &str, operation: &str) -> u64 {
        self.counts
            .get(&(service.to_owned(), operation.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// Every request counted.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// Requests to one service.
    pub fn service(&self, service: &str) -> u64 {
        self.counts
            .iter()
            .filter(|((s, _), _)| s == service)
            .map(|(_, n)| n)
            .sum()
    }

    /// DynamoDB requests that write items (`PutItem`, `UpdateItem`,
    /// `DeleteItem`, `BatchWriteItem`, `TransactWriteItems`).
    pub fn dynamodb_writes(&self) -> u64 {
        self.ops(DYNAMODB, &DYNAMODB_WRITES)
    }

    /// DynamoDB requests that read items (`GetItem`, `Query`, `Scan`,
    /// `BatchGetItem`, `TransactGetItems`).
    pub fn dynamodb_reads(&self) -> u64 {
        self.ops(DYNAMODB, &DYNAMODB_READS)
    }

    /// Every SQS request.
    pub fn sqs(&self) -> u64 {
        self.service(SQS)
    }

    /// What was counted after `earlier` (a snapshot of the same counter).
    pub fn since(&self, earlier: &Requests) -> Requests {
        let counts = self
            .counts
            .iter()
            .map(|(k, n)| {
                (
                    k.clone(),
                    n - earlier.counts.get(k).copied().unwrap_or(0).min(*n),
                )
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        Requests { counts }
    }

    fn ops(&self, service: &str, ops: &[&str]) -> u64 {
        ops.iter().map(|op| self.of(service, op)).sum()
    }
}

impl std::fmt::Display for Requests {
    /// One `service operation count` line per operation.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for ((service, op), n) in &self.counts {
            writeln!(f, "{service:<9} {op:<22} {n}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_reads_and_sqs_are_told_apart_and_differences_taken() {
        let counter = RequestCounter::new();
        counter.note("DynamoDB", "PutItem");
        let before = counter.snapshot();
        for op in [
            "PutItem",
            "UpdateItem",
            "TransactWriteItems",
            "GetItem",
            "DescribeTable",
        ] {
            counter.note("DynamoDB", op);
        }
        counter.note("SQS", "SendMessageBatch");
        let now = counter.snapshot();
        assert_eq!(now.dynamodb_writes(), 4);
        let delta = now.since(&before);
        assert_eq!(delta.dynamodb_writes(), 3);
        assert_eq!(delta.dynamodb_reads(), 1);
        assert_eq!(delta.service(DYNAMODB), 5, "DescribeTable is neither");
        assert_eq!(delta.sqs(), 1);
        assert_eq!(delta.of(DYNAMODB, "PutItem"), 1);
        assert_eq!(delta.total(), 6);
    }
}
