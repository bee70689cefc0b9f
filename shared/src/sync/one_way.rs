//! One-way: each new or changed record becomes a run of the sync's `steps`
//! (`sync:<name>`), each deleted one a run of `on_delete`
//! (`sync:<name>:delete`), deduplicated on id and version. A record that
//! cannot be read or mapped is reported on its own (a dead-lettered run that
//! names the problem) and does not stop the page.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::pass::{Handler, PassEnd, Run};
use super::{RECORD_MEMORY, SyncError, scalar};
use crate::config::{Poll, SyncDef};
use crate::flow::FlowName;
use crate::hub::Hub;
use crate::ingest::{Accepted, accept};
use crate::model::{Event, RunRecord, RunStatus, run_id_for};
use crate::ports::Claim;
use crate::template::context;

/// Poll the source (then the tombstones) from where the last run stopped.
pub(super) async fn run(run: &mut Run<'_>) -> Result<PassEnd, SyncError> {
    let def = run.def;
    let source = def
        .source
        .as_ref()
        .expect("validated: a one-way sync has a source");
    if run.drive("source", source, &mut Handler::Records).await? == PassEnd::OutOfTime {
        return Ok(PassEnd::OutOfTime);
    }
    match &def.tombstones {
        Some(t) => run.drive("tombstones", t, &mut Handler::Tombstones).await,
        None => Ok(PassEnd::Finished),
    }
}

/// What became of one record.
enum Fate {
    Sent {
        deleted: bool,
    },
    Skipped,
    Failed(String),
    /// The store could not take it: the page is not done.
    Unavailable(String),
}

/// Enqueue a page's records, all at once (the store commits them together).
pub(super) async fn records(
    run: &mut Run<'_>,
    poll: &Poll,
    records: &[Value],
    tombstones: bool,
) -> Result<(), SyncError> {
    let now = run.hub.ports.clock.now_ms();
    let fates = futures::future::join_all(
        records
            .iter()
            .map(|r| one(run.hub, run.name, run.def, poll, r, tombstones, now)),
    )
    .await;
    let mut unavailable = None;
    for fate in fates {
        match fate {
            Fate::Sent { deleted } => {
                run.counts.sent += 1;
                run.counts.deleted += u64::from(deleted);
            }
            Fate::Skipped => run.counts.skipped += 1,
            Fate::Failed(why) => run.fail_record(why),
            Fate::Unavailable(e) => unavailable = Some(e),
        }
    }
    match unavailable {
        // The cursor must not pass a record whose run was not enqueued.
        Some(e) => Err(SyncError::Store(e)),
        None => Ok(()),
    }
}

async fn one(
    hub: &Hub,
    name: &str,
    def: &SyncDef,
    poll: &Poll,
    record: &Value,
    tombstone: bool,
    now: i64,
) -> Fate {
    let t = &hub.templates;
    let ctx = context(&json!({ "record": record }));
    let id = match t.eval_json(&poll.id, &ctx) {
        Ok(v) if !v.is_null() && v != "" => scalar(&v),
        Ok(_) => return Fate::Failed(format!("a record without an id (`{}` is empty)", poll.id)),
        Err(e) => return Fate::Failed(format!("a record without an id: {e}")),
    };
    let version = match &poll.version {
        Some(expr) => match t.eval_json(expr, &ctx) {
            Ok(v) => Some(scalar(&v)),
            Err(e) => return Fate::Failed(format!("record {id}: version: {e}")),
        },
        None => None,
    };
    let deleted = tombstone
        || match &poll.deleted {
            Some(expr) => match t.is_true(expr, &ctx) {
                Ok(d) => d,
                Err(e) => return Fate::Failed(format!("record {id}: deleted: {e}")),
            },
            None => false,
        };
    let mut event_id = id.clone();
    if deleted {
        event_id.push_str("@deleted");
    }
    if let Some(v) = &version {
        event_id = format!("{event_id}@{v}");
    }
    let source = crate::flow::sync_source(name);
    let flow = if deleted {
        FlowName::SyncDeletes(name)
    } else {
        FlowName::SyncRecords(name)
    }
    .to_string();
    let body = match (&def.map, deleted) {
        (Some(map), false) => match t.render_json(map, &ctx) {
            Ok(b) => b,
            Err(e) => {
                let why = format!("record {id}: map: {}", e.message);
                return reject(hub, &source, &flow, &event_id, record, why, now).await;
            }
        },
        _ => record.clone(),
    };
    let payload = serde_json::to_vec(&body).unwrap_or_default();
    let event = Event {
        body,
        received_at: now,
        ..Event::default()
    };
    match accept(
        hub,
        &source,
        std::slice::from_ref(&flow),
        &event_id,
        &event,
        &payload,
        RECORD_MEMORY,
    )
    .await
    {
        Accepted::New(_) => Fate::Sent { deleted },
        Accepted::Duplicate(_) | Accepted::Conflict => Fate::Skipped,
        Accepted::Busy => Fate::Unavailable(format!(
            "record {event_id} is being enqueued by another run"
        )),
        Accepted::Unavailable(e) => Fate::Unavailable(e),
        Accepted::TooLarge(n) => Fate::Failed(format!(
            "record {event_id} is {n} bytes as a queue message; the limit is {}",
            crate::ingest::MAX_MESSAGE_BYTES
        )),
    }
}

/// A record that cannot be mapped: a dead-lettered run names the problem,
/// once per id and version (the same key ingest dedupes on).
async fn reject(
    hub: &Hub,
    source: &str,
    flow: &str,
    event_id: &str,
    record: &Value,
    why: String,
    now: i64,
) -> Fate {
    let key = crate::keys::ingest(source, event_id);
    let hash = hex::encode(Sha256::digest(record.to_string().as_bytes()));
    let run_id = run_id_for(source, event_id, flow);
    let ids = json!([run_id]).to_string();
    match hub
        .ports
        .idempotency
        .claim(&key, &hash, &ids, std::time::Duration::from_secs(30))
        .await
    {
        Ok(Claim::Claimed) => {}
        Ok(_) => return Fate::Skipped,
        Err(e) => return Fate::Unavailable(e.to_string()),
    }
    let why = hub.redact(&why);
    let mut rec = RunRecord {
        id: run_id,
        workflow: flow.to_owned(),
        source: source.to_owned(),
        event_id: event_id.to_owned(),
        status: RunStatus::DeadLettered,
        attempts: 0,
        created_at: now,
        updated_at: now,
        error: Some(why.clone()),
        failure: Some(crate::model::Failure::Mapping),
        steps: vec![],

        event: None,
        expires_at: None,
        rerun_of: None,
        reruns: Vec::new(),
    };
    hub.keep(&mut rec);
    if let Err(e) = hub.ports.runs.create(&rec).await {
        let _ = hub.ports.idempotency.release(&key).await;
        return Fate::Unavailable(e.to_string());
    }
    if let Err(e) = hub
        .ports
        .idempotency
        .complete(&key, &ids, RECORD_MEMORY)
        .await
    {
        tracing::warn!(key, error = %e, "could not mark a rejected record as seen");
    }
    Fate::Failed(why)
}
