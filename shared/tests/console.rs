//! The web console over an in-process hub on the embedded store: pages
//! render with a mix of runs, the run list's filters and pages, replay,
//! re-run and pause by POST with the session's CSRF token (refused without
//! it), a login when a token is required, the cookie's attributes, and
//! payload data escaped in the served HTML.

mod replay_support;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use ferry::console::{Access, Console, Options};
use ferry::model::{RunQuery, RunStatus};
use http_body_util::BodyExt;
use replay_support::Bench;
use serde_json::json;
use tower::ServiceExt;

const CONFIG: &str = r#"version: 1
connections:
  crm: { base_url: "${env:CRM_URL}" }
sources:
  form: { verify: { scheme: api-key, header: X-Key, secret: "${env:KEY}" }, event_id: "{{ body.id }}", max_silence: 1h }
workflows:
  good: { trigger: { source: form }, steps: [ { id: a, connection: crm, request: { path: /ok, json: { id: "{{ body.id }}" } } } ] }
  bad: { trigger: { source: form }, steps: [ { id: b, connection: crm, request: { path: /bad, json: { id: "{{ body.id }}" } } } ] }
"#;

const XSS_SCRIPT: &str = "<script>alert(1)</script>";
const XSS_IMG: &str = "\"><img src=x onerror=alert(1)>";
const TOKEN: &str = "a-console-token-of-some-length";

/// A hub with 4 events: each runs `good` (succeeds) and `bad` (400: dead-lettered).
async fn hub_with_runs() -> Bench {
    let bench = Bench::start(CONFIG).await;
    bench
        .target
        .respond("/crm/bad", 400, json!({ "error": "no" }));
    for i in 0..3 {
        bench.send(&format!("e-{i}")).await;
        bench.clock.advance(1_000);
    }
    bench
        .send_json("form", json!({ "id": XSS_SCRIPT, "name": XSS_IMG }))
        .await;
    bench.drain(3).await;
    bench
}

fn console(bench: &Bench, access: Access, secure: bool) -> Router {
    ferry::console::router(Console::new(
        bench.hub.clone(),
        Options {
            base: String::new(),
            access,
            secure_cookie: secure,
            cli_store: "--data .ferry".into(),
            cli_config: "--config ferry.yaml".into(),
        },
    ))
}

struct Got {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn call(app: &Router, req: Request<Body>) -> Got {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Got {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

async fn get(app: &Router, path: &str, cookie: Option<&str>) -> Got {
    let mut req = Request::get(path);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    call(app, req.body(Body::empty()).unwrap()).await
}

async fn post(app: &Router, path: &str, cookie: Option<&str>, form: &[(&str, &str)]) -> Got {
    let mut req =
        Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    let body = serde_urlencoded::to_string(form).unwrap();
    call(app, req.body(Body::from(body)).unwrap()).await
}

/// The session cookie (`name=value`) a response sets.
fn session_cookie(got: &Got) -> String {
    let set = got
        .headers
        .get(header::SET_COOKIE)
        .expect("a session cookie")
        .to_str()
        .unwrap();
    set.split(';').next().unwrap().to_owned()
}

/// The CSRF token in a page's forms.
fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token");
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

fn rows(html: &str) -> usize {
    html.matches("data-test=\"run-row\"").count()
}

#[tokio::test]
async fn every_page_renders_with_a_mix_of_runs() {
    let bench = hub_with_runs().await;
    let app = console(&bench, Access::Open, false);
    let overview = get(&app, "/", None).await;
    assert_eq!(overview.status, StatusCode::OK, "{}", overview.body);
    for want in [
        "data-workflow=\"good\"",
        "data-workflow=\"bad\"",
        "4 succeeded",
        "4 failed",
        "<svg class=\"chart\"",
        "name=\"viewport\"",
    ] {
        assert!(overview.body.contains(want), "overview lacks {want}");
    }
    assert!(
        overview
            .body
            .contains("data-test=\"dlq-depth\" href=\"/dlq\">4</a>")
    );
    assert!(
        overview
            .body
            .contains("<span class=\"tag fresh\">fresh</span>")
    );
    for (path, shows) in [
        ("/runs", "<time datetime="),
        ("/dlq", "step b: HTTP 400"),
        ("/sources", "data-source=\"form\""),
        ("/connections", "data-connection=\"crm\""),
        ("/syncs", "No syncs in the config."),
        ("/alerts", "No open alerts."),
    ] {
        let got = get(&app, path, None).await;
        assert_eq!(got.status, StatusCode::OK, "{path}: {}", got.body);
        assert!(
            got.body.contains(shows),
            "{path} lacks {shows}: {}",
            got.body
        );
    }
    let runs = get(&app, "/runs", None).await;
    assert_eq!(rows(&runs.body), 8);
    let dlq = get(&app, "/dlq", None).await;
    assert_eq!(dlq.body.matches("data-test=\"dlq-row\"").count(), 4);
    assert_eq!(
        dlq.body.matches("data-test=\"dlq-group\"").count(),
        1,
        "one workflow, one reason"
    );
    let missing = get(&app, "/runs/no-such-run", None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.contains("no run with id no-such-run"));
}

/// The decoded `href` of the element with `data-test="{test}"` in `html`.
fn href_of(html: &str, test: &str) -> String {
    let at = html
        .find(&format!("data-test=\"{test}\" href=\""))
        .unwrap_or_else(|| panic!("no {test} link"));
    let rest = &html[at..];
    let rest = &rest[rest.find("href=\"").unwrap() + "href=\"".len()..];
    rest[..rest.find('"').unwrap()]
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
}

#[tokio::test]
async fn the_overview_counts_link_to_exactly_the_runs_they_count() {
    let bench = hub_with_runs().await;
    // Two more events, not yet executed: `good` and `bad` each wait twice.
    bench.send("later-1").await;
    bench.send("later-2").await;
    let app = console(&bench, Access::Open, false);
    let overview = get(&app, "/", None).await;
    let card = &overview.body[overview.body.find("data-workflow=\"bad\"").unwrap()..];
    assert!(card.contains("4 failed") && card.contains("2 waiting"));
    for (link, statuses, n) in [
        ("count-failed", &["dead_lettered"][..], 4),
        ("count-waiting", &["queued", "running", "retrying"][..], 2),
    ] {
        let path = href_of(card, link);
        assert!(path.contains("where=run.status"), "{path}");
        let got = get(&app, &path, None).await;
        assert_eq!(got.status, StatusCode::OK, "{path}: {}", got.body);
        assert_eq!(rows(&got.body), n, "{path}");
        assert!(!got.body.contains("data-workflow=\"good\""), "{path}");
        let shown = got.body.matches("data-status=\"").count();
        let matching: usize = statuses
            .iter()
            .map(|st| got.body.matches(&format!("data-status=\"{st}\"")).count())
            .sum();
        assert_eq!((shown, matching), (n, n), "{path}");
    }
}

#[tokio::test]
async fn the_run_list_filters_and_pages_like_the_cli() {
    let bench = hub_with_runs().await;
    let app = console(&bench, Access::Open, false);
    let bad = get(&app, "/runs?workflow=bad&status=dead_lettered", None).await;
    assert_eq!(rows(&bad.body), 4);
    assert!(!bad.body.contains("data-workflow=\"good\""));
    assert!(
        bad.body.contains(
            "ferry runs list --workflow &#x27;bad&#x27; --status &#x27;dead_lettered&#x27;"
        )
    );
    let none = get(&app, "/runs?workflow=good&status=dead_lettered", None).await;
    assert_eq!(rows(&none.body), 0);
    assert!(none.body.contains("runs-empty"));
    let search = get(&app, "/runs?search=e-1&workflow=good", None).await;
    assert_eq!(rows(&search.body), 1);
    let wrong = get(&app, "/runs?status=nope", None).await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(
        wrong.body.contains("status &quot;nope&quot;: unknown"),
        "{}",
        wrong.body
    );

    // Three pages of three, no run twice, none missing.
    let mut seen = std::collections::HashSet::new();
    let mut path = "/runs?limit=3".to_owned();
    for page in 0.. {
        let got = get(&app, &path, None).await;
        for part in got.body.split("data-run-id=\"").skip(1) {
            assert!(seen.insert(part[..36].to_owned()), "a run shown twice");
        }
        let Some(at) = got
            .body
            .find("id=\"page-older\" data-test=\"page-older\" href=\"")
        else {
            assert_eq!(page, 2);
            break;
        };
        let rest = &got.body[at + "id=\"page-older\" data-test=\"page-older\" href=\"".len()..];
        path = rest[..rest.find('"').unwrap()].replace("&amp;", "&");
    }
    assert_eq!(seen.len(), 8);
}

#[tokio::test]
async fn replay_and_pause_are_posts_with_the_sessions_csrf_token() {
    let bench = hub_with_runs().await;
    let app = console(&bench, Access::Open, false);
    let page = get(&app, "/dlq", None).await;
    let cookie = session_cookie(&page);
    let csrf = csrf_of(&page.body);
    let at = page.body.find("data-dlq-id=\"").unwrap() + "data-dlq-id=\"".len();
    let dlq_id = page.body[at..].split('"').next().unwrap().to_owned();
    let replay = format!("/dlq/{dlq_id}/replay");

    let without = post(&app, &replay, Some(&cookie), &[]).await;
    assert_eq!(without.status, StatusCode::FORBIDDEN);
    let forged = post(&app, &replay, Some(&cookie), &[("csrf", &"ab".repeat(32))]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    // Another session's token does not pass either.
    let other = csrf_of(&get(&app, "/dlq", None).await.body);
    assert_ne!(other, csrf);
    let crossed = post(&app, &replay, Some(&cookie), &[("csrf", &other)]).await;
    assert_eq!(crossed.status, StatusCode::FORBIDDEN);
    assert_eq!(
        bench.hub.ports.queue.dead_letter_depth(100).await.unwrap(),
        4,
        "nothing replayed yet"
    );

    let done = post(&app, &replay, Some(&cookie), &[("csrf", &csrf)]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let to = done.headers[header::LOCATION].to_str().unwrap();
    assert!(to.starts_with("/runs/"), "{to}");
    assert_eq!(
        bench.hub.ports.queue.dead_letter_depth(100).await.unwrap(),
        3
    );
    let run_id = to.trim_start_matches("/runs/").split('?').next().unwrap();
    let run = bench.run(run_id).await.unwrap();
    assert_eq!(run.status, RunStatus::Queued, "the run is queued again");

    // The bulk replay shows how many before it replays.
    let confirm = get(&app, "/dlq/replay?workflow=bad", Some(&cookie)).await;
    assert!(
        confirm.body.contains("data-count=\"3\""),
        "{}",
        confirm.body
    );
    let bulk = post(
        &app,
        "/dlq/replay",
        Some(&cookie),
        &[("csrf", &csrf), ("workflow", "bad")],
    )
    .await;
    assert_eq!(bulk.status, StatusCode::OK, "{}", bulk.body);
    assert!(
        bulk.body
            .contains("3 replayed, 0 already replayed, 0 failed")
    );
    assert_eq!(
        bench.hub.ports.queue.dead_letter_depth(100).await.unwrap(),
        0
    );

    // Pause and resume a workflow.
    let form = [
        ("csrf", csrf.as_str()),
        ("kind", "workflow"),
        ("name", "good"),
        ("action", "pause"),
    ];
    assert_eq!(
        post(&app, "/pause", Some(&cookie), &form[1..]).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(&app, "/pause", Some(&cookie), &form).await.status,
        StatusCode::SEE_OTHER
    );
    let held = ferry::pause::list(&bench.hub).await.unwrap();
    assert!(held.iter().any(|p| p.name == "good"), "{held:?}");
    let overview = get(&app, "/", Some(&cookie)).await;
    assert!(overview.body.contains("id=\"resume-workflow-good\""));
    let resume = [
        ("csrf", csrf.as_str()),
        ("kind", "workflow"),
        ("name", "good"),
        ("action", "resume"),
    ];
    assert_eq!(
        post(&app, "/pause", Some(&cookie), &resume).await.status,
        StatusCode::SEE_OTHER
    );
    assert!(ferry::pause::list(&bench.hub).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_token_console_asks_for_a_login_and_sets_a_strict_cookie() {
    let bench = hub_with_runs().await;
    let app = console(&bench, Access::Token(TOKEN.into()), true);
    let page = get(&app, "/runs?workflow=bad", None).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        page.headers[header::LOCATION],
        "/login?next=%2Fruns%3Fworkflow%3Dbad"
    );
    assert!(page.headers.get(header::SET_COOKIE).is_none());
    let action = post(
        &app,
        "/pause",
        None,
        &[("kind", "workflow"), ("name", "good"), ("action", "pause")],
    )
    .await;
    assert_eq!(action.status, StatusCode::UNAUTHORIZED);
    assert!(ferry::pause::list(&bench.hub).await.unwrap().is_empty());

    let form = get(&app, "/login?next=/runs", None).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("id=\"login-form\""));
    let wrong = post(
        &app,
        "/login",
        None,
        &[("token", "not-it"), ("next", "/runs")],
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.headers.get(header::SET_COOKIE).is_none());

    let ok = post(&app, "/login", None, &[("token", TOKEN), ("next", "/runs")]).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(ok.headers[header::LOCATION], "/runs");
    let set = ok.headers[header::SET_COOKIE].to_str().unwrap();
    for attr in [
        "HttpOnly",
        "SameSite=Strict",
        "Secure",
        "Path=/",
        "Max-Age=43200",
    ] {
        assert!(
            set.split("; ").any(|a| a == attr),
            "{attr} missing from {set}"
        );
    }
    let cookie = session_cookie(&ok);
    let runs = get(&app, "/runs", Some(&cookie)).await;
    assert_eq!(runs.status, StatusCode::OK);
    assert_eq!(rows(&runs.body), 8);

    // Off-site `next` goes home instead.
    let away = post(
        &app,
        "/login",
        None,
        &[("token", TOKEN), ("next", "//evil.example/")],
    )
    .await;
    assert_eq!(away.headers[header::LOCATION], "/");
    // A session expires.
    bench.clock.advance(ferry::console::access::SESSION_TTL_MS);
    assert_eq!(
        get(&app, "/runs", Some(&cookie)).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn an_open_console_issues_a_session_without_secure_on_loopback() {
    let bench = Bench::start(CONFIG).await;
    let app = console(&bench, Access::Open, false);
    let got = get(&app, "/", None).await;
    assert_eq!(got.status, StatusCode::OK);
    let set = got.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        set.contains("; HttpOnly") && set.contains("; SameSite=Strict"),
        "{set}"
    );
    assert!(!set.contains("Secure"), "{set}");
    let csp = got.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    // The login page of an open console is the overview.
    assert_eq!(
        get(&app, "/login", None).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn payload_data_is_escaped_in_the_html() {
    let bench = hub_with_runs().await;
    let app = console(&bench, Access::Open, false);
    let list = get(&app, "/runs?workflow=good", None).await;
    let query = RunQuery {
        workflow: Some("good".into()),
        event_id: Some(XSS_SCRIPT.into()),
        ..RunQuery::default()
    };
    let runs = bench.hub.ports.runs.list(&query).await.unwrap();
    let [run] = runs.as_slice() else {
        panic!("one run of the event: {runs:?}")
    };
    let run_id = &run.id;
    let run = get(&app, &format!("/runs/{run_id}"), None).await;
    assert_eq!(run.status, StatusCode::OK, "{}", run.body);
    for html in [&list.body, &run.body] {
        assert!(!html.contains(XSS_SCRIPT), "raw script tag served");
        assert!(!html.contains("<img src=x"), "raw img tag served");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
            "the id shows as text"
        );
    }
    assert!(
        run.body.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "the field shows as text"
    );
    let search = get(&app, "/runs?search=%3Cscript%3E", None).await;
    assert!(!search.body.contains(XSS_SCRIPT));
    assert!(search.body.contains("value=\"&lt;script&gt;\""));
}
