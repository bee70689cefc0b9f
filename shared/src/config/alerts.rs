//! The `alerts:` section: where alerts go (channels) and which conditions go
//! where (rules). See `docs/alerts.md`.
//!
//! ```yaml
//! alerts:
//!   channels:
//!     ops: { type: slack, webhook_url: "${env:SLACK_ALERTS_URL}" }
//!     pager: { type: webhook, url: "https://pager.example.com/in", secret: "${env:PAGER_SECRET}" }
//!   default: [ops]
//!   rules:
//!     - { on: run_failed, workflows: [new-lead], channels: [pager] }
//!     - { on: error_rate, above: 20, window: 15m }
//!     - { on: dlq_depth, at_least: 10 }
//! ```

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration::Dur;

/// Alerts: channels, the default channels, and rules routing conditions.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Alerts {
    /// Where alerts can be sent, by name.
    #[serde(default)]
    pub channels: BTreeMap<String, Channel>,
    /// Channels for every condition no rule routes (and rules naming none).
    #[serde(default)]
    pub default: Vec<String>,
    /// Grouping window: alerts of one rule and subject within it make one
    /// message with a count (default 5m).
    #[serde(default)]
    pub window: Option<Dur>,
    /// Consecutive events of a source missing a field that a workflow reads
    /// (and that used to be present) before a drift alert (default 3).
    #[serde(default)]
    pub drift_after: Option<u32>,
    /// Rules, in order; the first that matches a condition and its subject
    /// routes it. Conditions without a matching rule go to `default`.
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// A place alerts are sent. Secrets are references such as `${env:NAME}`.
#[derive(Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Channel {
    /// A Slack incoming webhook.
    Slack {
        /// The incoming-webhook URL (a secret reference: it is the credential).
        webhook_url: String,
    },
    /// JSON to any URL, signed with the Standard Webhooks scheme.
    Webhook {
        /// Where to POST.
        url: String,
        /// The signing secret, `whsec_<base64>` (a secret reference).
        secret: String,
    },
    /// E-mail: by SMTP (`ferry dev`) or by an SNS topic (on AWS, also SMS or Chatbot).
    Email {
        /// Recipients (SMTP).
        #[serde(default)]
        to: Vec<String>,
        /// Sender address (SMTP; default `ferry@localhost`).
        #[serde(default)]
        from: Option<String>,
        /// SMTP server, `smtp://[user:password@]host[:port]` (a secret reference).
        #[serde(default)]
        smtp: Option<String>,
        /// SNS topic ARN; used instead of SMTP when set and running on AWS.
        #[serde(default)]
        sns_topic: Option<String>,
    },
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Channel::Slack { .. } => f.write_str("Slack { webhook_url: [redacted] }"),
            Channel::Webhook { url, .. } => {
                write!(f, "Webhook {{ url: {url:?}, secret: [redacted] }}")
            }
            Channel::Email { to, sns_topic, .. } => {
                write!(
                    f,
                    "Email {{ to: {to:?}, sns_topic: {sns_topic:?}, smtp: [redacted] }}"
                )
            }
        }
    }
}

/// A condition ferry watches for.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// A run failed for good (dead-lettered, credentials refused, permission
    /// denied, rejected, a mapping error), per workflow.
    RunFailed,
    /// A connection's credentials are refused; once until they work again.
    AuthFailed,
    /// A connection's circuit breaker opened.
    CircuitOpen,
    /// The dead-letter queue holds at least `at_least` messages (default 1).
    DlqDepth,
    /// A source with `max_silence` got no event, or a sync with
    /// `max_silence` made no successful pass, for that long.
    Silent,
    /// A field a workflow reads went missing from a source's events, or from
    /// a step's responses.
    Drift,
    /// Over `window`, more than `above` % of a workflow's finished runs failed.
    ErrorRate,
    /// A run of a workflow with `max_latency` finished later than that after
    /// its event arrived.
    Late,
}

impl Condition {
    /// Every condition, in order.
    pub const ALL: [Condition; 8] = [
        Condition::RunFailed,
        Condition::AuthFailed,
        Condition::CircuitOpen,
        Condition::DlqDepth,
        Condition::Silent,
        Condition::Drift,
        Condition::ErrorRate,
        Condition::Late,
    ];

    /// The name in the config (`run_failed`).
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::RunFailed => "run_failed",
            Condition::AuthFailed => "auth_failed",
            Condition::CircuitOpen => "circuit_open",
            Condition::DlqDepth => "dlq_depth",
            Condition::Silent => "silent",
            Condition::Drift => "drift",
            Condition::ErrorRate => "error_rate",
            Condition::Late => "late",
        }
    }
}

/// Routes a condition (for some subjects) to channels, with its thresholds.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The condition.
    pub on: Condition,
    /// Only for these workflows (run_failed, error_rate, late, drift).
    #[serde(default)]
    pub workflows: Vec<String>,
    /// Only for these connections (auth_failed, circuit_open).
    #[serde(default)]
    pub connections: Vec<String>,
    /// Only for these sources or syncs (silent, drift).
    #[serde(default)]
    pub sources: Vec<String>,
    /// Where to send it (default: the `default` channels).
    #[serde(default)]
    pub channels: Vec<String>,
    /// error_rate: the percentage of failed runs above which it alerts (0–100).
    #[serde(default)]
    pub above: Option<f64>,
    /// error_rate: fewer finished runs than this in the window never alert (default 10).
    #[serde(default)]
    pub min_runs: Option<u64>,
    /// dlq_depth: the depth at which it alerts (default 1).
    #[serde(default)]
    pub at_least: Option<u64>,
    /// error_rate: the window the rate is measured over (default 15m);
    /// other conditions: the grouping window (default `alerts.window`).
    #[serde(default)]
    pub window: Option<Dur>,
    /// `false` switches the condition off for the rule's subjects.
    #[serde(default)]
    pub enabled: Option<bool>,
}
