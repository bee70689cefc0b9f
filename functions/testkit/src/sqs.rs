//! What the SQS event source mapping does around the execute handler, on
//! the embedded queue: receive a batch and hand it over as an SQS event,
//! then delete every message the response does not report as failed.

use std::collections::HashMap;
use std::time::Duration;

use ferry::ports::{Message, Ports};
use serde_json::{Value, json};

/// The visibility timeout the stand-in receives with.
pub const VISIBILITY: Duration = Duration::from_secs(60);

/// An SQS event record (the `sam local generate-event sqs receive-message`
/// shape) for `msg`.
pub fn record(msg: &Message) -> Value {
    json!({
        "messageId": msg.id,
        "receiptHandle": msg.receipt,
        "body": msg.body,
        "attributes": {
            "ApproximateReceiveCount": msg.receive_count.to_string(),
            "SentTimestamp": "1700000000000",
            "SenderId": "123456789012",
            "ApproximateFirstReceiveTimestamp": "1700000000000"
        },
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:ferry-work",
        "awsRegion": "eu-west-1"
    })
}

/// Receive up to `max` visible messages, as the event source mapping would,
/// and the SQS event carrying them.
pub async fn receive(ports: &Ports, max: usize) -> (Vec<Message>, Value) {
    let messages = ports
        .queue
        .receive(max, VISIBILITY, Duration::ZERO)
        .await
        .expect("the embedded queue receives");
    let records: Vec<Value> = messages.iter().map(record).collect();
    (messages, json!({ "Records": records }))
}

/// Put an SQS event file's records on the embedded queue and receive them,
/// so each record carries the message id and receipt handle the queue knows,
/// as if SQS had delivered it. Everything else in the file is kept.
pub async fn bind(ports: &Ports, event: &Value) -> Value {
    let records = event["Records"]
        .as_array()
        .expect("an SQS event has Records");
    let mut by_id = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        let body = r["body"].as_str().expect("a record has a body");
        let id = ports
            .queue
            .send(body, Duration::ZERO)
            .await
            .expect("the embedded queue takes it");
        by_id.insert(id, i);
    }
    let received = ports
        .queue
        .receive(records.len(), VISIBILITY, Duration::ZERO)
        .await
        .expect("the embedded queue receives");
    assert_eq!(received.len(), records.len(), "every record is received");
    let mut bound = event.clone();
    for msg in received {
        let r = &mut bound["Records"][by_id[&msg.id]];
        r["messageId"] = json!(msg.id);
        r["receiptHandle"] = json!(msg.receipt);
    }
    bound
}

/// The message ids a partial batch response reports as failed.
pub fn failed_ids(response: &Value) -> Vec<String> {
    response["batchItemFailures"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// After the handler: delete every record of `event` not reported as failed
/// (one already moved to the dead-letter queue is gone: that is fine).
pub async fn complete(ports: &Ports, event: &Value, response: &Value) {
    let failed = failed_ids(response);
    for r in event["Records"].as_array().into_iter().flatten() {
        let id = r["messageId"].as_str().unwrap_or_default();
        if !failed.iter().any(|f| f == id) {
            let _ = ports
                .queue
                .delete(r["receiptHandle"].as_str().unwrap_or_default())
                .await;
        }
    }
}
