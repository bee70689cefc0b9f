//! The circuit breaker's proof (issue 10, item 3): a target that answers 503
//! for 45 s of clock time under a backlog of 500 runs. While the breaker is
//! open no call goes out but its probes, no run spends an attempt, and every
//! run succeeds once the target is back.
//!
//! The hub runs in-process on the embedded store with a manual clock: queue
//! delays, the breaker's `open_for` and the run log's times all follow it, so
//! the outage takes no real time and nothing depends on the machine's speed.
//! Each round executes every message visible at the clock's time, in
//! chunks of 100 at once (as `ferry dev`'s workers and a Lambda batch do).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ferry::clock::{Clock, ManualClock, Millis};
use ferry::config::load_str;
use ferry::hub::Hub;
use ferry::model::{RunQuery, RunRecord, RunStatus};
use ferry::ports::{Breaker, Breakers, StoreResult};
use ferry::store::{SqliteOptions, SqliteStore};
use ferry::worker::{VISIBILITY, settle};
use ferry_testkit::target::Target;
use serde_json::json;

const RUNS: usize = 500;
const T0: Millis = 1_700_000_000_000;
const SEC: Millis = 1_000;

const CONFIG: &str = r#"
version: 1
connections:
  crm:
    base_url: "${env:CRM_URL}"
    # no circuit_breaker: the defaults (0.8 of at least 20 calls in 1m, open 30s)
sources:
  form:
    verify: { scheme: none }
workflows:
  push:
    trigger: { source: form }
    steps:
      - id: create
        connection: crm
        request: { method: POST, path: /contacts, json: { n: "{{ body.n }}" } }
"#;

/// The store's breakers, noting how many calls the target had received when
/// each close began (the probe that closes has landed; nothing after it has:
/// until the store says closed, no caller goes).
struct Recording {
    inner: Arc<dyn Breakers>,
    target: Target,
    calls_at_close: Mutex<Vec<usize>>,
}

#[async_trait]
impl Breakers for Recording {
    async fn get(&self, name: &str) -> StoreResult<Option<Breaker>> {
        self.inner.get(name).await
    }
    async fn open(&self, name: &str, until: Millis, why: &str) -> StoreResult<Breaker> {
        self.inner.open(name, until, why).await
    }
    async fn probe(&self, name: &str, lease: Duration) -> StoreResult<bool> {
        self.inner.probe(name, lease).await
    }
    async fn release(&self, name: &str) -> StoreResult<()> {
        self.inner.release(name).await
    }
    async fn close(&self, name: &str) -> StoreResult<()> {
        let calls = self.target.seen_at("/contacts").len();
        self.calls_at_close.lock().unwrap().push(calls);
        self.inner.close(name).await
    }
}

struct Rig {
    hub: Arc<Hub>,
    clock: Arc<ManualClock>,
    breakers: Arc<Recording>,
    _dir: tempfile::TempDir,
}

impl Rig {
    fn new(target: &Target) -> Rig {
        let url = format!("{}/", target.url());
        let env = move |name: &str| (name == "CRM_URL").then(|| url.clone());
        let loaded = load_str(CONFIG, &env).unwrap_or_else(|e| panic!("{e}"));
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::at(T0);
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let opts = SqliteOptions {
            max_receives: 100,
            clock: dyn_clock,
        };
        let store = SqliteStore::open(&dir.path().join("ferry.db"), opts).unwrap();
        let mut ports = store.ports();
        let breakers = Arc::new(Recording {
            inner: ports.breakers.clone(),
            target: target.clone(),
            calls_at_close: Mutex::default(),
        });
        ports.breakers = breakers.clone();
        let hub = Hub::new(loaded.config, loaded.secrets, ports).unwrap();
        Rig {
            hub,
            clock,
            breakers,
            _dir: dir,
        }
    }

    async fn enqueue(&self, n: usize) {
        let jobs: Vec<(String, Duration)> = (0..n)
            .map(|i| {
                let job = json!({
                    "type": "run.v1",
                    "run_id": ferry::model::new_run_id(),
                    "workflow": "push",
                    "source": "form",
                    "event_id": format!("evt-{i}"),
                    "event": { "body": { "n": i }, "received_at": T0 },
                });
                (job.to_string(), Duration::ZERO)
            })
            .collect();
        self.hub.ports.queue.send_batch(&jobs).await.unwrap();
    }

    /// Execute every message visible now, 100 at once; how many ran.
    async fn round(&self) -> usize {
        let mut ran = 0;
        loop {
            let queue = &self.hub.ports.queue;
            let messages = queue
                .receive(100, VISIBILITY, Duration::ZERO)
                .await
                .unwrap();
            if messages.is_empty() {
                return ran;
            }
            ran += messages.len();
            let mut tasks = tokio::task::JoinSet::new();
            for msg in messages {
                let hub = self.hub.clone();
                tasks.spawn(async move {
                    let d = ferry::execute::execute(&hub, &msg).await;
                    settle(hub.ports.queue.as_ref(), &msg, d).await;
                });
            }
            while let Some(done) = tasks.join_next().await {
                done.unwrap();
            }
        }
    }

    /// Move the clock to `at` one second at a time, running every round due.
    async fn run_until(&self, at: Millis) {
        while self.clock.now_ms() < at {
            self.clock.advance(SEC.min(at - self.clock.now_ms()));
            self.round().await;
        }
    }

    async fn runs(&self) -> Vec<RunRecord> {
        let query = RunQuery {
            workflow: Some("push".into()),
            status: None,
            limit: RUNS + 10,
            ..RunQuery::default()
        };
        self.hub.ports.runs.list(&query).await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_down_under_a_backlog_is_probed_not_hammered_and_every_run_succeeds() {
    let target = Target::start().await;
    target.respond("/contacts", 503, json!({ "error": "maintenance" }));
    let rig = Rig::new(&target);
    let breakers = rig.breakers.inner.clone();
    let calls = || target.seen_at("/contacts").len();
    rig.enqueue(RUNS).await;

    // T0: the backlog meets the outage. The breaker opens after the first
    // failures; the calls that had already passed the gate land, no more.
    // (A retry whose jittered backoff came out as 0 ms runs again at once.)
    assert!(rig.round().await >= RUNS);
    let open = breakers
        .get("crm")
        .await
        .unwrap()
        .expect("the breaker opened");
    assert_eq!((open.since, open.until), (T0, T0 + 30 * SEC));
    assert!(open.why.contains("HTTP 503"), "{}", open.why);
    let before_open = calls();
    assert!(
        (20..=100).contains(&before_open),
        "{before_open} calls before the breaker opened (at least min_calls, at most one chunk)"
    );

    // Open for 30 s: runs wait, nothing is called.
    rig.run_until(T0 + 29 * SEC).await;
    assert_eq!(calls(), before_open, "no call while open");

    // 30 s: one probe, still 503: open again for 30 s from now, same `since`.
    rig.run_until(T0 + 30 * SEC).await;
    assert_eq!(calls(), before_open + 1, "one probe");
    let reopened = breakers.get("crm").await.unwrap().expect("still open");
    assert_eq!((reopened.since, reopened.until), (T0, T0 + 60 * SEC));

    // The target comes back at 45 s; the breaker does not know until its probe.
    rig.run_until(T0 + 45 * SEC).await;
    target.respond("/contacts", 200, json!({ "id": "c" }));
    rig.run_until(T0 + 59 * SEC).await;
    assert_eq!(calls(), before_open + 1, "no call while open");

    // 60 s: the second probe succeeds and closes the breaker.
    rig.run_until(T0 + 60 * SEC).await;
    assert_eq!(breakers.get("crm").await.unwrap(), None, "closed");
    let probes = 2;
    let closes = rig.breakers.calls_at_close.lock().unwrap().clone();
    assert_eq!(closes.len(), 1, "closed once");
    let while_open = closes[0] - before_open;
    assert!(while_open <= probes, "{while_open} calls while open");
    assert_eq!(while_open, probes);

    // Then the backlog drains.
    let mut waited = 0;
    while rig
        .runs()
        .await
        .iter()
        .any(|r| r.status != RunStatus::Succeeded)
    {
        waited += 1;
        assert!(waited < 120, "runs still unfinished after 2 more minutes");
        rig.run_until(rig.clock.now_ms() + SEC).await;
    }
    let runs = rig.runs().await;
    assert_eq!(runs.len(), RUNS);
    assert_eq!(
        calls(),
        before_open + probes + (RUNS - 1),
        "one call per run after"
    );

    // The run log: attempts at T0 (before it opened), the two probes, then
    // successes; none while open, and every run succeeded with one call.
    let attempts: Vec<_> = runs.iter().flat_map(|r| &r.steps[0].attempts).collect();
    assert_eq!(
        attempts.len(),
        calls(),
        "every call is an attempt, no other attempt"
    );
    let at = |t: Millis| attempts.iter().filter(|a| a.started_at == t).count();
    assert_eq!(at(T0), before_open);
    // Strictly inside the outage only the first probe; at 60 s the second
    // probe and, after it closed, the calls it let through: all successes.
    let in_outage: Vec<_> = attempts
        .iter()
        .filter(|a| a.started_at > T0 && a.started_at < T0 + 60 * SEC)
        .map(|a| (a.started_at, a.status_code))
        .collect();
    assert_eq!(in_outage, [(T0 + 30 * SEC, Some(503))], "only the probe");
    assert!(
        attempts
            .iter()
            .filter(|a| a.started_at >= T0 + 60 * SEC)
            .all(|a| a.status_code == Some(200))
    );
    for r in &runs {
        let ok = r.steps[0]
            .attempts
            .iter()
            .filter(|a| a.status_code == Some(200));
        assert_eq!(ok.count(), 1, "run {} succeeded once", r.id);
    }
}
