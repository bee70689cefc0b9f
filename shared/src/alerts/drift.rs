//! Schema drift: a field a workflow reads that stopped arriving.
//!
//! Per source, the evaluator reads the events accepted since its last look
//! (from the run log, at most [`MAX_EVENTS`] per evaluation, oldest first)
//! and keeps, in the cursors port (`fields:<source>`):
//! - every field seen in the events' bodies, with first/last seen and how
//!   often (`ferry sources show`);
//! - for each field a workflow *requires* (reads without a `default` or an
//!   `is defined` test), how many consecutive events lacked it;
//! - the same for the response fields later steps read (`steps.<id>.response.body.…`).
//!
//! A required field missing from [`drift_after`](crate::config::Alerts::drift_after)
//! consecutive events while it was seen before holds the `drift` condition;
//! the next event that has it clears it. A field that only appeared is news
//! for `ferry sources show`, never an alert.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::{Millis, rfc3339};
use crate::config::{Alerts, Condition};
use crate::describe::{fields_of_request, fields_of_template};
use crate::hub::Hub;
use crate::keys;
use crate::model::{RunQuery, RunRecord, StepStatus};
use crate::ports::StoreError;

use super::notice::SubjectKind;
use super::route::DEFAULT_DRIFT_AFTER;
use super::seen::{Message, Seen, What};

/// Most events read per source and evaluation.
pub const MAX_EVENTS: usize = 100;
/// Most distinct fields remembered per source.
pub const MAX_FIELDS: usize = 300;
/// How deep bodies are walked for `ferry sources show`.
const MAX_DEPTH: usize = 4;

/// What ferry remembers about a source's events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceFields {
    /// Events looked at so far.
    #[serde(default)]
    pub events: u64,
    /// The newest event looked at (its `created_at`).
    #[serde(default)]
    pub checked_until: Millis,
    /// Every body field seen (`body.email`), with when and how often.
    #[serde(default)]
    pub seen: BTreeMap<String, FieldSeen>,
    /// Required fields (and read response fields): consecutive events without them.
    #[serde(default)]
    pub missing: BTreeMap<String, u32>,
}

/// One field's history.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldSeen {
    /// First event that had it.
    pub first: Millis,
    /// Latest event that had it.
    pub last: Millis,
    /// Events that had it.
    pub count: u64,
}

/// Who reads a field: a workflow and where in it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Reader {
    workflow: String,
    /// `when`, or a step id.
    at: String,
}

/// The fields of source `name`'s events, as remembered (for `ferry sources show`).
pub async fn fields(hub: &Hub, source: &str) -> Result<SourceFields, StoreError> {
    Ok(load(hub, source).await?.0)
}

async fn load(hub: &Hub, source: &str) -> Result<(SourceFields, Option<u64>), StoreError> {
    match hub.ports.cursors.get(&keys::source_fields(source)).await? {
        None => Ok((SourceFields::default(), None)),
        Some(c) => Ok((
            serde_json::from_str(&c.value).unwrap_or_default(),
            Some(c.version),
        )),
    }
}

/// Drift observations for every source with workflows.
pub async fn observe(hub: &Hub, alerts: &Alerts, now: Millis) -> Result<Vec<Seen>, StoreError> {
    let k = alerts.drift_after.unwrap_or(DEFAULT_DRIFT_AFTER).max(1);
    let mut out = Vec::new();
    for source in hub.config.sources.keys() {
        let readers = required(hub, source);
        if readers.is_empty() {
            continue;
        }
        let (mut st, version) = load(hub, source).await?;
        let q = RunQuery {
            source: Some(source.clone()),
            since: Some(st.checked_until + 1),
            limit: MAX_EVENTS,
            ..RunQuery::default()
        };
        let mut runs = hub.ports.runs.list(&q).await?;
        runs.reverse();
        if !runs.is_empty() {
            update(&mut st, &runs, &readers);
            let value = serde_json::to_string(&st).unwrap_or_default();
            // Another evaluator that saved first saw the same events.
            hub.ports
                .cursors
                .put(&keys::source_fields(source), &value, version)
                .await?;
        }
        for (field, who) in &readers {
            let gone = st.missing.get(field).copied().unwrap_or(0);
            // Response fields are remembered in `seen` under their full path too.
            let was_seen = st.seen.contains_key(field);
            for (workflow, ats) in group(who) {
                let what = if gone >= k && was_seen {
                    What::Holds {
                        since: now,
                        message: message(source, field, &workflow, &ats, gone, &st),
                    }
                } else {
                    What::Clear {
                        why: format!("{field} is in {source}'s events again"),
                    }
                };
                out.push(Seen {
                    condition: Condition::Drift,
                    kind: SubjectKind::Workflow,
                    subject: workflow,
                    field: Some(field.clone()),
                    source: Some(source.clone()),
                    what,
                });
            }
        }
    }
    Ok(out)
}

fn group(who: &BTreeSet<Reader>) -> BTreeMap<String, Vec<String>> {
    let mut by: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in who {
        by.entry(r.workflow.clone()).or_default().push(r.at.clone());
    }
    by
}

fn message(
    source: &str,
    field: &str,
    wf: &str,
    ats: &[String],
    gone: u32,
    st: &SourceFields,
) -> Message {
    let newest = st.checked_until;
    let added: Vec<&str> = st
        .seen
        .iter()
        .filter(|(f, s)| f.starts_with("body.") && s.count <= u64::from(gone) && s.last == newest)
        .map(|(f, _)| f.as_str())
        .collect();
    let is_response = field.starts_with("steps.");
    let title = if is_response {
        format!("{wf}: {field} stopped appearing in responses")
    } else {
        format!("{wf}: {field} missing from {source} events")
    };
    let mut detail = format!(
        "The last {gone} {} had no {field} (seen before, last at {}); {} read{} it.",
        if is_response { "responses" } else { "events" },
        st.seen
            .get(field)
            .map(|s| rfc3339(s.last))
            .unwrap_or_default(),
        ats.join(", "),
        if ats.len() == 1 { "s" } else { "" },
    );
    if !added.is_empty() {
        detail.push_str(&format!(" New in those events: {}.", added.join(", ")));
    }
    let mut facts = BTreeMap::new();
    facts.insert("workflow".into(), wf.to_owned());
    facts.insert("read_by".into(), ats.join(", "));
    facts.insert("missing_in".into(), gone.to_string());
    if !added.is_empty() {
        facts.insert("added".into(), added.join(", "));
    }
    Message {
        title,
        detail,
        facts,
        commands: vec![
            format!("ferry sources show {source}"),
            format!("ferry runs list --source {source}"),
        ],
    }
}

/// Fields each workflow on `source` requires, with who reads them.
fn required(hub: &Hub, source: &str) -> BTreeMap<String, BTreeSet<Reader>> {
    let mut out: BTreeMap<String, BTreeSet<Reader>> = BTreeMap::new();
    for wf in hub.workflows_for(source) {
        let Some(w) = hub.config.workflows.get(wf) else {
            continue;
        };
        let mut add = |src: &str, fields: BTreeSet<String>, at: &str| {
            for f in fields {
                let wanted = f.starts_with("body.")
                    || (f.starts_with("steps.") && f.contains(".response.body."));
                if wanted && !guarded(src, &f) {
                    out.entry(f).or_default().insert(Reader {
                        workflow: wf.clone(),
                        at: at.to_owned(),
                    });
                }
            }
        };
        if let Some(when) = &w.when {
            add(when, fields_of_template(when), "when");
        }
        for s in &w.steps {
            let text = serde_json::to_string(&s.request).unwrap_or_default();
            add(
                &text,
                fields_of_request(&s.request),
                &format!("step {}", s.id),
            );
        }
    }
    out
}

/// Whether every read of `field` in `src` tolerates its absence
/// (`| default(…)`, `is defined`, `is undefined`, `is none`).
fn guarded(src: &str, field: &str) -> bool {
    let mut reads = src.match_indices(field).peekable();
    if reads.peek().is_none() {
        return false;
    }
    reads.all(|(i, _)| {
        let rest = src[i + field.len()..].trim_start();
        let rest = rest.strip_prefix('|').map(str::trim_start);
        match rest {
            Some(r) => r.starts_with("default") || r.starts_with("d(") || r.starts_with("d "),
            None => {
                let after = src[i + field.len()..].trim_start();
                after.starts_with("is defined")
                    || after.starts_with("is undefined")
                    || after.starts_with("is none")
                    || after.starts_with("is not none")
            }
        }
    })
}

/// Count the fields of `runs` (oldest first; one per event per workflow).
fn update(st: &mut SourceFields, runs: &[RunRecord], readers: &BTreeMap<String, BTreeSet<Reader>>) {
    let mut events = BTreeSet::new();
    for run in runs {
        st.checked_until = st.checked_until.max(run.created_at);
        let Some(ev) = &run.event else { continue };
        if ev.truncated || !events.insert(run.event_id.clone()) {
            continue;
        }
        st.events += 1;
        let mut present = BTreeSet::new();
        walk(&ev.payload, "body", 0, &mut present);
        for f in &present {
            note_seen(st, f, run.created_at);
        }
        for field in readers.keys().filter(|f| f.starts_with("body.")) {
            let has = lookup(&ev.payload, &field["body.".len()..]).is_some();
            streak(st, field, has);
        }
    }
    // Response fields: from each run's own steps.
    for run in runs {
        for (field, who) in readers {
            if !field.starts_with("steps.") || !who.iter().any(|r| r.workflow == run.workflow) {
                continue;
            }
            let Some((step, path)) = field["steps.".len()..].split_once(".response.body.") else {
                continue;
            };
            let Some(resp) = run
                .steps
                .iter()
                .find(|s| s.id == step && s.status == StepStatus::Succeeded)
                .and_then(|s| s.attempts.last())
                .and_then(|a| a.response.as_ref())
                .filter(|r| !r.truncated)
            else {
                continue;
            };
            let has = lookup(&resp.body, path).is_some();
            if has {
                note_seen(st, field, run.created_at);
            }
            streak(st, field, has);
        }
    }
}

fn note_seen(st: &mut SourceFields, field: &str, at: Millis) {
    if let Some(s) = st.seen.get_mut(field) {
        s.last = s.last.max(at);
        s.count += 1;
    } else if st.seen.len() < MAX_FIELDS {
        st.seen.insert(
            field.to_owned(),
            FieldSeen {
                first: at,
                last: at,
                count: 1,
            },
        );
    }
}

fn streak(st: &mut SourceFields, field: &str, has: bool) {
    if has {
        st.missing.remove(field);
    } else {
        *st.missing.entry(field.to_owned()).or_default() += 1;
    }
}

/// The value at dotted `path` in `v`, if any (`null` counts as present).
fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

fn walk(v: &Value, at: &str, depth: usize, out: &mut BTreeSet<String>) {
    let Value::Object(map) = v else { return };
    for (k, child) in map {
        let path = format!("{at}.{k}");
        if depth + 1 < MAX_DEPTH {
            walk(child, &path, depth + 1, out);
        }
        out.insert(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_that_tolerate_absence_are_not_required() {
        assert!(guarded(
            "{{ body.interest | default('x') }}",
            "body.interest"
        ));
        assert!(guarded("body.email is defined", "body.email"));
        assert!(!guarded("{{ body.email | lower }}", "body.email"));
        assert!(
            !guarded(
                "{{ body.email | default('') }} {{ body.email }}",
                "body.email"
            ),
            "one unguarded read makes it required"
        );
    }

    #[test]
    fn nested_fields_are_found_and_looked_up() {
        let v = serde_json::json!({"a": {"b": {"c": 1}}, "n": null});
        let mut out = BTreeSet::new();
        walk(&v, "body", 0, &mut out);
        assert!(
            out.contains("body.a.b.c") && out.contains("body.n"),
            "{out:?}"
        );
        assert!(lookup(&v, "a.b.c").is_some());
        assert!(lookup(&v, "n").is_some(), "null is present");
        assert!(lookup(&v, "a.x").is_none());
    }
}
