//! The AWS emulator harness for tests: an [`SdkConfig`] pointing at the moto
//! server `scripts/moto` started, randomly named tables and queues on it, and
//! a [`Backend`] that runs the contract suites against the AWS adapter.
//!
//! - `FERRY_TEST_AWS_ENDPOINT` (e.g. `http://127.0.0.1:PORT`): the emulator.
//! - `FERRY_REQUIRE_AWS=1` (set by `scripts/moto run`, hence `scripts/test`):
//!   a missing endpoint is a failure, not a skip.
//!
//! Credentials are dummies and the region is us-east-1, whatever the
//! environment says, so a test can never reach a real account.

use std::sync::Arc;

use async_trait::async_trait;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use tokio::sync::OnceCell;

use super::{Backend, QueueTime};
use crate::clock::{Clock, ManualClock};
use crate::ports::Ports;
use crate::store::aws::provision::{self, QueueSpec};
use crate::store::aws::{AwsNames, AwsStore};

/// Where the emulator listens.
pub const ENDPOINT_VAR: &str = "FERRY_TEST_AWS_ENDPOINT";
/// Set to `1` to make a missing endpoint fail the test.
pub const REQUIRE_VAR: &str = "FERRY_REQUIRE_AWS";

/// The emulator's SDK config, or `None` (after a loud message) when no
/// emulator is configured and none is required. Panics when one is required.
pub async fn emulator(test: &str) -> Option<SdkConfig> {
    let endpoint = std::env::var(ENDPOINT_VAR)
        .ok()
        .filter(|e| !e.trim().is_empty());
    let Some(endpoint) = endpoint else {
        let required = std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1");
        assert!(
            !required,
            "{test}: {REQUIRE_VAR}=1 but {ENDPOINT_VAR} is not set: run the AWS tests \
             under `scripts/moto run -- cargo test …` (scripts/test does)"
        );
        eprintln!(
            "\n*** SKIPPED {test}: {ENDPOINT_VAR} is not set, so there is no AWS emulator. \
             Run `scripts/moto run -- cargo test …` (or scripts/test) to run it. ***\n"
        );
        return None;
    };
    Some(sdk_config(&endpoint).await)
}

/// An SDK config for `endpoint` with dummy credentials in us-east-1.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "ferry-tests",
        ))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// A name nobody else uses, valid for tables and queues.
pub fn random_name(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}

/// A new table and queue pair with random names.
pub async fn fresh(config: &SdkConfig, spec: QueueSpec) -> AwsNames {
    provision::provision(
        config,
        &random_name("ferry-test"),
        &random_name("ferry-test"),
        spec,
    )
    .await
    .expect("provisioning on the emulator")
}

/// Runs the contract suites on the emulator: one table shared by every
/// [`Backend::ports`] call (cases use unique keys), a new queue pair each call.
pub struct AwsBackend {
    /// The emulator's config.
    pub config: SdkConfig,
    /// Shared DynamoDB client.
    pub dynamo: aws_sdk_dynamodb::Client,
    /// Shared SQS client.
    pub sqs: aws_sdk_sqs::Client,
    /// The queues' `maxReceiveCount`.
    pub max_receives: u32,
    table: OnceCell<String>,
}

impl AwsBackend {
    /// A backend on the emulator, or `None` as [`emulator`] says.
    pub async fn new(test: &str, max_receives: u32) -> Option<Arc<Self>> {
        let config = emulator(test).await?;
        Some(Arc::new(Self {
            dynamo: aws_sdk_dynamodb::Client::new(&config),
            sqs: aws_sdk_sqs::Client::new(&config),
            config,
            max_receives,
            table: OnceCell::new(),
        }))
    }

    /// The shared table, created on first use.
    pub async fn table(&self) -> String {
        self.table
            .get_or_init(|| async {
                let name = random_name("ferry-test");
                provision::create_table(&self.dynamo, &name)
                    .await
                    .expect("creating a table on the emulator");
                name
            })
            .await
            .clone()
    }

    /// Names for a new queue pair on the shared table.
    pub async fn names(&self) -> AwsNames {
        let spec = QueueSpec {
            max_receives: self.max_receives,
            ..QueueSpec::default()
        };
        let (queue_url, dlq_url) =
            provision::create_queues(&self.sqs, &random_name("ferry-test"), spec)
                .await
                .expect("creating queues on the emulator");
        AwsNames {
            table: self.table().await,
            queue_url,
            dlq_url,
        }
    }

    /// A store on a new queue pair, sharing this backend's clients.
    pub async fn store(&self, clock: Arc<dyn Clock>) -> Arc<AwsStore> {
        AwsStore::from_clients(
            self.dynamo.clone(),
            self.sqs.clone(),
            self.names().await,
            clock,
        )
    }
}

#[async_trait]
impl Backend for AwsBackend {
    async fn ports(&self, clock: Arc<ManualClock>) -> Ports {
        self.store(clock).await.ports()
    }

    fn max_receives(&self) -> u32 {
        self.max_receives
    }

    /// SQS delays and visibility timeouts run on the server's clock.
    fn queue_time(&self) -> QueueTime {
        QueueTime::Real
    }

    /// A standard queue only tries to deliver oldest first.
    fn queue_is_ordered(&self) -> bool {
        false
    }
}
