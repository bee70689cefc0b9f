//! Classification on the whole response, through the one call path
//! ([`ferry::call::call`]) and the one retry decision
//! ([`ferry::retry::decide`]): the answers of real APIs that a status code
//! alone misjudges.

use std::time::Duration;

use ferry::call::Called;
use ferry::model::Failure;
use ferry::retry::{Decision, GiveUp, History, Policy, Verdict, decide};
use ferry_testkit::target::Answer;
use serde_json::json;

use crate::support::{Env, NOW, last, paused_until, post};

const CONFIG: &str = r#"
version: 1
connections:
  slack:
    base_url: "${env:API_URL}/slack"
    auth: { type: bearer, token: "${env:TOKEN}" }
    classify:
      - when: "response.body.ok == false and response.body.error == 'ratelimited'"
        outcome: rate_limited
      - when: "response.body.error in ['invalid_auth', 'token_revoked']"
        outcome: auth_failed
      - when: "response.body.ok == false"
        outcome: rejected
  github:
    base_url: "${env:API_URL}/github"
    classify:
      - when: "response.status in [403, 429] and response.headers['x-ratelimit-remaining'] == '0'"
        outcome: rate_limited
        until_header: x-ratelimit-reset
  openai:
    base_url: "${env:API_URL}/openai"
    classify:
      - when: "response.status == 429 and response.body.error.code == 'insufficient_quota'"
        outcome: fail
  shopify:
    base_url: "${env:API_URL}/shopify"
    classify:
      - when: "response.body.errors[0].extensions.code == 'THROTTLED'"
        outcome: rate_limited
        until: "(response.body.extensions.cost.requestedQueryCost - response.body.extensions.cost.throttleStatus.currentlyAvailable) / response.body.extensions.cost.throttleStatus.restoreRate"
  upsert:
    base_url: "${env:API_URL}/upsert"
    classify: { "409": success, "5xx": fail }
"#;

/// The retry decision after a first attempt judged `verdict`.
fn decision(verdict: &Verdict, status: Option<u16>) -> Decision {
    let policy = Policy::resolve(None, None);
    let history = History {
        attempts: 1,
        first_at: NOW,
    };
    decide(verdict, status, history, &policy, NOW, 0.5)
}

fn gave_up(failure: Failure) -> Decision {
    Decision::GiveUp(GiveUp {
        failure,
        why: String::new(),
    })
}

/// Slack's `chat.postMessage` answers `200 {"ok": false, "error":
/// "ratelimited"}` with `Retry-After`: not a success, but a rate limit that
/// pauses the whole connection until then; calls go out again once it ends.
#[tokio::test]
async fn slack_200_ok_false_ratelimited_pauses_the_connection_until_retry_after() {
    let env = Env::start(CONFIG).await;
    env.target.script(
        "/slack/call",
        [
            Answer::ok(json!({"ok": false, "error": "ratelimited"})).header("retry-after", "30"),
            Answer::ok(json!({"ok": true, "ts": "1.2"})),
        ],
    );
    let first = post(&env, "slack").await;
    let (verdict, status) = last(&first);
    let thirty = Duration::from_secs(30);
    assert_eq!(
        verdict,
        Verdict::RateLimited {
            after: Some(thirty)
        }
    );
    assert_eq!(decision(&verdict, status), Decision::RetryIn(thirty));
    assert_eq!(paused_until(&env, "slack").await, NOW + 30_000);
    // While paused, nothing goes out.
    assert!(matches!(post(&env, "slack").await, Called::Later(_)));
    assert_eq!(env.target.count("/slack/call"), 1);
    // Once the pause has passed, the call goes out and succeeds.
    env.clock.advance(30_000);
    let (verdict, _) = last(&post(&env, "slack").await);
    assert_eq!(verdict, Verdict::Success);
    assert_eq!(env.target.count("/slack/call"), 2);
}

/// Slack's other `ok: false` answers: a revoked token is an authentication
/// failure (no refresh for a static token), any other error is final.
#[tokio::test]
async fn slack_token_revoked_is_auth_failed_and_other_errors_are_rejected() {
    let env = Env::start(CONFIG).await;
    env.target.script(
        "/slack/call",
        [
            Answer::ok(json!({"ok": false, "error": "token_revoked"})),
            Answer::ok(json!({"ok": false, "error": "channel_not_found"})),
        ],
    );
    let (verdict, status) = last(&post(&env, "slack").await);
    assert_eq!(verdict, Verdict::Unauthorized);
    assert_eq!(decision(&verdict, status), gave_up(Failure::AuthFailed));
    let (verdict, status) = last(&post(&env, "slack").await);
    assert_eq!(verdict, Verdict::Final(Failure::Rejected));
    assert_eq!(decision(&verdict, status), gave_up(Failure::Rejected));
    assert_eq!(paused_until(&env, "slack").await, 0, "no pause");
}

/// GitHub's primary rate limit is a `403` with `x-ratelimit-remaining: 0`:
/// rate limited until `x-ratelimit-reset` (epoch seconds), not a missing
/// permission. A `403` without it still is one.
#[tokio::test]
async fn github_403_with_remaining_zero_is_rate_limited_until_the_reset() {
    let env = Env::start(CONFIG).await;
    let reset = (NOW / 1000 + 90).to_string();
    env.target.script(
        "/github/call",
        [
            Answer::status(403, json!({"message": "API rate limit exceeded"}))
                .header("x-ratelimit-remaining", "0")
                .header("x-ratelimit-reset", &reset),
            Answer::status(403, json!({"message": "Resource not accessible"}))
                .header("x-ratelimit-remaining", "4999"),
        ],
    );
    let (verdict, status) = last(&post(&env, "github").await);
    let ninety = Duration::from_secs(90);
    assert_eq!(
        verdict,
        Verdict::RateLimited {
            after: Some(ninety)
        }
    );
    assert_eq!(decision(&verdict, status), Decision::RetryIn(ninety));
    assert_eq!(paused_until(&env, "github").await, NOW + 90_000);
    env.clock.advance(90_000);
    let (verdict, status) = last(&post(&env, "github").await);
    assert_eq!(verdict, Verdict::Fail);
    assert_eq!(
        decision(&verdict, status),
        gave_up(Failure::PermissionDenied)
    );
}

/// OpenAI's `429 insufficient_quota` will not clear by waiting: a body rule
/// makes it final, while its `429 rate_limit_exceeded` is still retried
/// after `Retry-After`.
#[tokio::test]
async fn openai_429_insufficient_quota_is_final_and_rate_limit_exceeded_retries() {
    let env = Env::start(CONFIG).await;
    env.target.script(
        "/openai/call",
        [
            Answer::status(
                429,
                json!({"error": {"code": "insufficient_quota", "type": "insufficient_quota"}}),
            ),
            Answer::status(429, json!({"error": {"code": "rate_limit_exceeded"}}))
                .header("retry-after", "2"),
        ],
    );
    let (verdict, status) = last(&post(&env, "openai").await);
    assert_eq!(verdict, Verdict::Fail);
    assert_eq!(decision(&verdict, status), gave_up(Failure::Rejected));
    assert_eq!(
        paused_until(&env, "openai").await,
        0,
        "a final 429 pauses nothing"
    );
    let (verdict, status) = last(&post(&env, "openai").await);
    let two = Duration::from_secs(2);
    assert_eq!(verdict, Verdict::Retry { after: Some(two) });
    assert_eq!(decision(&verdict, status), Decision::RetryIn(two));
}

/// Shopify's GraphQL API answers a throttled query `200` with the wait only
/// in the body: a rule's `until` computes it (cost needed ÷ restore rate).
#[tokio::test]
async fn shopify_graphql_throttled_200_pauses_for_the_seconds_until_computes() {
    let env = Env::start(CONFIG).await;
    let cost = |available: f64| {
        json!({"requestedQueryCost": 110, "actualQueryCost": null,
            "throttleStatus": {"maximumAvailable": 1000.0, "currentlyAvailable": available, "restoreRate": 50.0}})
    };
    env.target.script(
        "/shopify/call",
        [
            Answer::ok(
                json!({"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
                "extensions": {"cost": cost(10.0)}}),
            )
            .header("retry-after", "30"),
            Answer::ok(json!({"data": {}, "extensions": {"cost": cost(900.0)}})),
        ],
    );
    let (verdict, _) = last(&post(&env, "shopify").await);
    let two = Duration::from_secs(2);
    assert_eq!(
        verdict,
        Verdict::RateLimited { after: Some(two) },
        "until beats Retry-After"
    );
    assert_eq!(paused_until(&env, "shopify").await, NOW + 2_000);
    env.clock.advance(2_000);
    assert_eq!(last(&post(&env, "shopify").await).0, Verdict::Success);
}

/// The status map form still works as before.
#[tokio::test]
async fn the_status_map_form_is_unchanged() {
    let env = Env::start(CONFIG).await;
    env.target.script(
        "/upsert/call",
        [
            Answer::status(409, json!({"error": "exists"})),
            Answer::status(502, json!({})),
        ],
    );
    assert_eq!(last(&post(&env, "upsert").await).0, Verdict::Success);
    assert_eq!(last(&post(&env, "upsert").await).0, Verdict::Fail);
}

/// Rules are checked at load: syntax, names other than `response`, and
/// `until_header` on an outcome it does not apply to.
#[test]
fn classify_rules_are_checked_at_load() {
    let yaml = r#"
version: 1
connections:
  a:
    base_url: "https://a.example.com"
    classify:
      - { when: "response.body.ok ==", outcome: retry }
      - { when: "body.ok == false", outcome: retry }
      - { when: "response.status == 403", outcome: retry, until_header: x-ratelimit-reset }
      - { when: "response.status == 403", outcome: rate_limited, until_header: "bad header" }
      - { when: "response.status == 200", outcome: retry, until: "response.body.wait" }
      - { when: "response.status == 200", outcome: rate_limited, until: "body.wait" }
"#;
    let errs = load_errors(yaml);
    for want in [
        "connections.a.classify[0].when: expression syntax error",
        "connections.a.classify[1].when: refers to `body`, but a classify rule sees only `response`",
        "connections.a.classify[2].until_header: `until_header` only applies to `outcome: rate_limited`",
        "connections.a.classify[3].until_header: \"bad header\" is not a valid HTTP header name",
        "connections.a.classify[4].until: `until` only applies to `outcome: rate_limited`",
        "connections.a.classify[5].until: refers to `body`, but a classify rule sees only `response`",
    ] {
        assert!(errs.contains(want), "missing {want:?} in:\n{errs}");
    }
    let unknown = load_errors(
        "version: 1\nconnections:\n  a:\n    base_url: \"https://a.example.com\"\n    classify: [{ when: \"response.status == 403\", outcome: later }]\n",
    );
    assert!(
        unknown.contains("connections.a.classify[0].outcome: unknown value \"later\"")
            && unknown.contains("rate_limited"),
        "{unknown}"
    );
}

fn load_errors(yaml: &str) -> String {
    match ferry::config::load_str(yaml, &|_: &str| None) {
        Ok(_) => panic!("the config loaded"),
        Err(e) => e.lines().join("\n"),
    }
}
