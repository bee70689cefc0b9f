//! Create what the AWS adapter needs, on any endpoint (the emulator in tests,
//! a real account for a smoke test; production uses `template.yaml`, which
//! mirrors this schema):
//!
//! - one DynamoDB table, on-demand: `pk` (S, hash) and `sk` (S, range); GSIs
//!   `by_workflow` (`gsi1pk`, `gsi1sk`), `by_status` (`gsi2pk`, `gsi2sk`),
//!   `by_source` (`gsi3pk`, `gsi3sk`) and `by_event` (`gsi4pk`, `gsi4sk`),
//!   all strings, projecting all attributes; TTL on `expires_at`;
//! - a dead-letter queue (`<name>-dlq` unless named) and a work queue `<name>` whose redrive
//!   policy sends a message there after `max_receives` receives; both keep
//!   messages 14 days.
//!
//! Each function tolerates what already exists (same name): it is safe to run
//! twice. `ferry aws provision` is the command line for it.

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TableStatus, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;

use super::item::{EXPIRES_AT, PK, SK};
use super::runs::{BY_EVENT, BY_SOURCE, BY_STATUS, BY_WORKFLOW};
use super::{AwsNames, error_code, unavailable};
use crate::ports::{StoreError, StoreResult};

/// SQS's longest retention: 14 days.
const RETENTION_SECS: u32 = 14 * 24 * 60 * 60;
/// How long [`create_table`] waits for a new table to become active.
const ACTIVE_WAIT: Duration = Duration::from_secs(120);

/// How the work queue is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSpec {
    /// Receives before SQS moves a message to the dead-letter queue.
    pub max_receives: u32,
    /// The queue's default visibility timeout (the Lambda event source uses
    /// it: keep it above the execute function's timeout).
    pub visibility: Duration,
}

impl Default for QueueSpec {
    /// Five receives, two minutes (the `ferry dev` worker's visibility).
    fn default() -> Self {
        Self {
            max_receives: 5,
            visibility: crate::worker::VISIBILITY,
        }
    }
}

/// Create the table `table` and the queues `queue` and `<queue>-dlq`.
pub async fn provision(
    config: &aws_config::SdkConfig,
    table: &str,
    queue: &str,
    spec: QueueSpec,
) -> StoreResult<AwsNames> {
    provision_with_dlq(config, table, queue, &format!("{queue}-dlq"), spec).await
}

/// Create the table `table`, the dead-letter queue `dlq` and the queue `queue`.
pub async fn provision_with_dlq(
    config: &aws_config::SdkConfig,
    table: &str,
    queue: &str,
    dlq: &str,
    spec: QueueSpec,
) -> StoreResult<AwsNames> {
    create_table(&aws_sdk_dynamodb::Client::new(config), table).await?;
    let (queue_url, dlq_url) =
        create_queue_pair(&aws_sdk_sqs::Client::new(config), queue, dlq, spec).await?;
    Ok(AwsNames {
        table: table.to_owned(),
        queue_url,
        dlq_url,
    })
}

/// Create the table (see the module docs) and wait until it is active.
pub async fn create_table(client: &aws_sdk_dynamodb::Client, table: &str) -> StoreResult<()> {
    let string = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("name and type are set")
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .expect("name and type are set")
    };
    let index = |name: &str, pk: &str, sk: &str| {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key(pk, KeyType::Hash))
            .key_schema(key(sk, KeyType::Range))
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .expect("name, keys and projection are set")
    };
    let created = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(
            [
                PK, SK, "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk", "gsi4pk",
                "gsi4sk",
            ]
            .map(string)
            .to_vec(),
        ))
        .key_schema(key(PK, KeyType::Hash))
        .key_schema(key(SK, KeyType::Range))
        .global_secondary_indexes(index(BY_WORKFLOW, "gsi1pk", "gsi1sk"))
        .global_secondary_indexes(index(BY_STATUS, "gsi2pk", "gsi2sk"))
        .global_secondary_indexes(index(BY_SOURCE, "gsi3pk", "gsi3sk"))
        .global_secondary_indexes(index(BY_EVENT, "gsi4pk", "gsi4sk"))
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(e) if error_code(&e) == Some("ResourceInUseException") => {}
        Err(e) => return Err(unavailable("create table", e)),
    }
    wait_active(client, table).await?;
    let ttl = client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(EXPIRES_AT)
                .enabled(true)
                .build()
                .expect("name and flag are set"),
        )
        .send()
        .await;
    match ttl {
        Ok(_) => Ok(()),
        // Already enabled (DynamoDB refuses to enable it twice).
        Err(e) if error_code(&e) == Some("ValidationException") => Ok(()),
        Err(e) => Err(unavailable("enable TTL", e)),
    }
}

async fn wait_active(client: &aws_sdk_dynamodb::Client, table: &str) -> StoreResult<()> {
    let start = tokio::time::Instant::now();
    loop {
        let described = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| unavailable("describe table", e))?;
        let status = described.table().and_then(|t| t.table_status());
        if status == Some(&TableStatus::Active) {
            return Ok(());
        }
        if start.elapsed() > ACTIVE_WAIT {
            return Err(StoreError::Unavailable(format!(
                "table {table} not active after {ACTIVE_WAIT:?} ({status:?})"
            )));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Create `<name>-dlq` and `<name>` (redriving to it); their URLs.
pub async fn create_queues(
    client: &aws_sdk_sqs::Client,
    name: &str,
    spec: QueueSpec,
) -> StoreResult<(String, String)> {
    create_queue_pair(client, name, &format!("{name}-dlq"), spec).await
}

/// Create `dlq` and `name` (redriving to it); their URLs.
pub async fn create_queue_pair(
    client: &aws_sdk_sqs::Client,
    name: &str,
    dlq: &str,
    spec: QueueSpec,
) -> StoreResult<(String, String)> {
    let retention = RETENTION_SECS.to_string();
    let dlq_url = client
        .create_queue()
        .queue_name(dlq)
        .attributes(QueueAttributeName::MessageRetentionPeriod, &retention)
        .send()
        .await
        .map_err(|e| unavailable("create dead-letter queue", e))?
        .queue_url
        .unwrap_or_default();
    let dlq_arn = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| unavailable("dead-letter queue ARN", e))?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| StoreError::Unavailable("dead-letter queue has no ARN".into()))?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": spec.max_receives.max(1).to_string(),
    })
    .to_string();
    let queue_url = client
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::MessageRetentionPeriod, &retention)
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            spec.visibility.as_secs().to_string(),
        )
        .attributes(QueueAttributeName::RedrivePolicy, redrive)
        .send()
        .await
        .map_err(|e| unavailable("create queue", e))?
        .queue_url
        .unwrap_or_default();
    Ok((queue_url, dlq_url))
}
