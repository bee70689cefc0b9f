//! `GET /metrics` of a real `ferry dev` after a mixed load: accepted,
//! duplicate and rejected events; runs that succeed, are skipped and
//! dead-letter. The counters must equal what the run log says, and the text
//! must pass `promtool check metrics` (Prometheus's own checker).

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;
use support::{Answer, Hub, Target, eventually};

const SECRET: &str = "metrics-secret-for-tests";
const CONFIG: &str = r#"
version: 1
connections:
  crm:
    base_url: "${env:CRM_URL}"
  chat:
    base_url: "${env:CHAT_URL}"
sources:
  website-form:
    verify: { scheme: hmac-sha256, header: X-Signature, secret: "${env:FORM_SECRET}" }
    event_id: "{{ body.submission_id }}"
workflows:
  new-lead:
    trigger: { source: website-form }
    when: "body.email is defined"
    steps:
      - id: contact
        connection: crm
        request: { method: POST, path: /contacts, json: { email: "{{ body.email }}" } }
  announce:
    trigger: { source: website-form }
    steps:
      - id: post
        connection: chat
        request: { method: POST, path: /messages, json: { text: "{{ body.submission_id }}" } }
"#;

/// `(name, sorted labels) → value` for every sample of a Prometheus text.
fn samples(text: &str) -> BTreeMap<(String, String), f64> {
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, l.trim_end_matches('}')),
            None => (series, ""),
        };
        let mut labels: Vec<&str> = labels.split("\",").map(|l| l.trim_matches('"')).collect();
        labels.sort();
        out.insert((name.to_owned(), labels.join(",")), value.parse().unwrap());
    }
    out
}

fn counter(s: &BTreeMap<(String, String), f64>, name: &str, labels: &[(&str, &str)]) -> u64 {
    let mut want: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}")).collect();
    want.sort();
    let want: Vec<&str> = want.iter().map(|l| l.trim_end_matches('"')).collect();
    s.get(&(name.to_owned(), want.join(",")))
        .copied()
        .unwrap_or(0.0) as u64
}

/// Counts by (workflow, status, failure) from `ferry runs list --json`.
fn run_log(hub: &Hub) -> BTreeMap<(String, String, String), u64> {
    let mut out = BTreeMap::new();
    for r in hub.runs() {
        let key = (
            r["workflow"].as_str().unwrap().to_owned(),
            r["status"].as_str().unwrap().to_owned(),
            r["failure"].as_str().unwrap_or("none").to_owned(),
        );
        *out.entry(key).or_default() += 1;
    }
    out
}

/// The same counts from `/metrics`.
fn run_metrics(text: &str) -> BTreeMap<(String, String, String), u64> {
    let mut out = BTreeMap::new();
    for ((name, labels), v) in samples(text) {
        if name != "ferry_runs_total" || v == 0.0 {
            continue;
        }
        let get = |k: &str| {
            labels
                .split(',')
                .find_map(|l| l.strip_prefix(&format!("{k}=\"")))
                .unwrap()
                .trim_end_matches('"')
                .to_owned()
        };
        out.insert((get("workflow"), get("status"), get("failure")), v as u64);
    }
    out
}

async fn scrape(hub: &Hub) -> String {
    let resp = hub.http.get(hub.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let ctype = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    resp.text().await.unwrap()
}

/// `promtool check metrics` on `text`: `None` when promtool is not installed
/// (a failure with `FERRY_REQUIRE_PROMTOOL=1`, which scripts/test sets).
fn promtool(text: &str) -> Option<(bool, String)> {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            assert!(
                std::env::var("FERRY_REQUIRE_PROMTOOL").as_deref() != Ok("1"),
                "FERRY_REQUIRE_PROMTOOL=1 but promtool cannot run ({e}); scripts/check-metrics installs it"
            );
            eprintln!(
                "promtool not installed ({e}); skipping its check (scripts/check-metrics installs it)"
            );
            return None;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    Some((out.status.success() && said.trim().is_empty(), said))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counters_equal_the_run_log_after_a_mixed_load() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    // The CRM refuses leads whose address says so (422: dead-lettered at once).
    target.behave("/crm", |seen| {
        let refused = seen.body["email"]
            .as_str()
            .is_some_and(|e| e.contains("refuse"));
        Some(if refused {
            Answer::status(422, json!({ "error": "invalid email" }))
        } else {
            Answer::status(201, json!({ "id": "c-1" }))
        })
    });
    let crm = format!("{}/crm", target.url());
    let chat = format!("{}/chat", target.url());
    let env = [
        ("CRM_URL", crm.as_str()),
        ("CHAT_URL", chat.as_str()),
        ("FORM_SECRET", SECRET),
    ];
    let hub = Hub::start(dir.path(), CONFIG, &env);

    let events = [
        json!({ "submission_id": "a1", "email": "ada@example.com" }),
        json!({ "submission_id": "a2", "email": "bob@example.com" }),
        json!({ "submission_id": "a3", "email": "cy@example.com" }),
        json!({ "submission_id": "r1", "email": "refuse-1@example.com" }),
        json!({ "submission_id": "r2", "email": "refuse-2@example.com" }),
        json!({ "submission_id": "s1" }),
    ];
    for e in &events {
        let (status, reply) = hub.post_signed("website-form", SECRET, e).await;
        assert_eq!(status, 202, "{reply}");
    }
    for e in &events[..2] {
        let (status, reply) = hub.post_signed("website-form", SECRET, e).await;
        assert_eq!(
            (status, reply["status"].as_str()),
            (200, Some("duplicate")),
            "{reply}"
        );
    }
    let json = [("content-type", "application/json")];
    let (status, _) = hub
        .post(
            "website-form",
            br#"{"submission_id":"x"}"#,
            &[json[0], ("x-signature", "00")],
        )
        .await;
    assert_eq!(status, 401);
    let (status, _) = hub.post("website-form", b"{}", &json).await;
    assert_eq!(status, 401);
    let broken = b"{not json";
    let sig = support::hmac_hex(SECRET, broken);
    let (status, _) = hub
        .post("website-form", broken, &[json[0], ("x-signature", &sig)])
        .await;
    assert_eq!(status, 400);
    // Not a configured source: answered 404, not counted under any label.
    let (status, _) = hub.post("no-such-source", b"{}", &json).await;
    assert_eq!(status, 404);

    let runs = hub.all_finished(12, Duration::from_secs(30)).await;
    assert_eq!(runs.len(), 12, "six events, two workflows each");
    let log = run_log(&hub);
    let count = |wf: &str, status: &str, failure: &str| {
        log.get(&(wf.into(), status.into(), failure.into()))
            .copied()
            .unwrap_or(0)
    };
    // The load is what it claims to be.
    assert_eq!(count("new-lead", "succeeded", "none"), 3, "{log:?}");
    assert_eq!(count("new-lead", "dead_lettered", "rejected"), 2, "{log:?}");
    assert_eq!(count("new-lead", "skipped", "none"), 1, "{log:?}");
    assert_eq!(count("announce", "succeeded", "none"), 6, "{log:?}");

    // A counter is bumped just after its run is written: poll until they agree.
    let text = eventually(
        "/metrics to equal the run log",
        Duration::from_secs(10),
        || async {
            let text = scrape(&hub).await;
            (run_metrics(&text) == log).then_some(text)
        },
    )
    .await;
    let s = samples(&text);
    let events = |outcome: &str| {
        counter(
            &s,
            "ferry_events_total",
            &[("source", "website-form"), ("outcome", outcome)],
        )
    };
    assert_eq!(
        (events("accepted"), events("duplicate"), events("rejected")),
        (6, 2, 3)
    );
    assert!(!text.contains("no-such-source"), "{text}");
    let dead = |wf: &str| {
        log.iter()
            .filter(|((w, st, _), _)| {
                w == wf && matches!(st.as_str(), "dead_lettered" | "auth_failed")
            })
            .map(|(_, n)| n)
            .sum::<u64>()
    };
    for wf in ["new-lead", "announce"] {
        assert_eq!(
            counter(&s, "ferry_dlq_sends_total", &[("workflow", wf)]),
            dead(wf),
            "{wf}"
        );
    }
    // Calls: every request the target answered, by class, and as many durations.
    let crm_2xx = counter(
        &s,
        "ferry_calls_total",
        &[("connection", "crm"), ("class", "2xx")],
    );
    let crm_4xx = counter(
        &s,
        "ferry_calls_total",
        &[("connection", "crm"), ("class", "4xx")],
    );
    assert_eq!((crm_2xx, crm_4xx), (3, 2));
    assert_eq!(target.seen_under("/crm").len() as u64, crm_2xx + crm_4xx);
    let chat = counter(
        &s,
        "ferry_calls_total",
        &[("connection", "chat"), ("class", "2xx")],
    );
    assert_eq!(chat, target.seen_under("/chat").len() as u64);
    let durations = counter(
        &s,
        "ferry_call_duration_seconds_count",
        &[("connection", "crm")],
    );
    assert_eq!(durations, crm_2xx + crm_4xx);

    if let Some((ok, said)) = promtool(&text) {
        assert!(ok, "promtool check metrics: {said}\n{text}");
    }
}

#[test]
fn promtool_is_not_a_rubber_stamp() {
    // A counter without `_total` and a duplicate HELP: promtool must object,
    // or the check above proves nothing.
    let bad = "# HELP x_requests Requests.\n# TYPE x_requests counter\nx_requests 1\n";
    if let Some((ok, said)) = promtool(bad) {
        assert!(!ok, "promtool accepted a counter without _total: {said}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_call_the_rate_limit_sends_back_is_counted_as_a_wait() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    target.behave("/", |_| Some(Answer::status(201, json!({ "id": "c-1" }))));
    // One call per 10 s: the second event's call cannot have a token for
    // seconds, longer than a worker sleeps, so it goes back to the queue.
    let limited = CONFIG.replace(
        "    base_url: \"${env:CHAT_URL}\"\n",
        "    base_url: \"${env:CHAT_URL}\"\n    rate_limit: { requests: 1, per: 10s }\n",
    );
    assert_ne!(limited, CONFIG);
    let crm = format!("{}/crm", target.url());
    let chat = format!("{}/chat", target.url());
    let env = [
        ("CRM_URL", crm.as_str()),
        ("CHAT_URL", chat.as_str()),
        ("FORM_SECRET", SECRET),
    ];
    let hub = Hub::start(dir.path(), &limited, &env);
    for id in ["w1", "w2"] {
        let e = json!({ "submission_id": id, "email": "ada@example.com" });
        let (status, reply) = hub.post_signed("website-form", SECRET, &e).await;
        assert_eq!(status, 202, "{reply}");
    }
    let s = eventually(
        "a rate-limit wait on chat",
        Duration::from_secs(20),
        || async {
            let s = samples(&scrape(&hub).await);
            (counter(
                &s,
                "ferry_rate_limit_waits_total",
                &[("connection", "chat")],
            ) >= 1)
                .then_some(s)
        },
    )
    .await;
    // Read-only: anything but GET is refused like on /healthz.
    let resp = hub.http.post(hub.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "method_not_allowed", "{body}");
    // The CRM has no rate limit: nothing of it waited.
    assert_eq!(
        counter(&s, "ferry_rate_limit_waits_total", &[("connection", "crm")]),
        0
    );
}
