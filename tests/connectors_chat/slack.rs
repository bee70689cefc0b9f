//! The `slack` preset against the fake Slack (`ferry_testkit::vendors::slack`):
//! posting with the bot token, `ok: false` answers judged by their `error`,
//! both rate-limit shapes paused and retried, the per-channel limit, and the
//! webhooks Slack sends (challenge, slash commands) answered as Slack expects.

use ferry::model::{Failure, RunStatus};
use ferry_testkit::vendors::slack::{self, Limited, Slack};
use serde_json::{Value, json};

use crate::support::{self, Bench, run_id, step};

const SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

const CONFIG: &str = r#"
version: 1
connections:
  slack:
    preset: slack
    base_url: "${env:SLACK_URL}"
    auth: { token: "${env:SLACK_BOT_TOKEN}" }
sources:
  slack:
    preset: slack
    verify: { secret: "${env:SLACK_SIGNING_SECRET}" }
  form:
    verify: { scheme: api-key, header: X-Key, secret: "${env:FORM_KEY}" }
    event_id: "{{ body.id }}"
workflows:
  notify:
    trigger: { source: form }
    steps:
      - id: post
        connection: slack
        request:
          method: POST
          path: /chat.postMessage
          json: { channel: "{{ body.channel }}", text: "{{ body.text }}" }
  command:
    trigger: { source: slack }
    steps:
      - id: reply
        connection: slack
        request:
          method: POST
          path: /chat.postMessage
          json: { channel: "{{ body.channel_id }}", text: "On it: {{ body.text }}" }
"#;

async fn bench(token: &str) -> (Bench, Slack) {
    let fake = Slack::start().await;
    let bench = support::start(
        CONFIG,
        &[
            ("SLACK_URL", fake.url()),
            ("SLACK_BOT_TOKEN", token.to_owned()),
            ("SLACK_SIGNING_SECRET", SIGNING_SECRET.to_owned()),
            ("FORM_KEY", "k".to_owned()),
        ],
    );
    (bench, fake)
}

/// Post `{id, channel, text}` to the form source; the run id.
async fn notify(bench: &Bench, id: &str, channel: &str) -> String {
    let body = json!({ "id": id, "channel": channel, "text": format!("hello {id}") });
    let headers = [
        ("x-key".to_owned(), "k".to_owned()),
        ("content-type".to_owned(), "application/json".to_owned()),
    ];
    let wire = bench
        .post_wire("form", &headers, body.to_string().as_bytes())
        .await;
    assert_eq!(wire.status, 202, "{:?}", wire.body);
    run_id(&wire)
}

/// Signed like Slack signs, at the hub's clock.
fn signed(bench: &Bench, content_type: &str, body: &[u8]) -> Vec<(String, String)> {
    let mut h = slack::sign(SIGNING_SECRET, bench.now_secs(), body);
    h.push(("content-type".to_owned(), content_type.to_owned()));
    h
}

#[tokio::test]
async fn the_preset_posts_a_message_with_the_bot_token() {
    let (bench, fake) = bench(slack::TOKEN).await;
    let id = notify(&bench, "e1", "C0GENERAL").await;
    let run = bench.drive(&id).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    let posted = fake.messages_in("C0GENERAL");
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].text, "hello e1");
    let call = &fake.calls("chat.postMessage")[0];
    assert_eq!(
        call.header("authorization"),
        format!("Bearer {}", slack::TOKEN)
    );
    // The run record keeps Slack's answer: the message's ts.
    let answer = step(&run, "post").attempts[0].response.as_ref().unwrap();
    assert_eq!(answer.body["ts"], json!(posted[0].ts));
}

/// Both shapes Slack limits in — `429` and `200 {"ok": false, "error":
/// "ratelimited"}`, each with `Retry-After: 30` — pause the connection for
/// 30 s; the message is then posted once. On a ferry without the preset's
/// rules the `200` shape counts as a success and nothing is posted.
#[tokio::test]
async fn ratelimited_in_either_shape_pauses_for_retry_after_then_posts() {
    for shape in [Limited::Ok200, Limited::Status429] {
        let (bench, fake) = bench(slack::TOKEN).await;
        fake.limit_next(1, shape, 30);
        let id = notify(&bench, "e1", "C0GENERAL").await;
        let run = bench.drive(&id).await;
        assert_eq!(run.status, RunStatus::Succeeded, "{shape:?}: {run:?}");
        assert_eq!(fake.messages_in("C0GENERAL").len(), 1, "{shape:?}");
        let calls = fake.calls("chat.postMessage");
        assert_eq!(calls.len(), 2, "{shape:?}");
        let attempts: Vec<i64> = run.steps[0].attempts.iter().map(|a| a.started_at).collect();
        assert_eq!(attempts.len(), 2, "{shape:?}: {attempts:?}");
        assert!(
            attempts[1] - attempts[0] >= 30_000,
            "{shape:?}: retried after {} ms, before Retry-After",
            attempts[1] - attempts[0]
        );
    }
}

/// A refused token — wrong (`invalid_auth`), revoked, or its account
/// deactivated — fails the run as `auth_failed` after one call: retrying
/// cannot help, and the alert says which connection to fix.
#[tokio::test]
async fn token_errors_are_auth_failed_without_retries() {
    for error in ["invalid_auth", "token_revoked", "account_inactive"] {
        let token = if error == "invalid_auth" {
            "xoxb-wrong"
        } else {
            slack::TOKEN
        };
        let (bench, fake) = bench(token).await;
        if error != "invalid_auth" {
            fake.token_error(Some(error));
        }
        let id = notify(&bench, "e1", "C0GENERAL").await;
        let run = bench.drive(&id).await;
        assert_eq!(run.status, RunStatus::AuthFailed, "{error}: {run:?}");
        assert_eq!(fake.calls("chat.postMessage").len(), 1, "{error}");
        assert!(fake.messages().is_empty());
    }
}

/// A channel that does not exist, or that the bot was not invited to, is
/// final (`rejected`), after one call.
#[tokio::test]
async fn channel_not_found_and_not_in_channel_are_final() {
    let (bench, fake) = bench(slack::TOKEN).await;
    let missing = notify(&bench, "e1", "C0NOPE").await;
    let outside = notify(&bench, "e2", "C0PRIVATE").await;
    for (id, error) in [(missing, "channel_not_found"), (outside, "not_in_channel")] {
        let run = bench.drive(&id).await;
        assert_eq!(run.status, RunStatus::DeadLettered, "{error}: {run:?}");
        assert_eq!(run.failure, Some(Failure::Rejected), "{error}");
        let answer = step(&run, "post").attempts[0].response.as_ref().unwrap();
        assert_eq!(answer.body["error"], json!(error));
        assert_eq!(step(&run, "post").attempts.len(), 1, "{error}: no retry");
    }
    assert_eq!(fake.calls("chat.postMessage").len(), 2);
}

/// `chat.postMessage` allows about one message per second per channel: two
/// messages to one channel go out at least a second apart, while a message
/// to another channel in between is not held behind them.
#[tokio::test]
async fn one_message_per_second_per_channel() {
    let (bench, fake) = bench(slack::TOKEN).await;
    let g1 = notify(&bench, "g1", "C0GENERAL").await;
    let a1 = notify(&bench, "a1", "C0ALERTS").await;
    let g2 = notify(&bench, "g2", "C0GENERAL").await;
    bench.drain(5).await;
    let mut at = vec![];
    for id in [&g1, &a1, &g2] {
        let run = bench.run(id).await.unwrap();
        assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
        at.push(step(&run, "post").attempts[0].started_at);
    }
    assert_eq!(at[1], at[0], "the other channel's message waited: {at:?}");
    assert!(
        at[2] - at[0] >= 1_000,
        "two messages to one channel within a second: {at:?}"
    );
    assert_eq!(fake.messages_in("C0GENERAL").len(), 2);
    assert_eq!(fake.messages_in("C0ALERTS").len(), 1);
}

/// The Events API's `url_verification` is answered with its challenge.
#[tokio::test]
async fn the_url_verification_challenge_is_echoed() {
    let (bench, _fake) = bench(slack::TOKEN).await;
    let body = json!({"token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"});
    let raw = body.to_string();
    let wire = bench
        .post_wire(
            "slack",
            &signed(&bench, "application/json", raw.as_bytes()),
            raw.as_bytes(),
        )
        .await;
    assert_eq!(wire.status, 200);
    assert_eq!(wire.body.unwrap()["challenge"], body["challenge"]);
}

/// A slash command (form-encoded, signed) is answered `200` with an empty
/// body — Slack's plain acknowledgement — and the work runs afterwards from
/// the queue. Slack's retry of the same command (same `trigger_id`) gets the
/// same `200` and no second run. On a ferry without `respond` the answer is
/// `202` with ferry's JSON, which Slack would try to read as a message.
#[tokio::test]
async fn a_slash_command_is_acknowledged_with_an_empty_200_and_runs_later() {
    let (bench, fake) = bench(slack::TOKEN).await;
    let form = "token=x&team_id=T0FERRY&channel_id=C0GENERAL&user_id=U1&command=%2Fferry&text=deploy&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2F1&trigger_id=13345224609.738474920.8088930838d88f008e0";
    let ctype = "application/x-www-form-urlencoded";
    let wire = bench
        .post_wire(
            "slack",
            &signed(&bench, ctype, form.as_bytes()),
            form.as_bytes(),
        )
        .await;
    assert_eq!((wire.status, wire.body), (200, None));
    assert!(fake.messages().is_empty(), "nothing ran before the answer");
    let mut retry = signed(&bench, ctype, form.as_bytes());
    retry.push(("x-slack-retry-num".to_owned(), "1".to_owned()));
    let again = bench.post_wire("slack", &retry, form.as_bytes()).await;
    assert_eq!((again.status, again.body), (200, None));
    bench.drain(5).await;
    let posted = fake.messages_in("C0GENERAL");
    assert_eq!(posted.len(), 1, "{posted:?}");
    assert_eq!(posted[0].text, "On it: deploy");
}

/// A request that Slack did not sign (or signed with another secret) is
/// refused with ferry's `401` JSON, whatever `respond` says.
#[tokio::test]
async fn a_bad_signature_is_401() {
    let (bench, fake) = bench(slack::TOKEN).await;
    let form = "channel_id=C0GENERAL&text=x&trigger_id=1.2.3";
    let mut h = slack::sign("another-secret", bench.now_secs(), form.as_bytes());
    h.push((
        "content-type".into(),
        "application/x-www-form-urlencoded".into(),
    ));
    let wire = bench.post_wire("slack", &h, form.as_bytes()).await;
    assert_eq!(wire.status, 401);
    assert_eq!(
        wire.body.unwrap()["error"],
        Value::from("invalid_signature")
    );
    bench.drain(3).await;
    assert!(fake.messages().is_empty());
}

/// The preset's `respond` is overridable: a body answers the user at once
/// (its templates see the form's fields and the event id), and the work
/// still runs from the queue.
#[tokio::test]
async fn respond_with_a_body_answers_the_slash_command_at_once() {
    let fake = Slack::start().await;
    let yaml = CONFIG.replace(
        "    verify: { secret: \"${env:SLACK_SIGNING_SECRET}\" }\n  form:",
        "    verify: { secret: \"${env:SLACK_SIGNING_SECRET}\" }\n    respond: { body: { response_type: ephemeral, text: \"Working on {{ body.text }} ({{ event.id }})\" } }\n  form:",
    );
    assert_ne!(yaml, CONFIG);
    let bench = support::start(
        &yaml,
        &[
            ("SLACK_URL", fake.url()),
            ("SLACK_BOT_TOKEN", slack::TOKEN.to_owned()),
            ("SLACK_SIGNING_SECRET", SIGNING_SECRET.to_owned()),
            ("FORM_KEY", "k".to_owned()),
        ],
    );
    let form = "channel_id=C0GENERAL&command=%2Fferry&text=deploy&trigger_id=1.2.3";
    let ctype = "application/x-www-form-urlencoded";
    let wire = bench
        .post_wire(
            "slack",
            &signed(&bench, ctype, form.as_bytes()),
            form.as_bytes(),
        )
        .await;
    assert_eq!(wire.status, 200);
    assert_eq!(
        wire.body,
        Some(json!({ "response_type": "ephemeral", "text": "Working on deploy (1.2.3)" }))
    );
    bench.drain(5).await;
    assert_eq!(fake.messages_in("C0GENERAL").len(), 1);
}

/// `respond.status` must be a 2xx (a sender retries anything else), and the
/// body's templates must parse: both are config errors with their path.
#[test]
fn respond_is_checked_when_the_config_loads() {
    let yaml = r#"
version: 1
sources:
  s:
    verify: { scheme: api-key, header: X-Key, secret: "${env:KEY}" }
    respond: { status: 302, body: { text: "{{ body.text " } }
"#;
    let env = |n: &str| (n == "KEY").then(|| "k".to_owned());
    let err = ferry::config::load_str(yaml, &env).unwrap_err().to_string();
    assert!(err.contains("sources.s.respond.status: respond.status answers an accepted event, so it must be a 2xx"), "{err}");
    assert!(
        err.contains("sources.s.respond.body.text: template syntax error"),
        "{err}"
    );
}

/// A call without a JSON body (`GET auth.test`) renders the per-channel
/// key too (`-`): it goes out instead of failing on the missing channel.
#[tokio::test]
async fn a_call_without_a_channel_is_not_a_mapping_error() {
    let fake = Slack::start().await;
    let yaml = r#"
version: 1
connections:
  slack:
    preset: slack
    base_url: "${env:SLACK_URL}"
    auth: { token: "${env:SLACK_BOT_TOKEN}" }
sources:
  form:
    verify: { scheme: api-key, header: X-Key, secret: "${env:FORM_KEY}" }
    event_id: "{{ body.id }}"
workflows:
  who:
    trigger: { source: form }
    steps:
      - { id: whoami, connection: slack, request: { method: GET, path: /auth.test } }
      - { id: form, connection: slack, request: { method: POST, path: /auth.test, form: { token: "x" } } }
"#;
    let bench = support::start(
        yaml,
        &[
            ("SLACK_URL", fake.url()),
            ("SLACK_BOT_TOKEN", slack::TOKEN.to_owned()),
            ("FORM_KEY", "k".to_owned()),
        ],
    );
    let id = notify(&bench, "e1", "C0GENERAL").await;
    let run = bench.drive(&id).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(fake.calls("auth.test").len(), 2);
}
