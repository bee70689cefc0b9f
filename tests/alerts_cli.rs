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
