//! `ferry connections`: each connection's breaker and 429 pause, as the store
//! has them, for people and for scripts (`--json`), with secrets redacted.

mod support;

use std::sync::Arc;

use ferry::clock::{Clock, SystemClock};
use ferry::store::{SqliteOptions, SqliteStore};
use serde_json::Value;
use support::ferry;
use support::oauth::{Authorizing, BOOKS_SECRET, OAUTH_CONFIG, call_books, finished};

const CONFIG: &str = r#"version: 1
connections:
  crm:
    base_url: https://crm.example.com
    auth: { type: bearer, token: "${env:CRM_TOKEN}" }
  chat:
    base_url: https://chat.example.com
  audit:
    base_url: https://audit.example.com
    circuit_breaker: { enabled: false }
"#;
const TOKEN: &str = "tok_live_0123456789";

#[tokio::test]
async fn connections_show_the_breaker_since_when_why_and_a_429_pause() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ferry.yaml");
    std::fs::write(&config, CONFIG).unwrap();
    let env = dir.path().join("ferry.env");
    std::fs::write(&env, format!("CRM_TOKEN={TOKEN}\n")).unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();

    // What the workers would have recorded: crm's breaker open for an hour
    // (the target echoed the token in its error), chat paused by a 429.
    let now = SystemClock.now_ms();
    {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let store = SqliteStore::open(
            &data.join("ferry.db"),
            SqliteOptions {
                max_receives: 5,
                clock,
            },
        )
        .unwrap();
        let ports = store.ports();
        let why = format!(
            "HTTP 503 Service Unavailable from POST https://crm.example.com/x: bad token {TOKEN}"
        );
        ports
            .breakers
            .open("crm", now + 3_600_000, &why)
            .await
            .unwrap();
        ports
            .limits
            .pause("conn:chat", now + 3_600_000)
            .await
            .unwrap();
    }
    let args = |json: bool| {
        let mut a = vec![
            "connections".to_owned(),
            "--config".into(),
            config.to_str().unwrap().into(),
            "--env-file".into(),
            env.to_str().unwrap().into(),
            "--data".into(),
            data.to_str().unwrap().into(),
        ];
        if json {
            a.push("--json".into());
        }
        a
    };

    let a = args(true);
    let (code, out, err) = ferry(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{err}");
    let all: Vec<Value> = serde_json::from_str(&out).unwrap();
    let by_name = |n: &str| all.iter().find(|c| c["name"] == n).unwrap().clone();
    assert_eq!(all.len(), 3, "{out}");
    let crm = by_name("crm");
    assert_eq!(crm["breaker"], "open");
    let since = crm["since"].as_i64().unwrap();
    assert!((now..now + 60_000).contains(&since), "{crm}");
    assert_eq!(crm["until"].as_i64(), Some(now + 3_600_000));
    assert_eq!(
        crm["why"],
        "HTTP 503 Service Unavailable from POST https://crm.example.com/x: bad token [redacted]"
    );
    assert_eq!(crm["paused_until"], Value::Null);
    let chat = by_name("chat");
    assert_eq!(chat["breaker"], "closed");
    assert_eq!(chat["since"], Value::Null);
    assert_eq!(chat["paused_until"].as_i64(), Some(now + 3_600_000));
    assert_eq!(by_name("audit")["breaker"], "off");

    let a = args(false);
    let (code, out, err) = ferry(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains(TOKEN), "{out}");
    let line = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in\n{out}"))
            .to_owned()
    };
    let crm = line("crm");
    assert!(
        crm.contains(" open ") && crm.contains("calls wait until"),
        "{out}"
    );
    assert!(out.contains("why: HTTP 503 Service Unavailable from POST https://crm.example.com/x: bad token [redacted]"), "{out}");
    let chat = line("chat");
    assert!(
        chat.contains(" closed ") && chat.contains("paused by a 429 until"),
        "{out}"
    );
    assert!(line("audit").contains(" off "), "{out}");
}

// ------------------------------------------------------------------ authorize

/// The test plays the browser: it follows the printed URL to the provider,
/// which redirects to ferry's loopback listener with a code. ferry checks the
/// state, exchanges the code (Basic client auth, PKCE verifier), stores the
/// tokens sealed; a run then uses the stored access token, and the refresh
/// works from the stored refresh token. No token is printed or stored in clear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorize_prints_the_url_catches_the_redirect_and_stores_the_tokens() {
    let a = Authorizing::start().await;
    let (url, child, rx) = a.authorize(&[]).await;
    let parsed = reqwest::Url::parse(&url).unwrap();
    let q: std::collections::HashMap<String, String> = parsed.query_pairs().into_owned().collect();
    assert_eq!(parsed.path(), "/oauth/authorize");
    assert_eq!(q["prompt"], "consent", "the configured query is kept");
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], "ferry");
    assert_eq!(q["scope"], "com.intuit.quickbooks.accounting");
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(q["state"].len() >= 43, "a random state: {url}");
    assert!(q["redirect_uri"].starts_with("http://127.0.0.1:"), "{url}");
    assert!(q["redirect_uri"].ends_with("/callback"), "{url}");

    let page = reqwest::get(&url).await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("connection books is authorized"), "{page}");
    let (code, out, err) = tokio::task::block_in_place(|| finished(child, rx));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("connection books authorized"), "{out}");
    assert!(out.contains("a refresh token renews it"), "{out}");
    assert_eq!(a.provider.refusals(), Vec::<String>::new());
    assert_eq!(a.provider.issued(), 1);
    for secret in ["at-1", "rt-1", BOOKS_SECRET] {
        assert!(
            !out.contains(secret) && !err.contains(secret),
            "{secret} printed"
        );
    }
    let store = support::dump_store(&a.dir.path().join("data"));
    assert!(store.contains("oauth2:books"), "{store}");
    for secret in ["at-1", "rt-1", BOOKS_SECRET] {
        assert!(!store.contains(secret), "{secret} in the store");
    }

    // A hub on that store calls with the stored token, then refreshes from
    // the stored refresh token when it runs out.
    let clock = ferry::clock::ManualClock::at(SystemClock.now_ms());
    let store = SqliteStore::open(
        &a.dir.path().join("data").join("ferry.db"),
        SqliteOptions {
            max_receives: 5,
            clock: clock.clone() as Arc<dyn Clock>,
        },
    )
    .unwrap();
    let url = a.target.url();
    let vars = |n: &str| match n {
        "API" => Some(url.clone()),
        "BOOKS_SECRET" => Some(BOOKS_SECRET.to_owned()),
        _ => None,
    };
    let loaded = ferry::config::load_str(OAUTH_CONFIG, &vars).unwrap();
    let hub = ferry::hub::Hub::new(loaded.config, loaded.secrets, store.ports()).unwrap();
    assert!(call_books(&hub).await, "a run with the stored token");
    assert_eq!(
        a.target.seen_at("/api/call")[0].header("authorization"),
        "Bearer at-1"
    );
    assert_eq!(a.provider.issued(), 1, "no token request");
    clock.advance(3_600_000);
    assert!(call_books(&hub).await, "a run after the refresh");
    assert_eq!(
        a.target.seen_at("/api/call")[1].header("authorization"),
        "Bearer at-2"
    );
    assert_eq!(a.provider.presented(), vec!["rt-1".to_owned()]);
    assert_eq!(a.provider.live_refresh_token().as_deref(), Some("rt-2"));
}

/// A redirect whose `state` is not the one ferry sent is refused, and
/// nothing is exchanged or stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorize_refuses_a_redirect_with_another_state() {
    let a = Authorizing::start().await;
    let (url, child, rx) = a.authorize(&[]).await;
    let mut forged = reqwest::Url::parse(&url).unwrap();
    let pairs: Vec<(String, String)> = forged
        .query_pairs()
        .into_owned()
        .map(|(k, v)| {
            if k == "state" {
                (k, "forged".into())
            } else {
                (k, v)
            }
        })
        .collect();
    forged.query_pairs_mut().clear().extend_pairs(pairs);
    let page = reqwest::get(forged).await.unwrap().text().await.unwrap();
    assert!(page.contains("`state` is not the one ferry sent"), "{page}");
    let (code, out, err) = tokio::task::block_in_place(|| finished(child, rx));
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("`state` is not the one ferry sent"), "{err}");
    assert!(
        a.target.seen_at("/oauth/token").is_empty(),
        "no code exchanged"
    );
    assert!(!support::dump_store(&a.dir.path().join("data")).contains("oauth2:books"));
}
