//! End to end: what a run record shows on the embedded store — the event as
//! received, each attempt's request, response and retry decision — and that
//! no secret reaches the store or the CLI's output. The real `ferry dev`
//! binary, real HTTP on 127.0.0.1.

mod support;

use serde_json::json;
use support::{Answer, Hub, Target};

const FORM_SECRET: &str = "form-secret-for-run-record-tests";
const CRM_TOKEN: &str = "crm-bearer-token-4f1c9a77e2";
/// Sent by the webhook's sender in credential headers; not a config secret,
/// but a credential header is never stored.
const SENDER_KEY: &str = "sender-api-key-9d8e7f6a5b";

/// An event with a payload and a step answered 500, 503 (`Retry-After: 1`),
/// then 200, on a bearer-token connection whose target echoes the
/// `Authorization` header it got: `runs show --json` has the payload, three
/// requests and responses, and the two `retry` decisions (the second one the
/// server's `Retry-After`); neither the store's files nor any CLI output hold
/// the token, the source's secret or the sender's key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_record_shows_the_event_and_every_attempt_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let echo = |status: u16, auth: &str| {
        Answer::status(
            status,
            json!({ "seen_authorization": auth, "status": status }),
        )
    };
    target.behave("/crm", move |seen| {
        let auth = seen.header("authorization").to_owned();
        let n = seen.n;
        Some(match n {
            1 => echo(500, &auth),
            2 => echo(503, &auth).header("retry-after", "1"),
            _ => echo(200, &auth),
        })
    });
    let config = r#"version: 1
retention: 7d
connections:
  crm:
    base_url: "${env:TARGET}/crm"
    auth: { type: bearer, token: "${env:CRM_TOKEN}" }
    headers: { x-tenant: acme }
sources:
  form:
    verify: { scheme: hmac-sha256, header: X-Signature, secret: "${env:FORM_SECRET}" }
    event_id: "{{ body.id }}"
workflows:
  new-lead:
    trigger: { source: form }
    retry: { max_attempts: 5, initial_backoff: 20ms, max_backoff: 50ms }
    steps:
      - id: upsert
        connection: crm
        request:
          method: POST
          path: /contacts
          query: { source: form }
          json: { email: "{{ body.lead.email }}", name: "{{ body.lead.name }}" }
"#;
    let url = target.url();
    let mut hub = Hub::start(
        dir.path(),
        config,
        &[
            ("TARGET", &url),
            ("CRM_TOKEN", CRM_TOKEN),
            ("FORM_SECRET", FORM_SECRET),
        ],
    );
    let payload = json!({
        "id": "lead-1",
        "lead": { "email": "ada@example.com", "name": "Ada", "tags": ["vip", "eu"] },
    });
    let raw = serde_json::to_vec(&payload).unwrap();
    let sig = support::hmac_hex(FORM_SECRET, &raw);
    let (status, reply) = hub
        .post(
            "form",
            &raw,
            &[
                ("content-type", "application/json"),
                ("x-signature", &sig),
                ("x-api-key", SENDER_KEY),
                ("authorization", &format!("Bearer {SENDER_KEY}")),
                ("x-request-origin", "landing-page"),
            ],
        )
        .await;
    assert_eq!(status, 202, "{reply}");
    let id = reply["run_id"].as_str().unwrap().to_owned();
    let run = hub.finished(&id).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");

    // Kept 7 days (`retention`) from its last change.
    let week = 7 * 24 * 3600 * 1000;
    assert_eq!(
        run["expires_at"].as_i64().unwrap(),
        run["updated_at"].as_i64().unwrap() + week
    );

    // The event as received.
    let event = &run["event"];
    assert_eq!(event["payload"], payload);
    assert!(event.get("truncated").is_none());
    assert_eq!(event["headers"]["x-request-origin"], "landing-page");
    assert_eq!(event["headers"]["content-type"], "application/json");
    for hidden in ["x-signature", "x-api-key", "authorization"] {
        assert!(event["headers"].get(hidden).is_none(), "{hidden} is shown");
    }
    assert_eq!(run["source"], "form");
    assert_eq!(run["event_id"], "lead-1");
    assert!(event["received_at"].as_i64().unwrap() > 0);

    // Three attempts: each request and response, each decision.
    let attempts = run["steps"][0]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3, "{run:#}");
    for (a, status) in attempts.iter().zip([500, 503, 200]) {
        let req = &a["request"];
        assert_eq!(req["method"], "POST");
        assert_eq!(req["url"], format!("{url}/crm/contacts?source=form"));
        assert_eq!(req["headers"]["x-tenant"], "acme");
        assert_eq!(
            req["body"],
            json!({ "email": "ada@example.com", "name": "Ada" })
        );
        let resp = &a["response"];
        assert_eq!(resp["status"], status);
        assert_eq!(a["status_code"], status);
        // The target echoed the bearer token: the record shows it redacted.
        assert_eq!(resp["body"]["seen_authorization"], "[redacted]", "{resp}");
    }
    assert_eq!(attempts[0]["decision"]["action"], "retry");
    assert_eq!(attempts[0]["decision"]["retry_after_honoured"], false);
    assert!(attempts[0]["decision"]["in_ms"].as_u64().unwrap() <= 20);
    assert_eq!(attempts[1]["decision"]["action"], "retry");
    assert_eq!(attempts[1]["decision"]["retry_after_honoured"], true);
    assert_eq!(attempts[1]["decision"]["in_ms"], 1000);
    assert_eq!(attempts[1]["response"]["headers"]["retry-after"], "1");
    assert_eq!(attempts[2]["decision"]["action"], "done");

    // Every output of the CLI about this run, human and JSON.
    let mut output = String::new();
    for args in [
        vec!["runs", "show", &id],
        vec!["runs", "show", &id, "--json"],
        vec!["runs", "list"],
        vec!["runs", "list", "--json"],
    ] {
        let data = hub.data.to_str().unwrap();
        let (code, out, err) = support::ferry(&[args.as_slice(), &["--data", data]].concat());
        assert_eq!(code, 0, "{args:?}: {err}");
        output.push_str(&out);
        output.push_str(&err);
    }
    assert!(output.contains("retry in 1s (Retry-After)"), "{output}");
    assert!(output.contains("ada@example.com"), "{output}");

    // Stop the hub, then read every column of every row of every table.
    hub.terminate();
    let store = support::dump_store(&hub.data);
    assert!(
        store.contains("ada@example.com"),
        "the grep reads the store"
    );
    for secret in [CRM_TOKEN, FORM_SECRET, SENDER_KEY, &sig] {
        assert!(!store.contains(secret), "the store holds {secret}");
        assert!(!output.contains(secret), "the CLI printed {secret}");
    }
}
