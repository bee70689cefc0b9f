//! The `openai` preset's quirks against the fake, each through the one call
//! path: `insufficient_quota` is final, `rate_limit_exceeded` pauses until
//! the reset, a bad key is `auth_failed`, `server_error` is retried, and the
//! tokens pair of `from_headers` pauses before a `429`.

use ferry::call::Called;
use ferry::retry::Verdict;
use ferry_testkit::vendors::openai::Limits;

use crate::support::{Env, NOW, embed, last};

const LIMITS: Limits = Limits {
    rpm: 3_000,
    tpm: 1_000_000,
};

const CONFIG: &str = r#"
version: 1
connections:
  openai:
    preset: openai
    base_url: "${env:OPENAI_URL}"
    auth: { token: "${env:OPENAI_API_KEY}" }
    headers: { OpenAI-Organization: org-ferry, OpenAI-Project: proj_embed }
"#;

fn inputs(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|s| (*s).to_owned()).collect()
}

async fn paused_until(env: &Env) -> i64 {
    env.hub
        .ports
        .limits
        .paused_until(&ferry::keys::connection("openai"))
        .await
        .unwrap()
}

/// The preset loads (api.openai.com, overridden here to the fake) and a
/// call works: bearer key, organization and project headers, `data` read
/// back by `index` though the fake answers it in reverse.
#[tokio::test]
async fn the_preset_loads_and_an_embeddings_call_works() {
    let env = Env::start(CONFIG, LIMITS, &[]).await;
    let called = embed(&env, &inputs(&["first", "second"])).await;
    assert_eq!(last(&called), (Verdict::Success, Some(200)));
    let call = &env.openai.calls()[0];
    assert_eq!(call.organization.as_deref(), Some("org-ferry"));
    assert_eq!(call.project.as_deref(), Some("proj_embed"));
    assert_eq!(call.inputs, ["first", "second"]);
    let Called::Done(tries) = called else {
        unreachable!()
    };
    let body = &tries[0].response.as_ref().unwrap().body;
    assert_eq!(body["data"][0]["index"], 1, "the fake answers in reverse");
    // Without the override, the preset points at OpenAI itself.
    let preset = ferry::config::load_str(
        "version: 1\nconnections:\n  openai: { preset: openai, auth: { token: \"${env:K}\" } }\n",
        &|n: &str| (n == "K").then(|| "sk-x".to_owned()),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        preset.config.connections["openai"].base_url,
        "https://api.openai.com"
    );
}

/// `429` with `error.code: insufficient_quota` is final: one call, no retry.
#[tokio::test]
async fn insufficient_quota_is_final() {
    let env = Env::start(CONFIG, LIMITS, &[]).await;
    env.openai.exhaust_quota();
    assert_eq!(
        last(&embed(&env, &inputs(&["a"])).await),
        (Verdict::Fail, Some(429))
    );
    assert_eq!(paused_until(&env).await, 0, "a quota is not a rate limit");
}

/// `429` with `error.code: rate_limit_exceeded` pauses the connection until
/// the requests' reset (`x-ratelimit-reset-requests`, a duration); after it
/// the call succeeds.
#[tokio::test]
async fn rate_limit_exceeded_pauses_until_the_reset_then_succeeds() {
    let env = Env::start(CONFIG, LIMITS, &[]).await;
    // One earlier call 20 s ago puts the requests' reset 40 s ahead.
    assert_eq!(
        last(&embed(&env, &inputs(&["a"])).await).0,
        Verdict::Success
    );
    env.clock.advance(20_000);
    env.openai.limit_next(1);
    let (verdict, status) = last(&embed(&env, &inputs(&["b"])).await);
    assert!(
        matches!(verdict, Verdict::RateLimited { .. }),
        "{verdict:?}"
    );
    assert_eq!(status, Some(429));
    assert_eq!(paused_until(&env).await, NOW + 60_000);
    assert!(matches!(
        embed(&env, &inputs(&["b"])).await,
        Called::Later(_)
    ));
    env.clock.advance(40_000);
    assert_eq!(
        last(&embed(&env, &inputs(&["b"])).await).0,
        Verdict::Success
    );
    assert_eq!(env.openai.count_429(), 1);
}

/// A wrong key: `401 invalid_api_key` is `auth_failed`.
#[tokio::test]
async fn a_bad_key_is_auth_failed() {
    let yaml = CONFIG.replace("OPENAI_API_KEY", "WRONG_KEY");
    let env = Env::start(&yaml, LIMITS, &[("WRONG_KEY", "sk-wrong".to_owned())]).await;
    assert_eq!(
        last(&embed(&env, &inputs(&["a"])).await),
        (Verdict::Unauthorized, Some(401))
    );
}

/// `500 server_error` is retried.
#[tokio::test]
async fn server_error_is_retried() {
    let env = Env::start(CONFIG, LIMITS, &[]).await;
    env.openai.fail_next(1);
    assert_eq!(
        last(&embed(&env, &inputs(&["a"])).await),
        (Verdict::Retry { after: None }, Some(500))
    );
    assert_eq!(
        last(&embed(&env, &inputs(&["a"])).await).0,
        Verdict::Success
    );
}

/// The tokens pair of `from_headers`: when `x-ratelimit-remaining-tokens`
/// reaches 0 (the account allows fewer tokens than the config says), the
/// connection pauses until `x-ratelimit-reset-tokens` — before any `429`.
#[tokio::test]
async fn remaining_tokens_at_zero_pause_until_the_tokens_reset() {
    let env = Env::start(
        CONFIG,
        Limits {
            rpm: 3_000,
            tpm: 1_000,
        },
        &[],
    )
    .await;
    let thousand = vec!["y".repeat(4_000)];
    assert_eq!(last(&embed(&env, &thousand).await).0, Verdict::Success);
    assert_eq!(
        paused_until(&env).await,
        NOW + 60_000,
        "paused until x-ratelimit-reset-tokens (1m0s)"
    );
    assert!(matches!(
        embed(&env, &inputs(&["z"])).await,
        Called::Later(_)
    ));
    env.clock.advance(60_000);
    assert_eq!(
        last(&embed(&env, &inputs(&["z"])).await).0,
        Verdict::Success
    );
    assert_eq!(env.openai.count_429(), 0);
}
