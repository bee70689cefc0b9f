use super::*;

#[test]
fn credential_headers_are_one_rule() {
    for h in [
        "Authorization",
        "proxy-authorization",
        "cookie",
        "Set-Cookie",
        "x-hub-signature-256",
        "stripe-signature",
        "x-api-key",
        "x-auth-token",
        "x-client-secret",
        "X-API-KEY",
        "COOKIE",
        "X-Hub-Signature",
    ] {
        assert!(is_credential_header(h), "{h}");
    }
    for h in [
        "content-type",
        "user-agent",
        "x-github-event",
        "retry-after",
        "Cookies-Seen",
        "X-Request-Id",
    ] {
        assert!(!is_credential_header(h), "{h}");
    }
}

#[test]
fn caps_keep_valid_json_with_a_marker() {
    let small = serde_json::json!({ "a": 1 });
    assert_eq!(capped(small.clone(), 100), (small.clone(), false));
    let exact = small.to_string().len();
    assert_eq!(capped(small.clone(), exact), (small.clone(), false));
    assert!(capped(small.clone(), exact - 1).1, "one byte over is cut");
    let big = serde_json::json!({ "text": "é".repeat(100) });
    let (v, cut) = capped(big, 51);
    assert!(cut);
    let s = v.as_str().unwrap();
    assert!(s.len() <= 51 && s.starts_with("{\"text\":\"é"), "{s}");
    // The stored form is JSON.
    assert!(serde_json::from_str::<Value>(&v.to_string()).is_ok());
}

/// 100 attempts with full bodies (1.6 MB of detail) and a full payload
/// are held under the item budget; the newest attempts keep their detail.
#[test]
fn a_record_is_held_to_the_item_budget() {
    use crate::model::{Attempt, RunStatus, StepRecord, StepStatus};
    let body = || Value::String("x".repeat(MAX_BODY_BYTES - 2));
    let attempts = (0..100)
        .map(|i| Attempt {
            n: i + 1,
            started_at: i64::from(i),
            request: Some(SentRequest {
                method: "POST".into(),
                url: "https://x.test/".into(),
                headers: BTreeMap::new(),
                body: body(),
                truncated: false,
            }),
            response: Some(GotResponse {
                status: 500,
                headers: BTreeMap::new(),
                body: body(),
                truncated: false,
            }),
            ..Attempt::default()
        })
        .collect();
    let run = RunRecord {
        id: "r".into(),
        workflow: "w".into(),
        source: "s".into(),
        event_id: "e".into(),
        status: RunStatus::Retrying,
        attempts: 100,
        created_at: 0,
        updated_at: 0,
        error: None,
        failure: None,
        steps: vec![StepRecord {
            id: "a".into(),
            status: StepStatus::Retrying,
            attempts,
            last_error: None,
            budget_from: 0,
        }],
        event: Some(ReceivedEvent {
            payload: Value::String("p".repeat(MAX_PAYLOAD_BYTES - 2)),
            ..ReceivedEvent::default()
        }),
        expires_at: None,
        rerun_of: None,
        reruns: Vec::new(),
    };
    let json = encode(&run).unwrap();
    assert!(json.len() <= MAX_RECORD_BYTES, "{}", json.len());
    let back: RunRecord = serde_json::from_str(&json).unwrap();
    let a = &back.steps[0].attempts;
    assert_eq!(a.len(), 100);
    assert!(a[0].request.is_none() && a[99].request.is_some());
    assert_eq!(
        back.event, run.event,
        "the payload stays while attempts can give way"
    );
}

#[test]
fn decisions_read_as_sentences() {
    let r = Decided::Retry {
        in_ms: 2000,
        retry_after_honoured: true,
    };
    assert_eq!(r.to_string(), "retry in 2s (Retry-After)");
    let g = Decided::GaveUp {
        why: "gave up after 3 attempts".into(),
    };
    assert_eq!(g.to_string(), "gave up: gave up after 3 attempts");
}
