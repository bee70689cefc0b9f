//! The `alerts:` section of the config: what loads, and every mistake
//! reported with its path and line, never quoting a secret.

use ferry::config::{Channel, ConfigErrors, Loaded, load_str};

fn env(name: &str) -> Option<String> {
    let v = match name {
        "SLACK_URL" => "https://hooks.slack.com/services/T000/B000/very-secret-token",
        "PAGER_SECRET" => "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "BAD_SECRET" => "not-a-whsec-secret-value",
        "SMTP_URL" => "smtp://alerts:hunter2pass@mail.example.com:587?tls=required",
        "BAD_SMTP" => "mail.example.com:hunter2pass",
        _ => return None,
    };
    Some(v.to_owned())
}

const BASE: &str = "\
version: 1
connections:
  crm: { base_url: https://crm.example.com }
sources:
  form: { verify: { scheme: none } }
workflows:
  new-lead:
    trigger: { source: form }
    steps:
      - { id: create, connection: crm, request: { method: POST, path: /contacts } }
";

fn load(alerts: &str) -> Result<Loaded, ConfigErrors> {
    load_str(&format!("{BASE}{alerts}"), &env)
}

/// The displayed errors; lines count from the first line of `BASE`.
fn errors(alerts: &str) -> Vec<String> {
    match load(alerts) {
        Ok(_) => panic!("expected errors, the config loaded"),
        Err(e) => e.lines(),
    }
}

mod config_alerts {
    use super::*;

    #[test]
    fn a_complete_alerts_section_loads() {
        let loaded = load(
            "alerts:
  channels:
    ops: { type: slack, webhook_url: \"${env:SLACK_URL}\" }
    pager: { type: webhook, url: https://pager.example.com/in, secret: \"${env:PAGER_SECRET}\" }
    mail: { type: email, to: [oncall@example.com], smtp: \"${env:SMTP_URL}\" }
    aws: { type: email, sns_topic: \"arn:aws:sns:us-east-1:123456789012:alerts\" }
  default: [ops]
  window: 5m
  rules:
    - { on: run_failed, workflows: [new-lead], channels: [pager, mail] }
    - { on: error_rate, above: 20, window: 15m, min_runs: 5 }
    - { on: dlq_depth, at_least: 10 }
    - { on: auth_failed, connections: [crm] }
    - { on: silent, sources: [form] }
",
        )
        .unwrap();
        let a = loaded.config.alerts.unwrap();
        assert!(
            matches!(&a.channels["ops"], Channel::Slack { webhook_url } if webhook_url.ends_with("very-secret-token"))
        );
        assert_eq!(a.rules.len(), 5);
        assert!(loaded.secrets.iter().any(|s| s.contains("hunter2pass")));
    }

    #[test]
    fn names_thresholds_and_windows_are_checked_with_path_and_line() {
        let got = errors(
            "alerts:
  channels:
    ops: { type: slack, webhook_url: \"${env:SLACK_URL}\" }
  default: [opps]
  window: 30s
  drift_after: 0
  rules:
    - { on: run_failed, workflows: [new-leads], channels: [pagr] }
    - { on: error_rate, above: 120, window: 10s }
    - { on: error_rate, min_runs: 0 }
    - { on: dlq_depth, at_least: 0 }
    - { on: auth_failed, connections: [crn] }
    - { on: silent, sources: [nope] }
",
        );
        assert_eq!(
            got,
            [
                "line 14: alerts.default[0]: unknown channel \"opps\"; did you mean \"ops\"?",
                "line 15: alerts.window: window 30s is shorter than the shortest window, 1m",
                "line 16: alerts.drift_after: drift_after must be at least 1 (events in a row missing a field)",
                "line 18: alerts.rules[0].channels[0]: unknown channel \"pagr\"",
                "line 18: alerts.rules[0].workflows[0]: unknown workflow \"new-leads\"; did you mean \"new-lead\"?",
                "line 19: alerts.rules[1].above: above 120 is not a percentage in (0, 100]",
                "line 19: alerts.rules[1].window: window 10s is shorter than the shortest window, 1m",
                "line 20: alerts.rules[2]: error_rate needs `above`: the percentage of failed runs above which it alerts, e.g. `above: 20`",
                "line 20: alerts.rules[2].min_runs: min_runs must be at least 1",
                "line 21: alerts.rules[3].at_least: at_least must be at least 1",
                "line 22: alerts.rules[4].connections[0]: unknown connection \"crn\"; did you mean \"crm\"?",
                "line 23: alerts.rules[5].sources[0]: unknown source or sync \"nope\"",
            ]
        );
    }

    #[test]
    fn a_field_that_means_nothing_for_the_condition_is_named() {
        let got = errors(
            "alerts:
  channels: { ops: { type: slack, webhook_url: \"${env:SLACK_URL}\" } }
  default: [ops]
  rules:
    - { on: run_failed, above: 5 }
    - { on: silent, connections: [crm] }
    - { on: auth_failed, at_least: 3, workflows: [new-lead] }
",
        );
        assert_eq!(
            got,
            [
                "line 15: alerts.rules[0].above: `above` means nothing for run_failed; it is for error_rate",
                "line 16: alerts.rules[1].connections: `connections` means nothing for silent; it is for auth_failed, circuit_open",
                "line 17: alerts.rules[2].workflows: `workflows` means nothing for auth_failed; it is for run_failed, error_rate, late, drift",
                "line 17: alerts.rules[2].at_least: `at_least` means nothing for auth_failed; it is for dlq_depth",
            ]
        );
    }

    #[test]
    fn channel_settings_must_be_usable_and_are_never_quoted() {
        let got = errors(
            "alerts:
  channels:
    pager: { type: webhook, url: not-a-url, secret: \"${env:BAD_SECRET}\" }
    mail: { type: email, smtp: \"${env:BAD_SMTP}\", from: nobody }
    nothing: { type: email, to: [a@example.com] }
    aws: { type: email, sns_topic: alerts }
  default: [pager]
",
        );
        assert_eq!(
            got,
            [
                "line 13: alerts.channels.pager.url: url \"not-a-url\" is not an absolute http(s) URL",
                "line 13: alerts.channels.pager.secret: secret must be `whsec_` followed by base64 (a Standard Webhooks secret, whsec_<base64>)",
                "line 14: alerts.channels.mail: an email channel needs `to`, the recipients (only a channel with just `sns_topic` goes without: the topic's subscriptions are its recipients)",
                "line 14: alerts.channels.mail.from: \"nobody\" is not an e-mail address",
                "line 14: alerts.channels.mail.smtp: the value is not an smtp:// or smtps:// URL such as smtp://user:password@mail.example.com:587?tls=required",
                "line 15: alerts.channels.nothing: an email channel needs `smtp` (to send from ferry dev) or `sns_topic` (on AWS), or both",
                "line 16: alerts.channels.aws.sns_topic: \"alerts\" is not an SNS topic ARN such as arn:aws:sns:us-east-1:123456789012:alerts",
            ]
        );
        let all = got.concat();
        assert!(
            !all.contains("hunter2pass") && !all.contains("not-a-whsec"),
            "{all}"
        );
    }

    #[test]
    fn secret_channel_fields_must_be_env_references() {
        let got = errors(
            "alerts:
  channels:
    ops: { type: slack, webhook_url: https://hooks.slack.com/services/T0/B0/literal-token }
    pager: { type: webhook, url: https://pager.example.com, secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw }
    mail: { type: email, to: [a@example.com], smtp: \"smtp://u:${env:SMTP_URL}@x\" }
  default: [ops]
",
        );
        let literal = "secrets must be references such as ${env:NAME}; literal secrets end up in version control";
        assert_eq!(
            got,
            [
                format!("line 13: alerts.channels.ops.webhook_url: {literal}"),
                format!("line 14: alerts.channels.pager.secret: {literal}"),
                "line 15: alerts.channels.mail.smtp: a secret must be exactly one reference such as ${env:NAME}, with nothing around it".to_owned(),
            ]
        );
        assert!(!got.concat().contains("literal-token"));
    }

    #[test]
    fn a_rule_without_channels_needs_a_default() {
        let got = errors(
            "alerts:
  channels: { ops: { type: slack, webhook_url: \"${env:SLACK_URL}\" } }
  rules:
    - { on: dlq_depth, at_least: 5, channels: [ops] }
    - { on: run_failed }
    - { on: silent, enabled: false }
",
        );
        assert_eq!(
            got,
            [
                "line 15: alerts.rules[1]: this run_failed rule names no `channels` and alerts has no `default`, so its alerts would go nowhere; add `channels: [...]` to the rule or `default: [...]` to alerts"
            ]
        );
    }
}
