//! End to end: pause and resume. A paused workflow accepts its events (202)
//! and calls nothing; after `ferry resume` every held run is delivered, once,
//! within the connection's rate limit. A paused connection's runs wait
//! without spending attempts. The real `ferry dev` binary and CLI.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;
use support::{Hub, Target};

const SECRET: &str = "form-secret-for-tests";

fn config(extra: &str) -> String {
    format!(
        "version: 1\nconnections:\n  api: {{ base_url: \"${{env:TARGET}}\", rate_limit: {{ requests: 50, per: 1s }} }}\nsources:\n  s:\n    verify: {{ scheme: hmac-sha256, header: X-Signature, secret: \"${{env:FORM_SECRET}}\" }}\n    event_id: \"{{{{ body.id }}}}\"\nworkflows:\n  w:\n    trigger: {{ source: s }}\n{extra}    steps:\n      - id: send\n        connection: api\n        request: {{ method: POST, path: /limited, json: {{ n: \"{{{{ body.id }}}}\" }} }}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_workflow_holds_1000_events_then_drains_them_within_the_rate_limit() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let url = target.url();
    let hub = Hub::start_with(
        dir.path(),
        &config(""),
        &[("TARGET", &url), ("FORM_SECRET", SECRET)],
        &[],
    );
    let (code, out, err) = hub.ferry(&["pause", "workflow", "w"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "paused workflow w");

    let bodies = (0..1000)
        .map(|i| json!({ "id": format!("e{i}") }))
        .collect();
    hub.post_many("s", SECRET, bodies, 16).await;
    // Held for a while (longer than a hold and a refresh): nothing called.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(
        target.seen_at("/limited").len(),
        0,
        "a paused workflow calls nothing"
    );
    let runs = hub.runs();
    assert_eq!(runs.len(), 1000);
    assert!(
        runs.iter().all(|r| r["status"] == "queued"),
        "held, not failed"
    );
    let (code, out, _) = hub.ferry(&["runs", "list", "--limit", "1"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("PAUSED workflow w (paused at "), "{out}");
    let (code, out, err) = hub.ferry(&["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["paused"][0]["kind"], "workflow", "{status}");
    assert_eq!(status["paused"][0]["name"], "w", "{status}");
    assert_eq!(status["paused"][0]["by"], "ferry pause", "{status}");

    let (code, out, err) = hub.ferry(&["resume", "workflow", "w"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "resumed workflow w");
    let runs = hub.all_finished(1000, Duration::from_secs(120)).await;
    assert!(runs.iter().all(|r| r["status"] == "succeeded"));
    assert!(
        runs.iter().all(|r| r["attempts"] == 1),
        "holding is not an attempt"
    );

    let seen = target.seen_at("/limited");
    assert_eq!(seen.len(), 1000, "each delivered once");
    let distinct: HashSet<_> = seen.iter().map(|s| s.body["n"].to_string()).collect();
    assert_eq!(distinct.len(), 1000);
    let mut at: Vec<_> = seen.iter().map(|s| s.at).collect();
    at.sort();
    let worst = (0..at.len())
        .map(|i| {
            at[i..]
                .iter()
                .take_while(|u| u.duration_since(at[i]) < Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap();
    let span = at[at.len() - 1].duration_since(at[0]).as_secs_f64();
    let rate = (at.len() - 1) as f64 / span;
    eprintln!("drained 1000 calls in {span:.2}s = {rate:.2}/s; busiest second: {worst}");
    // The limiter grants at most 50 tokens in any second (a burst of 10, then
    // 40/s); the target sees arrivals, which a loaded two-core machine delays
    // unevenly, so a second of arrivals may hold the grants of a little more:
    // the bound allows 250 ms of such delay (10 + 40 x 1.25). The limit is low
    // so that this slack stays small next to it.
    assert!(
        worst <= 60,
        "{worst} calls in one second, over the limit of 50"
    );
    assert!(
        rate <= 44.0,
        "average {rate:.2}/s, above the 40/s headroom + 10%"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_connection_gets_no_calls_and_its_runs_wait_without_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let url = target.url();
    let hub = Hub::start_with(
        dir.path(),
        &config(""),
        &[("TARGET", &url), ("FORM_SECRET", SECRET)],
        &[],
    );
    let (code, _, err) = hub.ferry(&["pause", "connection", "api"]);
    assert_eq!(code, 0, "{err}");
    let bodies = (0..20).map(|i| json!({ "id": format!("c{i}") })).collect();
    hub.post_many("s", SECRET, bodies, 8).await;
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(
        target.seen_at("/limited").len(),
        0,
        "a paused connection gets no calls"
    );
    let runs = hub.runs();
    assert_eq!(runs.len(), 20);
    assert!(
        runs.iter().all(|r| r["steps"][0]["attempts"]
            .as_array()
            .is_none_or(|a| a.is_empty())),
        "no attempt spent while paused"
    );
    let (code, _, err) = hub.ferry(&["resume", "connection", "api"]);
    assert_eq!(code, 0, "{err}");
    let runs = hub.all_finished(20, Duration::from_secs(60)).await;
    assert!(runs.iter().all(|r| r["status"] == "succeeded"));
    assert_eq!(target.seen_at("/limited").len(), 20);
    let (code, _, err) = hub.ferry(&["pause", "connection", "nope"]);
    assert_ne!(code, 0);
    assert!(err.contains("no connection \"nope\""), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_workflow_disabled_in_the_config_accepts_events_and_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let url = target.url();
    let hub = Hub::start_with(
        dir.path(),
        &config("    enabled: false\n"),
        &[("TARGET", &url), ("FORM_SECRET", SECRET)],
        &[],
    );
    hub.post_many("s", SECRET, vec![json!({ "id": "d1" })], 1)
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(target.seen_at("/limited").len(), 0);
    assert_eq!(hub.runs()[0]["status"], "queued");
    let (_, out, _) = hub.ferry(&["runs", "list"]);
    assert!(
        out.starts_with("PAUSED workflow w (enabled: false in the config)"),
        "{out}"
    );
}
