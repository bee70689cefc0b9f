//! What the AWS tests of the execute Lambda share.

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use ferry::hub::Hub;
use ferry_execute::{Batch, handle};
use serde_json::{Value, json};

/// An HTTP API (payload v2) event for `POST /hooks/forms` carrying `body`,
/// authenticated by the `forms` source's shared `token`.
pub fn form_webhook(body: String, token: &str) -> lambda_http::Request {
    let event = json!({
        "version": "2.0", "routeKey": "POST /hooks/{source}", "rawPath": "/hooks/forms", "rawQueryString": "",
        "headers": { "content-type": "application/json", "x-webhook-token": token },
        "pathParameters": { "source": "forms" },
        "requestContext": {
            "accountId": "123456789012", "apiId": "api", "domainName": "api.example", "domainPrefix": "api",
            "http": { "method": "POST", "path": "/hooks/forms", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "FormTool" },
            "requestId": "req", "routeKey": "POST /hooks/{source}", "stage": "$default", "time": "14/Nov/2023:22:13:20 +0000", "timeEpoch": 1700000000000u64
        },
        "body": body, "isBase64Encoded": false
    });
    lambda_http::request::from_str(&event.to_string()).expect("an HTTP API v2 event")
}

/// What the SQS event source mapping does: receive up to `max` (at most ten),
/// invoke the function with them, delete what its response does not report
/// as failed (`DeleteMessageBatch`). Returns how many records were handed over.
pub async fn deliver(hub: &Hub, sqs: &aws_sdk_sqs::Client, queue_url: &str, max: i32) -> usize {
    let messages = receive(sqs, queue_url, max).await;
    if messages.is_empty() {
        return 0;
    }
    let response = handle(hub, batch(&messages), None).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    let done: Vec<DeleteMessageBatchRequestEntry> = messages
        .iter()
        .enumerate()
        .filter(|(_, m)| !failed.contains(&m.message_id().unwrap_or_default()))
        .map(|(i, m)| {
            DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .build()
                .unwrap()
        })
        .collect();
    if !done.is_empty() {
        sqs.delete_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(done))
            .send()
            .await
            .expect("delete on the emulator");
    }
    messages.len()
}

/// Receive up to `max` messages (at most ten), with every attribute, as the
/// event source mapping does.
pub async fn receive(sqs: &aws_sdk_sqs::Client, queue_url: &str, max: i32) -> Vec<Message> {
    let out = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(max)
        .wait_time_seconds(1)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await
        .expect("receive from the emulator");
    out.messages.unwrap_or_default()
}

/// The SQS event the event source mapping invokes the function with.
pub fn batch(messages: &[Message]) -> Batch {
    let records: Vec<Value> = messages.iter().map(record).collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

/// The SQS event record for `m`, as the event source mapping builds it.
fn record(m: &Message) -> Value {
    let attributes: serde_json::Map<String, Value> = m
        .attributes()
        .map(|a| {
            a.iter()
                .map(|(k, v)| (k.as_str().to_owned(), json!(v)))
                .collect()
        })
        .unwrap_or_default();
    let message_attributes: serde_json::Map<String, Value> = m
        .message_attributes()
        .map(|a| {
            a.iter()
                .map(|(k, v)| {
                    let v = json!({ "stringValue": v.string_value(), "dataType": v.data_type() });
                    (k.clone(), v)
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "messageId": m.message_id(), "receiptHandle": m.receipt_handle(), "body": m.body(),
        "attributes": attributes, "messageAttributes": message_attributes,
        "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:work", "awsRegion": "us-east-1"
    })
}
