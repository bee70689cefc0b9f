//! The AWS emulator harness for tests: [`SdkConfig`]s pointing at the
//! emulators `scripts/emulators` started, randomly named tables and queues on
//! them, and a [`Backend`] that runs the contract suites against the AWS adapter.
//!
//! - `FERRY_TEST_AWS_ENDPOINT` (e.g. `http://127.0.0.1:PORT`): moto's server
//!   (DynamoDB and SQS).
//! - `FERRY_TEST_DYNALITE_ENDPOINT`: dynalite, a second DynamoDB whose
//!   conditional writes are atomic by construction ([`AwsBackend::on_dynalite`]).
//! - `FERRY_REQUIRE_AWS=1` (set by `scripts/emulators run`, hence
//!   `scripts/test`): a missing endpoint is a failure, not a skip.
//!
//! Credentials are dummies and the region is us-east-1, whatever the
//! environment says, so a test can never reach a real account.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use tokio::sync::OnceCell;

use super::{Backend, QueueTime, T0};
use crate::clock::{Clock, ManualClock};
use crate::ports::{Claim, Idempotency, Ports};
use crate::store::aws::provision::{self, QueueSpec};
use crate::store::aws::{AwsNames, AwsStore};

/// Where moto's server listens (DynamoDB and SQS).
pub const ENDPOINT_VAR: &str = "FERRY_TEST_AWS_ENDPOINT";
/// Where dynalite listens (DynamoDB only).
pub const DYNALITE_VAR: &str = "FERRY_TEST_DYNALITE_ENDPOINT";
/// Set to `1` to make a missing endpoint fail the test.
pub const REQUIRE_VAR: &str = "FERRY_REQUIRE_AWS";

/// The endpoint in `var` as `env` reports it, or `None` (after a loud
/// message) when it is unset and [`REQUIRE_VAR`] is not `1`. Panics when it
/// is unset but required.
pub fn endpoint(env: &dyn Fn(&str) -> Option<String>, var: &str, test: &str) -> Option<String> {
    if let Some(endpoint) = env(var).filter(|e| !e.trim().is_empty()) {
        return Some(endpoint);
    }
    let required = env(REQUIRE_VAR).is_some_and(|v| v == "1");
    assert!(
        !required,
        "{test}: {REQUIRE_VAR}=1 but {var} is not set: run the AWS tests \
         under `scripts/emulators run -- cargo test …` (scripts/test does)"
    );
    eprintln!(
        "\n*** SKIPPED {test}: {var} is not set, so there is no emulator for it. \
         Run `scripts/emulators run -- cargo test …` (or scripts/test) to run it. ***\n"
    );
    None
}

fn process_env(var: &str) -> Option<String> {
    std::env::var(var).ok()
}

/// moto's SDK config, or `None` as [`endpoint`] says.
pub async fn emulator(test: &str) -> Option<SdkConfig> {
    let moto = endpoint(&process_env, ENDPOINT_VAR, test)?;
    Some(sdk_config(&moto).await)
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

/// Runs the contract suites on the emulators: one table shared by every
/// [`Backend::ports`] call (cases use unique keys), a new queue pair each call.
/// DynamoDB and SQS may be two different emulators ([`AwsBackend::on_dynalite`]).
pub struct AwsBackend {
    /// The DynamoDB emulator's config.
    pub dynamo_config: SdkConfig,
    /// The SQS emulator's config.
    pub sqs_config: SdkConfig,
    /// Shared DynamoDB client.
    pub dynamo: aws_sdk_dynamodb::Client,
    /// Shared SQS client.
    pub sqs: aws_sdk_sqs::Client,
    /// The queues' `maxReceiveCount`.
    pub max_receives: u32,
    table: OnceCell<String>,
}

impl AwsBackend {
    /// DynamoDB and SQS on moto, or `None` as [`endpoint`] says.
    pub async fn new(test: &str, max_receives: u32) -> Option<Arc<Self>> {
        let moto = emulator(test).await?;
        Some(Self::on(moto.clone(), moto, max_receives))
    }

    /// DynamoDB on dynalite, SQS on moto (dynalite has no SQS), or `None` as
    /// [`endpoint`] says for either.
    pub async fn on_dynalite(test: &str, max_receives: u32) -> Option<Arc<Self>> {
        let dynalite = endpoint(&process_env, DYNALITE_VAR, test)?;
        let moto = emulator(test).await?;
        Some(Self::on(sdk_config(&dynalite).await, moto, max_receives))
    }

    fn on(dynamo_config: SdkConfig, sqs_config: SdkConfig, max_receives: u32) -> Arc<Self> {
        Arc::new(Self {
            dynamo: aws_sdk_dynamodb::Client::new(&dynamo_config),
            sqs: aws_sdk_sqs::Client::new(&sqs_config),
            dynamo_config,
            sqs_config,
            max_receives,
            table: OnceCell::new(),
        })
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

    /// A store on a new queue pair with clients (and connection pools) of its
    /// own, as another Lambda instance has.
    pub async fn store_with_own_clients(&self, clock: Arc<dyn Clock>) -> Arc<AwsStore> {
        AwsStore::from_clients(
            aws_sdk_dynamodb::Client::new(&self.dynamo_config),
            aws_sdk_sqs::Client::new(&self.sqs_config),
            self.names().await,
            clock,
        )
    }
}

/// Claims of one key from several stores with their own clients (separate
/// Lambda instances) at once: exactly one wins, the others see its data.
/// Panics otherwise.
pub async fn claims_across_instances(b: &AwsBackend) {
    let key = super::unique("dup-event");
    let mut tasks = Vec::new();
    for instance in 0..3 {
        let store = b.store_with_own_clients(ManualClock::at(T0)).await;
        for i in 0..8 {
            let (store, key) = (store.clone(), key.clone());
            tasks.push(tokio::spawn(async move {
                let data = format!("run-{instance}-{i}");
                store
                    .claim(&key, "h", &data, Duration::from_secs(30))
                    .await
                    .unwrap()
            }));
        }
    }
    let mut winners = 0;
    let mut seen = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Claim::Claimed => winners += 1,
            Claim::InProgress { data, .. } => seen.push(data),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(winners, 1);
    assert_eq!(seen.len(), 23);
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:?}");
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
