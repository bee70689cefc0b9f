//! `expect.alert`: after a case's runs finish, the real alert evaluator
//! ([`crate::alerts::evaluate`]) runs on the case's store as the virtual
//! clock moves on, minute by minute, with a [`Recorder`] for a sender; the
//! expectation is then checked against what it was handed.

use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::alerts::{Notice, SendError, Sender, State};
use crate::clock::VirtualClock;
use crate::config::{Channel, Condition};
use crate::hub::Hub;

/// Minutes of virtual time the evaluator is run for after the runs end:
/// longer than the default grouping window, so a grouped alert is sent too.
pub const MINUTES: u32 = 6;

/// An expected alert: a condition (`run_failed`), or a condition with the
/// subject it is about (`new-lead`) and its state (`firing`, `resolved`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum AlertExpect {
    /// Just the condition.
    Condition(String),
    /// The condition, and optionally its subject and state.
    Full {
        /// The condition (`run_failed`, `auth_failed`, …).
        condition: String,
        /// The subject's name (the workflow, connection, source or sync).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<String>,
        /// `firing` (default: any) or `resolved`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        state: Option<String>,
    },
}

/// A sender that keeps every notice it is handed (and sends nothing).
#[derive(Debug, Default)]
pub struct Recorder {
    sent: Mutex<Vec<Notice>>,
}

impl Recorder {
    /// Every notice so far, in order.
    pub fn sent(&self) -> Vec<Notice> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[async_trait]
impl Sender for Recorder {
    async fn send(&self, _: &str, _: &Channel, notice: &Notice) -> Result<(), SendError> {
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        // A notice is retried by id until a channel takes it; keep it once.
        if !sent.iter().any(|n| n.id == notice.id) {
            sent.push(notice.clone());
        }
        Ok(())
    }
}

/// Run the evaluator for [`MINUTES`] of virtual time; what it sent, or why not.
pub async fn fired(hub: &Hub, clock: &VirtualClock) -> Result<Vec<Notice>, String> {
    let recorder = Recorder::default();
    for _ in 0..MINUTES {
        clock.advance(60_000);
        crate::alerts::evaluate(hub, &recorder)
            .await
            .map_err(|e| format!("evaluating alerts: {e}"))?;
    }
    Ok(recorder.sent())
}

/// Every way `fired` misses `want` (`None`: the config has no `alerts:`).
pub fn check(want: &AlertExpect, fired: Option<&[Notice]>) -> Vec<String> {
    let (condition, subject, state) = match want {
        AlertExpect::Condition(c) => (c, None, None),
        AlertExpect::Full {
            condition,
            subject,
            state,
        } => (condition, subject.as_ref(), state.as_ref()),
    };
    let Some(fired) = fired else {
        return vec![format!(
            "expect.alert {condition:?}: the config has no `alerts:` section, so no alert can fire; add one (see docs/alerts.md)"
        )];
    };
    let mut fails = Vec::new();
    if !Condition::ALL.iter().any(|c| c.as_str() == condition) {
        let names: Vec<&str> = Condition::ALL.iter().map(|c| c.as_str()).collect();
        fails.push(format!(
            "expect.alert: unknown condition {condition:?}; one of {}",
            names.join(", ")
        ));
    }
    let state_ok = |n: &Notice| match state.map(String::as_str) {
        None => true,
        Some("resolved") => n.state == State::Resolved,
        Some(_) => n.state == State::Firing,
    };
    if let Some(s) = state.filter(|s| !matches!(s.as_str(), "firing" | "resolved")) {
        fails.push(format!(
            "expect.alert: state {s:?} is not `firing` or `resolved`"
        ));
    }
    let found = fired.iter().any(|n| {
        n.condition.as_str() == condition && subject.is_none_or(|s| &n.subject == s) && state_ok(n)
    });
    if !found && fails.is_empty() {
        let what = match (subject, state) {
            (Some(s), Some(st)) => format!("{condition} on {s} ({st})"),
            (Some(s), None) => format!("{condition} on {s}"),
            (None, Some(st)) => format!("{condition} ({st})"),
            (None, None) => condition.clone(),
        };
        let got: Vec<String> = fired
            .iter()
            .map(|n| {
                let st = match n.state {
                    State::Firing => "firing",
                    State::Resolved => "resolved",
                };
                format!("{} on {} ({st})", n.condition.as_str(), n.subject)
            })
            .collect();
        fails.push(format!(
            "no alert {what} was sent; sent: {}",
            if got.is_empty() {
                "none".to_owned()
            } else {
                got.join(", ")
            }
        ));
    }
    fails
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::file::TestFile;
    use super::super::{Runner, expect};

    const CONFIG: &str = "version: 1
connections:
  api: { base_url: \"${env:API_URL}\" }
sources:
  s: { verify: { scheme: api-key, header: X-Key, secret: \"${env:KEY}\" }, event_id: \"{{ body.id }}\" }
workflows:
  push:
    trigger: { source: s }
    steps:
      - { id: call, connection: api, request: { method: POST, path: /things, json: { id: \"{{ body.id }}\" } } }
ALERTS";

    const CASES: &str = "cases:
  - name: a rejected call alerts
    event: { source: s, payload: { id: a1 } }
    mocks: { call: 422 }
    expect: { status: dead_lettered, alert: run_failed }
  - name: the wrong alert is named with what was sent
    event: { source: s, payload: { id: a2 } }
    mocks: { call: 422 }
    expect: { alert: { condition: run_failed, subject: other } }
  - name: a success fires nothing
    event: { source: s, payload: { id: a3 } }
    mocks: { call: 201 }
    expect: { alert: { condition: run_failed, subject: push, state: firing } }
";

    async fn run(alerts: &str) -> Vec<Vec<String>> {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("ferry.yaml");
        std::fs::write(&config, CONFIG.replace("ALERTS", alerts)).unwrap();
        let runner = Runner::new(&config, &BTreeMap::new()).await.unwrap();
        let file: TestFile = serde_yaml_ng::from_str(CASES).unwrap();
        let mut all = Vec::new();
        for case in &file.cases {
            let out = runner.run(case).await;
            all.push(expect::check(&case.expect, &out));
        }
        all
    }

    /// The evaluator runs after the case on the virtual clock: a dead-lettered
    /// run sends `run_failed` on its workflow; a wrong subject or an alert
    /// that did not fire fails the case saying what was sent.
    #[tokio::test]
    async fn an_expected_alert_is_checked_against_what_the_evaluator_sent() {
        let fails = run("alerts:\n  channels: { ops: { type: slack, webhook_url: \"${env:OPS}\" } }\n  default: [ops]\n").await;
        assert_eq!(fails[0], Vec::<String>::new());
        assert_eq!(
            fails[1],
            [
                "no alert run_failed on other was sent; sent: run_failed on push (firing), run_failed on push (resolved)"
            ]
        );
        assert_eq!(
            fails[2],
            ["no alert run_failed on push (firing) was sent; sent: none"]
        );
    }

    #[tokio::test]
    async fn an_expected_alert_without_an_alerts_section_says_so() {
        let fails = run("").await;
        assert!(
            fails[0].iter().any(|f| f
                == "expect.alert \"run_failed\": the config has no `alerts:` section, so no alert can fire; add one (see docs/alerts.md)"),
            "{:?}",
            fails[0]
        );
    }

    #[test]
    fn an_unknown_condition_or_state_is_named() {
        let want: super::AlertExpect =
            serde_yaml_ng::from_str("{ condition: run_faild, state: open }").unwrap();
        let fails = super::check(&want, Some(&[]));
        assert!(
            fails[0].contains("unknown condition \"run_faild\""),
            "{fails:?}"
        );
        assert!(fails[1].contains("state \"open\""), "{fails:?}");
    }
}
