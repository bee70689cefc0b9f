//! The chaos test, for syncs: a paginated source behind OAuth 2.0 that
//! answers 30 % of calls `500`, 10 % `429` with `Retry-After: 1` (a seeded
//! RNG, drawn per call in arrival order) and one `401` mid-pass (its first
//! token expires after page 5), and the sync's steps PUT each record to a
//! destination on the same connection, under the same faults.
//!
//! The hub runs as a scheduler and one worker would, taking turns in one
//! task: a sync run (which ends at the first failed page; the next resumes
//! from the cursor), then a few of the queued runs, one at a time. So at most
//! one call is in flight on the connection, and every call the target sees
//! after a `429` was started after ferry read that `429`: a call arriving
//! sooner than the pause allows is the pause failing, never a call that was
//! already on its way (which is why the webhook chaos test in
//! `tests/execution.rs` cannot judge pauses by arrival times).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry::model::{RunQuery, RunStatus};
use ferry::sync::{Outcome, run_sync};
use ferry::worker::{VISIBILITY, settle};
use ferry_testkit::target::{Answer, Seen, Target};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::api::ts;
use crate::support::hub;

const RECORDS: usize = 200;
const PAGE: usize = 20;
/// Pages served before the first token expires.
const EXPIRES_AFTER_PAGES: usize = 5;

/// The source's and the destination's state: the faults and where the pass is.
struct Chaos {
    rng: StdRng,
    pages_served: usize,
    expired: Option<String>,
}

/// The fault for the call arriving now on the source or the destination,
/// or `None` to answer it properly.
fn fault(st: &mut Chaos, req: &Seen) -> Option<Answer> {
    let token = req.header("authorization").trim_start_matches("Bearer ");
    if token.is_empty() || st.expired.as_deref() == Some(token) {
        let body =
            json!({ "error": "invalid_token", "error_description": "the access token expired" });
        return Some(Answer::status(401, body));
    }
    let r: f64 = st.rng.random();
    if r < 0.30 {
        Some(Answer::status(500, json!({ "error": "flaky" })))
    } else if r < 0.40 {
        Some(Answer::status(429, json!({ "error": "slow down" })).header("retry-after", "1"))
    } else {
        None
    }
}

/// `/contacts`: 20 records a page by a cursor (the record's number).
fn contacts(st: &mut Chaos, req: &Seen) -> Answer {
    if let Some(a) = fault(st, req) {
        return a;
    }
    let since = req.param("updated_since").unwrap_or_default();
    let start: usize = req.param("cursor").map_or(0, |c| c.parse().unwrap());
    let page: Vec<Value> = (start..RECORDS.min(start + PAGE))
        .map(|i| json!({ "id": format!("r{i:03}"), "updated_at": ts(i as i64), "name": format!("N{i}") }))
        .filter(|r| r["updated_at"].as_str().unwrap() >= since.as_str())
        .collect();
    let end = start + page.len();
    let next = (end < RECORDS).then(|| end.to_string());
    st.pages_served += 1;
    if st.pages_served == EXPIRES_AFTER_PAGES {
        // The token in use expires: its next call is refused.
        let token = req.header("authorization").trim_start_matches("Bearer ");
        st.expired = Some(token.to_owned());
    }
    Answer::ok(json!({ "results": page, "next_cursor": next }))
}

/// `/dest/{id}`: takes the record.
fn dest(st: &mut Chaos, req: &Seen) -> Answer {
    if let Some(a) = fault(st, req) {
        return a;
    }
    let id = req.path.trim_start_matches("/dest/");
    assert_eq!(req.body["id"], id, "the body is the record");
    Answer::ok(json!({ "id": id }))
}

const CONFIG: &str = r#"version: 1
connections:
  api:
    base_url: "${env:API_URL}"
    auth: { type: oauth2, token_url: "${env:API_URL}/token", client_id: ferry, client_secret: "${env:CS}" }
syncs:
  contacts:
    schedule: rate(5 minutes)
    source:
      connection: api
      request: { method: GET, path: /contacts, query: { updated_since: "{{ watermark }}", limit: "20" } }
      pagination: { style: cursor, token: response.body.next_cursor, param: cursor }
      records: response.body.results
      id: record.id
      version: record.updated_at
      watermark: record.updated_at
      start: "2024-01-01T00:00:00Z"
    retry: { max_attempts: 100, initial_backoff: 10ms, max_backoff: 100ms }
    steps:
      - id: deliver
        connection: api
        request: { method: PUT, path: "/dest/{{ body.id }}", json: "{{ body }}" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_through_500s_429s_and_an_expired_token_delivers_every_record_once() {
    let chaos = Arc::new(Mutex::new(Chaos {
        rng: StdRng::seed_from_u64(10),
        pages_served: 0,
        expired: None,
    }));
    let target = Target::start().await;
    let issued = target.clone();
    target.behave("/token", move |_| {
        let n = issued.count("/token");
        Some(Answer::ok(
            json!({ "access_token": format!("tok-{n}"), "token_type": "Bearer", "expires_in": 3600 }),
        ))
    });
    let c = chaos.clone();
    target.behave("/contacts", move |req| {
        Some(contacts(&mut c.lock().unwrap(), req))
    });
    let c = chaos.clone();
    target.behave("/dest/", move |req| Some(dest(&mut c.lock().unwrap(), req)));
    let url = target.url();
    let env = hub(CONFIG, &[("API_URL", &url), ("CS", "client-secret")], None);
    let h = &env.hub;

    let started = Instant::now();
    let (mut sync_runs, mut failed_runs, mut completed) = (0, 0, None);
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "no end in sight: {} calls so far",
            target.seen().len()
        );
        // The scheduler's turn: a run of the sync until its pass is done.
        if completed.is_none() {
            sync_runs += 1;
            match run_sync(h, "contacts").await {
                Ok(r) => {
                    assert_eq!(r.outcome, Outcome::Completed, "{r:?}");
                    completed = Some(r);
                }
                Err(e) => {
                    assert!(e.is_retryable(), "{e}");
                    failed_runs += 1;
                }
            }
        }
        // The worker's turn: a few runs, one at a time.
        let mut executed = 0;
        while executed < 10 {
            let msgs = h.ports.queue.receive(1, VISIBILITY, Duration::ZERO).await;
            let Some(m) = msgs.unwrap().pop() else { break };
            let d = ferry::execute::execute(h, &m).await;
            settle(h.ports.queue.as_ref(), &m, d).await;
            executed += 1;
        }
        if completed.is_some() && executed == 0 {
            let q = RunQuery {
                workflow: Some("sync:contacts".into()),
                limit: 1000,
                ..RunQuery::default()
            };
            // The record runs (the sync's own runs are logged under the same workflow).
            let runs: Vec<_> = h.ports.runs.list(&q).await.unwrap();
            let runs: Vec<_> = runs
                .into_iter()
                .filter(|r| r.source == "sync:contacts")
                .collect();
            if runs.len() == RECORDS && runs.iter().all(|r| r.status == RunStatus::Succeeded) {
                break;
            }
            let gave_up: Vec<_> = runs
                .iter()
                .filter(|r| r.status == RunStatus::DeadLettered)
                .collect();
            assert!(gave_up.is_empty(), "runs gave up: {gave_up:#?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert!(completed.is_some());
    // Every call on the connection (the token endpoint is not behind its gate).
    let calls: Vec<Seen> = target
        .seen()
        .into_iter()
        .filter(|s| s.path != "/token")
        .collect();

    // Every record reached the destination, one successful delivery each,
    // always under one Idempotency-Key per record.
    let mut ok: BTreeMap<&str, usize> = BTreeMap::new();
    let mut keys: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for c in calls.iter().filter(|c| c.path.starts_with("/dest/")) {
        let id = &c.path["/dest/".len()..];
        keys.entry(id)
            .or_default()
            .insert(c.header("idempotency-key"));
        if c.status == 200 {
            *ok.entry(id).or_default() += 1;
        }
    }
    let expected: BTreeSet<String> = (0..RECORDS).map(|i| format!("r{i:03}")).collect();
    assert_eq!(
        ok.keys().map(|k| (*k).to_owned()).collect::<BTreeSet<_>>(),
        expected,
        "every record delivered"
    );
    let twice: Vec<_> = ok.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    assert!(
        keys.values()
            .all(|k| k.len() == 1 && !k.iter().next().unwrap().is_empty()),
        "one Idempotency-Key per record: {keys:?}"
    );

    // One token, refreshed exactly once: after the single 401, mid-pass.
    assert_eq!(
        target.count("/token"),
        2,
        "the initial token and one refresh"
    );
    assert_eq!(h.tokens.fetches(), 2);
    let refused: Vec<usize> = (0..calls.len())
        .filter(|&i| calls[i].status == 401)
        .collect();
    assert_eq!(refused.len(), 1, "one 401");
    let pages_before = calls[..refused[0]]
        .iter()
        .filter(|c| c.path == "/contacts" && c.status == 200)
        .count();
    assert_eq!(pages_before, EXPIRES_AFTER_PAGES, "the 401 came mid-pass");
    assert_eq!(calls[refused[0]].header("authorization"), "Bearer tok-1");
    assert!(
        calls[refused[0] + 1..]
            .iter()
            .all(|c| c.header("authorization") == "Bearer tok-2")
    );

    // No call, poll or step, during a pause: the next arrival after a 429
    // comes no sooner than its Retry-After (less 100 ms: the hub's clock
    // counts whole milliseconds; it can only come later, never earlier).
    let mut pauses = 0;
    for (i, c) in calls.iter().enumerate().filter(|(_, c)| c.status == 429) {
        pauses += 1;
        if let Some(next) = calls.get(i + 1) {
            let gap = next.at.duration_since(c.at);
            assert!(
                gap >= Duration::from_millis(900),
                "{} {} arrived {gap:?} after the 429 on {}",
                next.path,
                next.status,
                c.path
            );
        }
    }
    let n500 = calls.iter().filter(|c| c.status == 500).count();
    let on = |p: &str, s: u16| {
        calls
            .iter()
            .filter(|c| c.path.starts_with(p) && c.status == s)
            .count()
    };
    assert!(
        on("/contacts", 429) > 0 && on("/dest/", 429) > 0,
        "429s on polls and steps"
    );
    assert!(
        on("/contacts", 500) > 0 && on("/dest/", 500) > 0,
        "500s on polls and steps"
    );
    // A 500 on a page is asked again after a backoff within the run (the
    // retry decision steps use); only PAGE_ATTEMPTS failures in a row at
    // one page end the run, which the next run resumes.
    assert!(
        failed_runs < on("/contacts", 500),
        "{failed_runs} runs ended for {} 500s on pages",
        on("/contacts", 500)
    );

    // The pass finished and its cursor is saved.
    let (state_saved, _) = ferry::sync::status(h, "contacts").await.unwrap().unwrap();
    let poll = &state_saved.polls["source"];
    assert!(poll.pass.is_none(), "the pass is closed: {poll:?}");
    assert_eq!(
        poll.watermark.as_deref(),
        Some(ts(RECORDS as i64 - 1).as_str())
    );
    assert_eq!(
        state_saved.totals.sent as usize, RECORDS,
        "each record enqueued once"
    );
    eprintln!(
        "sync chaos: {} calls ({n500} × 500, {pauses} × 429, 1 × 401) for {RECORDS} records in {} pages; {sync_runs} sync runs ({failed_runs} failed); {:.1?}",
        calls.len(),
        RECORDS / PAGE,
        started.elapsed()
    );
}
