//! End to end: the real `ferry dev` process, real HTTP on 127.0.0.1, a target
//! server standing in for the CRM and the chat tool.

mod support;

use serde_json::{Value, json};
use support::{Answer, Hub, Target};

/// The config from the walking-hub issue, exactly as written.
const CONFIG: &str = include_str!("../examples/minimal.yaml");
const SECRET: &str = "form-secret-for-tests";

fn start(dir: &std::path::Path, target: &Target) -> Hub {
    start_with(dir, target, &[])
}

fn start_with(dir: &std::path::Path, target: &Target, extra: &[&str]) -> Hub {
    let crm = format!("{}/crm", target.url());
    let chat = format!("{}/chat", target.url());
    Hub::start_with(
        dir,
        CONFIG,
        &[
            ("CRM_URL", &crm),
            ("CRM_TOKEN", "crm-token-for-tests"),
            ("CHAT_URL", &chat),
            ("FORM_SECRET", SECRET),
        ],
        extra,
    )
}

fn lead(id: &str) -> Value {
    json!({ "submission_id": id, "email": "  Ada.Lovelace@Example.COM ", "first_name": "Ada", "last_name": "Lovelace" })
}

fn run_id(reply: &Value) -> String {
    reply["run_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no run_id in {reply}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signed_event_runs_both_steps_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let hub = start(dir.path(), &target);

    let (status, reply) = hub
        .post_signed("website-form", SECRET, &lead("sub-1"))
        .await;
    assert_eq!(status, 202, "{reply}");
    let run = hub.finished(&run_id(&reply)).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["workflow"], "new-lead");
    assert_eq!(run["source"], "website-form");
    assert_eq!(run["event_id"], "sub-1");
    let steps = run["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(
        (steps[0]["id"].as_str(), steps[0]["status"].as_str()),
        (Some("contact"), Some("succeeded"))
    );
    assert_eq!(
        (steps[1]["id"].as_str(), steps[1]["status"].as_str()),
        (Some("notify"), Some("succeeded"))
    );

    let seen = target.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("POST", "/crm/contacts")
    );
    assert_eq!(
        seen[0].body,
        json!({ "email": "ada.lovelace@example.com", "name": "Ada Lovelace" })
    );
    assert_eq!(
        seen[0].headers["authorization"],
        "Bearer crm-token-for-tests"
    );
    assert_eq!(seen[1].path, "/chat/messages");
    // The target answered the contact with {"id": "crm/contacts-1"}; the chat step used it.
    assert_eq!(
        seen[1].body,
        json!({ "text": "New lead   Ada.Lovelace@Example.COM  is contact crm/contacts-1" })
    );
    assert!(!seen[1].headers.contains_key("authorization"));
    // Each call carries an idempotency key tied to (run, step).
    assert_eq!(
        seen[0].headers["idempotency-key"],
        format!("{}:contact", run["id"].as_str().unwrap())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_event_three_times_makes_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let hub = start(dir.path(), &target);

    // Sequentially…
    let (s1, r1) = hub
        .post_signed("website-form", SECRET, &lead("dup-seq"))
        .await;
    let (s2, r2) = hub
        .post_signed("website-form", SECRET, &lead("dup-seq"))
        .await;
    let (s3, r3) = hub
        .post_signed("website-form", SECRET, &lead("dup-seq"))
        .await;
    assert_eq!((s1, s2, s3), (202, 200, 200));
    assert_eq!(run_id(&r1), run_id(&r2));
    assert_eq!(run_id(&r1), run_id(&r3));
    assert_eq!(r2["status"], "duplicate");

    // …and at the same moment.
    let body = lead("dup-concurrent");
    let (a, b, c) = tokio::join!(
        hub.post_signed("website-form", SECRET, &body),
        hub.post_signed("website-form", SECRET, &body),
        hub.post_signed("website-form", SECRET, &body)
    );
    let mut statuses = vec![a.0, b.0, c.0];
    statuses.sort();
    assert_eq!(statuses, vec![200, 200, 202]);
    assert_eq!(run_id(&a.1), run_id(&b.1));
    assert_eq!(run_id(&a.1), run_id(&c.1));

    hub.finished(&run_id(&r1)).await;
    hub.finished(&run_id(&a.1)).await;
    let runs = hub.runs();
    assert_eq!(runs.len(), 2, "one run per distinct event: {runs:?}");
    assert_eq!(
        target.seen_at("/crm/contacts").len(),
        2,
        "one contact per distinct event"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_requests_get_precise_answers_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let hub = start(dir.path(), &target);
    let raw = serde_json::to_vec(&lead("bad-1")).unwrap();

    let wrong = support::hmac_hex("not-the-secret", &raw);
    let (status, reply) = hub
        .post(
            "website-form",
            &raw,
            &[
                ("content-type", "application/json"),
                ("x-signature", &wrong),
            ],
        )
        .await;
    assert_eq!(status, 401, "{reply}");
    assert_eq!(reply["error"], "invalid_signature");
    assert!(
        !reply.to_string().contains(&support::hmac_hex(SECRET, &raw)),
        "never echo the expected signature"
    );

    let (status, reply) = hub
        .post(
            "website-form",
            &raw,
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(status, 401, "{reply}");
    assert_eq!(reply["error"], "missing_signature");

    let broken = b"{\"submission_id\": \"bad-2\", ";
    let sig = support::hmac_hex(SECRET, broken);
    let (status, reply) = hub
        .post(
            "website-form",
            broken,
            &[("content-type", "application/json"), ("x-signature", &sig)],
        )
        .await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["error"], "malformed_body");

    let (status, reply) = hub
        .post(
            "no-such-source",
            &raw,
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(status, 404, "{reply}");
    assert_eq!(reply["error"], "unknown_source");

    let resp = hub
        .http
        .get(hub.url("/hooks/website-form"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);

    assert!(hub.runs().is_empty(), "no run for any rejected request");
    assert!(target.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_step_is_retried_without_repeating_the_one_before() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    target.script(
        "/chat/messages",
        vec![
            Answer::status(500, json!({"error": "down"})),
            Answer::status(500, json!({"error": "still down"})),
        ],
    );
    let hub = start(dir.path(), &target);

    let (status, reply) = hub
        .post_signed("website-form", SECRET, &lead("retry-1"))
        .await;
    assert_eq!(status, 202);
    let run = hub.finished(&run_id(&reply)).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let notify = &run["steps"][1];
    let attempts = notify["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3, "{notify}");
    assert_eq!(
        attempts
            .iter()
            .map(|a| a["status_code"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![500, 500, 200]
    );
    assert!(attempts[0]["error"].as_str().unwrap().contains("HTTP 500"));
    assert_eq!(run["steps"][0]["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(
        target.seen_at("/crm/contacts").len(),
        1,
        "the contact step is not repeated"
    );
    let keys: Vec<String> = target
        .seen_at("/chat/messages")
        .iter()
        .map(|s| s.headers["idempotency-key"].clone())
        .collect();
    assert_eq!(keys.len(), 3);
    assert!(
        keys.iter().all(|k| *k == keys[0]),
        "one Idempotency-Key across attempts: {keys:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_error_dead_letters_at_once_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    target.script(
        "/crm/contacts",
        vec![Answer::status(400, json!({"error": "email is invalid"}))],
    );
    let hub = start(dir.path(), &target);

    let (_, reply) = hub
        .post_signed("website-form", SECRET, &lead("bad-email"))
        .await;
    let run = hub.finished(&run_id(&reply)).await;
    assert_eq!(run["status"], "dead_lettered", "{run}");
    let error = run["error"].as_str().unwrap();
    assert!(error.contains("HTTP 400"), "{error}");
    assert!(error.contains("email is invalid"), "{error}");
    assert_eq!(run["steps"][0]["status"], "failed");
    assert_eq!(
        run["steps"][0]["attempts"].as_array().unwrap().len(),
        1,
        "no retries"
    );
    assert_eq!(target.seen().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_missing_field_dead_letters_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let hub = start(dir.path(), &target);
    let (_, reply) = hub
        .post_signed(
            "website-form",
            SECRET,
            &json!({ "submission_id": "nofirst", "email": "a@b.c", "last_name": "X" }),
        )
        .await;
    let run = hub.finished(&run_id(&reply)).await;
    assert_eq!(run["status"], "dead_lettered", "{run}");
    assert!(
        run["error"].as_str().unwrap().contains("body.first_name"),
        "{run}"
    );
    assert!(
        target.seen().is_empty(),
        "nothing half-mapped reached the CRM"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn when_false_skips_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let hub = start(dir.path(), &target);
    let (_, reply) = hub
        .post_signed(
            "website-form",
            SECRET,
            &json!({ "submission_id": "no-email" }),
        )
        .await;
    let run = hub.finished(&run_id(&reply)).await;
    assert_eq!(run["status"], "skipped");
    assert!(target.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queued_work_survives_a_kill_and_completes_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    // Accept only: no workers, so the work stays queued in the store.
    let mut hub = start_with(dir.path(), &target, &["--workers", "0"]);
    let mut ids = Vec::new();
    for i in 0..5 {
        let (status, reply) = hub
            .post_signed("website-form", SECRET, &lead(&format!("restart-{i}")))
            .await;
        assert_eq!(status, 202);
        ids.push(run_id(&reply));
    }
    assert!(hub.runs().iter().all(|r| r["status"] == "queued"));
    hub.child.kill().unwrap(); // SIGKILL: no chance to flush anything
    hub.restart(&[]);
    for id in &ids {
        assert_eq!(hub.finished(id).await["status"], "succeeded");
    }
    assert_eq!(target.seen_at("/crm/contacts").len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ctrl_c_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let mut hub = start(dir.path(), &target);
    let (_, reply) = hub
        .post_signed("website-form", SECRET, &lead("stop-1"))
        .await;
    hub.finished(&run_id(&reply)).await;
    let status = hub.terminate();
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sandbox_records_and_fails_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let hub = start_with(dir.path(), &target, &["--sandbox"]);
    let client = &hub.http;
    let ok = client
        .post(hub.url("/_sandbox/crm/contacts"))
        .json(&json!({"email": "a@b.c"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    assert_eq!(ok.json::<Value>().await.unwrap()["id"], "crm_1");
    client
        .post(hub.url("/_sandbox/crm/_fail"))
        .json(&json!({"status": 429, "times": 1, "retry_after": 3}))
        .send()
        .await
        .unwrap();
    let limited = client
        .post(hub.url("/_sandbox/crm/contacts"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status().as_u16(), 429);
    assert_eq!(limited.headers()["retry-after"], "3");
    let again = client
        .post(hub.url("/_sandbox/crm/contacts"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 200);
    let seen: Value = client
        .get(hub.url("/_sandbox/crm/_requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(seen.as_array().unwrap().len(), 3);
    assert_eq!(seen[0]["body"], json!({"email": "a@b.c"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_letter_is_listed_with_its_reason_and_replays_from_the_failed_step() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    target.script(
        "/chat/messages",
        vec![Answer::status(422, json!({"error": "channel is archived"}))],
    );
    let hub = start(dir.path(), &target);
    let (_, reply) = hub
        .post_signed("website-form", SECRET, &lead("dlq-1"))
        .await;
    let id = run_id(&reply);
    assert_eq!(hub.finished(&id).await["status"], "dead_lettered");

    let (code, out, err) = hub.ferry(&["dlq", "list", "--json"]);
    assert_eq!(code, 0, "{err}");
    let letters: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(letters.as_array().unwrap().len(), 1, "{letters}");
    assert_eq!(letters[0]["run_id"], id.as_str());
    assert!(
        letters[0]["reason"]
            .as_str()
            .unwrap()
            .contains("channel is archived"),
        "{letters}"
    );

    // A dry run names it and changes nothing.
    let (code, out, err) = hub.ferry(&["dlq", "replay", "--all", "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("would replay 1 dead letters\n"), "{out}");
    assert!(out.contains(letters[0]["id"].as_str().unwrap()), "{out}");
    assert_eq!(target.seen_at("/chat/messages").len(), 1);

    // The cause is fixed (the target answers 200 again): replay.
    let (code, out, err) = hub.ferry(&["dlq", "replay", letters[0]["id"].as_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("1 replayed, 0 already replayed, 0 failed"),
        "{out}"
    );
    let run = hub.finished(&id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(
        target.seen_at("/crm/contacts").len(),
        1,
        "the contact step is not called again"
    );
    assert_eq!(target.seen_at("/chat/messages").len(), 2);
    let (_, out, _) = hub.ferry(&["dlq", "list", "--json"]);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), json!([]));
    let (code, out, err) = hub.ferry(&["dlq", "replay", "--all"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("0 replayed"), "{out}");
    // Its dead letter is gone; the record keeps the event, so it can be re-run:
    // a new run, every step called again, linked both ways.
    let (code, out, err) = hub.ferry(&["runs", "rerun", &id]);
    assert_eq!(code, 0, "{out}{err}");
    let new_id = out.split_whitespace().nth(1).unwrap().to_owned();
    let rerun = hub.finished(&new_id).await;
    assert_eq!(rerun["status"], "succeeded", "{rerun}");
    assert_eq!(rerun["rerun_of"], id.as_str(), "{rerun}");
    assert_eq!(hub.run(&id)["reruns"], json!([new_id]));
    assert_eq!(target.seen_at("/crm/contacts").len(), 2);
}
