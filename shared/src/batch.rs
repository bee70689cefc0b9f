//! Batching: runs that reach the same batched step together share one call.
//!
//! A run at a step with `batch` hands its item (the step's `request.json`,
//! rendered for that run) to the [`Batcher`] and waits. The first item of a
//! group (same workflow, step and rate-limit key) leads: it waits up to
//! `batch.wait` (default [`DEFAULT_WAIT`]) for others — the rest of an SQS
//! batch or a sync page arrive within milliseconds — or until `max_items` have
//! joined, then makes the call for everyone:
//!
//! - one item alone is sent as the step's own request (its `path`, `method`,
//!   `query`, `headers`), exactly as an unbatched step;
//! - two or more go to `batch.path` with `batch.json` (templates see `items`),
//!   under an `Idempotency-Key` derived from the items' own keys, so the same
//!   items batched again carry the same key;
//! - the whole call is judged as usual: a retryable or failed call retries or
//!   fails every item;
//! - a successful call is split per item: `batch.results` (an expression over
//!   `response`) must give one result per item, in order; each becomes that
//!   run's `steps.<id>.response.body`. With `batch.item_status` (an expression
//!   over `result`), each item is judged on its own status: items that failed
//!   retry (or fail) alone, the others succeed. A result list of the wrong
//!   length fails every item (the target's answer cannot be matched up).
//!
//! One call spends one rate-limit token, whatever its size.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::{Notify, oneshot};

use crate::call::{Called, Tried, call, describe_status};
use crate::config::Batch;
use crate::hub::Conn;
use crate::hub::Hub;
use crate::outbound::{self, Body, Prepared};
use crate::retry::{Rules, Verdict, judge};
use crate::template::context;

/// How long the first item of a batch waits for others by default.
pub const DEFAULT_WAIT: Duration = Duration::from_millis(50);

/// One run's part of a batch.
#[derive(Debug)]
pub struct Item {
    /// The run's `Idempotency-Key` for this step.
    pub key: String,
    /// Its item body.
    pub body: Value,
    /// Its own request, for when it is alone.
    pub single: Prepared,
}

struct Entry {
    item: Item,
    reply: oneshot::Sender<Called>,
}

struct Slot {
    entries: Mutex<Vec<Entry>>,
    full: Notify,
}

/// Open batches of this process.
#[derive(Default)]
pub struct Batcher {
    open: Mutex<HashMap<String, Arc<Slot>>>,
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher").finish_non_exhaustive()
    }
}

/// What a batched call needs to know about its step.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    /// Connection name.
    pub name: &'a str,
    /// The connection.
    pub conn: &'a Conn,
    /// The step's batch settings.
    pub batch: &'a Batch,
    /// The step's classification rules.
    pub rules: Rules<'a>,
    /// The rendered rate-limit key.
    pub limit_key: Option<&'a str>,
}

impl Batcher {
    /// Add `item` to the open batch `group` and wait for its share of the result.
    pub async fn submit(&self, hub: &Hub, group: &str, t: Target<'_>, item: Item) -> Called {
        let max = t.batch.max_items.get() as usize;
        let (tx, rx) = oneshot::channel();
        let (slot, leader) = {
            let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
            let slot = open
                .entry(group.to_owned())
                .or_insert_with(|| {
                    Arc::new(Slot {
                        entries: Mutex::new(Vec::new()),
                        full: Notify::new(),
                    })
                })
                .clone();
            let mut entries = slot.entries.lock().unwrap_or_else(|p| p.into_inner());
            entries.push(Entry { item, reply: tx });
            let n = entries.len();
            drop(entries);
            if n >= max {
                open.remove(group);
                slot.full.notify_one();
            }
            (slot, n == 1)
        };
        if leader {
            let wait = t.batch.wait.map_or(DEFAULT_WAIT, |w| w.get());
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = slot.full.notified() => {}
            }
            {
                let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
                if open.get(group).is_some_and(|s| Arc::ptr_eq(s, &slot)) {
                    open.remove(group);
                }
            }
            let entries =
                std::mem::take(&mut *slot.entries.lock().unwrap_or_else(|p| p.into_inner()));
            flush(hub, t, entries).await;
        }
        rx.await
            .unwrap_or_else(|_| Called::StoreDown("the batch call was abandoned".into()))
    }
}

async fn flush(hub: &Hub, t: Target<'_>, entries: Vec<Entry>) {
    if entries.len() == 1 {
        let e = entries.into_iter().next().expect("one entry");
        let out = call(
            hub,
            t.name,
            t.conn,
            &e.item.single,
            &e.item.key,
            t.rules,
            t.limit_key,
        )
        .await;
        let _ = e.reply.send(out);
        return;
    }
    let items: Vec<Value> = entries.iter().map(|e| e.item.body.clone()).collect();
    let req = match batch_request(hub, t, &items) {
        Ok(r) => r,
        Err(why) => {
            for e in entries {
                let _ = e.reply.send(mapping_failure(hub, &why));
            }
            return;
        }
    };
    let key = batch_key(entries.iter().map(|e| e.item.key.as_str()));
    let out = call(hub, t.name, t.conn, &req, &key, t.rules, t.limit_key).await;
    let shares = split(hub, t, &req, out, &items);
    for (e, share) in entries.into_iter().zip(shares) {
        let _ = e.reply.send(share);
    }
}

fn batch_request(hub: &Hub, t: Target<'_>, items: &[Value]) -> Result<Prepared, String> {
    let ctx = context(&json!({ "items": items }));
    let tpl = &hub.templates;
    let path = tpl
        .render_path(&t.batch.path, &ctx)
        .map_err(|e| format!("batch.path: {e}"))?;
    let url = crate::destination::join(&t.conn.base_url, &path)
        .map_err(|e| format!("batch.path: {e}"))?;
    let body_tpl = t
        .batch
        .json
        .clone()
        .unwrap_or_else(|| Value::String("{{ items }}".into()));
    let body = tpl
        .render_json(&body_tpl, &ctx)
        .map_err(|e| e.to_string())?;
    let headers = outbound::connection_headers(t.conn);
    outbound::check_headers(&headers).map_err(|e| e.to_string())?;
    Ok(Prepared {
        method: t.batch.method.as_http(),
        url,
        query: Vec::new(),
        headers,
        body: Body::Json(body),
    })
}

/// `batch:<hash of the sorted item keys>`: the same items batched again carry the same key.
pub fn batch_key<'a>(keys: impl Iterator<Item = &'a str>) -> String {
    let mut keys: Vec<&str> = keys.collect();
    keys.sort_unstable();
    let mut h = Sha256::new();
    for k in keys {
        h.update(k.as_bytes());
        h.update([0]);
    }
    format!("batch:{}", hex::encode(&h.finalize()[..16]))
}

/// Each item's share of a batch call's outcome.
fn split(hub: &Hub, t: Target<'_>, req: &Prepared, out: Called, items: &[Value]) -> Vec<Called> {
    let n = items.len();
    let Called::Done(tries) = out else {
        return vec![out; n];
    };
    let Some(last) = tries.last() else {
        return vec![Called::Done(tries); n];
    };
    let (Verdict::Success, Some(resp)) = (&last.verdict, &last.response) else {
        return vec![Called::Done(tries.clone()); n];
    };
    let Some(results_expr) = &t.batch.results else {
        return vec![Called::Done(tries.clone()); n];
    };
    let results = hub.templates.eval_json(
        results_expr,
        &context(&json!({ "response": resp.to_output() })),
    );
    if crate::batch_results::is_keyed(t.batch) {
        let results = match results {
            Ok(Value::Array(r)) => r,
            Ok(Value::Null) => Vec::new(),
            Ok(other) => {
                let why = format!("batch.results: expected a list, got {}", kind(&other));
                return vec![mapping_failure(hub, &why); n];
            }
            Err(e) => return vec![mapping_failure(hub, &format!("batch.results: {e}")); n],
        };
        let shares =
            crate::batch_results::keyed(&hub.templates, t.batch, &resp.to_output(), results, items);
        return match shares {
            Ok(shares) => shares
                .into_iter()
                .map(|s| keyed_share(hub, t, &tries, resp, s))
                .collect(),
            Err(why) => vec![mapping_failure(hub, &why); n],
        };
    }
    let results = match results {
        Ok(Value::Array(r)) if r.len() == n => r,
        Ok(other) => {
            let got = match &other {
                Value::Array(a) => format!("{} results", a.len()),
                v => kind(v).to_string(),
            };
            let why = format!(
                "batch.results: expected a list of {n} results (one per item), got {got}; {}",
                describe_status(hub, &req.method, req.url.as_str(), resp)
            );
            return vec![mapping_failure(hub, &why); n];
        }
        Err(e) => return vec![mapping_failure(hub, &format!("batch.results: {e}")); n],
    };
    let now = hub.ports.clock.now_ms();
    results
        .into_iter()
        .map(|result| {
            let mut tried: Tried = last.clone();
            let mut item_resp = resp.clone();
            if let Some(expr) = &t.batch.item_status {
                let status = hub
                    .templates
                    .eval_json(expr, &context(&json!({ "result": result })))
                    .ok()
                    .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
                    .and_then(|s| u16::try_from(s).ok());
                match status {
                    Some(s) => {
                        item_resp.status = s;
                        tried.verdict = judge(s, None, now, t.rules);
                        tried.attempt.status_code = Some(s);
                    }
                    None => {
                        tried.verdict = Verdict::Fail;
                        tried.attempt.error = Some(format!(
                            "batch.item_status: no status in the item's result {}",
                            crate::outbound::excerpt(&result, 200)
                        ));
                    }
                }
            }
            item_resp.body = result;
            if tried.verdict != Verdict::Success && tried.attempt.error.is_none() {
                tried.attempt.error = Some(format!(
                    "item {} in a batch: {}",
                    item_resp.status,
                    hub.redact(&crate::outbound::excerpt(&item_resp.body, 300))
                ));
            }
            // The attempt shows the batch request and this item's share of the answer.
            tried.attempt.response = Some(crate::runlog::GotResponse::new(hub, &item_resp));
            tried.response = Some(item_resp);
            let mut all = tries[..tries.len() - 1].to_vec();
            all.push(tried);
            Called::Done(all)
        })
        .collect()
}

/// One item's share of a keyed answer, as the call's last try.
fn keyed_share(
    hub: &Hub,
    t: Target<'_>,
    tries: &[Tried],
    resp: &crate::outbound::Response,
    share: crate::batch_results::Share,
) -> Called {
    use crate::batch_results::Share;
    let now = hub.ports.clock.now_ms();
    let Some(last) = tries.last() else {
        return Called::Done(tries.to_vec());
    };
    let mut tried: Tried = last.clone();
    let mut item_resp = resp.clone();
    match share {
        Share::Result(body) => {
            if let Some(expr) = &t.batch.item_status {
                let status = hub
                    .templates
                    .eval_json(expr, &context(&json!({ "result": &body })))
                    .ok()
                    .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
                    .and_then(|s| u16::try_from(s).ok());
                if let Some(s) = status {
                    item_resp.status = s;
                    tried.verdict = judge(s, None, now, t.rules);
                    tried.attempt.status_code = Some(s);
                }
            }
            item_resp.body = body;
        }
        Share::Error(body, status) => {
            item_resp.status = status;
            tried.verdict = judge(status, None, now, t.rules);
            tried.attempt.status_code = Some(status);
            item_resp.body = body;
        }
        Share::Unmatched(why) => {
            tried.verdict = Verdict::Fail;
            tried.attempt.error = Some(hub.redact(&why));
        }
    }
    if tried.verdict != Verdict::Success && tried.attempt.error.is_none() {
        tried.attempt.error = Some(format!(
            "item {} in a batch: {}",
            item_resp.status,
            hub.redact(&crate::outbound::excerpt(&item_resp.body, 300))
        ));
    }
    tried.attempt.response = Some(crate::runlog::GotResponse::new(hub, &item_resp));
    tried.response = Some(item_resp);
    let mut all = tries[..tries.len() - 1].to_vec();
    all.push(tried);
    Called::Done(all)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A share that fails the run as a mapping error, recorded as an attempt.
fn mapping_failure(hub: &Hub, why: &str) -> Called {
    Called::Done(vec![Tried {
        attempt: crate::model::Attempt {
            n: 0,
            started_at: hub.ports.clock.now_ms(),
            duration_ms: 0,
            status_code: None,
            error: Some(hub.redact(why)),
            ..crate::model::Attempt::default()
        },
        verdict: Verdict::Fail,
        response: None,
    }])
}
