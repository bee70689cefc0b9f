//! Observing every condition once per evaluation: the tallies since the
//! book's mark, and the state of each watched thing. Reads only (drift also
//! updates its per-source field counts, see [`super::drift`]).

use std::collections::BTreeMap;

use crate::clock::{Millis, millis};
use crate::config::Condition;
use crate::hub::Hub;
use crate::ports::{StoreError, Tally};

use super::book::{Book, Mark};
use super::note::Sample;
use super::notice::SubjectKind;
use super::route::{BUCKET, DEFAULT_ERROR_WINDOW, DEFAULT_MIN_RUNS, Subject, bucket, route};
use super::seen::{Message, Seen, What};
use super::watched;
use crate::config::Alerts;

/// Most minutes of tallies one evaluation catches up on.
const MAX_CATCH_UP: i64 = 120;

/// Every observation at `now`, and the new mark.
pub async fn observe(
    hub: &Hub,
    alerts: &Alerts,
    book: &Book,
    now: Millis,
) -> Result<(Vec<Seen>, Mark), StoreError> {
    let mut seen = Vec::new();
    let mark = tallies(hub, alerts, book, now, &mut seen).await?;
    watched::auth_recovered(hub, book, &mut seen).await?;
    watched::circuits(hub, &mut seen).await?;
    watched::dlq(hub, alerts, &mut seen).await?;
    watched::silence(hub, book, now, &mut seen).await?;
    seen.extend(super::drift::observe(hub, alerts, now).await?);
    Ok((seen, mark))
}

pub(super) fn message(
    title: String,
    detail: String,
    facts: &[(&str, String)],
    commands: Vec<String>,
) -> Message {
    Message {
        title,
        detail,
        facts: facts
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
        commands,
    }
}

/// Counted conditions from the tallies since the mark, and error rates
/// over their windows.
async fn tallies(
    hub: &Hub,
    alerts: &Alerts,
    book: &Book,
    now: Millis,
    seen: &mut Vec<Seen>,
) -> Result<Mark, StoreError> {
    let step = millis(BUCKET);
    let now_b = bucket(now);
    let error_window = alerts
        .rules
        .iter()
        .filter(|r| r.on == Condition::ErrorRate)
        .map(|r| millis(r.window.map_or(DEFAULT_ERROR_WINDOW, |d| d.get())))
        .max()
        .unwrap_or(0);
    let oldest = now_b - MAX_CATCH_UP * step;
    let from_mark = if book.mark.bucket == 0 {
        now_b - millis(super::route::DEFAULT_WINDOW)
    } else {
        book.mark.bucket.max(oldest)
    };
    let from = from_mark.min(now_b - error_window + step).max(oldest);
    let mut by_bucket: BTreeMap<Millis, Vec<Tally>> = BTreeMap::new();
    let mut b = from;
    while b <= now_b {
        by_bucket.insert(b, hub.ports.tallies.window(b).await?);
        b += step;
    }
    // New occurrences per subject since the mark.
    let mut new: BTreeMap<&str, (u64, Millis, Millis, &str)> = BTreeMap::new();
    for (b, list) in by_bucket.range(from_mark..) {
        for t in list {
            let before = if *b == book.mark.bucket {
                book.mark.counts.get(&t.subject).copied().unwrap_or(0)
            } else {
                0
            };
            let n = t.count.saturating_sub(before);
            if n == 0 {
                continue;
            }
            let e = new
                .entry(&t.subject)
                .or_insert((0, t.first, t.last, &t.sample));
            e.0 += n;
            e.1 = e.1.min(t.first);
            if t.last >= e.2 {
                e.2 = t.last;
                e.3 = &t.sample;
            }
        }
    }
    for (subject, (n, first, last, sample)) in new {
        let Some((what, name)) = subject.split_once(':') else {
            continue;
        };
        let sample = Sample::parse(sample);
        let (condition, kind, msg) = match what {
            "run_failed" => (
                Condition::RunFailed,
                SubjectKind::Workflow,
                failed_message(name, &sample),
            ),
            "late" => (
                Condition::Late,
                SubjectKind::Workflow,
                late_message(name, &sample),
            ),
            "auth_failed" => (
                Condition::AuthFailed,
                SubjectKind::Connection,
                auth_message(name, &sample),
            ),
            _ => continue,
        };
        seen.push(Seen {
            condition,
            kind,
            subject: name.to_owned(),
            field: None,
            source: None,
            what: What::Counted {
                new: n,
                first,
                last,
                message: msg,
            },
        });
    }
    error_rates(alerts, hub, &by_bucket, now_b, seen);
    let counts = by_bucket
        .get(&now_b)
        .map(|l| l.iter().map(|t| (t.subject.clone(), t.count)).collect())
        .unwrap_or_default();
    Ok(Mark {
        bucket: now_b,
        counts,
    })
}

fn failed_message(wf: &str, s: &Sample) -> Message {
    message(
        format!("{wf}: runs failed for good"),
        format!("Latest: {} — {}", s.what, s.reason),
        &[
            ("workflow", wf.to_owned()),
            ("failure", s.what.clone()),
            ("run", s.run.clone()),
        ],
        vec![
            format!("ferry runs show {}", s.run),
            format!("ferry runs list --workflow {wf} --status dead_lettered"),
            format!("ferry dlq replay --workflow {wf} --dry-run"),
        ],
    )
}

fn late_message(wf: &str, s: &Sample) -> Message {
    message(
        format!("{wf}: runs finish late"),
        format!("Latest: run {} {}", s.run, s.reason),
        &[
            ("workflow", wf.to_owned()),
            ("took", s.what.clone()),
            ("run", s.run.clone()),
        ],
        vec![format!("ferry runs show {}", s.run), "ferry status".into()],
    )
}

fn auth_message(conn: &str, s: &Sample) -> Message {
    message(
        format!("{conn}: credentials refused"),
        format!(
            "Every run calling {conn} fails until its credentials are fixed. Latest: {}",
            s.reason
        ),
        &[("connection", conn.to_owned()), ("run", s.run.clone())],
        vec![
            format!("ferry runs show {}", s.run),
            "ferry connections".to_owned(),
            "ferry runs list --status auth_failed".to_owned(),
        ],
    )
}

/// Per workflow an `error_rate` rule covers: failed / finished over its window.
fn error_rates(
    alerts: &Alerts,
    hub: &Hub,
    by_bucket: &BTreeMap<Millis, Vec<Tally>>,
    now_b: Millis,
    seen: &mut Vec<Seen>,
) {
    for wf in hub.config.workflows.keys() {
        let subject = Subject {
            kind: SubjectKind::Workflow,
            name: wf,
            source: None,
        };
        let Some(r) = route(alerts, Condition::ErrorRate, subject) else {
            continue;
        };
        let Some(rule) = r.rule else { continue };
        let Some(above) = rule.above else { continue };
        let window = millis(rule.window.map_or(DEFAULT_ERROR_WINDOW, |d| d.get()));
        let since = now_b - window + millis(BUCKET);
        let sum = |what: &str| -> u64 {
            let subject = crate::keys::tally(what, wf);
            by_bucket
                .range(since..)
                .flat_map(|(_, l)| l.iter().filter(|t| t.subject == subject))
                .map(|t| t.count)
                .sum()
        };
        let (failed, finished) = (sum("run_failed"), sum("finished"));
        let min_runs = rule.min_runs.unwrap_or(DEFAULT_MIN_RUNS);
        let rate = if finished == 0 {
            0.0
        } else {
            failed as f64 * 100.0 / finished as f64
        };
        let win = humantime::format_duration(std::time::Duration::from_millis(window as u64));
        let what = if finished >= min_runs && rate > above {
            What::Holds {
                since,
                message: message(
                    format!("{wf}: {rate:.0}% of runs failed over {win}"),
                    format!(
                        "{failed} of {finished} runs failed for good in the last {win} (threshold {above}%)."
                    ),
                    &[
                        ("workflow", wf.clone()),
                        ("rate", format!("{rate:.1}")),
                        ("failed", failed.to_string()),
                        ("finished", finished.to_string()),
                    ],
                    vec![format!(
                        "ferry runs list --workflow {wf} --status dead_lettered"
                    )],
                ),
            }
        } else {
            What::Clear {
                why: format!("{failed} of {finished} runs failed in the last {win}"),
            }
        };
        seen.push(Seen {
            condition: Condition::ErrorRate,
            kind: SubjectKind::Workflow,
            subject: wf.clone(),
            field: None,
            source: None,
            what,
        });
    }
}
