//! Two-way: poll both systems from their own watermarks, then merge each
//! changed record with what ferry last agreed for its key (the shadow, one
//! cursor per key), field by field:
//!
//! - a field changed on one side only takes that side's value;
//! - a field with an `owner` always takes the owner's value (the other side's
//!   edits are overwritten);
//! - a field changed on both sides to different values is a conflict, settled
//!   by `conflict` (`newest` by watermark, `a` or `b`) and written to the run log.
//!
//! A polled record is a change only when it is newer than the last one ferry
//! processed for that side *and* its fields differ from the agreed ones. So
//! ferry's own writes coming back (the echo) are not changes, and neither are
//! records refetched at an inclusive watermark.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::pass::{Handler, PassEnd, Run};
use super::{RECORD_MEMORY, SyncError, later, scalar};
use crate::config::{ConflictRule, Poll, SideName, TwoWay};
use crate::flow::FlowName;
use crate::hub::Hub;
use crate::ingest::{Accepted, accept};
use crate::model::Event;
use crate::template::context;

/// Keys merged at once.
const CHUNK: usize = 64;

/// What ferry last agreed for a key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Shadow {
    fields: BTreeMap<String, Value>,
    #[serde(default)]
    a_at: Option<String>,
    #[serde(default)]
    b_at: Option<String>,
}

/// A record as read from one side.
#[derive(Debug, Clone)]
struct Seen {
    fields: BTreeMap<String, Value>,
    at: String,
    record: Value,
}

pub(super) async fn run(run: &mut Run<'_>) -> Result<PassEnd, SyncError> {
    let tw = run.def.two_way.as_ref().expect("validated: two_way");
    let mut a = Handler::Collect(Vec::new());
    let mut b = Handler::Collect(Vec::new());
    let mut end = run.drive("a", &tw.a.source, &mut a).await?;
    if end == PassEnd::Finished {
        end = run.drive("b", &tw.b.source, &mut b).await?;
    }
    let (Handler::Collect(ra), Handler::Collect(rb)) = (a, b) else {
        unreachable!("collect handlers stay collect handlers")
    };
    let sa = read_side(run, tw, SideName::A, &tw.a.source, ra);
    let sb = read_side(run, tw, SideName::B, &tw.b.source, rb);
    let mut keys: Vec<&String> = sa.keys().chain(sb.keys()).collect();
    keys.sort();
    keys.dedup();
    for chunk in keys.chunks(CHUNK) {
        let merged = futures::future::join_all(
            chunk
                .iter()
                .map(|k| merge_key(run.hub, run.name, tw, k, sa.get(*k), sb.get(*k))),
        )
        .await;
        for m in merged {
            let m = m?;
            run.counts.sent += m.writes;
            run.counts.skipped += m.unchanged;
            run.counts.conflicts += m.conflicts.len() as u64;
            run.conflicts.extend(m.conflicts);
        }
    }
    // Only now, with every write enqueued and every shadow saved, do the watermarks move.
    run.saved.save(run.hub, run.name).await?;
    Ok(end)
}

/// Each record's key, fields and update time; the latest per key.
fn read_side(
    run: &mut Run<'_>,
    tw: &TwoWay,
    side: SideName,
    poll: &Poll,
    records: Vec<Value>,
) -> BTreeMap<String, Seen> {
    let t = &run.hub.templates;
    let mut out: BTreeMap<String, Seen> = BTreeMap::new();
    let mut failures = Vec::new();
    for record in records {
        let ctx = context(&json!({ "record": record }));
        let key = match t.eval_json(&poll.id, &ctx) {
            Ok(v) if !v.is_null() && v != "" => scalar(&v),
            Ok(_) => {
                failures.push(format!("{side:?}: a record without a key (`{}`)", poll.id));
                continue;
            }
            Err(e) => {
                failures.push(format!("{side:?}: a record without a key: {e}"));
                continue;
            }
        };
        let mut fields = BTreeMap::new();
        let mut bad = None;
        for (name, f) in &tw.fields {
            let expr = match side {
                SideName::A => &f.a,
                SideName::B => &f.b,
            };
            match t.eval_json(expr, &ctx) {
                Ok(v) => {
                    fields.insert(name.clone(), v);
                }
                Err(e) => bad = Some(format!("{side:?} record {key}: field {name}: {e}")),
            }
        }
        if let Some(why) = bad {
            failures.push(why);
            continue;
        }
        let at = poll
            .watermark
            .as_ref()
            .and_then(|w| t.eval_json(w, &ctx).ok())
            .map(|v| scalar(&v))
            .unwrap_or_default();
        if out.get(&key).is_some_and(|s| !later(&at, &s.at)) {
            continue;
        }
        out.insert(key, Seen { fields, at, record });
    }
    for f in failures {
        run.fail_record(f);
    }
    out
}

struct Merged {
    writes: u64,
    unchanged: u64,
    conflicts: Vec<String>,
}

async fn merge_key(
    hub: &Hub,
    name: &str,
    tw: &TwoWay,
    key: &str,
    a: Option<&Seen>,
    b: Option<&Seen>,
) -> Result<Merged, SyncError> {
    let shadow_key = crate::keys::sync_shadow(name, key);
    let cur = hub
        .ports
        .cursors
        .get(&shadow_key)
        .await
        .map_err(SyncError::store)?;
    let (version, shadow) = match &cur {
        Some(c) => (
            Some(c.version),
            Some(serde_json::from_str::<Shadow>(&c.value).unwrap_or_default()),
        ),
        None => (None, None),
    };
    let base = shadow.as_ref().map(|s| &s.fields);
    // A change: newer than the last record processed, with other values than agreed.
    let is_change = |s: &Seen, last: Option<&String>| {
        last.is_none_or(|l| later(&s.at, l)) && base.is_none_or(|f| *f != s.fields)
    };
    let ca = a.filter(|s| is_change(s, shadow.as_ref().and_then(|sh| sh.a_at.as_ref())));
    let cb = b.filter(|s| is_change(s, shadow.as_ref().and_then(|sh| sh.b_at.as_ref())));
    let unchanged = u64::from(a.is_some() && ca.is_none()) + u64::from(b.is_some() && cb.is_none());
    if ca.is_none() && cb.is_none() {
        return Ok(Merged {
            writes: 0,
            unchanged,
            conflicts: vec![],
        });
    }

    let rule = tw.conflict.unwrap_or(ConflictRule::Newest);
    let mut merged = BTreeMap::new();
    let mut conflicts = Vec::new();
    for (field, fm) in &tw.fields {
        let va = ca.map(|s| &s.fields[field]).or(base.map(|f| &f[field]));
        let vb = cb.map(|s| &s.fields[field]).or(base.map(|f| &f[field]));
        let value = match (va, vb) {
            (Some(x), Some(y)) if x == y => x.clone(),
            (Some(x), Some(y)) => {
                let from_base = base.map(|f| &f[field]);
                match fm.owner {
                    Some(SideName::A) => x.clone(),
                    Some(SideName::B) => y.clone(),
                    None if from_base == Some(x) => y.clone(),
                    None if from_base == Some(y) => x.clone(),
                    None => {
                        let (at_a, at_b) = (
                            ca.map_or("", |s| s.at.as_str()),
                            cb.map_or("", |s| s.at.as_str()),
                        );
                        let a_wins = match rule {
                            ConflictRule::A => true,
                            ConflictRule::B => false,
                            ConflictRule::Newest => !later(at_b, at_a),
                        };
                        let rule_name = match rule {
                            ConflictRule::Newest => "newest",
                            ConflictRule::A => "a wins",
                            ConflictRule::B => "b wins",
                        };
                        conflicts.push(hub.redact(&format!(
                            "conflict on {key}.{field}: a has {x} (updated {at_a}), b has {y} (updated {at_b}); kept {}'s value (rule: {rule_name})",
                            if a_wins { "a" } else { "b" }
                        )));
                        if a_wins { x.clone() } else { y.clone() }
                    }
                }
            }
            (Some(x), None) => x.clone(),
            (None, Some(y)) => y.clone(),
            (None, None) => Value::Null,
        };
        merged.insert(field.clone(), value);
    }

    // What each side holds now: what it sent, else the agreed values, else nothing.
    let now_a = ca.map(|s| &s.fields).or(base);
    let now_b = cb.map(|s| &s.fields).or(base);
    let transition = version.unwrap_or(0);
    let mut writes = 0;
    for (side, now, seen) in [(SideName::A, now_a, a), (SideName::B, now_b, b)] {
        if now == Some(&merged) {
            continue;
        }
        let body = json!({
            "key": key,
            "fields": merged,
            "record": seen.map(|s| &s.record),
            "exists": now.is_some(),
        });
        let payload = serde_json::to_vec(&body).unwrap_or_default();
        let digest = hex::encode(&Sha256::digest(&payload)[..8]);
        let event = Event {
            body,
            received_at: hub.ports.clock.now_ms(),
            ..Event::default()
        };
        let event_id = format!("{key}@{side}@{transition}@{digest}");
        let flow = FlowName::SyncWrite(name, side).to_string();
        match accept(
            hub,
            &crate::flow::sync_source(name),
            std::slice::from_ref(&flow),
            &event_id,
            &event,
            &payload,
            RECORD_MEMORY,
        )
        .await
        {
            Accepted::New(_) => writes += 1,
            Accepted::Duplicate(_) | Accepted::Conflict => {}
            Accepted::Busy => {
                return Err(SyncError::Store(format!(
                    "write {event_id} is being enqueued by another run"
                )));
            }
            Accepted::Unavailable(e) => return Err(SyncError::Store(e)),
            Accepted::TooLarge(n) => {
                return Err(SyncError::Store(format!(
                    "write {event_id} is {n} bytes as a queue message; the limit is {}",
                    crate::ingest::MAX_MESSAGE_BYTES
                )));
            }
        }
    }

    let newest =
        |seen: Option<&Seen>, last: Option<String>| match (seen.map(|s| s.at.clone()), last) {
            (Some(s), Some(l)) => Some(if later(&s, &l) { s } else { l }),
            (s, l) => s.or(l),
        };
    let next = Shadow {
        fields: merged,
        a_at: newest(a, shadow.as_ref().and_then(|s| s.a_at.clone())),
        b_at: newest(b, shadow.as_ref().and_then(|s| s.b_at.clone())),
    };
    let value = serde_json::to_string(&next).expect("shadow serializes");
    match hub
        .ports
        .cursors
        .put(&shadow_key, &value, version)
        .await
        .map_err(SyncError::store)?
    {
        Some(_) => Ok(Merged {
            writes,
            unchanged,
            conflicts,
        }),
        None => Err(SyncError::Moved(name.to_owned())),
    }
}
