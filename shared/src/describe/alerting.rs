//! Who is alerted for what: each condition that can fire on a subject,
//! resolved by [`crate::alerts::route::route`] to its channels (or nobody).

use super::about::{AlertInfo, AlertingInfo};
use crate::alerts::SubjectKind;
use crate::alerts::route::{Subject, route};
use crate::config::{Channel, Condition, Config};

/// What a condition means, in a few words.
fn meaning(c: Condition) -> &'static str {
    match c {
        Condition::RunFailed => "a run fails for good (dead-lettered)",
        Condition::AuthFailed => "its credentials are refused",
        Condition::CircuitOpen => "its circuit breaker opens after repeated failures",
        Condition::DlqDepth => "dead letters pile up",
        Condition::Silent => "nothing arrives for longer than max_silence",
        Condition::Drift => "a field it reads goes missing from the events",
        Condition::ErrorRate => "too many of its runs fail",
        Condition::Late => "a run finishes later than max_latency",
    }
}

/// The routes of `conditions` on subject `kind` `name`.
pub fn alerts_for(
    config: &Config,
    kind: SubjectKind,
    name: &str,
    source: Option<&str>,
    conditions: &[Condition],
) -> Vec<AlertInfo> {
    conditions
        .iter()
        .map(|&c| {
            let channels = config
                .alerts
                .as_ref()
                .and_then(|a| route(a, c, Subject { kind, name, source }))
                .map(|r| r.channels)
                .unwrap_or_default();
            AlertInfo {
                condition: c.as_str().to_owned(),
                when: meaning(c).to_owned(),
                channels,
            }
        })
        .collect()
}

/// The channels and the dead-letter queue's alert.
pub fn alerting(config: &Config) -> AlertingInfo {
    let Some(a) = &config.alerts else {
        return AlertingInfo::default();
    };
    let channels = a
        .channels
        .iter()
        .map(|(name, c)| {
            let kind = match c {
                Channel::Slack { .. } => "Slack".to_owned(),
                Channel::Webhook { .. } => "signed webhook".to_owned(),
                Channel::Email { to, sns_topic, .. } => match (to.len(), sns_topic) {
                    (_, Some(_)) if to.is_empty() => "e-mail (SNS topic)".to_owned(),
                    (n, _) => format!("e-mail to {n} recipient(s)"),
                },
            };
            format!("{name} ({kind})")
        })
        .collect();
    AlertingInfo {
        configured: true,
        channels,
        dead_letters: alerts_for(
            config,
            SubjectKind::Queue,
            "dlq",
            None,
            &[Condition::DlqDepth],
        ),
    }
}
