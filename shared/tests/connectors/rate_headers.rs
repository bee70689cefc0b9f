//! `rate_limit.from_headers`: the connection pauses when an answer says the
//! calls are used up, until the reset it names — so no `429` is provoked.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ferry::call::Called;
use ferry::retry::Verdict;
use ferry_testkit::target::Answer;
use serde_json::json;

use crate::support::{Env, NOW, last, paused_until, post};

const CONFIG: &str = r#"
version: 1
connections:
  github:
    base_url: "${env:API_URL}/github"
    rate_limit:
      requests: 5000
      per: 1h
      from_headers: { remaining: x-ratelimit-remaining, reset: x-ratelimit-reset, reset_format: epoch_seconds }
  shopify:
    base_url: "${env:API_URL}/shopify"
    rate_limit:
      requests: 2
      per: 1s
      headroom: 1
      from_headers: { used_limit: X-Shopify-Shop-Api-Call-Limit, low_watermark: 2, pause: 1s }
"#;

/// A GitHub-like target allowing 3 calls per window: it reports what is
/// left and when the window resets (epoch seconds), and answers `429` to a
/// call past the limit. ferry stops at `remaining: 0`, waits for the reset,
/// and never meets the `429`.
#[tokio::test]
async fn github_remaining_zero_pauses_until_the_reset_and_no_429_is_provoked() {
    let env = Env::start(CONFIG).await;
    let used = Arc::new(AtomicUsize::new(0));
    let too_many = Arc::new(AtomicUsize::new(0));
    let reset = (NOW / 1000 + 60).to_string();
    {
        let (used, too_many) = (used.clone(), too_many.clone());
        env.target.behave("/github/call", move |_| {
            let n = used.fetch_add(1, Ordering::SeqCst) + 1;
            if n > 3 {
                too_many.fetch_add(1, Ordering::SeqCst);
                return Some(Answer::status(429, json!({"message": "rate limited"})));
            }
            Some(
                Answer::ok(json!({"n": n}))
                    .header("x-ratelimit-remaining", &(3 - n).to_string())
                    .header("x-ratelimit-reset", &reset),
            )
        });
    }
    for _ in 0..3 {
        assert_eq!(last(&post(&env, "github").await).0, Verdict::Success);
    }
    assert_eq!(
        paused_until(&env, "github").await,
        NOW + 60_000,
        "paused until x-ratelimit-reset"
    );
    // The fourth call waits for the reset instead of going out.
    assert!(matches!(post(&env, "github").await, Called::Later(_)));
    assert_eq!(env.target.count("/github/call"), 3);
    // The window resets; calls resume.
    env.clock.advance(60_000);
    used.store(0, Ordering::SeqCst);
    assert_eq!(last(&post(&env, "github").await).0, Verdict::Success);
    assert_eq!(env.target.count("/github/call"), 4);
    assert_eq!(too_many.load(Ordering::SeqCst), 0, "no 429 was provoked");
}

/// Shopify reports `used/limit`; at the low watermark (2 left) the
/// connection pauses for `pause` (its bucket leaks 2 calls a second).
#[tokio::test]
async fn shopify_used_limit_at_the_watermark_pauses_for_the_configured_time() {
    let env = Env::start(CONFIG).await;
    env.target.script(
        "/shopify/call",
        [
            Answer::ok(json!({})).header("x-shopify-shop-api-call-limit", "10/40"),
            Answer::ok(json!({})).header("x-shopify-shop-api-call-limit", "38/40"),
        ],
    );
    assert_eq!(last(&post(&env, "shopify").await).0, Verdict::Success);
    assert_eq!(
        paused_until(&env, "shopify").await,
        0,
        "8 calls left: no pause"
    );
    env.clock.advance(1_000);
    assert_eq!(last(&post(&env, "shopify").await).0, Verdict::Success);
    assert_eq!(paused_until(&env, "shopify").await, NOW + 2_000);
}

/// `from_headers` is checked at load.
#[test]
fn from_headers_is_checked_at_load() {
    let yaml = r#"
version: 1
connections:
  a:
    base_url: "https://a.example.com"
    rate_limit: { requests: 1, per: 1s, from_headers: { reset: "bad header", pause: 0s } }
  b:
    base_url: "https://b.example.com"
    rate_limit: { requests: 1, per: 1s, from_headers: { remaining: x-left, used_limit: x-used } }
"#;
    let errs = match ferry::config::load_str(yaml, &|_: &str| None) {
        Ok(_) => panic!("the config loaded"),
        Err(e) => e.lines().join("\n"),
    };
    for want in [
        "connections.a.rate_limit.from_headers: from_headers needs `remaining`",
        "connections.a.rate_limit.from_headers.reset: \"bad header\" is not a valid HTTP header name",
        "connections.a.rate_limit.from_headers.pause: pause must be greater than zero",
        "connections.b.rate_limit.from_headers.used_limit: set `remaining` or `used_limit`, not both",
    ] {
        assert!(errs.contains(want), "missing {want:?} in:\n{errs}");
    }
}
