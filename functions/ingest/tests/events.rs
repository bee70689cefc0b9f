//! Every ingest event in `events/` through the handler, on the embedded
//! store with the clock at the moment the events were signed.

use ferry::model::Job;
use ferry_ingest::handle;
use ferry_testkit::events::{Expect, committed, expectation};
use ferry_testkit::{Fixture, events_dir};
use lambda_http::Body;
use serde_json::{Value, json};
use std::time::Duration;

fn read(path: &str) -> String {
    std::fs::read_to_string(events_dir().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

async fn send(fx: &Fixture, event: &str) -> (u16, Value) {
    let req = lambda_http::request::from_str(event).expect("an API Gateway event");
    let resp = handle(&fx.hub, req).await.expect("the handler answers");
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body = match resp.body() {
        Body::Text(t) => serde_json::from_str(t).expect("a JSON answer"),
        other => panic!("a text body, not {other:?}"),
    };
    (resp.status().as_u16(), body)
}

async fn queued(fx: &Fixture) -> Vec<Job> {
    let msgs = fx
        .ports()
        .queue
        .receive(10, Duration::from_secs(30), Duration::ZERO)
        .await
        .unwrap();
    msgs.iter()
        .map(|m| serde_json::from_str(&m.body).expect("a job"))
        .collect()
}

/// What went wrong with one file, if anything.
async fn check(path: &str) -> Result<(), String> {
    let text = read(path);
    let event: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let source = event["pathParameters"]["source"]
        .as_str()
        .unwrap_or_default();
    let fx = Fixture::with_env(&[]);
    let (status, reply) = send(&fx, &text).await;
    match expectation(path) {
        Expect::Accepted => {
            if status != 202 {
                return Err(format!("expected 202, got {status} {reply}"));
            }
            let jobs = queued(&fx).await;
            let [Job::Run(job)] = jobs.as_slice() else {
                return Err(format!("expected one job in the queue, got {jobs:?}"));
            };
            if job.source != source
                || json!(job.run_id) != reply["run_id"]
                || json!(job.event_id) != reply["event_id"]
            {
                return Err(format!("the queued job {job:?} does not match {reply}"));
            }
            let (again, dup) = send(&fx, &text).await;
            if again != 200 || dup["status"] != "duplicate" || dup["run_id"] != reply["run_id"] {
                return Err(format!(
                    "sent again: expected 200 duplicate, got {again} {dup}"
                ));
            }
            if !queued(&fx).await.is_empty() {
                return Err("the duplicate was queued".into());
            }
        }
        Expect::Rejected(code) => {
            if status != 401 || reply["error"] != code {
                return Err(format!("expected 401 {code}, got {status} {reply}"));
            }
            if !queued(&fx).await.is_empty() {
                return Err("a rejected event was queued".into());
            }
        }
    }
    Ok(())
}

#[tokio::test]
async fn every_ingest_event_gets_its_answer_and_its_job_lands_in_the_queue() {
    let files: Vec<String> = committed()
        .into_iter()
        .filter(|p| p.starts_with("ingest/"))
        .collect();
    // Every scheme through both APIs, and the variants.
    assert!(files.len() >= 20, "{files:?}");
    let mut failures = Vec::new();
    for path in &files {
        if let Err(e) = check(path).await {
            failures.push(format!("events/{path}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn base64_bodies_are_decoded_and_verified_as_the_exact_bytes() {
    for path in [
        "ingest/http-v2/slack-form-base64.json",
        "ingest/rest-v1/github-base64.json",
    ] {
        let event: Value = serde_json::from_str(&read(path)).unwrap();
        assert_eq!(event["isBase64Encoded"], true, "{path}");
        let encoded = event["body"].as_str().unwrap();
        let raw = base64_decode(encoded);

        // Encoded, as API Gateway sends a binary media type: accepted.
        let fx = Fixture::with_env(&[]);
        assert_eq!(send(&fx, &event.to_string()).await.0, 202, "{path}");

        // The same bytes as text: the same signature holds.
        let mut plain = event.clone();
        plain["isBase64Encoded"] = json!(false);
        plain["body"] = json!(String::from_utf8(raw.clone()).unwrap());
        let fx = Fixture::with_env(&[]);
        assert_eq!(send(&fx, &plain.to_string()).await.0, 202, "{path} as text");

        // The encoded text itself is not what was signed: had the handler
        // verified it undecoded, this is what it would have seen.
        let mut undecoded = event.clone();
        undecoded["isBase64Encoded"] = json!(false);
        let fx = Fixture::with_env(&[]);
        let (status, reply) = send(&fx, &undecoded.to_string()).await;
        assert_eq!(
            (status, reply["error"].as_str()),
            (401, Some("invalid_signature")),
            "{path}"
        );

        // One byte changed inside the encoding: rejected.
        let mut changed = raw;
        changed[0] ^= 0x01;
        let mut tampered = event.clone();
        tampered["body"] = json!(base64_encode(&changed));
        let fx = Fixture::with_env(&[]);
        assert_eq!(
            send(&fx, &tampered.to_string()).await.0,
            401,
            "{path} tampered"
        );
    }
}

#[tokio::test]
async fn error_answers_are_the_same_as_ferry_dev() {
    let base: Value = serde_json::from_str(&read("ingest/http-v2/none.json")).unwrap();
    let cases = [
        (
            "unknown source",
            json!({ "pathParameters": { "source": "nope" }, "rawPath": "/hooks/nope" }),
            404,
            "unknown_source",
        ),
        (
            "GET",
            json!({ "requestContext": { "http": { "method": "GET" } } }),
            405,
            "method_not_allowed",
        ),
        (
            "malformed JSON",
            json!({ "body": "{\"entry_id\": " }),
            400,
            "malformed_body",
        ),
    ];
    for (what, patch, status, code) in cases {
        let mut event = base.clone();
        merge(&mut event, &patch);
        let fx = Fixture::with_env(&[]);
        let (got, reply) = send(&fx, &event.to_string()).await;
        assert_eq!(
            (got, reply["error"].as_str()),
            (status, Some(code)),
            "{what}: {reply}"
        );
        assert!(
            reply["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}"
        );
        assert!(queued(&fx).await.is_empty(), "{what}: nothing is queued");
    }
}

#[tokio::test]
async fn a_route_without_a_path_parameter_takes_the_source_from_the_path() {
    let mut event: Value = serde_json::from_str(&read("ingest/http-v2/hmac-sha256.json")).unwrap();
    event.as_object_mut().unwrap().remove("pathParameters");
    event["routeKey"] = json!("$default");
    let fx = Fixture::with_env(&[]);
    let (status, reply) = send(&fx, &event.to_string()).await;
    assert_eq!(status, 202, "{reply}");
    assert_eq!(reply["event_id"], "sub_0001");
}

#[tokio::test]
async fn a_route_without_a_path_parameter_answers_other_paths_with_a_json_404() {
    let base: Value = serde_json::from_str(&read("ingest/http-v2/hmac-sha256.json")).unwrap();
    for path in [
        "/admin/website-form",
        "/hooks/",
        "/hooks/a/website-form",
        "/",
    ] {
        let mut event = base.clone();
        event.as_object_mut().unwrap().remove("pathParameters");
        event["routeKey"] = json!("$default");
        event["rawPath"] = json!(path);
        event["requestContext"]["http"]["path"] = json!(path);
        let fx = Fixture::with_env(&[]);
        let (status, reply) = send(&fx, &event.to_string()).await;
        assert_eq!(
            (status, reply["error"].as_str()),
            (404, Some("not_found")),
            "{path}: {reply}"
        );
        assert!(queued(&fx).await.is_empty(), "{path}: nothing is queued");
    }
}

fn merge(into: &mut Value, patch: &Value) {
    match (into, patch) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v.clone(),
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}
