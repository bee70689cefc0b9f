//! Alerts end to end, in-process on the embedded store with a manual clock:
//! real ingest and execute against the testkit's target, the evaluator run
//! once per (virtual) minute, and a sender that records what it is handed.

mod alerts_support;
mod replay_support;

use alerts_support::{MINUTE, Recorder, config, minutes};
use ferry::alerts::Senders;
use ferry::alerts::{self, State};
use ferry::clock::Clock;
use ferry::clock::ManualClock;
use ferry::config::Condition;
use ferry_testkit::alert_receivers::WebhookReceiver;
use replay_support::{Bench, T0};

const ALERT_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
use serde_json::json;

async fn evaluate(b: &Bench, r: &Recorder) -> alerts::Report {
    alerts::evaluate(&b.hub, r).await.unwrap()
}

/// Execute everything due now (failing runs fail at once: no retries wait).
async fn run_all(b: &Bench) {
    while b.step().await > 0 {}
}

/// A bench whose alerts go by the real webhook channel, signed, to a
/// receiver that verifies every message (on the bench's clock).
async fn signed(yaml: &str) -> (Bench, WebhookReceiver, Senders) {
    let clock = ManualClock::at(T0);
    let rx = WebhookReceiver::start(ALERT_SECRET, clock.clone()).await;
    let b = Bench::start_on(
        &yaml.replace("http://127.0.0.1:9/in", rx.url()),
        clock.clone(),
    )
    .await;
    (b, rx, Senders::with_clock(clock))
}

/// The `condition` notices a receiver verified, as JSON.
fn verified(rx: &WebhookReceiver, condition: &str) -> Vec<serde_json::Value> {
    rx.verified()
        .into_iter()
        .map(|(_, body)| body)
        .filter(|b| b["condition"] == condition)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_failures_in_five_minutes_make_at_most_three_messages() {
    let (b, rx, senders) = signed(&config("")).await;
    b.target
        .respond("/crm/contacts", 422, json!({"error": "invalid"}));
    for minute in 0..5 {
        for i in 0..200 {
            b.send_json(
                "form",
                json!({"id": format!("{minute}-{i}"), "email": "a@b.c"}),
            )
            .await;
        }
        run_all(&b).await;
        b.clock.advance(MINUTE);
        alerts::evaluate(&b.hub, &senders).await.unwrap();
    }
    minutes(&b.hub, &b.clock, &senders, 12).await;
    let sent = verified(&rx, "run_failed");
    assert!(
        (2..=3).contains(&sent.len()),
        "{} messages: {sent:#?}",
        sent.len()
    );
    assert_eq!(rx.unverified(), 0, "every message verifies");
    assert_eq!(sent[0]["state"], "firing");
    assert_eq!(sent.last().unwrap()["state"], "resolved");
    let total: u64 = sent.iter().map(|n| n["count"].as_u64().unwrap()).sum();
    assert_eq!(total, 1000, "every failure counted once: {sent:#?}");
    assert_eq!(sent[0]["subject"], "lead");
    assert_eq!(sent[0]["facts"]["failure"], "rejected");
    let commands = sent[0]["commands"].as_array().unwrap();
    assert!(
        commands
            .iter()
            .any(|c| c.as_str().unwrap().starts_with("ferry runs show ")),
        "{commands:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_source_alerts_once_and_resolves_on_the_next_event() {
    let b = Bench::start(&config("max_silence: 2h")).await;
    b.target.respond("/crm/contacts", 200, json!({"id": 1}));
    let r = Recorder::default();
    evaluate(&b, &r).await;
    minutes(&b.hub, &b.clock, &r, 2 * 60 - 1).await;
    assert!(r.of(Condition::Silent).is_empty(), "not silent for 2 h yet");
    minutes(&b.hub, &b.clock, &r, 30).await;
    let sent = r.of(Condition::Silent);
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(
        (sent[0].state, sent[0].subject.as_str()),
        (State::Firing, "form")
    );
    b.send_json("form", json!({"id": "late", "email": "a@b.c"}))
        .await;
    minutes(&b.hub, &b.clock, &r, 3).await;
    let sent = r.of(Condition::Silent);
    assert_eq!(sent.len(), 2, "{sent:#?}");
    assert_eq!(sent[1].state, State::Resolved);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_field_makes_one_drift_alert_and_an_added_one_none() {
    let b = Bench::start(&config("")).await;
    b.target.respond("/crm/contacts", 200, json!({"id": 1}));
    let r = Recorder::default();
    for i in 0..5 {
        b.send_json("form", json!({"id": format!("ok-{i}"), "email": "a@b.c"}))
            .await;
    }
    // An added field alone: nothing to say.
    for i in 0..4 {
        b.send_json(
            "form",
            json!({"id": format!("more-{i}"), "email": "a@b.c", "phone": "1"}),
        )
        .await;
    }
    run_all(&b).await;
    minutes(&b.hub, &b.clock, &r, 1).await;
    assert!(
        r.of(Condition::Drift).is_empty(),
        "{:#?}",
        r.of(Condition::Drift)
    );
    // `email` renamed to `email_address`: two events are not enough…
    for i in 0..2 {
        b.send_json(
            "form",
            json!({"id": format!("renamed-{i}"), "email_address": "a@b.c"}),
        )
        .await;
    }
    minutes(&b.hub, &b.clock, &r, 1).await;
    assert!(r.of(Condition::Drift).is_empty());
    // …the third is.
    b.send_json("form", json!({"id": "renamed-2", "email_address": "a@b.c"}))
        .await;
    minutes(&b.hub, &b.clock, &r, 3).await;
    let sent = r.of(Condition::Drift);
    assert_eq!(sent.len(), 1, "{sent:#?}");
    let n = &sent[0];
    assert_eq!((n.state, n.subject.as_str()), (State::Firing, "lead"));
    assert_eq!(n.facts["field"], "body.email");
    assert_eq!(n.facts["source"], "form");
    assert_eq!(n.facts["read_by"], "step contact");
    assert!(
        n.detail.contains("body.email_address"),
        "names what is new: {}",
        n.detail
    );
    // The field is back: resolved once.
    b.send_json("form", json!({"id": "fixed", "email": "a@b.c"}))
        .await;
    minutes(&b.hub, &b.clock, &r, 1).await;
    let sent = r.of(Condition::Drift);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].state, State::Resolved);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_refresh_token_alerts_once_until_it_works_again() {
    let yaml = config("").replace(
        r#"crm: { base_url: "${env:CRM_URL}" }"#,
        r#"crm:
    base_url: "${env:CRM_URL}"
    auth: { type: oauth2, grant: refresh_token, token_url: "${env:CRM_URL}/token", client_id: ferry, client_secret: "${env:KEY}", refresh_token: "${env:KEY}" }"#,
    );
    let b = Bench::start(&yaml).await;
    b.target
        .respond("/crm/token", 400, json!({"error": "invalid_grant"}));
    b.target.respond("/crm/contacts", 200, json!({"id": 1}));
    let r = Recorder::default();
    let first = b
        .send_json("form", json!({"id": "1", "email": "a@b.c"}))
        .await;
    let run = b.drive(&first).await;
    assert_eq!(run.status, ferry::model::RunStatus::AuthFailed);
    minutes(&b.hub, &b.clock, &r, 1).await;
    let sent = r.of(Condition::AuthFailed);
    assert_eq!(sent.len(), 1, "within one evaluation: {sent:#?}");
    assert_eq!(sent[0].subject, "crm");
    // Still broken: more refusals, no more messages.
    for i in 2..6 {
        let id = b
            .send_json("form", json!({"id": i.to_string(), "email": "a@b.c"}))
            .await;
        b.drive(&id).await;
        b.clock.advance(10 * MINUTE);
        evaluate(&b, &r).await;
    }
    assert_eq!(r.of(Condition::AuthFailed).len(), 1);
    // Fixed: the next run succeeds, and the alert resolves once.
    b.target.respond(
        "/crm/token",
        200,
        json!({"access_token": "fresh", "token_type": "Bearer", "expires_in": 3600}),
    );
    let id = b
        .send_json("form", json!({"id": "ok", "email": "a@b.c"}))
        .await;
    assert_eq!(
        b.drive(&id).await.status,
        ferry::model::RunStatus::Succeeded
    );
    minutes(&b.hub, &b.clock, &r, 2).await;
    let sent = r.of(Condition::AuthFailed);
    assert_eq!(sent.len(), 2, "{sent:#?}");
    assert_eq!(sent[1].state, State::Resolved);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_channel_is_retried_with_backoff_and_never_holds_runs() {
    let (b, rx, senders) = signed(&config("")).await;
    b.target
        .respond("/crm/contacts", 422, json!({"error": "invalid"}));
    rx.fail_next(500, 3);
    let id = b
        .send_json("form", json!({"id": "x", "email": "a@b.c"}))
        .await;
    b.drive(&id).await;
    minutes(&b.hub, &b.clock, &senders, 1).await;
    assert!(verified(&rx, "run_failed").is_empty(), "not delivered yet");
    // While the channel fails, runs go on as before.
    b.target.respond("/crm/contacts", 200, json!({"id": 1}));
    let ok = b
        .send_json("form", json!({"id": "y", "email": "a@b.c"}))
        .await;
    assert_eq!(
        b.drive(&ok).await.status,
        ferry::model::RunStatus::Succeeded
    );
    // Retried after 30 s, 1 min, 2 min: delivered on the fourth attempt.
    minutes(&b.hub, &b.clock, &senders, 8).await;
    let sent = verified(&rx, "run_failed");
    assert!(
        !sent.is_empty() && sent[0]["state"] == "firing",
        "{sent:#?}"
    );
    let book = alerts::list(&b.hub).await.unwrap();
    let failures: Vec<_> = book.log.iter().filter(|d| d.error.is_some()).collect();
    assert_eq!(
        failures.len(),
        3,
        "each failed attempt is recorded: {:#?}",
        book.log
    );
    assert!(
        failures[0].error.as_deref().unwrap().contains("500"),
        "{failures:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_evaluators_on_one_store_send_each_alert_once() {
    let b = Bench::start(&config("")).await;
    b.target
        .respond("/crm/contacts", 422, json!({"error": "invalid"}));
    let second =
        ferry::hub::Hub::new(b.hub.config.clone(), Vec::new(), b.hub.ports.clone()).unwrap();
    let r = Recorder::default();
    for i in 0..20 {
        b.send_json("form", json!({"id": i.to_string(), "email": "a@b.c"}))
            .await;
    }
    run_all(&b).await;
    for _ in 0..12 {
        b.clock.advance(MINUTE);
        let (x, y) = tokio::join!(alerts::evaluate(&b.hub, &r), alerts::evaluate(&second, &r));
        x.unwrap();
        y.unwrap();
    }
    let sent = r.of(Condition::RunFailed);
    assert_eq!(sent.len(), 2, "one firing, one resolved: {sent:#?}");
    assert_eq!(sent.iter().map(|n| n.count).sum::<u64>(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_rate_above_the_threshold_alerts_and_clears() {
    let yaml = config("").replace(
        "  default: [hook]\n",
        "  default: [hook]\n  rules:\n    - { on: error_rate, above: 20, min_runs: 10, window: 15m }\n    - { on: run_failed, enabled: false }\n",
    );
    let b = Bench::start(&yaml).await;
    b.target.behave("/crm/contacts", |req| {
        Some(if req.body["email"] == "bad" {
            ferry_testkit::target::Answer::status(422, json!({"error": "invalid"}))
        } else {
            ferry_testkit::target::Answer::ok(json!({"id": 1}))
        })
    });
    let r = Recorder::default();
    // 3 of 10 fail: 30 % > 20 %.
    for i in 0..10 {
        let email = if i < 3 { "bad" } else { "a@b.c" };
        b.send_json("form", json!({"id": format!("a{i}"), "email": email}))
            .await;
    }
    run_all(&b).await;
    minutes(&b.hub, &b.clock, &r, 1).await;
    let sent = r.of(Condition::ErrorRate);
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0].facts["rate"], "30.0");
    assert!(
        r.of(Condition::RunFailed).is_empty(),
        "switched off by its rule"
    );
    // 30 more that succeed: 3 of 40 = 7.5 %.
    for i in 0..30 {
        b.send_json("form", json!({"id": format!("b{i}"), "email": "a@b.c"}))
            .await;
    }
    run_all(&b).await;
    minutes(&b.hub, &b.clock, &r, 1).await;
    let sent = r.of(Condition::ErrorRate);
    assert_eq!(sent.len(), 2, "{sent:#?}");
    assert_eq!(sent[1].state, State::Resolved);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_later_than_max_latency_alerts() {
    let yaml = config("").replace(
        "    trigger: { source: form }\n",
        "    trigger: { source: form }\n    max_latency: 1m\n",
    );
    let b = Bench::start(&yaml).await;
    b.target.respond("/crm/contacts", 200, json!({"id": 1}));
    let r = Recorder::default();
    let fast = b
        .send_json("form", json!({"id": "fast", "email": "a@b.c"}))
        .await;
    b.drive(&fast).await;
    minutes(&b.hub, &b.clock, &r, 1).await;
    assert!(r.of(Condition::Late).is_empty(), "on time");
    // A backlog: the run waits 3 minutes before a worker takes it.
    let slow = b
        .send_json("form", json!({"id": "slow", "email": "a@b.c"}))
        .await;
    b.clock.advance(3 * MINUTE);
    b.drive(&slow).await;
    evaluate(&b, &r).await;
    let sent = r.of(Condition::Late);
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(
        (sent[0].subject.as_str(), sent[0].facts["run"].as_str()),
        ("lead", slow.as_str())
    );
    assert_eq!(sent[0].facts["took"], "3m");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_circuit_and_a_deep_dlq_alert_once_and_resolve() {
    let yaml = config("")
        .replace(
            r#"crm: { base_url: "${env:CRM_URL}" }"#,
            r#"crm: { base_url: "${env:CRM_URL}", circuit_breaker: {} }"#,
        )
        .replace(
            "  default: [hook]\n",
            "  default: [hook]\n  rules:\n    - { on: dlq_depth, at_least: 2 }\n",
        );
    let b = Bench::start(&yaml).await;
    b.target
        .respond("/crm/contacts", 422, json!({"error": "invalid"}));
    let r = Recorder::default();
    let now = b.clock.now_ms();
    b.hub
        .ports
        .breakers
        .open("crm", now + 30_000, "5 of 5 calls failed")
        .await
        .unwrap();
    for i in 0..2 {
        let id = b
            .send_json("form", json!({"id": i.to_string(), "email": "a@b.c"}))
            .await;
        b.hub.ports.breakers.close("crm").await.unwrap();
        b.drive(&id).await;
    }
    b.hub
        .ports
        .breakers
        .open("crm", now + 30_000, "5 of 5 calls failed")
        .await
        .unwrap();
    minutes(&b.hub, &b.clock, &r, 1).await;
    evaluate(&b, &r).await;
    let (circuit, dlq) = (r.of(Condition::CircuitOpen), r.of(Condition::DlqDepth));
    assert_eq!(circuit.len(), 1, "{circuit:#?}");
    assert!(circuit[0].detail.contains("5 of 5 calls failed"));
    assert_eq!(dlq.len(), 1, "{dlq:#?}");
    b.hub.ports.breakers.close("crm").await.unwrap();
    for d in b.hub.ports.queue.dead_letters(10).await.unwrap() {
        b.hub.ports.queue.redrive(&d.id).await.unwrap();
    }
    minutes(&b.hub, &b.clock, &r, 1).await;
    let (circuit, dlq) = (r.of(Condition::CircuitOpen), r.of(Condition::DlqDepth));
    assert_eq!((circuit.len(), circuit[1].state), (2, State::Resolved));
    assert_eq!((dlq.len(), dlq[1].state), (2, State::Resolved));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_field_that_stops_appearing_is_drift_too() {
    let yaml = config("").replace(
        "        request: { path: /contacts, json: { email: \"{{ body.email }}\", note: \"{{ body.note | default('') }}\" } }\n",
        "        request: { path: /contacts, json: { email: \"{{ body.email }}\", note: \"{{ body.note | default('') }}\" } }\n      - id: task\n        connection: crm\n        request: { path: /tasks, json: { contact: \"{{ steps.contact.response.body.id }}\" } }\n",
    );
    let b = Bench::start(&yaml).await;
    b.target.respond("/crm/contacts", 200, json!({"id": 7}));
    b.target.respond("/crm/tasks", 200, json!({"ok": true}));
    let r = Recorder::default();
    for i in 0..3 {
        b.send_json("form", json!({"id": format!("v1-{i}"), "email": "a@b.c"}))
            .await;
    }
    run_all(&b).await;
    minutes(&b.hub, &b.clock, &r, 1).await;
    // The vendor renames `id` to `contact_id`.
    b.target
        .respond("/crm/contacts", 200, json!({"contact_id": 7}));
    for i in 0..3 {
        b.send_json("form", json!({"id": format!("v2-{i}"), "email": "a@b.c"}))
            .await;
    }
    run_all(&b).await;
    minutes(&b.hub, &b.clock, &r, 1).await;
    let sent = r.of(Condition::Drift);
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0].facts["field"], "steps.contact.response.body.id");
    assert_eq!(sent[0].facts["read_by"], "step task");
    assert!(sent[0].title.contains("responses"), "{}", sent[0].title);
}
