//! The generator of `events/`: real-shaped Lambda events, signed where the
//! source's scheme signs, made from the bare shapes `sam local
//! generate-event` prints (`functions/testkit/shapes/`).
//!
//! ```sh
//! cargo run -p ferry-testkit --example events            # rewrite events/
//! cargo run -p ferry-testkit --example events -- --now DIR  # signed now, for invoking by hand
//! ```
//!
//! Every webhook is signed with the secrets in `events/ferry.env` at
//! [`SIGNED_AT_MS`](crate::SIGNED_AT_MS) by the source's own verifier, so the
//! events are exactly what the provider would send.

mod apigw;

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ferry::model::{Event, Job, RunJob};
use ferry::verify::Verifier;
use serde_json::{Value, json};

use crate::fixture::{events_config, events_dir};
use apigw::{Api, hooks};

/// One file of `events/`.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFile {
    /// Path below `events/`, with `/` separators.
    pub path: String,
    /// The event.
    pub json: Value,
}

impl EventFile {
    /// The file's text: pretty JSON and a final newline.
    pub fn text(&self) -> String {
        let mut s = serde_json::to_string_pretty(&self.json).expect("JSON serializes");
        s.push('\n');
        s
    }
}

/// What an ingest event is expected to get, from its file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// `202`, then `200 duplicate` when sent again.
    Accepted,
    /// `401` with this error code.
    Rejected(&'static str),
}

/// The expectation for the ingest event at `path` (below `events/`).
pub fn expectation(path: &str) -> Expect {
    if path.ends_with("-bad-signature.json") {
        Expect::Rejected("invalid_signature")
    } else {
        Expect::Accepted
    }
}

/// Every file of `events/` (but `ferry.yaml` and `ferry.env`), signed at `now_ms`.
pub fn generate(now_ms: i64) -> Vec<EventFile> {
    let loaded = events_config(&[]);
    let mut files = Vec::new();
    for hook in hooks() {
        let source = &loaded.config.sources[hook.source];
        let verifier = Verifier::from_config(&source.verify).expect("events sources verify");
        let signed = hook.signed(&verifier, now_ms);
        for api in [Api::HttpV2, Api::RestV1] {
            if hook.only.is_some_and(|only| only != api) {
                continue;
            }
            files.push(EventFile {
                path: format!("ingest/{}/{}.json", api.dir(), hook.name),
                json: api.event(&hook, &signed, now_ms),
            });
        }
    }
    files.push(sqs_batch(now_ms));
    files.push(EventFile {
        path: "schedule/input.json".into(),
        json: json!({ "sync": "crm-contacts" }),
    });
    files.push(scheduled_event(now_ms));
    files
}

/// Write `files` below `dir`.
pub fn write_all(dir: &Path, files: &[EventFile]) -> std::io::Result<()> {
    for f in files {
        let path = dir.join(&f.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, f.text())?;
    }
    Ok(())
}

/// Every `.json` below `events/`, as paths below it, sorted.
pub fn committed() -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.extension().is_some_and(|e| e == "json") {
                let rel = path.strip_prefix(root).expect("below the root");
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let root = events_dir();
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    out.sort();
    out
}

pub(super) fn shape(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("shapes")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).expect("shapes are JSON")
}

/// `14/Nov/2023:22:13:20 +0000`, API Gateway's request time format.
pub(super) fn clf_time(ms: i64) -> String {
    utc(ms).format("%d/%b/%Y:%H:%M:%S +0000").to_string()
}

/// `2023-11-14T22:13:20Z`.
fn iso_time(ms: i64) -> String {
    utc(ms).format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn utc(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).expect("a representable time")
}

// ------------------------------------------------------------------ SQS

/// The batch: two jobs ingest would enqueue, a body that is not JSON, and a
/// job of a version this build does not know.
fn sqs_batch(now_ms: i64) -> EventFile {
    let lead = Job::Run(RunJob {
        run_id: "018bd0a4-6c00-7000-8000-000000000001".into(),
        workflow: "new-lead".into(),
        source: "website-form".into(),
        event_id: "sub_0001".into(),
        event: Event {
            headers: BTreeMap::from([
                ("content-type".into(), "application/json".into()),
                ("user-agent".into(), "FormsApp-Hookshot/2.1".into()),
            ]),
            query: BTreeMap::new(),
            body: json!({ "submission_id": "sub_0001", "email": "  Ada.Lovelace@Example.COM ",
                          "first_name": "Ada", "last_name": "Lovelace" }),
            received_at: now_ms,
        },
    });
    let push = Job::Run(RunJob {
        run_id: "018bd0a4-6c00-7000-8000-000000000002".into(),
        workflow: "audit-github".into(),
        source: "github".into(),
        event_id: "72d3162e-cc78-11e3-81ab-4c9367dc0958".into(),
        event: Event {
            headers: BTreeMap::from([("x-github-event".into(), "push".into())]),
            query: BTreeMap::new(),
            body: json!({ "ref": "refs/heads/main", "repository": { "full_name": "acme/website" } }),
            received_at: now_ms,
        },
    });
    let bodies = [
        lead.encode(),
        push.encode(),
        "Hello from SQS!".to_owned(),
        r#"{"type":"run.v9","run_id":"018bd0a4-6c00-7000-8000-000000000004"}"#.to_owned(),
    ];
    let template = shape("sqs.json")["Records"][0].clone();
    let records: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            let mut r = template.clone();
            r["messageId"] = json!(format!("9c4b6b1e-5f7a-4d2e-9a0b-00000000000{}", i + 1));
            r["receiptHandle"] = json!(format!(
                "AQEB{}",
                B64.encode(format!("ferry-events-receipt-{}", i + 1))
            ));
            r["body"] = json!(body);
            r["attributes"]["SentTimestamp"] = json!((now_ms - 40).to_string());
            r["attributes"]["ApproximateFirstReceiveTimestamp"] = json!(now_ms.to_string());
            r["eventSourceARN"] = json!("arn:aws:sqs:eu-west-1:123456789012:ferry-work");
            r["awsRegion"] = json!("eu-west-1");
            // The shape's digest is of its own body; nothing reads it.
            r.as_object_mut().expect("an object").remove("md5OfBody");
            r
        })
        .collect();
    EventFile {
        path: "sqs/batch.json".into(),
        json: json!({ "Records": records }),
    }
}

// ------------------------------------------------------------------ schedule

fn scheduled_event(now_ms: i64) -> EventFile {
    let mut ev = shape("scheduled-event.json");
    ev["id"] = json!("53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa");
    ev["time"] = json!(iso_time(now_ms));
    ev["region"] = json!("eu-west-1");
    ev["resources"] = json!(["arn:aws:events:eu-west-1:123456789012:rule/ferry-crm-contacts"]);
    ev["detail"] = json!({ "sync": "crm-contacts" });
    EventFile {
        path: "schedule/scheduled-event.json".into(),
        json: ev,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_time_of_the_signing_moment() {
        assert_eq!(iso_time(crate::SIGNED_AT_MS), "2023-11-14T22:13:20Z");
        assert_eq!(clf_time(crate::SIGNED_AT_MS), "14/Nov/2023:22:13:20 +0000");
        assert_eq!(iso_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_time(951_782_400_000), "2000-02-29T00:00:00Z");
    }
}
