//! Per-key concurrency end to end, in-process: several hubs (standing in
//! for `ferry dev` processes or Lambda instances) run workers on one store
//! and call a target that records what is in flight, per key and overall.
//! On the embedded store, and (smaller) on DynamoDB + SQS.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry::clock::SystemClock;
use ferry::hub::Hub;
use ferry::model::{Event, Job, RunJob, RunStatus};
use ferry::ports::Ports;
use ferry::store::{SqliteOptions, SqliteStore};
use ferry_testkit::target::{Answer, Seen as Request, Target as Server};
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

/// A request is held (at most this long) until the target has seen two of
/// them in flight at once, so that overlap, where it is allowed, shows.
const HOLD: Duration = Duration::from_secs(5);
/// Every request stays in flight at least this long, so that an overlap
/// that should not happen has time to.
const DWELL: Duration = Duration::from_millis(3);

/// What the target saw in flight.
#[derive(Debug, Default)]
struct Seen {
    /// `/keyed`: runs in flight per key now, most ever per key, calls per key.
    per_key: HashMap<String, usize>,
    max_per_key: HashMap<String, usize>,
    calls_per_key: HashMap<String, usize>,
    /// `/keyed`: most distinct keys in flight at one moment.
    max_keys: usize,
    /// `/whole`: in flight now, most ever, calls.
    whole: usize,
    max_whole: usize,
    calls_whole: usize,
    /// Any other path: calls (answered at once).
    calls_other: usize,
}

#[derive(Default)]
struct Target {
    seen: Mutex<Seen>,
    changed: Notify,
}

/// Record the request in flight, hold it, and answer `{}`.
async fn handle(t: Arc<Target>, req: Request) -> Option<Answer> {
    let body = req.body;
    let keyed = req.path.ends_with("/keyed");
    if !keyed && !req.path.ends_with("/whole") {
        t.seen.lock().unwrap().calls_other += 1;
        return Some(Answer::ok(json!({})));
    }
    let key = body["key"].as_str().unwrap_or_default().to_owned();
    let enough = |s: &Seen| {
        if keyed {
            s.max_keys >= 2
        } else {
            s.max_whole >= 2
        }
    };
    {
        let mut s = t.seen.lock().unwrap();
        if keyed {
            *s.calls_per_key.entry(key.clone()).or_default() += 1;
            let now = {
                let n = s.per_key.entry(key.clone()).or_default();
                *n += 1;
                *n
            };
            let max = s.max_per_key.entry(key.clone()).or_default();
            *max = (*max).max(now);
            let keys = s.per_key.values().filter(|n| **n > 0).count();
            s.max_keys = s.max_keys.max(keys);
        } else {
            s.calls_whole += 1;
            s.whole += 1;
            s.max_whole = s.max_whole.max(s.whole);
        }
    }
    t.changed.notify_waiters();
    let _ = tokio::time::timeout(HOLD, async {
        loop {
            let notified = t.changed.notified();
            if enough(&t.seen.lock().unwrap()) {
                return;
            }
            notified.await;
        }
    })
    .await;
    tokio::time::sleep(DWELL).await;
    let mut s = t.seen.lock().unwrap();
    if keyed {
        *s.per_key.get_mut(&key).unwrap() -= 1;
    } else {
        s.whole -= 1;
    }
    Some(Answer::ok(json!({})))
}

async fn target() -> (String, Arc<Target>) {
    let t = Arc::new(Target::default());
    let server = Server::start().await;
    let state = t.clone();
    server.behave_async("/", move |req| handle(state.clone(), req));
    (server.url(), t)
}

fn config(url: &str) -> String {
    format!(
        r#"version: 1
connections:
  api: {{ base_url: "{url}" }}
sources:
  form: {{ verify: {{ scheme: none }} }}
workflows:
  keyed:
    trigger: {{ source: form }}
    concurrency: {{ key: "{{{{ body.account_id }}}}", limit: 1 }}
    steps:
      - {{ id: call, connection: api, request: {{ path: /keyed, json: {{ key: "{{{{ body.account_id }}}}" }} }} }}
  whole:
    trigger: {{ source: form }}
    concurrency: {{ limit: 2 }}
    steps:
      - {{ id: call, connection: api, request: {{ path: /whole, json: {{ n: "{{{{ body.n }}}}" }} }} }}
"#
    )
}

/// A queued run of `workflow` for `body`.
fn job(workflow: &str, n: usize, body: Value) -> (String, String) {
    let run_id = format!("{workflow}-{n}-{}", uuid::Uuid::now_v7());
    let job = Job::Run(RunJob {
        run_id: run_id.clone(),
        workflow: workflow.into(),
        source: "form".into(),
        event_id: format!("e-{run_id}"),
        event: Event {
            body,
            ..Event::default()
        },
    });
    (run_id, serde_json::to_string(&job).unwrap())
}

/// Enqueue `keyed` runs over `keys` keys and `whole` runs, run them on
/// `hubs` hubs of `workers` workers each, and check what the target saw.
async fn runs_never_overlap_per_key(ports: Ports, keyed: usize, keys: usize, whole: usize) {
    let (url, target) = target().await;
    let loaded = ferry::config::load_str(&config(&url), &|_| None).unwrap();
    let mut ids = Vec::new();
    let mut bodies = Vec::new();
    for n in 0..keyed {
        let (id, body) = job(
            "keyed",
            n,
            json!({ "account_id": format!("acct-{}", n % keys) }),
        );
        ids.push(id);
        bodies.push((body, Duration::ZERO));
    }
    for n in 0..whole {
        let (id, body) = job("whole", n, json!({ "n": n }));
        ids.push(id);
        bodies.push((body, Duration::ZERO));
    }
    for chunk in bodies.chunks(10) {
        ports.queue.send_batch(chunk).await.unwrap();
    }

    let (stop, stopped) = watch::channel(false);
    let mut workers = Vec::new();
    for _ in 0..3 {
        let hub = Hub::new(loaded.config.clone(), vec![], ports.clone()).unwrap();
        workers.push(tokio::spawn(ferry::worker::run_workers(
            hub,
            16,
            stopped.clone(),
        )));
    }
    let mut left = ids.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    while !left.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} runs not finished after 600 s, e.g. {:?}",
            left.len(),
            ports.runs.get(&left[0]).await
        );
        let mut still = Vec::new();
        for id in left {
            let run = ports.runs.get(&id).await.unwrap();
            match run {
                Some(r) if r.status.is_final() => {
                    assert_eq!(r.status, RunStatus::Succeeded, "{id}");
                    // Waiting for a slot is not an attempt.
                    assert_eq!(r.attempts, 1, "{id}");
                }
                _ => still.push(id),
            }
        }
        left = still;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.send(true).unwrap();
    for w in workers {
        w.await.unwrap();
    }

    let s = target.seen.lock().unwrap();
    // Every run called once (step claims keep a requeued run from calling twice).
    assert_eq!(s.calls_per_key.len(), keys, "{s:?}");
    for k in 0..keys {
        assert_eq!(s.calls_per_key[&format!("acct-{k}")], keyed / keys, "{s:?}");
    }
    assert_eq!(s.calls_whole, whole, "{s:?}");
    // Never two at once per key …
    for (key, max) in &s.max_per_key {
        assert_eq!(*max, 1, "key {key} had {max} runs in flight at once");
    }
    // … yet keys were not serialized behind one another …
    assert!(
        s.max_keys >= 2,
        "at most {} key in flight at once",
        s.max_keys
    );
    // … and without a key, at most `limit` (2), which was reached.
    if whole > 0 {
        assert_eq!(s.max_whole, 2, "{s:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_300_runs_over_5_keys_never_overlap_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let opts = SqliteOptions {
        max_receives: 5,
        clock: Arc::new(SystemClock),
    };
    let store = SqliteStore::open(&dir.path().join("hub.db"), opts).unwrap();
    runs_never_overlap_per_key(store.ports(), 300, 5, 40).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_30_runs_over_3_keys_never_overlap_per_key() {
    let test = "aws_30_runs_over_3_keys_never_overlap_per_key";
    let Some(b) = ferry::contract::aws::AwsBackend::new(test, 5).await else {
        return;
    };
    let store = b.store(Arc::new(SystemClock)).await;
    runs_never_overlap_per_key(store.ports(), 30, 3, 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynalite_30_runs_over_3_keys_never_overlap_per_key() {
    let test = "dynalite_30_runs_over_3_keys_never_overlap_per_key";
    let Some(b) = ferry::contract::aws::AwsBackend::on_dynalite(test, 5).await else {
        return;
    };
    let store = b.store(Arc::new(SystemClock)).await;
    runs_never_overlap_per_key(store.ports(), 30, 3, 10).await;
}

// ---------------------------------------------------------------- one run at a time

/// A hub on a fresh embedded store with a hand-moved clock, whose workflow
/// `w` has `concurrency` keyed by account and a `when`.
fn one_hub(dir: &std::path::Path, url: &str) -> Arc<Hub> {
    let cfg = format!(
        r#"version: 1
connections:
  api: {{ base_url: "{url}" }}
sources:
  form: {{ verify: {{ scheme: none }} }}
workflows:
  w:
    trigger: {{ source: form }}
    when: "body.go"
    concurrency: {{ key: "{{{{ body.account_id }}}}", limit: 1 }}
    steps:
      - {{ id: call, connection: api, request: {{ path: /other }} }}
"#
    );
    let loaded = ferry::config::load_str(&cfg, &|_| None).unwrap();
    let opts = SqliteOptions {
        max_receives: 5,
        clock: ferry::clock::ManualClock::at(ferry::contract::T0),
    };
    let store = SqliteStore::open(&dir.join("hub.db"), opts).unwrap();
    Hub::new(loaded.config, vec![], store.ports()).unwrap()
}

fn message(body: String) -> ferry::ports::Message {
    ferry::ports::Message {
        id: "m".into(),
        receipt: "r".into(),
        body,
        receive_count: 1,
        redrive: None,
    }
}

/// A run whose key is taken waits (a re-queue with a short jittered delay,
/// the run log untouched); one its `when` skips needs no slot; one whose key
/// cannot be rendered is dead-lettered as a mapping failure naming the field.
#[tokio::test]
async fn a_run_waits_skips_or_fails_on_its_key_without_calling_out() {
    use ferry::concurrency::{WAIT_MAX, WAIT_MIN, acquire, group_key};
    use ferry::execute::{Disposition, execute};
    use ferry::model::Failure;

    let dir = tempfile::tempdir().unwrap();
    let (url, target) = target().await;
    let hub = one_hub(dir.path(), &url);
    // Another run holds acct-1's only slot.
    let ports = &hub.ports;
    let group = group_key("w", Some("acct-1"));
    let limit = std::num::NonZeroU32::new(1).unwrap();
    let lease = Duration::from_secs(60);
    let (idem, clock) = (ports.idempotency.as_ref(), ports.clock.as_ref());
    let held = acquire(idem, clock, &group, limit, "other-run", lease).await;
    assert!(held.unwrap().is_some());

    let (id, body) = job("w", 0, json!({ "account_id": "acct-1", "go": true }));
    match execute(&hub, &message(body)).await {
        Disposition::Requeue(d) => assert!((WAIT_MIN..=WAIT_MAX).contains(&d), "{d:?}"),
        other => panic!("expected a wait, got {other:?}"),
    }
    assert_eq!(ports.runs.get(&id).await.unwrap(), None, "no attempt made");

    let (id, body) = job("w", 1, json!({ "account_id": "acct-1", "go": false }));
    assert_eq!(execute(&hub, &message(body)).await, Disposition::Done);
    let run = ports.runs.get(&id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Skipped);

    let (id, body) = job("w", 2, json!({ "go": true }));
    let d = execute(&hub, &message(body)).await;
    assert!(matches!(d, Disposition::DeadLetter(_)), "{d:?}");
    let run = ports.runs.get(&id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::DeadLettered);
    assert_eq!(run.failure, Some(Failure::Mapping));
    let error = run.error.unwrap();
    assert_eq!(
        error,
        "concurrency.key: template \"{{ body.account_id }}\": missing field `body.account_id`"
    );

    // Another key is free: that run executes.
    let (id, body) = job("w", 3, json!({ "account_id": "acct-2", "go": true }));
    assert_eq!(execute(&hub, &message(body)).await, Disposition::Done);
    let run = ports.runs.get(&id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(target.seen.lock().unwrap().calls_other, 1);
}
