//! The web console in a real browser (headless Chromium over WebDriver,
//! `ferry_testkit::browser`), on the real `ferry dev` binary: the overview of
//! a hub with succeeded, dead-lettered and waiting runs; the run list
//! filtered by workflow and status; a run's attempts; a dead letter replayed
//! by clicking once the target answers 200; a workflow paused and resumed;
//! XSS payloads in events that render as text; the login on a non-loopback
//! listener and its session cookie. Screenshots of each page go to
//! `<screenshots>/console_browser__*/` (docs/testing.md).
//!
//! Skipped (with a printed reason) where no ChromeDriver is installed, unless
//! FERRY_REQUIRE_BROWSER=1 (scripts/test), where that fails instead.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ferry_testkit::browser::xss::PAYLOADS;
use ferry_testkit::browser::{Browser, By};
use serde_json::{Value, json};
use support::{Answer, Hub, Seen, Target, eventually};

const SECRET: &str = "form-secret-for-the-browser-test";
const TOKEN: &str = "a-console-token-for-the-browser-test";

/// Two sources, two workflows, one connection to the target.
const CONFIG: &str = r#"version: 1
connections:
  crm: { base_url: "${env:TARGET}" }
sources:
  forms:
    verify: { scheme: hmac-sha256, header: X-Signature, secret: "${env:FORM_SECRET}" }
    event_id: "{{ body.id }}"
  billing:
    verify: { scheme: hmac-sha256, header: X-Signature, secret: "${env:FORM_SECRET}" }
    event_id: "{{ body.id }}"
workflows:
  new-lead:
    trigger: { source: forms }
    steps:
      - id: contact
        connection: crm
        request: { method: POST, path: /contacts, json: { name: "{{ body.name }}", outcome: "{{ body.outcome }}" } }
  invoice:
    trigger: { source: billing }
    steps:
      - id: book
        connection: crm
        request: { method: POST, path: /invoices, json: { name: "{{ body.name }}" } }
"#;

/// The target: `/contacts` answers by the event's `outcome` — `fail` is a
/// 422 (dead-lettered at once) until `healed`, `wait` a 503 retried in an
/// hour; anything else (and `/invoices`) a 200.
async fn target(healed: Arc<AtomicBool>) -> Target {
    let target = Target::start().await;
    target.behave("/contacts", move |seen: &Seen| {
        match seen.body["outcome"].as_str() {
            Some("fail") if !healed.load(Ordering::SeqCst) => Some(Answer::status(
                422,
                json!({ "error": "email is not an address" }),
            )),
            Some("wait") => Some(
                Answer::status(503, json!({ "error": "maintenance" }))
                    .header("retry-after", "3600"),
            ),
            _ => None,
        }
    });
    target
}

/// Post `body` to `source`, signed; the run id of its one workflow.
async fn send(hub: &Hub, source: &str, body: Value) -> String {
    let (status, reply) = hub.post_signed(source, SECRET, &body).await;
    assert_eq!(status, 202, "{reply}");
    reply["run_id"].as_str().expect("a run id").to_owned()
}

/// Wait until run `id` has status `status` (through the CLI).
async fn run_reaches(hub: &Hub, id: &str, status: &str) -> Value {
    let last = std::sync::Mutex::new(Value::Null);
    let reached = tokio::time::timeout(
        Duration::from_secs(90),
        eventually("", Duration::MAX, || async {
            let run = hub.run(id);
            let done = run["status"] == status;
            *last.lock().unwrap() = run.clone();
            done.then_some(run)
        }),
    )
    .await;
    reached.unwrap_or_else(|_| {
        let last = last.lock().unwrap();
        panic!("run {id} is not {status} after 90 s: {last:#}")
    })
}

/// The `data-*` attribute `name` of every element matching `selector`.
async fn attrs(browser: &Browser, selector: &str, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for el in browser.find_all(By::css(selector)).await {
        out.push(el.attr(name).await.unwrap().unwrap_or_default());
    }
    out
}

/// Reload `url` until the run page shows `status`.
async fn page_shows_status(browser: &Browser, url: &str, status: &str) {
    browser
        .wait_until(&format!("{url} to show {status}"), async |b| {
            b.goto(url).await;
            let shown = b.find_all(By::test("run-status")).await;
            let text = shown.first()?.text().await.ok()?;
            (text == status).then_some(())
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operating_ferry_dev_from_the_console() {
    let Some(mut browser) = Browser::launch("console_browser::operating").await else {
        return;
    };
    // A loaded machine: a page or a run may take a while.
    browser.set_wait(Duration::from_secs(60));
    let healed = Arc::new(AtomicBool::new(false));
    let target = target(healed.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let url = target.url();
    let hub = Hub::start(
        dir.path(),
        CONFIG,
        &[("TARGET", &url), ("FORM_SECRET", SECRET)],
    );

    // The mix: two succeeded, one dead-lettered, one waiting on a 503.
    let ok1 = send(
        &hub,
        "forms",
        json!({ "id": "lead-1", "name": "Ada", "outcome": "ok" }),
    )
    .await;
    let ok2 = send(
        &hub,
        "forms",
        json!({ "id": "lead-2", "name": "Grace", "outcome": "ok" }),
    )
    .await;
    let failed = send(
        &hub,
        "forms",
        json!({ "id": "lead-3", "name": "Bad", "outcome": "fail" }),
    )
    .await;
    let waiting = send(
        &hub,
        "forms",
        json!({ "id": "lead-4", "name": "Later", "outcome": "wait" }),
    )
    .await;
    let invoice = send(&hub, "billing", json!({ "id": "inv-1", "name": "Acme" })).await;
    for id in [&ok1, &ok2, &invoice] {
        run_reaches(&hub, id, "succeeded").await;
    }
    run_reaches(&hub, &failed, "dead_lettered").await;
    run_reaches(&hub, &waiting, "retrying").await;

    // Overview: the counts per workflow and the dead-letter depth.
    browser.goto(&hub.url("/")).await;
    let card = "[data-test=workflow-card][data-workflow=new-lead]";
    assert_eq!(
        browser
            .text(By::css(&format!("{card} [data-test=count-succeeded]")))
            .await,
        "2 succeeded"
    );
    assert_eq!(
        browser
            .text(By::css(&format!("{card} [data-test=count-failed]")))
            .await,
        "1 failed"
    );
    assert_eq!(
        browser
            .text(By::css(&format!("{card} [data-test=count-waiting]")))
            .await,
        "1 waiting"
    );
    assert_eq!(browser.text(By::test("dlq-depth")).await, "1");
    browser.screenshot("overview").await;

    // The failed count links to the list behind it.
    browser
        .click(By::css(&format!("{card} [data-test=count-failed]")))
        .await;
    browser.wait_for_url("dead_lettered").await;
    assert_eq!(
        attrs(&browser, "[data-test=run-row]", "data-run-id").await,
        vec![failed.clone()]
    );

    // So does the waiting count (a run retrying counts as waiting).
    browser.goto(&hub.url("/")).await;
    browser
        .click(By::css(&format!("{card} [data-test=count-waiting]")))
        .await;
    browser.wait_for_url("retrying").await;
    assert_eq!(
        attrs(&browser, "[data-test=run-row]", "data-run-id").await,
        vec![waiting.clone()]
    );

    // Runs, filtered by workflow and status as a person does.
    browser.goto(&hub.url("/runs")).await;
    assert_eq!(browser.find_all(By::test("run-row")).await.len(), 5);
    browser.screenshot("runs").await;
    let pick = async |select: &str, label: &str| {
        let el = browser.find(By::id(select)).await;
        el.select_by_label(label).await.unwrap();
    };
    pick("filter-workflow", "new-lead").await;
    pick("filter-status", "succeeded").await;
    browser.click(By::test("filter-apply")).await;
    browser.wait_for_url("status=succeeded").await;
    let mut shown = attrs(&browser, "[data-test=run-row]", "data-run-id").await;
    shown.sort();
    let mut expected = vec![ok1.clone(), ok2.clone()];
    expected.sort();
    assert_eq!(shown, expected);
    assert_eq!(
        attrs(&browser, "[data-test=run-row]", "data-workflow").await,
        vec!["new-lead"; 2]
    );
    browser.screenshot("runs-filtered").await;

    // A run and its attempts: the waiting one, answered 503 and retried.
    browser.goto(&hub.url("/runs?status=retrying")).await;
    browser.click(By::test("run-link")).await;
    browser.wait_for_url(&format!("/runs/{waiting}")).await;
    assert_eq!(browser.text(By::test("run-status")).await, "retrying");
    assert_eq!(browser.text(By::test("attempt-status")).await, "HTTP 503");
    let decision = browser.text(By::test("attempt-decision")).await;
    assert!(decision.contains("retry"), "{decision}");
    browser.screenshot("run-waiting").await;

    // The dead letter: its run shows the 422, then a click replays it.
    browser.goto(&hub.url("/dlq")).await;
    assert_eq!(
        attrs(&browser, "[data-test=dlq-row]", "data-run-id").await,
        vec![failed.clone()]
    );
    browser.screenshot("dead-letters").await;
    browser
        .click(By::css(&format!("[data-test=dlq-row] a[href$='{failed}']")))
        .await;
    browser.wait_for_url(&format!("/runs/{failed}")).await;
    assert_eq!(browser.text(By::test("run-status")).await, "dead_lettered");
    assert_eq!(browser.text(By::test("attempt-status")).await, "HTTP 422");
    assert_eq!(browser.find_all(By::test("attempt")).await.len(), 1);
    browser.screenshot("run-dead-lettered").await;
    healed.store(true, Ordering::SeqCst);
    browser.click(By::test("replay")).await;
    browser
        .wait_for_url(&format!("/runs/{failed}?replayed=1"))
        .await;
    let run_url = hub.url(&format!("/runs/{failed}"));
    page_shows_status(&browser, &run_url, "succeeded").await;
    let attempts = attrs(&browser, "[data-test=attempt]", "data-attempt").await;
    assert_eq!(
        attempts.len(),
        2,
        "the 422 and the replay's 200: {attempts:?}"
    );
    let answers: Vec<u16> = target
        .seen_at("/contacts")
        .iter()
        .filter(|s| s.body["name"] == "Bad")
        .map(|s| s.status)
        .collect();
    assert_eq!(answers, vec![422, 200]);
    browser.screenshot("run-replayed").await;
    browser.goto(&hub.url("/dlq")).await;
    browser.find(By::test("dlq-empty")).await;

    // Pause and resume a workflow from the overview; the CLI agrees.
    browser.goto(&hub.url("/")).await;
    browser.click(By::id("pause-workflow-new-lead")).await;
    browser.find(By::id("resume-workflow-new-lead")).await;
    assert!(
        browser
            .text(By::css(&format!("{card} [data-test=workflow-paused]")))
            .await
            .starts_with("paused")
    );
    let (code, out, err) = hub.ferry(&["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    let status: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["paused"][0]["kind"], "workflow", "{status}");
    assert_eq!(status["paused"][0]["name"], "new-lead", "{status}");
    browser.screenshot("overview-paused").await;
    browser.click(By::id("resume-workflow-new-lead")).await;
    browser.find(By::id("pause-workflow-new-lead")).await;
    assert!(!browser.exists(By::test("workflow-paused")).await);
    let (code, out, err) = hub.ferry(&["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    let status: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["paused"], json!([]), "{status}");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xss_payloads_in_events_render_as_text() {
    let Some(mut browser) = Browser::launch("console_browser::xss").await else {
        return;
    };
    browser.set_wait(Duration::from_secs(60));
    let target = target(Arc::new(AtomicBool::new(false))).await;
    let dir = tempfile::tempdir().unwrap();
    let url = target.url();
    let hub = Hub::start(
        dir.path(),
        CONFIG,
        &[("TARGET", &url), ("FORM_SECRET", SECRET)],
    );
    // Each payload is the event's id (shown in the run list) and a field
    // of its payload (shown on the run page, and sent to the target).
    let mut runs = Vec::new();
    for payload in PAYLOADS {
        let id = send(&hub, "billing", json!({ "id": payload, "name": payload })).await;
        runs.push((id, *payload));
    }
    for (id, _) in &runs {
        run_reaches(&hub, id, "succeeded").await;
    }

    browser.goto(&hub.url("/runs")).await;
    assert_eq!(browser.find_all(By::test("run-row")).await.len(), 3);
    for (id, payload) in &runs {
        let cell = format!("[data-test=run-row][data-run-id='{id}'] td code");
        assert_eq!(browser.text(By::css(&cell)).await, *payload);
    }
    browser.assert_no_xss(&[]).await;
    browser.screenshot("runs").await;

    for (n, (id, payload)) in runs.iter().enumerate() {
        browser.goto(&hub.url(&format!("/runs/{id}"))).await;
        let shown = browser.text(By::test("event-payload")).await;
        let as_json = serde_json::to_string(payload).unwrap();
        assert!(shown.contains(&as_json), "{shown}");
        browser.assert_no_xss(&[]).await;
        browser.screenshot(&format!("run-{n}")).await;

        // Reflected in the filter form: the search box and its results.
        let query = serde_urlencoded::to_string([("search", payload)]).unwrap();
        browser.goto(&hub.url(&format!("/runs?{query}"))).await;
        assert_eq!(
            browser
                .attr(By::id("filter-search"), "value")
                .await
                .as_deref(),
            Some(*payload)
        );
        browser.assert_no_xss(&[]).await;
    }
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_in_on_a_non_loopback_listener() {
    let Some(mut browser) = Browser::launch("console_browser::login").await else {
        return;
    };
    browser.set_wait(Duration::from_secs(60));
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start_listening(
        dir.path(),
        CONFIG,
        &[
            ("TARGET", "http://127.0.0.1:9"),
            ("FORM_SECRET", SECRET),
            ("CONSOLE_TOKEN", TOKEN),
        ],
        "0.0.0.0:0",
        &["--console-token", "${env:CONSOLE_TOKEN}"],
    );

    // Without a session, a page leads to the login, which remembers it.
    browser.goto(&hub.url("/runs")).await;
    browser.wait_for_url("/login?next=%2Fruns").await;
    browser.find(By::test("login-form")).await;
    assert!(browser.cookie("ferry_console").await.is_none());
    browser.screenshot("login").await;

    // A wrong token: an error, no session.
    browser
        .fill(By::test("login-token"), "not-the-console-token")
        .await;
    browser.click(By::test("login-submit")).await;
    let error = browser.text(By::test("login-error")).await;
    assert!(!error.is_empty());
    assert!(browser.cookie("ferry_console").await.is_none());
    browser.screenshot("login-error").await;

    // The token: back to the page asked for, with a session cookie.
    browser.fill(By::test("login-token"), TOKEN).await;
    browser.click(By::test("login-submit")).await;
    browser
        .wait_until("the run list after the login", async |b| {
            let url = b.client().current_url().await.ok()?;
            (url.path() == "/runs").then_some(())
        })
        .await;
    browser.find(By::test("run-filters")).await;
    let session = browser.cookie("ferry_console").await.expect("a session");
    assert_eq!(session.http_only(), Some(true));
    assert_eq!(
        session.same_site().map(|s| s.to_string()).as_deref(),
        Some("Strict")
    );
    assert_eq!(session.secure(), Some(true), "not a loopback listener");
    assert_eq!(session.path(), Some("/"));
    assert!(session.value().starts_with("v1."), "{}", session.value());
    assert!(!session.value().contains(TOKEN));
    // HttpOnly seen from the page: its scripts cannot read the session.
    let visible = browser.script("return document.cookie;").await;
    assert!(
        !visible.as_str().unwrap_or("").contains("ferry_console"),
        "{visible}"
    );
    browser.screenshot("runs-after-login").await;
    browser.close().await;
}
