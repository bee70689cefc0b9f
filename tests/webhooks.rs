//! Webhook ingestion end to end: every verification scheme through `ferry send`
//! and the real `ferry dev`, replay windows, limits, and the answers.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;
use support::{Hub, Target, hmac_hex};

const CONFIG: &str = r#"version: 1
connections:
  target:
    base_url: "${env:TARGET_URL}"
sources:
  gh: { verify: { scheme: github, secret: "${env:GH_SECRET}" } }
  st: { verify: { scheme: stripe, secret: ["${env:ST_SECRET_NEW}", "${env:ST_SECRET_OLD}"] } }
  sh: { verify: { scheme: shopify, secret: "${env:SH_SECRET}" } }
  sl: { verify: { scheme: slack, secret: "${env:SL_SECRET}" } }
  sw: { verify: { scheme: standard-webhooks, secret: "${env:SW_SECRET}" } }
  hm:
    verify: { scheme: hmac-sha256, header: X-Sig, secret: "${env:HM_SECRET}", timestamp_header: X-Ts, tolerance: 2m }
    event_id: "{{ body.n }}"
    max_body_bytes: 2048
  ak: { verify: { scheme: api-key, header: X-Api-Key, secret: "${env:AK_SECRET}" } }
  ba: { verify: { scheme: basic, username: hooks, secret: "${env:BA_SECRET}" } }
  open: { verify: { scheme: none } }
workflows:
  forward:
    trigger: { source: hm }
    steps:
      - id: post
        connection: target
        request: { path: /got, json: { n: "{{ body.n }}", who: "{{ body.who | default('?') }}", headers: "{{ headers | list | sort | join(',') }}" } }
"#;

const SECRETS: [(&str, &str); 9] = [
    ("GH_SECRET", "gh-secret-value"),
    ("ST_SECRET_NEW", "whsec_stripe_new_secret"),
    ("ST_SECRET_OLD", "whsec_stripe_old_secret"),
    ("SH_SECRET", "shopify-secret-value"),
    ("SL_SECRET", "slack-signing-secret"),
    ("SW_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
    ("HM_SECRET", "generic-hmac-secret"),
    ("AK_SECRET", "api-key-secret-value"),
    ("BA_SECRET", "basic-password-value"),
];

fn start(dir: &std::path::Path, target: &Target) -> Hub {
    let mut env: Vec<(&str, &str)> = SECRETS.to_vec();
    let url = target.url();
    env.push(("TARGET_URL", &url));
    Hub::start(dir, CONFIG, &env)
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ferry_send_signs_every_scheme_the_way_its_provider_does() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let hub = start(dir.path(), &target);
    let payload = dir.path().join("event.json");
    for (i, source) in ["gh", "st", "sh", "sl", "sw", "hm", "ak", "ba", "open"]
        .iter()
        .enumerate()
    {
        std::fs::write(
            &payload,
            json!({ "id": format!("evt_{i}"), "event_id": format!("Ev{i}"), "n": i }).to_string(),
        )
        .unwrap();
        let out = std::process::Command::new(support::ferry_bin())
            .args([
                "send",
                source,
                "--config",
                hub.config.to_str().unwrap(),
                "--file",
                payload.to_str().unwrap(),
                "--url",
                &hub.url(""),
            ])
            .envs(SECRETS)
            .env("TARGET_URL", target.url())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.starts_with("202"),
            "{source}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replay_windows_refuse_old_and_future_timestamps_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let hub = start(dir.path(), &target);
    let body = br#"{"id":"evt_replay","object":"event"}"#;
    let stripe = |t: i64, secret: &str| {
        let mut signed = format!("{t}.").into_bytes();
        signed.extend_from_slice(body);
        format!("t={t},v1={}", hmac_hex(secret, &signed))
    };
    let post = |sig: String| {
        let hub = &hub;
        async move {
            hub.post(
                "st",
                body,
                &[
                    ("content-type", "application/json"),
                    ("stripe-signature", &sig),
                ],
            )
            .await
        }
    };
    let (status, reply) = post(stripe(now_s() - 301, "whsec_stripe_new_secret")).await;
    assert_eq!(
        (status, reply["error"].as_str()),
        (401, Some("timestamp_too_old")),
        "{reply}"
    );
    let (status, reply) = post(stripe(now_s() + 301, "whsec_stripe_new_secret")).await;
    assert_eq!(
        (status, reply["error"].as_str()),
        (401, Some("timestamp_in_future")),
        "{reply}"
    );
    // Rotation: the old secret still passes, inside the window.
    let (status, reply) = post(stripe(now_s() - 10, "whsec_stripe_old_secret")).await;
    assert_eq!(status, 202, "{reply}");
    assert_eq!(
        reply["event_id"], "evt_replay",
        "Stripe's event id is the body's id"
    );

    // The generic scheme with a 2-minute tolerance of its own.
    let raw = br#"{"n": 7}"#;
    let ts = (now_s() - 150).to_string();
    let mut signed = format!("{ts}.").into_bytes();
    signed.extend_from_slice(raw);
    let sig = hmac_hex("generic-hmac-secret", &signed);
    let (status, reply) = hub
        .post(
            "hm",
            raw,
            &[
                ("content-type", "application/json"),
                ("x-sig", &sig),
                ("x-ts", &ts),
            ],
        )
        .await;
    assert_eq!(
        (status, reply["error"].as_str()),
        (401, Some("timestamp_too_old")),
        "{reply}"
    );
    assert!(hub.runs().is_empty());
}

/// POST `raw` to the `hm` source, signed with a current timestamp.
async fn post_hm(
    hub: &Hub,
    raw: &[u8],
    content_type: &str,
    extra: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    let (sig, ts) = hm_headers(raw);
    let mut headers = vec![
        ("content-type", content_type),
        ("x-sig", sig.as_str()),
        ("x-ts", ts.as_str()),
    ];
    headers.extend_from_slice(extra);
    hub.post("hm", raw, &headers).await
}

fn hm_headers(raw: &[u8]) -> (String, String) {
    let ts = now_s().to_string();
    let mut signed = format!("{ts}.").into_bytes();
    signed.extend_from_slice(raw);
    (hmac_hex("generic-hmac-secret", &signed), ts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn limits_content_types_and_conflicts_get_their_own_answers() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let hub = start(dir.path(), &target);

    let big = serde_json::to_vec(&json!({ "n": 1, "pad": "x".repeat(3000) })).unwrap();
    let (status, reply) = post_hm(&hub, &big, "application/json", &[]).await;
    assert_eq!(
        (status, reply["error"].as_str()),
        (413, Some("payload_too_large")),
        "{reply}"
    );

    let xml = b"<n>1</n>";
    let (status, reply) = post_hm(&hub, xml, "application/xml", &[]).await;
    assert_eq!(
        (status, reply["error"].as_str()),
        (415, Some("unsupported_media_type")),
        "{reply}"
    );

    let first = br#"{"n": 42, "who": "first"}"#;
    let (status, _) = post_hm(&hub, first, "application/json", &[]).await;
    assert_eq!(status, 202);
    let other = br#"{"n": 42, "who": "someone else"}"#;
    let (status, reply) = post_hm(&hub, other, "application/json", &[]).await;
    assert_eq!(
        (status, reply["error"].as_str()),
        (409, Some("event_id_conflict")),
        "{reply}"
    );

    let (status, reply) = hub
        .post(
            "ak",
            b"{}",
            &[("content-type", "application/json"), ("x-api-key", "wrong")],
        )
        .await;
    assert_eq!(
        (status, reply["error"].as_str()),
        (401, Some("invalid_credentials")),
        "{reply}"
    );
    assert_eq!(hub.runs().len(), 1, "only the one accepted event has a run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn form_bodies_reach_templates_and_no_secret_reaches_the_run_log() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let hub = start(dir.path(), &target);
    let form = b"n=5&who=Grace+Hopper";
    let (sig, ts) = hm_headers(form);
    let (status, reply) = hub
        .post(
            "hm",
            form,
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("x-sig", &sig),
                ("x-ts", &ts),
                ("x-trace", "abc"),
            ],
        )
        .await;
    assert_eq!(status, 202, "{reply}");
    let run = hub.finished(reply["run_id"].as_str().unwrap()).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let got = &target.seen_at("/got")[0];
    assert_eq!(got.body["n"], "5");
    assert_eq!(got.body["who"], "Grace Hopper");
    let visible = got.body["headers"].as_str().unwrap();
    assert!(
        visible.contains("x-trace") && visible.contains("x-ts"),
        "{visible}"
    );
    assert!(
        !visible.contains("x-sig"),
        "the signature header is not part of the event: {visible}"
    );
    let log = run.to_string();
    assert!(
        !log.contains(&sig) && !log.contains("generic-hmac-secret"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slack_url_verification_is_answered_after_verifying() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let hub = start(dir.path(), &target);
    let body = br#"{"token":"x","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
    let ts = now_s().to_string();
    let mut base = format!("v0:{ts}:").into_bytes();
    base.extend_from_slice(body);
    let sig = format!("v0={}", hmac_hex("slack-signing-secret", &base));
    let (status, reply) = hub
        .post(
            "sl",
            body,
            &[
                ("content-type", "application/json"),
                ("x-slack-signature", &sig),
                ("x-slack-request-timestamp", &ts),
            ],
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply,
        json!({ "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" })
    );
    let (status, _) = hub
        .post(
            "sl",
            body,
            &[
                ("content-type", "application/json"),
                ("x-slack-signature", "v0=00"),
                ("x-slack-request-timestamp", &ts),
            ],
        )
        .await;
    assert_eq!(status, 401, "an unsigned challenge is refused");
}
