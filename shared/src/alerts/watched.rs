//! The state of each watched thing, once per evaluation: credentials that
//! work again, open circuits, the dead-letter queue's depth, and sources
//! and syncs with `max_silence`.

use crate::clock::{Millis, millis};
use crate::config::{Alerts, Condition};
use crate::hub::Hub;
use crate::model::{RunQuery, RunStatus};
use crate::ports::StoreError;

use super::book::Book;
use super::notice::SubjectKind;
use super::observe::message;
use super::route::{DEFAULT_AT_LEAST, Subject, route};
use super::seen::{Seen, What};

/// Dead letters counted at most on a store that counts them one by one.
const DLQ_COUNT: usize = 1_000;

/// An open `auth_failed` alert clears once a run calling the connection
/// succeeded after the latest refusal (or a sync on it passed).
pub(super) async fn auth_recovered(
    hub: &Hub,
    book: &Book,
    seen: &mut Vec<Seen>,
) -> Result<(), StoreError> {
    for a in book
        .open
        .values()
        .filter(|a| a.condition == Condition::AuthFailed)
    {
        let conn = a.subject.as_str();
        let mut cleared = None;
        for (wf, w) in &hub.config.workflows {
            if cleared.is_some() || !w.steps.iter().any(|s| s.connection == conn) {
                continue;
            }
            let q = RunQuery {
                workflow: Some(wf.clone()),
                status: Some(RunStatus::Succeeded),
                limit: 5,
                ..RunQuery::default()
            };
            if let Some(r) = hub
                .ports
                .runs
                .list(&q)
                .await?
                .into_iter()
                .find(|r| r.updated_at > a.last_at)
            {
                cleared = Some(format!("run {} of {wf} succeeded", r.id));
            }
        }
        if cleared.is_none() {
            for (name, s) in &hub.config.syncs {
                let uses = s.source.as_ref().is_some_and(|p| p.connection == conn);
                if !uses || cleared.is_some() {
                    continue;
                }
                if let Ok(Some((st, _))) = crate::sync::status(hub, name).await
                    && st.last_success.is_some_and(|t| t > a.last_at)
                {
                    cleared = Some(format!("sync {name} passed"));
                }
            }
        }
        if let Some(why) = cleared {
            seen.push(Seen {
                condition: Condition::AuthFailed,
                kind: SubjectKind::Connection,
                subject: conn.to_owned(),
                field: None,
                source: None,
                what: What::Clear { why },
            });
        }
    }
    Ok(())
}

/// Each connection with a circuit breaker: open or closed.
pub(super) async fn circuits(hub: &Hub, seen: &mut Vec<Seen>) -> Result<(), StoreError> {
    for name in hub.config.connections.keys() {
        if hub.connection(name).is_none_or(|c| c.breaker.is_none()) {
            continue;
        }
        let what = match hub.ports.breakers.get(name).await? {
            Some(b) => What::Holds {
                since: b.since,
                message: message(
                    format!("{name}: circuit open, calls held"),
                    format!(
                        "Opened because: {}. Calls wait; one probe goes out when it is due.",
                        b.why
                    ),
                    &[("connection", name.clone()), ("why", b.why.clone())],
                    vec!["ferry connections".into()],
                ),
            },
            None => What::Clear {
                why: "the circuit closed".into(),
            },
        };
        seen.push(Seen {
            condition: Condition::CircuitOpen,
            kind: SubjectKind::Connection,
            subject: name.clone(),
            field: None,
            source: None,
            what,
        });
    }
    Ok(())
}

/// The dead-letter queue's depth, when a rule watches it.
pub(super) async fn dlq(
    hub: &Hub,
    alerts: &Alerts,
    seen: &mut Vec<Seen>,
) -> Result<(), StoreError> {
    let subject = Subject {
        kind: SubjectKind::Queue,
        name: "dlq",
        source: None,
    };
    let Some(r) = route(alerts, Condition::DlqDepth, subject) else {
        return Ok(());
    };
    let at_least = r.rule.and_then(|r| r.at_least).unwrap_or(DEFAULT_AT_LEAST);
    let depth = hub
        .ports
        .queue
        .dead_letter_depth(DLQ_COUNT.max(at_least as usize))
        .await? as u64;
    let what = if depth >= at_least {
        What::Holds {
            since: hub.ports.clock.now_ms(),
            message: message(
                format!("dead-letter queue holds {depth} message(s)"),
                format!(
                    "{depth} runs failed for good and wait for a replay (alert at {at_least})."
                ),
                &[("depth", depth.to_string())],
                vec![
                    "ferry dlq list".into(),
                    "ferry dlq replay --all --dry-run".into(),
                ],
            ),
        }
    } else {
        What::Clear {
            why: format!("{depth} dead letter(s) left"),
        }
    };
    seen.push(Seen {
        condition: Condition::DlqDepth,
        kind: SubjectKind::Queue,
        subject: "dlq".into(),
        field: None,
        source: None,
        what,
    });
    Ok(())
}

/// Sources and syncs with `max_silence`.
pub(super) async fn silence(
    hub: &Hub,
    book: &Book,
    now: Millis,
    seen: &mut Vec<Seen>,
) -> Result<(), StoreError> {
    let watching_since = if book.started_at == 0 {
        now
    } else {
        book.started_at
    };
    for (name, s) in &hub.config.sources {
        let Some(max) = s.max_silence else { continue };
        let q = RunQuery {
            source: Some(name.clone()),
            limit: 1,
            ..RunQuery::default()
        };
        let last = hub.ports.runs.list(&q).await?.first().map(|r| r.created_at);
        seen.push(silent(
            SubjectKind::Source,
            name,
            last,
            watching_since,
            millis(max.get()),
            now,
            "event",
            format!("ferry runs list --source {name}"),
        ));
    }
    for name in hub
        .config
        .syncs
        .iter()
        .filter(|(_, s)| s.max_silence.is_some())
        .map(|(n, _)| n)
    {
        let max = hub.config.syncs[name].max_silence.expect("filtered");
        let last = crate::sync::status(hub, name)
            .await
            .ok()
            .flatten()
            .and_then(|(st, _)| st.last_success);
        seen.push(silent(
            SubjectKind::Sync,
            name,
            last,
            watching_since,
            millis(max.get()),
            now,
            "successful pass",
            "ferry sync status".to_owned(),
        ));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn silent(
    kind: SubjectKind,
    name: &str,
    last: Option<Millis>,
    watching_since: Millis,
    max: Millis,
    now: Millis,
    what: &str,
    command: String,
) -> Seen {
    let since = last.unwrap_or(watching_since);
    let fmt = |t: Millis| crate::clock::rfc3339(t);
    let what = if now - since >= max {
        let quiet = humantime::format_duration(std::time::Duration::from_secs(
            ((now - since) / 1000) as u64,
        ));
        What::Holds {
            since,
            message: message(
                format!("{name}: no {what} for {quiet}"),
                match last {
                    Some(t) => format!(
                        "The last {what} was at {}; max_silence is {}.",
                        fmt(t),
                        humantime::format_duration(std::time::Duration::from_millis(max as u64))
                    ),
                    None => format!(
                        "No {what} since ferry started watching at {}.",
                        fmt(watching_since)
                    ),
                },
                &[("last", last.map(fmt).unwrap_or_default())],
                vec![command],
            ),
        }
    } else {
        What::Clear {
            why: format!("{what} at {}", fmt(since)),
        }
    };
    Seen {
        condition: Condition::Silent,
        kind,
        subject: name.to_owned(),
        field: None,
        source: None,
        what,
    }
}
