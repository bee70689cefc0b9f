//! Helpers for the AWS adapter's tests: stores on the emulator, raw reads of
//! its queues and table, and a recorder of DynamoDB operations.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::query::QueryInput;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::{MessageAttributeValue, QueueAttributeName};
use ferry::clock::ManualClock;
use ferry::contract::aws::AwsBackend;
use ferry::contract::unique;
use ferry::model::{RunRecord, RunStatus};
use ferry::store::aws::AwsStore;

/// `maxReceiveCount` of every queue these tests make.
pub const MAX_RECEIVES: u32 = 3;

/// The emulator backend, or `None` when the test is skipped.
pub async fn backend(test: &str) -> Option<Arc<AwsBackend>> {
    AwsBackend::new(test, MAX_RECEIVES).await
}

pub fn run(workflow: &str, created_at: i64) -> RunRecord {
    RunRecord {
        id: ferry::model::new_run_id(),
        workflow: workflow.into(),
        source: "form".into(),
        event_id: unique("evt"),
        status: RunStatus::Queued,
        attempts: 0,
        created_at,
        updated_at: created_at,
        error: None,
        failure: None,
        steps: Vec::new(),
        event: None,
        expires_at: None,
        rerun_of: None,
        reruns: Vec::new(),
    }
}

pub fn number(v: i64) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("Number")
        .string_value(v.to_string())
        .build()
        .unwrap()
}

pub fn s(item: &std::collections::HashMap<String, AttributeValue>, name: &str) -> String {
    item[name].as_s().unwrap().clone()
}

pub fn num(item: &std::collections::HashMap<String, AttributeValue>, name: &str) -> i64 {
    item[name].as_n().unwrap().parse().unwrap()
}

/// A store on a new queue pair, and the queue's URL.
pub async fn store(b: &AwsBackend, clock: Arc<ManualClock>) -> (Arc<AwsStore>, String) {
    let store = b.store(clock).await;
    let url = store.names().queue_url.clone();
    (store, url)
}

/// One of SQS's approximate counts for `queue_url`.
pub async fn queue_count(b: &AwsBackend, queue_url: &str, name: QueueAttributeName) -> u64 {
    let got = b
        .sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(name.clone())
        .send()
        .await
        .unwrap();
    got.attributes().unwrap()[&name].parse().unwrap()
}

/// An item of the backend's table, read consistently.
pub async fn read_item(
    b: &AwsBackend,
    pk: &str,
    sk: &str,
) -> Option<HashMap<String, AttributeValue>> {
    b.dynamo
        .get_item()
        .table_name(b.table().await)
        .key("pk", AttributeValue::S(pk.into()))
        .key("sk", AttributeValue::S(sk.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
}

/// Records the DynamoDB operations a client makes (`Query <index> …`, or the
/// operation's input type for anything else).
#[derive(Debug, Clone, Default)]
pub struct Recorder(Arc<Mutex<Vec<String>>>);

impl Recorder {
    pub fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "Recorder"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let input = context.input();
        let op = if let Some(q) = input.downcast_ref::<QueryInput>() {
            let mut op = format!(
                "Query {}{}",
                q.index_name().unwrap_or("(table)"),
                if q.scan_index_forward() == Some(false) {
                    " backwards"
                } else {
                    ""
                }
            );
            if let Some(limit) = q.limit() {
                op.push_str(&format!(" limit {limit}"));
            }
            op
        } else {
            format!("{input:?}")
                .split_whitespace()
                .next()
                .unwrap_or("?")
                .to_owned()
        };
        self.0.lock().unwrap().push(op);
        Ok(())
    }
}

/// A store whose DynamoDB client records its operations in `recorder`.
pub async fn store_recording(
    b: &AwsBackend,
    clock: Arc<ManualClock>,
    recorder: &Recorder,
) -> Arc<AwsStore> {
    let config = aws_sdk_dynamodb::config::Builder::from(&b.dynamo_config)
        .interceptor(recorder.clone())
        .build();
    AwsStore::from_clients(
        aws_sdk_dynamodb::Client::from_conf(config),
        b.sqs.clone(),
        b.names().await,
        clock,
    )
}
