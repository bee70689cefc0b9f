//! What execute (and a sync) notes as it happens, for the evaluator to
//! count: one [`Tallies`](crate::ports::Tallies) add per fact, in the
//! minute it happened. Nothing is noted without an `alerts:` section, and a
//! run that succeeded on time costs no write unless an `error_rate` rule
//! needs the count of finished runs.

use serde::{Deserialize, Serialize};

use super::SubjectKind;
use super::route::{Subject, bucket, route};
use crate::clock::millis;
use crate::config::Condition;
use crate::hub::Hub;
use crate::keys;
use crate::model::{RunRecord, RunStatus, StepStatus};

/// Longest reason kept in a tally's sample.
const MAX_REASON: usize = 300;

/// What a tally's sample holds: the latest occurrence.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// The run.
    pub run: String,
    /// The failure kind (`mapping`, `auth_failed`, …), or how late it was.
    pub what: String,
    /// The reason, redacted and cut.
    pub reason: String,
}

impl Sample {
    /// Read a stored sample (an unreadable one reads as its text).
    pub fn parse(s: &str) -> Sample {
        serde_json::from_str(s).unwrap_or_else(|_| Sample {
            reason: s.to_owned(),
            ..Sample::default()
        })
    }
}

/// Note that `run` reached its final status.
pub async fn finished(hub: &Hub, run: &RunRecord) {
    let Some(alerts) = &hub.config.alerts else {
        return;
    };
    let now = hub.ports.clock.now_ms();
    let wf = Subject {
        kind: SubjectKind::Workflow,
        name: &run.workflow,
        source: None,
    };
    let mut adds = Vec::new();
    let failed = matches!(run.status, RunStatus::DeadLettered | RunStatus::AuthFailed);
    if failed {
        let sample = Sample {
            run: run.id.clone(),
            what: run
                .failure
                .and_then(|f| serde_json::to_value(f).ok())
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| "failed".into()),
            reason: cut(run.error.as_deref().unwrap_or_default()),
        };
        adds.push((keys::tally("run_failed", &run.workflow), sample.clone()));
        if run.status == RunStatus::AuthFailed
            && let Some(conn) = failing_connection(hub, run)
        {
            adds.push((keys::tally("auth_failed", &conn), sample));
        }
    }
    // Only an `error_rate` rule routes this condition (it is off by default).
    if run.status.is_final() && route(alerts, Condition::ErrorRate, wf).is_some() {
        adds.push((keys::tally("finished", &run.workflow), Sample::default()));
    }
    if let Some(max) = hub
        .config
        .workflows
        .get(&run.workflow)
        .and_then(|w| w.max_latency)
        && run.status.is_final()
        && now - run.created_at > millis(max.get())
    {
        let took = std::time::Duration::from_millis((now - run.created_at).max(0) as u64);
        adds.push((
            keys::tally("late", &run.workflow),
            Sample {
                run: run.id.clone(),
                what: humantime::format_duration(round_secs(took)).to_string(),
                reason: format!(
                    "finished {} after its event arrived (max_latency {max})",
                    humantime::format_duration(round_secs(took))
                ),
            },
        ));
    }
    for (subject, sample) in adds {
        let sample = serde_json::to_string(&sample).unwrap_or_default();
        if let Err(e) = hub
            .ports
            .tallies
            .add(&subject, bucket(now), now, &sample)
            .await
        {
            tracing::warn!(subject, error = %e, "could not note an alert tally");
        }
    }
}

/// The connection of the step that failed, when the run says which.
fn failing_connection(hub: &Hub, run: &RunRecord) -> Option<String> {
    let flow = hub.flow(&run.workflow)?;
    let i = run
        .steps
        .iter()
        .position(|s| s.status == StepStatus::Failed)?;
    flow.steps.get(i).map(|s| s.connection.clone())
}

fn cut(s: &str) -> String {
    match s.char_indices().nth(MAX_REASON) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

fn round_secs(d: std::time::Duration) -> std::time::Duration {
    std::time::Duration::from_secs(d.as_secs())
}
