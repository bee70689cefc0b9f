//! Ingest: the front door. A webhook request is checked (source, method, size,
//! signature, content type, body), deduplicated on (source, event id), and
//! answered 2xx only once its runs are durably enqueued.
//!
//! Every answer is a small JSON body with a stable `error` code and a sentence.

use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::clock::Millis;
use crate::execute::queued_record;
use crate::hub::Hub;
use crate::model::{Event, Job, RunJobRef, RunRecord, ordered_run_id, run_id_for};
use crate::ports::{Claim, NewEvent, Ports};

mod event_id;
mod parse;

use event_id::event_id;
pub(crate) use parse::{parse_body, parse_query, visible_headers};

/// Largest body accepted when a source does not set `max_body_bytes`.
pub const DEFAULT_MAX_BODY: u64 = 200 * 1024;
/// Largest queue message (SQS's classic limit; the embedded queue keeps the same one),
/// so an event that fits `ferry dev` also fits AWS. An event whose message would
/// be larger is refused with 413 rather than truncated.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// How long an event id is remembered when a source does not set `dedupe_window`
/// (Stripe retries for up to 3 days; this covers it with room to spare).
pub const DEFAULT_DEDUPE_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long a concurrent copy of the same event waits for the first to finish.
pub const DUPLICATE_WAIT: Duration = Duration::from_secs(5);
/// Lease on an event id while its runs are being enqueued.
pub const ACCEPT_LEASE: Duration = Duration::from_secs(30);

/// A webhook request, as any HTTP front end (axum, API Gateway) received it.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// HTTP method.
    pub method: http::Method,
    /// The `<source>` of `/hooks/<source>`.
    pub source: String,
    /// Headers.
    pub headers: http::HeaderMap,
    /// Raw query string, without `?`.
    pub query: Option<String>,
    /// Raw body bytes, exactly as sent.
    pub body: Bytes,
}

/// The answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: Value,
}

impl Reply {
    fn error(status: u16, code: &str, message: impl Into<String>) -> Self {
        Reply {
            status,
            body: json!({ "error": code, "message": message.into() }),
        }
    }
}

/// Handle one webhook request; its outcome is counted in [`crate::metrics`].
pub async fn ingest(hub: &Hub, req: Inbound) -> Reply {
    let source = hub.config.sources.get_key_value(&req.source);
    let reply = answer(hub, req).await;
    hub.metrics
        .event(source.map(|(name, _)| name.as_str()), &reply);
    reply
}

async fn answer(hub: &Hub, req: Inbound) -> Reply {
    let Some(source) = hub.config.sources.get(&req.source) else {
        return Reply::error(
            404,
            "unknown_source",
            format!("no source named {:?} is configured", req.source),
        );
    };
    if req.method != http::Method::POST {
        return Reply::error(
            405,
            "method_not_allowed",
            format!("webhooks are sent with POST, not {}", req.method),
        );
    }
    let max = source.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY);
    if req.body.len() as u64 > max {
        return Reply::error(
            413,
            "payload_too_large",
            format!(
                "the body is {} bytes; this source accepts at most {max}",
                req.body.len()
            ),
        );
    }
    let now = hub.ports.clock.now_ms();
    let verifier = hub
        .verifier(&req.source)
        .expect("every source has a verifier");
    let verified = match verifier.verify(&req.headers, &req.body, now) {
        Ok(v) => v,
        Err(e) => {
            tracing::info!(source = %req.source, code = e.code(), "rejected webhook");
            return Reply::error(401, e.code(), e.to_string());
        }
    };
    let body = match parse_body(&req.headers, &req.body) {
        Ok(b) => b,
        Err(reply) => return reply,
    };
    if let Some(challenge) = verified.slack_challenge() {
        return Reply {
            status: 200,
            body: json!({ "challenge": challenge }),
        };
    }
    let event = Event {
        headers: visible_headers(&req.headers, verifier),
        query: parse_query(req.query.as_deref()),
        body,
        received_at: now,
    };
    let event_id = match event_id(&hub.templates, source, &verified, &event, &req.body) {
        Ok(id) => id,
        Err(reply) => return reply,
    };
    // A front end's span may declare `event_id` (the Lambda function's does).
    tracing::Span::current().record("event_id", event_id.as_str());
    let window = source
        .dedupe_window
        .map_or(DEFAULT_DEDUPE_WINDOW, |d| d.get());
    let flows = hub.workflows_for(&req.source);
    let accepted = accept(
        hub,
        &req.source,
        flows,
        &event_id,
        &event,
        &req.body,
        window,
    )
    .await;
    reply(&event_id, accepted)
}

/// What became of an event offered to [`accept`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// New: its runs are durably enqueued.
    New(Vec<String>),
    /// Seen before (within the dedupe window): these are its runs.
    Duplicate(Vec<String>),
    /// Seen before with a different payload.
    Conflict,
    /// Another copy is being accepted right now and did not finish in time.
    Busy,
    /// The store could not take it; nothing was written.
    Unavailable(String),
    /// Its queue message would be this many bytes, over [`MAX_MESSAGE_BYTES`].
    TooLarge(usize),
}

/// Dedupe `event_id` of `source` over `window`, then enqueue one run per flow
/// and record them as queued. Shared by webhooks and syncs.
pub async fn accept(
    hub: &Hub,
    source: &str,
    flows: &[String],
    event_id: &str,
    event: &Event,
    payload: &[u8],
    window: Duration,
) -> Accepted {
    let ports = &hub.ports;
    let key = crate::keys::ingest(source, event_id);
    let hash = hex::encode(Sha256::digest(payload));
    let run_ids = run_ids(ports, source, event_id, flows, event.received_at);
    let data = serde_json::to_string(&run_ids).expect("strings serialize");
    // Each workflow's job over the one event, borrowed: it is encoded (and
    // its run recorded) without a copy of the event per workflow.
    let jobs: Vec<RunJobRef<'_>> = flows
        .iter()
        .zip(&run_ids)
        .map(|(workflow, run_id)| RunJobRef {
            run_id,
            workflow,
            source,
            event_id,
            event,
        })
        .collect();
    let messages: Vec<(String, Duration)> = jobs
        .iter()
        .map(|j| (Job::encode_run(*j), Duration::ZERO))
        .collect();
    if let Some(too_big) = messages
        .iter()
        .map(|(m, _)| m.len())
        .find(|n| *n > MAX_MESSAGE_BYTES)
    {
        return Accepted::TooLarge(too_big);
    }
    // With a one-step intake, the runs are recorded in the same write.
    let records: Vec<RunRecord> = match &ports.intake {
        Some(_) => jobs.iter().map(|j| queued_record(hub, *j)).collect(),
        None => Vec::new(),
    };
    // Real time: the wait below sleeps in real time, whatever the port's clock says.
    let deadline = tokio::time::Instant::now() + DUPLICATE_WAIT;
    loop {
        let claim = match &ports.intake {
            Some(intake) => {
                let event = NewEvent {
                    key: &key,
                    payload_hash: &hash,
                    result: &data,
                    window,
                    messages: &messages,
                    runs: &records,
                };
                intake.accept(&event).await
            }
            None => {
                ports
                    .idempotency
                    .claim(&key, &hash, &data, ACCEPT_LEASE)
                    .await
            }
        };
        match claim {
            Ok(Claim::Claimed) if ports.intake.is_some() => {
                // Enqueued, recorded and marked seen by the intake (one
                // commit on the embedded store; on AWS see store/aws/intake.rs).
                tracing::info!(source, event_id, runs = ?run_ids, "accepted event");
                return Accepted::New(run_ids);
            }
            Ok(Claim::Claimed) => break,
            Ok(Claim::Completed { result }) => {
                return Accepted::Duplicate(serde_json::from_str(&result).unwrap_or_default());
            }
            Ok(Claim::PayloadMismatch { .. }) => return Accepted::Conflict,
            Ok(Claim::InProgress { .. }) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok(Claim::InProgress { .. }) => return Accepted::Busy,
            Err(e) => return Accepted::Unavailable(e.to_string()),
        }
    }

    if !messages.is_empty()
        && let Err(e) = ports.queue.send_batch(&messages).await
    {
        if let Err(r) = ports.idempotency.release(&key).await {
            tracing::warn!(key, error = %r, "could not release event claim");
        }
        return Accepted::Unavailable(e.to_string());
    }

    // The work is enqueued: from here on the answer is 202 whatever happens.
    // Record the runs and mark the id as seen at the same time: the two
    // writes are independent (a lost run-log write is recreated by execute),
    // and the store commits them together. If the mark is lost (a crash, a
    // store failure), a retry of the event enqueues it again under the same
    // run ids, and execute's step claims make the second copy a no-op.
    let record = async {
        for job in &jobs {
            if let Err(e) = ports.runs.create(&queued_record(hub, *job)).await {
                tracing::warn!(run_id = %job.run_id, error = %e, "could not record queued run");
            }
        }
    };
    let seen = async {
        if let Err(e) = ports.idempotency.complete(&key, &data, window).await {
            tracing::warn!(key, error = %e, "accepted event, but could not mark its id as seen; a redelivery will map to the same runs");
        }
    };
    tokio::join!(record, seen);
    tracing::info!(source, event_id, runs = ?run_ids, "accepted event");
    Accepted::New(run_ids)
}

/// The run id of each workflow for this event, received at `received`.
/// Where the intake is one atomic write, nothing can be left half-accepted,
/// so the ids only need to be unique: ordered by the time the event was
/// received (also its runs' `created_at`), they keep the store's id index
/// appending (docs/performance.md, "run ids in time order"). Elsewhere they
/// are derived from the event alone: however often a crash or a store
/// failure makes this event go through here again, each workflow gets the
/// same run, and the run's calls the same idempotency keys.
fn run_ids(
    ports: &Ports,
    source: &str,
    event_id: &str,
    flows: &[String],
    received: Millis,
) -> Vec<String> {
    match &ports.intake {
        Some(intake) if intake.atomic() => flows
            .iter()
            .map(|wf| ordered_run_id(received, source, event_id, wf))
            .collect(),
        _ => flows
            .iter()
            .map(|wf| run_id_for(source, event_id, wf))
            .collect(),
    }
}

fn reply(event_id: &str, accepted: Accepted) -> Reply {
    match accepted {
        Accepted::New(ids) => Reply {
            status: 202,
            body: json!({ "status": "accepted", "event_id": event_id, "run_id": ids.first(), "run_ids": ids }),
        },
        Accepted::Duplicate(ids) => Reply {
            status: 200,
            body: json!({ "status": "duplicate", "event_id": event_id, "run_id": ids.first(), "run_ids": ids }),
        },
        Accepted::Conflict => Reply::error(
            409,
            "event_id_conflict",
            format!("event id {event_id:?} was already accepted with a different body"),
        ),
        Accepted::Busy => Reply::error(
            503,
            "in_progress",
            "the same event is being accepted right now; try again shortly",
        ),
        Accepted::Unavailable(e) => {
            tracing::error!(error = %e, "store unavailable; asking the sender to retry");
            Reply::error(
                503,
                "store_unavailable",
                "the event could not be stored; please retry",
            )
        }
        Accepted::TooLarge(n) => Reply::error(
            413,
            "payload_too_large",
            format!(
                "the event with its headers is {n} bytes as a queue message; the limit is {MAX_MESSAGE_BYTES}"
            ),
        ),
    }
}
