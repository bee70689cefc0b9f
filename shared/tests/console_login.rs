//! The console's login attempt limit: a few wrong tokens per client address
//! per minute, then 429 with `Retry-After` (even for the right token) until
//! the minute is over; other addresses are not held back. Time is the hub's
//! manual clock.

mod replay_support;

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use ferry::console::limit::{LOGIN_FAILURES, LOGIN_WINDOW_MS};
use ferry::console::{Access, Console, Options};
use http_body_util::BodyExt;
use replay_support::{Bench, RETRYING};
use tower::ServiceExt;

const TOKEN: &str = "a-console-token-of-some-length";

fn console(bench: &Bench) -> Router {
    ferry::console::router(Console::new(
        bench.hub.clone(),
        Options {
            base: String::new(),
            access: Access::Token(TOKEN.into()),
            secure_cookie: true,
            cli_store: "--data .ferry".into(),
            cli_config: "--config ferry.yaml".into(),
        },
    ))
}

/// `POST /login` with `token`, from `from` (no client address when `None`):
/// the status, `Retry-After` and the body.
async fn login(
    app: &Router,
    from: Option<&str>,
    token: &str,
) -> (StatusCode, Option<String>, String) {
    let body = serde_urlencoded::to_string([("token", token), ("next", "/runs")]).unwrap();
    let mut req = Request::post("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap();
    if let Some(addr) = from {
        let addr: SocketAddr = addr.parse().unwrap();
        req.extensions_mut().insert(ConnectInfo(addr));
    }
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let retry = resp
        .headers()
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, retry, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn wrong_tokens_from_one_address_are_held_back_for_a_minute() {
    let bench = Bench::start(&RETRYING.replace("RETRY", "{ max_attempts: 3 }")).await;
    let app = console(&bench);
    const A: &str = "203.0.113.7:50000";
    const B: &str = "203.0.113.8:50000";
    for _ in 0..LOGIN_FAILURES {
        let (status, retry, _) = login(&app, Some(A), "not-it").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(retry, None);
    }
    bench.clock.advance(10_000);
    let (status, retry, body) = login(&app, Some(A), "not-it").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry.as_deref(), Some("50"));
    assert!(body.contains("try again in 50 s"), "{body}");
    // Held back even with the right token: no guess is checked meanwhile.
    let (status, _, _) = login(&app, Some(A), TOKEN).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Another port of the same address is the same client.
    let (status, _, _) = login(&app, Some("203.0.113.7:50001"), TOKEN).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Another address is not held back.
    let (status, _, _) = login(&app, Some(B), TOKEN).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // Requests without a client address count together.
    let (status, _, _) = login(&app, None, "not-it").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    bench.clock.advance(LOGIN_WINDOW_MS - 10_000);
    let (status, _, _) = login(&app, Some(A), TOKEN).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "the minute is over");
}

#[tokio::test]
async fn a_login_forgets_the_failures_before_it() {
    let bench = Bench::start(&RETRYING.replace("RETRY", "{ max_attempts: 3 }")).await;
    let app = console(&bench);
    const A: &str = "[2001:db8::7]:443";
    for _ in 1..LOGIN_FAILURES {
        assert_eq!(
            login(&app, Some(A), "not-it").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(login(&app, Some(A), TOKEN).await.0, StatusCode::SEE_OTHER);
    for _ in 1..LOGIN_FAILURES {
        assert_eq!(
            login(&app, Some(A), "not-it").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(login(&app, Some(A), TOKEN).await.0, StatusCode::SEE_OTHER);
}
