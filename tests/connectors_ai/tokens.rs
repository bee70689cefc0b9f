//! `rate_limit.tokens`: a second, token-based bucket spent where the
//! request bucket is. A burst of large inputs is spread so the fake (which
//! counts requests and tokens over every sliding minute) never answers `429`.

use ferry::retry::Verdict;
use ferry_testkit::vendors::openai::{Call, Limits};

use crate::support::{Env, NOW, embed, embed_when_allowed, last};

/// The fake's account: 60 requests and 2,000 tokens a minute.
const LIMITS: Limits = Limits {
    rpm: 60,
    tpm: 2_000,
};

/// The preset, with the account's limits.
const WITH_BUDGET: &str = r#"
version: 1
connections:
  openai:
    preset: openai
    base_url: "${env:OPENAI_URL}"
    auth: { token: "${env:OPENAI_API_KEY}" }
    rate_limit: { requests: 60, tokens: { limit: 2000 } }
"#;

/// The same limit on requests only: what ferry did before token budgets.
const REQUESTS_ONLY: &str = r#"
version: 1
connections:
  openai:
    base_url: "${env:OPENAI_URL}"
    auth: { type: bearer, token: "${env:OPENAI_API_KEY}" }
    rate_limit: { requests: 60, per: 1m }
"#;

/// Three inputs of 400 characters: 300 tokens by the fake's count.
fn large(n: usize) -> Vec<String> {
    (0..3)
        .map(|i| format!("{n:03}-{i}-{}", "x".repeat(394)))
        .collect()
}

/// The most tokens the fake took within any 60 s.
fn busiest_minute(calls: &[Call]) -> u64 {
    let ok: Vec<&Call> = calls.iter().filter(|c| c.status == 200).collect();
    ok.iter()
        .map(|start| {
            ok.iter()
                .filter(|c| c.at >= start.at && c.at < start.at + 60_000)
                .map(|c| c.tokens)
                .sum()
        })
        .max()
        .unwrap_or(0)
}

/// Twenty calls of 300 tokens (6,000 tokens: three minutes of budget), one
/// after another as fast as ferry lets them go: ferry holds each until both
/// buckets allow it, so every call succeeds, no minute holds more than 2,000
/// tokens, and the fake never answers `429`. (One caller moves the virtual
/// clock: callers in parallel advancing one shared clock would move it
/// between a call's permit and its arrival at the fake, which is a race of
/// the test, not of ferry.)
#[tokio::test]
async fn a_burst_of_large_inputs_is_spread_so_the_tokens_per_minute_hold() {
    let env = Env::start(WITH_BUDGET, LIMITS, &[]).await;
    for n in 0..20 {
        assert_eq!(
            last(&embed_when_allowed(&env, &large(n)).await),
            (Verdict::Success, Some(200))
        );
    }
    let calls = env.openai.calls();
    assert_eq!(calls.len(), 20, "each call went out once");
    assert_eq!(env.openai.count_429(), 0, "no 429 was provoked");
    assert!(
        busiest_minute(&calls) <= LIMITS.tpm,
        "at most 2,000 tokens in any minute, got {}",
        busiest_minute(&calls)
    );
    // 6,000 tokens at 80% of 2,000 a minute, after a first 400: three minutes at least.
    let last_at = calls.iter().map(|c| c.at).max().unwrap();
    assert!(last_at - NOW >= 150_000, "spread over {} ms", last_at - NOW);
}

/// The same burst under a requests-only limit meets the fake's `429`: the
/// test above would fail without the token budget.
#[tokio::test]
async fn without_a_token_budget_the_same_burst_meets_429() {
    let env = Env::start(REQUESTS_ONLY, LIMITS, &[]).await;
    for n in 0..20 {
        embed_when_allowed(&env, &large(n)).await;
    }
    assert!(env.openai.count_429() > 0, "the fake never said 429");
}

/// A call's cost is the preset's expression over the rendered request:
/// `ceil(characters / 4)`, the fake's own count, for a list or a string.
#[tokio::test]
async fn the_presets_cost_is_a_quarter_of_the_characters_rounded_up() {
    let env = Env::start(WITH_BUDGET, LIMITS, &[]).await;
    let conn = env.hub.connection("openai").unwrap();
    for (input, want) in [
        (serde_json::json!(["abcd", "e"]), 2.0),
        (serde_json::json!("abcdefgh"), 2.0),
        (serde_json::json!(["a"]), 1.0),
    ] {
        let spec = ferry::config::RequestSpec {
            method: ferry::config::Method::Post,
            path: "/v1/embeddings".into(),
            query: Default::default(),
            headers: Default::default(),
            json: Some(serde_json::json!({ "input": input })),
            form: None,
        };
        let ctx = ferry::template::context(&serde_json::json!({}));
        let req = ferry::outbound::prepare(&env.hub.templates, conn, &spec, &ctx).unwrap();
        assert_eq!(
            ferry::limits::cost(&env.hub.templates, conn, &req).unwrap(),
            Some(want),
            "{input}"
        );
    }
    // One call spends its cost, 300 of the bucket's 400 (20% of 2,000);
    // the next 300 are 200 tokens away at 1,600 a minute: 7.5 s.
    assert_eq!(last(&embed(&env, &large(0)).await).0, Verdict::Success);
    match embed(&env, &large(1)).await {
        ferry::call::Called::Later(d) => assert_eq!(d, std::time::Duration::from_millis(7_500)),
        other => panic!("the second call was not held: {other:?}"),
    }
    assert_eq!(env.openai.calls().len(), 1);
}

/// `rate_limit.tokens` and a list of `from_headers` pairs are checked at load.
#[test]
fn token_budgets_are_checked_at_load() {
    let yaml = r#"
version: 1
connections:
  a:
    base_url: "https://a.example.com"
    rate_limit:
      requests: 10
      per: 1m
      tokens: { limit: 1000, per: 0s, cost: "(body.text | length) // 4", headroom: 2 }
      from_headers:
        - { remaining: x-ratelimit-remaining-requests }
        - { reset: "bad header" }
  b:
    base_url: "https://b.example.com"
    rate_limit:
      requests: 10
      per: 1m
      tokens: { limit: 1000, per: 1m, cost: "{{ request.body | length }}" }
      from_headers: []
"#;
    let errs = match ferry::config::load_str(yaml, &|_: &str| None) {
        Ok(_) => panic!("the config loaded"),
        Err(e) => e.lines().join("\n"),
    };
    for want in [
        "connections.a.rate_limit.tokens.per: the window must be greater than zero",
        "connections.a.rate_limit.tokens.headroom: headroom is the fraction",
        "connections.a.rate_limit.tokens.cost: refers to `body`, but a cost sees only the rendered `request`",
        "connections.a.rate_limit.from_headers[1]: from_headers needs `remaining`",
        "connections.a.rate_limit.from_headers[1].reset: \"bad header\" is not a valid HTTP header name",
        "connections.b.rate_limit.tokens.cost: write the expression without {{ }}",
        "connections.b.rate_limit.from_headers: from_headers lists no header pair",
    ] {
        assert!(errs.contains(want), "missing {want:?} in:\n{errs}");
    }
}
