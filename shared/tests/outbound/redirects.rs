//! Redirects: followed only within the connection's origin (at most five),
//! never with a `Referer`; a redirect elsewhere fails the call at once with a
//! clear reason. For steps of every auth kind, sync polls and token requests.

use ferry::model::{Failure, RunStatus};
use serde_json::json;

use crate::support::{SOURCE, Server, drain, hub, ok, post, runs};

const API_KEY: &str = "key-SECRET-123";

/// `to`: where `/base/hop` (and `/base/oauth/hop`) redirect.
async fn origin_a(to: &str) -> Server {
    let to = to.to_owned();
    Server::start(move |req| {
        let go = |loc: String| (302, vec![("location".to_owned(), loc)], json!({}));
        match req.path.as_str() {
            "/base/hop" | "/base/oauth/hop" => go(format!("{to}/steal?x=1")),
            "/base/same" => go("/base/landed".into()),
            "/base/loop" => go("/base/loop".into()),
            "/base/oauth/token" => (
                200,
                vec![],
                json!({ "access_token": "tok-SECRET-456", "expires_in": 3600 }),
            ),
            _ => ok(),
        }
    })
    .await
}

/// One workflow per auth kind, each calling `path` on its own connection.
fn config(path: &str) -> String {
    let conns = [
        ("bearer", r#"{ type: bearer, token: "${env:SECRET}" }"#),
        (
            "basic",
            r#"{ type: basic, username: ferry, password: "${env:SECRET}" }"#,
        ),
        (
            "header",
            r#"{ type: api_key, header: X-Mail-Key, key: "${env:SECRET}" }"#,
        ),
        (
            "query",
            r#"{ type: api_key, query: api_key, key: "${env:SECRET}" }"#,
        ),
        (
            "oauth",
            r#"{ type: oauth2, token_url: "${env:A}/base/oauth/token", client_id: ferry, client_secret: "${env:SECRET}" }"#,
        ),
    ];
    let mut y = String::from("version: 1\nconnections:\n");
    for (name, auth) in conns {
        y += &format!("  {name}: {{ base_url: \"${{env:A}}/base\", auth: {auth} }}\n");
    }
    y += SOURCE;
    y += "workflows:\n";
    for (name, _) in conns {
        y += &format!(
            "  {name}:\n    trigger: {{ source: form }}\n    steps:\n      - {{ id: call, connection: {name}, request: {{ method: POST, path: {path}, json: {{ n: 1 }} }} }}\n"
        );
    }
    y
}

#[tokio::test]
async fn a_redirect_to_another_origin_is_not_followed_for_any_auth_kind() {
    let b = Server::start(|_| ok()).await;
    let a = origin_a(&b.url).await;
    let env = hub(&config("/hop"), &[("A", &a.url), ("SECRET", API_KEY)]);
    post(&env.hub, &json!({ "id": "e1" })).await;
    drain(&env.hub).await;
    let runs = runs(&env.hub).await;
    assert_eq!(runs.len(), 5);
    let other = b.url.clone();
    for (wf, rs) in &runs {
        let r = &rs[0];
        assert_eq!(r.status, RunStatus::DeadLettered, "{wf}: {r:?}");
        assert_eq!(r.failure, Some(Failure::Rejected), "{wf}: {r:?}");
        let attempts = &r.steps[0].attempts;
        assert_eq!(attempts.len(), 1, "{wf}: not retried: {r:?}");
        assert_eq!(attempts[0].status_code, Some(302));
        let err = r.error.as_deref().unwrap();
        assert!(
            err.contains(&format!(
                "redirected (302) to another origin {other} (not followed: credentials stay with their connection)"
            )),
            "{wf}: {err}"
        );
        assert!(
            !err.contains("steal"),
            "{wf}: only the origin is named: {err}"
        );
    }
    // The other origin never saw a request: no API key header, no query key,
    // no Referer, no token.
    assert!(b.seen().is_empty(), "{:?}", b.seen());
    // The first hop did carry each credential (the test would prove nothing otherwise).
    let hops: Vec<_> = a
        .seen()
        .into_iter()
        .filter(|s| s.path == "/base/hop")
        .collect();
    assert_eq!(hops.len(), 5);
    assert!(
        hops.iter()
            .any(|s| s.headers.get("x-mail-key").map(String::as_str) == Some(API_KEY))
    );
    assert!(
        hops.iter()
            .any(|s| s.query.as_deref().is_some_and(|q| q.contains(API_KEY)))
    );
    assert!(hops.iter().all(|s| !s.headers.contains_key("referer")));
}

#[tokio::test]
async fn a_same_origin_redirect_is_followed_with_the_credential_and_no_referer() {
    let b = Server::start(|_| ok()).await;
    let a = origin_a(&b.url).await;
    let env = hub(&config("/same"), &[("A", &a.url), ("SECRET", API_KEY)]);
    post(&env.hub, &json!({ "id": "e1" })).await;
    drain(&env.hub).await;
    for (wf, rs) in &runs(&env.hub).await {
        assert_eq!(rs[0].status, RunStatus::Succeeded, "{wf}: {:?}", rs[0]);
    }
    let landed: Vec<_> = a
        .seen()
        .into_iter()
        .filter(|s| s.path == "/base/landed")
        .collect();
    assert_eq!(
        landed.len(),
        5,
        "every auth kind followed the same-origin redirect"
    );
    assert!(
        landed.iter().all(|s| !s.headers.contains_key("referer")),
        "{landed:?}"
    );
    assert!(
        landed
            .iter()
            .any(|s| s.headers.get("x-mail-key").map(String::as_str) == Some(API_KEY))
    );
}

#[tokio::test]
async fn a_redirect_loop_on_the_same_origin_stops_after_five() {
    let a = origin_a("http://127.0.0.1:9").await;
    let env = hub(&config("/loop"), &[("A", &a.url), ("SECRET", API_KEY)]);
    post(&env.hub, &json!({ "id": "e1" })).await;
    drain(&env.hub).await;
    let r = &runs(&env.hub).await["header"][0];
    assert_eq!(r.failure, Some(Failure::Rejected), "{r:?}");
    assert!(
        r.error.as_deref().unwrap().contains("more than 5 times"),
        "{r:?}"
    );
}

#[tokio::test]
async fn a_token_endpoint_redirect_to_another_origin_is_not_followed() {
    let b = Server::start(|_| ok()).await;
    let a = origin_a(&b.url).await;
    let yaml = config("/x").replace("/base/oauth/token", "/base/oauth/hop");
    let env = hub(&yaml, &[("A", &a.url), ("SECRET", API_KEY)]);
    post(&env.hub, &json!({ "id": "e1" })).await;
    drain(&env.hub).await;
    let r = &runs(&env.hub).await["oauth"][0];
    assert_eq!(r.status, RunStatus::AuthFailed, "{r:?}");
    let err = r.error.as_deref().unwrap();
    assert!(err.contains("token endpoint"), "{err}");
    assert!(err.contains("to another origin"), "{err}");
    assert!(b.seen().is_empty(), "the client secret went nowhere else");
}

#[tokio::test]
async fn a_sync_poll_redirect_to_another_origin_is_not_followed() {
    let b = Server::start(|_| ok()).await;
    let a = origin_a(&b.url).await;
    let yaml = r#"version: 1
connections:
  api: { base_url: "${env:A}/base", auth: { type: api_key, query: api_key, key: "${env:SECRET}" } }
syncs:
  s:
    schedule: rate(1 hour)
    source:
      connection: api
      request: { method: GET, path: /hop }
      records: response.body.items
      id: record.id
    steps:
      - { id: put, connection: api, request: { method: PUT, path: "/put/{{ body.id }}" } }
"#;
    let env = hub(yaml, &[("A", &a.url), ("SECRET", API_KEY)]);
    let err = ferry::sync::run_sync(&env.hub, "s").await.unwrap_err();
    assert!(err.to_string().contains("to another origin"), "{err}");
    assert!(!err.is_retryable(), "{err}");
    assert!(b.seen().is_empty(), "{:?}", b.seen());
}
