//! Syncs as `ferry describe` tells them: what they poll, how records map,
//! what they write, and for a two-way sync the source of truth per field.

use super::about::{PollInfo, RequestInfo, SyncField, SyncInfo};
use super::alerting::alerts_for;
use super::build::step_request;
use super::flows::{json_flows, request_line, step_info};
use crate::alerts::SubjectKind;
use crate::config::{Condition, Config, ConflictRule, Pagination, Poll, SideName, SyncDef};

/// A sync.
pub fn sync_info(config: &Config, name: &str, s: &SyncDef) -> SyncInfo {
    let mut polls = Vec::new();
    let mut steps = Vec::new();
    let mut fields = Vec::new();
    let mut map = Vec::new();
    if let Some(p) = &s.source {
        polls.push(poll_info("source", p));
    }
    if let Some(p) = &s.tombstones {
        polls.push(poll_info("tombstones", p));
    }
    if let Some(m) = &s.map {
        json_flows("body", m, &mut map);
    }
    steps.extend(s.steps.iter().map(|st| step_info(st, s.retry.as_ref())));
    let on_delete = s
        .on_delete
        .iter()
        .map(|st| step_info(st, s.retry.as_ref()))
        .collect();
    if let Some(tw) = &s.two_way {
        for (side, label) in [(&tw.a, "side a"), (&tw.b, "side b")] {
            polls.push(poll_info(label, &side.source));
            for st in &side.write {
                let mut info = step_info(st, s.retry.as_ref());
                info.id = format!("{label}: {}", info.id);
                steps.push(info);
            }
        }
        let rule = tw.conflict.unwrap_or(ConflictRule::Newest);
        for (fname, f) in &tw.fields {
            let truth = match (f.owner, rule) {
                (Some(SideName::A), _) => "a (b's edits are overwritten)",
                (Some(SideName::B), _) => "b (a's edits are overwritten)",
                (None, ConflictRule::A) => "the side that changed it; a when both did",
                (None, ConflictRule::B) => "the side that changed it; b when both did",
                (None, ConflictRule::Newest) => {
                    "the side that changed it; when both did, the one changed last"
                }
            };
            fields.push(SyncField {
                name: fname.clone(),
                a: f.a.clone(),
                b: f.b.clone(),
                source_of_truth: truth.to_owned(),
            });
        }
    }
    let (duplicates, missing_fields) = if s.two_way.is_some() {
        (
            "a record is a change only if it is newer than the last one seen for its side and its fields differ from the values last agreed, so ferry's own writes coming back (echoes) and records read twice are skipped",
            "a record whose key or a synced field cannot be read is skipped and reported in the sync's run, the rest of the page goes on",
        )
    } else {
        (
            "a record seen again with the same id and version is not sent again; the cursor is saved only after a page's work is queued, so a pass that stops early resumes where it was",
            "a record missing a field the map or steps need fails that record only (`mapping`, dead-lettered), not the pass",
        )
    };
    SyncInfo {
        name: name.to_owned(),
        schedule: s.schedule.clone(),
        kind: if s.two_way.is_some() {
            "two-way"
        } else {
            "one-way"
        }
        .to_owned(),
        polls,
        map,
        steps,
        on_delete,
        fields,
        duplicates: duplicates.to_owned(),
        missing_fields: missing_fields.to_owned(),
        max_silence: s.max_silence.map(|d| super::flows::human(d.get())),
        alerts: match s.max_silence {
            Some(_) => alerts_for(config, SubjectKind::Sync, name, None, &[Condition::Silent]),
            None => Vec::new(),
        },
    }
}

fn poll_info(role: &str, p: &Poll) -> PollInfo {
    let pagination = match &p.pagination {
        None => "one page only".to_owned(),
        Some(Pagination::Cursor { token, param }) => {
            format!("a cursor `{token}` sent back as query parameter {param}")
        }
        Some(Pagination::NextUrl { next }) => format!("the next page's URL in `{next}`"),
        Some(Pagination::LinkHeader) => "the Link header's rel=\"next\"".to_owned(),
        Some(Pagination::Page { param, .. }) => format!("a page number in query parameter {param}"),
        Some(Pagination::Offset { param, limit, .. }) => {
            format!("an offset in query parameter {param}, {limit} per page")
        }
    };
    let mut records = format!("records in `{}`, id `{}`", p.records, p.id);
    if let Some(v) = &p.version {
        records.push_str(&format!(", version `{v}`"));
    }
    if let Some(w) = &p.watermark {
        records.push_str(&format!(", changes since the last `{w}`"));
    }
    if let Some(d) = &p.deleted {
        records.push_str(&format!(", deleted when `{d}`"));
    }
    PollInfo {
        role: role.to_owned(),
        connection: p.connection.clone(),
        request: request_line(&p.request),
        pagination,
        records,
    }
}

/// Every request the syncs can make on connection `name`: polls and steps.
pub fn requests_of_syncs(config: &Config, name: &str) -> Vec<RequestInfo> {
    let mut out = Vec::new();
    let poll = |out: &mut Vec<RequestInfo>, p: &Poll, by: String| {
        if p.connection == name {
            out.push(RequestInfo {
                method: p.request.method.as_http().to_string(),
                path: p.request.path.clone(),
                by,
            });
        }
    };
    for (sn, s) in &config.syncs {
        if let Some(p) = &s.source {
            poll(&mut out, p, format!("sync {sn}, poll"));
        }
        if let Some(p) = &s.tombstones {
            poll(&mut out, p, format!("sync {sn}, tombstones"));
        }
        let lists = [("step", &s.steps), ("on_delete", &s.on_delete)];
        for (what, list) in lists {
            for st in list.iter().filter(|st| st.connection == name) {
                out.push(step_request(st, &format!("sync {sn}, {what} {}", st.id)));
            }
        }
        if let Some(tw) = &s.two_way {
            for (side, label) in [(&tw.a, "a"), (&tw.b, "b")] {
                poll(
                    &mut out,
                    &side.source,
                    format!("sync {sn}, side {label} poll"),
                );
                for st in side.write.iter().filter(|st| st.connection == name) {
                    let by = format!("sync {sn}, side {label} write {}", st.id);
                    out.push(step_request(st, &by));
                }
            }
        }
    }
    out
}
