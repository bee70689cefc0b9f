//! Which rule (and so which channels and thresholds) a condition on a
//! subject follows: the first rule for the condition whose filters match,
//! else the `default` channels for the conditions that are on by default.

use std::time::Duration;

use crate::clock::Millis;
use crate::config::{Alerts, Condition, Rule};

use super::SubjectKind;

/// Tallies are counted per minute; every window is a whole number of them.
pub const BUCKET: Duration = Duration::from_secs(60);
/// Grouping window unless the config says otherwise.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(5 * 60);
/// Consecutive events missing a field before a drift alert.
pub const DEFAULT_DRIFT_AFTER: u32 = 3;
/// Window an error rate is measured over.
pub const DEFAULT_ERROR_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Fewer finished runs than this in the window never make an error-rate alert.
pub const DEFAULT_MIN_RUNS: u64 = 10;
/// Dead letters that make a `dlq_depth` alert.
pub const DEFAULT_AT_LEAST: u64 = 1;

/// The start of the minute `t` falls in.
pub fn bucket(t: Millis) -> Millis {
    let b = BUCKET.as_millis() as Millis;
    t - t.rem_euclid(b)
}

/// What an alert is about, as rules filter it.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// What kind of thing.
    pub kind: SubjectKind,
    /// Its name.
    pub name: &'a str,
    /// For drift: the source whose events (or the workflow whose responses) lost the field.
    pub source: Option<&'a str>,
}

/// Where an alert goes and with which thresholds.
#[derive(Debug, Clone)]
pub struct Route<'a> {
    /// The rule that matched (none: the default route).
    pub rule: Option<&'a Rule>,
    /// Channel names.
    pub channels: Vec<String>,
    /// The grouping window.
    pub window: Duration,
}

/// The route of `condition` on `subject`; `None` when it is off (a rule with
/// `enabled: false`, or a condition that needs a rule and has none).
pub fn route<'a>(
    alerts: &'a Alerts,
    condition: Condition,
    subject: Subject<'_>,
) -> Option<Route<'a>> {
    let default_window = alerts.window.map_or(DEFAULT_WINDOW, |d| d.get());
    let rule = alerts
        .rules
        .iter()
        .find(|r| r.on == condition && matches(r, subject));
    match rule {
        Some(r) if r.enabled == Some(false) => None,
        Some(r) => Some(Route {
            rule: Some(r),
            channels: if r.channels.is_empty() {
                alerts.default.clone()
            } else {
                r.channels.clone()
            },
            window: match condition {
                // An error rate's window is what it is measured over, not a grouping.
                Condition::ErrorRate => default_window,
                _ => r.window.map_or(default_window, |d| d.get()),
            },
        }),
        None if on_by_default(condition) => Some(Route {
            rule: None,
            channels: alerts.default.clone(),
            window: default_window,
        }),
        None => None,
    }
}

/// Conditions that alert without a rule (those needing a threshold do not;
/// `silent` and `late` still need `max_silence` / `max_latency`).
fn on_by_default(c: Condition) -> bool {
    !matches!(c, Condition::DlqDepth | Condition::ErrorRate)
}

fn matches(rule: &Rule, s: Subject<'_>) -> bool {
    let any = |list: &[String], name: &str| list.is_empty() || list.iter().any(|n| n == name);
    match s.kind {
        SubjectKind::Workflow => {
            any(&rule.workflows, s.name) && s.source.is_none_or(|src| any(&rule.sources, src))
        }
        SubjectKind::Connection => any(&rule.connections, s.name),
        SubjectKind::Source | SubjectKind::Sync => any(&rule.sources, s.name),
        SubjectKind::Queue => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alerts(yaml: &str) -> Alerts {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    fn wf(name: &str) -> Subject<'_> {
        Subject {
            kind: SubjectKind::Workflow,
            name,
            source: None,
        }
    }

    #[test]
    fn the_first_matching_rule_routes_else_the_default() {
        let a = alerts(
            "default: [ops]\nrules:\n  - { on: run_failed, workflows: [billing], channels: [pager], window: 10m }\n  - { on: run_failed, workflows: [noisy], enabled: false }\n  - { on: error_rate, above: 20 }\n",
        );
        let r = route(&a, Condition::RunFailed, wf("billing")).unwrap();
        assert_eq!(r.channels, ["pager"]);
        assert_eq!(r.window, Duration::from_secs(600));
        let r = route(&a, Condition::RunFailed, wf("new-lead")).unwrap();
        assert!(r.rule.is_none());
        assert_eq!(
            (r.channels, r.window),
            (vec!["ops".to_owned()], DEFAULT_WINDOW)
        );
        assert!(
            route(&a, Condition::RunFailed, wf("noisy")).is_none(),
            "switched off"
        );
        let r = route(&a, Condition::ErrorRate, wf("any")).unwrap();
        assert_eq!(
            r.channels,
            ["ops"],
            "a rule without channels uses the default"
        );
        let queue = Subject {
            kind: SubjectKind::Queue,
            name: "dlq",
            source: None,
        };
        assert!(
            route(&a, Condition::DlqDepth, queue).is_none(),
            "needs a rule"
        );
    }

    #[test]
    fn buckets_are_whole_minutes() {
        assert_eq!(bucket(1_700_000_059_999), 1_700_000_040_000);
        assert_eq!(bucket(1_700_000_040_000), 1_700_000_040_000);
        assert_eq!(bucket(-1), -60_000);
    }
}
