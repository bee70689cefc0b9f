//! End to end: `ferry dev` serves the web console at `/` beside the webhook
//! URLs, open on loopback; with a console token it asks for a login; on a
//! non-loopback listener it refuses to start without one (and a literal
//! token is refused: it must be a reference). The real binary.

mod support;

use support::{Hub, ferry};

const CONFIG: &str = "version: 1\nconnections:\n  api: { base_url: \"http://127.0.0.1:9\" }\nsources:\n  s:\n    verify: { scheme: none }\nworkflows:\n  w:\n    trigger: { source: s }\n    steps:\n      - id: send\n        connection: api\n        request: { path: /x }\n";
const TOKEN: &str = "a-console-token-for-the-e2e-test";

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn ferry_dev_serves_the_console_at_the_root_beside_the_hooks() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path(), CONFIG, &[]);
    let http = no_redirects();
    let page = http.get(hub.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let cookie = page.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(!cookie.contains("Secure"), "plain-http loopback: {cookie}");
    let html = page.text().await.unwrap();
    assert!(html.contains("data-workflow=\"w\""), "{html}");

    // A missing run is an HTML page, an unknown route still JSON, the hooks untouched.
    let missing = http.get(hub.url("/runs/nope")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert!(
        missing
            .text()
            .await
            .unwrap()
            .contains("no run with id nope")
    );
    let unknown = http.get(hub.url("/no/such/route")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(unknown.headers()["content-type"], "application/json");
    let (status, body) = hub
        .post(
            "s",
            br#"{"id":"1"}"#,
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(status, 202, "{body}");
}

#[tokio::test]
async fn a_console_token_means_a_login() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start_with(
        dir.path(),
        CONFIG,
        &[("CONSOLE_TOKEN", TOKEN)],
        &["--console-token", "${env:CONSOLE_TOKEN}"],
    );
    let http = no_redirects();
    let page = http.get(hub.url("/runs")).send().await.unwrap();
    assert_eq!(page.status(), 303);
    assert_eq!(page.headers()["location"], "/login?next=%2Fruns");
    let login = http
        .post(hub.url("/login"))
        .form(&[("token", TOKEN), ("next", "/runs")])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    let cookie = login.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("; HttpOnly") && cookie.contains("; SameSite=Strict"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap();
    let runs = http
        .get(hub.url("/runs"))
        .header("cookie", session)
        .send()
        .await
        .unwrap();
    assert_eq!(runs.status(), 200);
}

#[test]
fn a_non_loopback_listener_needs_a_console_token_given_by_reference() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ferry.yaml");
    std::fs::write(&config, CONFIG).unwrap();
    let data = dir.path().join("data");
    let base = [
        "dev",
        "--config",
        config.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--listen",
        "0.0.0.0:0",
    ];
    let (code, _, err) = ferry(&base);
    assert_ne!(code, 0);
    assert!(
        err.contains("is not a loopback address: the console needs a login token"),
        "{err}"
    );
    let literal: Vec<&str> = base
        .iter()
        .copied()
        .chain(["--console-token", TOKEN])
        .collect();
    let (code, _, err) = ferry(&literal);
    assert_ne!(code, 0);
    assert!(err.contains("must be a reference"), "{err}");
}
