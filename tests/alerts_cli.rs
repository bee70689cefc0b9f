//! `ferry alerts test CHANNEL`: a sample reaches a local Slack-like receiver;
//! a refusal is reported (without the webhook URL) and exits 1.

mod support;

use ferry_testkit::alert_receivers::SlackReceiver;
use support::ferry_bin;

const CONFIG: &str = "version: 1
alerts:
  channels:
    ops: { type: slack, webhook_url: \"${env:FERRY_TEST_SLACK_URL}\" }
  default: [ops]
";

async fn ferry_alerts_test(dir: &std::path::Path, channel: &str) -> (i32, String, String) {
    let out = tokio::process::Command::new(ferry_bin())
        .args(["alerts", "test", channel, "--config"])
        .arg(dir.join("alerts.yaml"))
        .arg("--env-file")
        .arg(dir.join("alerts.env"))
        .env_remove("FERRY_TEST_SLACK_URL")
        .output()
        .await
        .expect("ferry runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn alerts_test_sends_a_sample_and_reports_a_refusal() {
    let rx = SlackReceiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("alerts.yaml"), CONFIG).unwrap();
    std::fs::write(
        dir.path().join("alerts.env"),
        format!("FERRY_TEST_SLACK_URL={}\n", rx.url()),
    )
    .unwrap();

    let (code, out, err) = ferry_alerts_test(dir.path(), "ops").await;
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert_eq!(out, "sent a sample alert to ops (slack)\n");
    let got = rx.received();
    assert_eq!(got.len(), 1);
    assert!(
        got[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("[FIRING] example: 3 runs failed")
    );

    rx.fail_next(404, 1);
    let (code, out, err) = ferry_alerts_test(dir.path(), "ops").await;
    assert_eq!(code, 1, "stdout: {out}\nstderr: {err}");
    assert_eq!(
        err,
        "error: channel ops (slack): Slack answered 404 no_service\n"
    );
    assert!(!err.contains("secret-token"));

    let (code, _, err) = ferry_alerts_test(dir.path(), "opz").await;
    assert_eq!(code, 1);
    assert!(
        err.starts_with("error: no channel \"opz\" under alerts.channels in "),
        "{err}"
    );
    assert!(err.ends_with("; its channels: ops\n"), "{err}");
    assert_eq!(rx.received().len(), 1);
}

const DEV_CONFIG: &str = r#"version: 1
connections:
  crm: { base_url: "${env:CRM_URL}" }
sources:
  form: { verify: { scheme: api-key, header: X-Key, secret: "${env:KEY}" }, event_id: "{{ body.id }}" }
workflows:
  lead:
    trigger: { source: form }
    steps: [ { id: contact, connection: crm, request: { path: /contacts, json: { email: "{{ body.email }}" } } } ]
alerts:
  channels:
    hook: { type: webhook, url: "${env:HOOK_URL}", secret: "${env:HOOK_SECRET}" }
  default: [hook]
"#;

const HOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// `ferry dev` evaluates on its own: a run that fails for good reaches the
/// webhook receiver (signature verified) within a few evaluations, and
/// `ferry alerts list` shows the open alert.
#[tokio::test]
async fn ferry_dev_delivers_an_alert_and_alerts_list_shows_it() {
    let target = ferry_testkit::target::Target::start().await;
    target.respond(
        "/crm/contacts",
        422,
        serde_json::json!({"error": "invalid email"}),
    );
    let rx = ferry_testkit::alert_receivers::WebhookReceiver::start(
        HOOK_SECRET,
        std::sync::Arc::new(ferry::clock::SystemClock),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let crm = format!("{}/crm", target.url());
    let hub = support::Hub::start_with(
        dir.path(),
        DEV_CONFIG,
        &[
            ("CRM_URL", &crm),
            ("KEY", "k"),
            ("HOOK_URL", rx.url()),
            ("HOOK_SECRET", HOOK_SECRET),
        ],
        &["--alerts-every", "100ms"],
    );
    let (status, _) = hub
        .post(
            "form",
            br#"{"id": "1", "email": "nope"}"#,
            &[("x-key", "k"), ("content-type", "application/json")],
        )
        .await;
    assert_eq!(status, 202);
    let got = support::eventually(
        "the alert at the receiver",
        std::time::Duration::from_secs(30),
        || async {
            let v = rx.verified();
            (!v.is_empty()).then_some(v)
        },
    )
    .await;
    let (_, body) = &got[0];
    assert_eq!(body["type"], "ferry.alert");
    assert_eq!(body["condition"], "run_failed");
    assert_eq!(body["subject"], "lead");
    assert_eq!(body["state"], "firing");
    assert_eq!(rx.unverified(), 0);
    let (code, out, err) = hub.ferry(&["alerts", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("run_failed") && out.contains("lead: runs failed for good"),
        "{out}"
    );
}
