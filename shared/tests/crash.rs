//! One run per (source, event id, workflow), whatever window of ingest a
//! crash or a store failure hits, on the embedded store and on DynamoDB + SQS.
//!
//! Every write ingest makes (the event claim, the enqueue, the run-log
//! records, the "seen" mark) is, in turn, the point where the process dies
//! (before the write, or after it committed but before its answer) or where
//! the store fails once. The sender then behaves like a real provider: it
//! retries what got no answer or a 503 at once, again 35 s later, and every
//! event is delivered once more on top (providers redeliver). Then the queue
//! is drained and the target counts what it received: each step of each run
//! exactly once, under one `Idempotency-Key`, and the run log holds one run
//! per event and workflow.
//!
//! Twice per store: ingest composing the ports (claim, send, record, mark:
//! five writes, each a fault point), and ingest through the store's one-step
//! [`Intake`] (its one call the fault point). A process keeps its path across
//! the restart, as a deployed hub does: run ids are derived from the event
//! on the composed path and time-ordered on an atomic intake, so a crash
//! between two paths is not a case a hub can meet.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use ferry::clock::ManualClock;
use ferry::contract::{T0, unique};
use ferry::execute::execute;
use ferry::hub::Hub;
use ferry::ingest::{Inbound, ingest};
use ferry::model::{RunQuery, RunRecord, RunStatus};
use ferry::ports::{
    Claim, DeadLetter, Idempotency, Intake, Message, NewEvent, Ports, RunLog, StoreError,
    StoreResult, WorkQueue,
};
use ferry::store::{SqliteOptions, SqliteStore};
use ferry::worker::settle;
use ferry_testkit::target::{Answer, Target};

// ---------------------------------------------------------------- faults

/// What happens at the chosen write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The process dies before the write reaches the store.
    CrashBefore,
    /// The write commits, then the process dies before it sees the answer.
    CrashAfter,
    /// The store refuses this one write; the process goes on.
    FailOnce,
}

const MODES: [Mode; 3] = [Mode::CrashBefore, Mode::CrashAfter, Mode::FailOnce];

/// Counts the writes of one "process" and breaks the `at`-th (0-based).
struct Fault {
    at: usize,
    mode: Mode,
    writes: AtomicUsize,
    dead: AtomicBool,
}

impl Fault {
    fn new(at: usize, mode: Mode) -> Arc<Self> {
        Arc::new(Self {
            at,
            mode,
            writes: AtomicUsize::new(0),
            dead: AtomicBool::new(false),
        })
    }

    fn crashed(&self) -> bool {
        self.dead.load(Ordering::SeqCst)
    }

    /// Run one write through the fault plan.
    async fn write<T, F>(&self, op: F) -> StoreResult<T>
    where
        F: std::future::Future<Output = StoreResult<T>>,
    {
        let down = || Err(StoreError::Unavailable("injected fault".into()));
        if self.crashed() {
            return down();
        }
        let n = self.writes.fetch_add(1, Ordering::SeqCst);
        if n != self.at {
            return op.await;
        }
        match self.mode {
            Mode::CrashBefore => {
                self.dead.store(true, Ordering::SeqCst);
                down()
            }
            Mode::CrashAfter => {
                let _ = op.await;
                self.dead.store(true, Ordering::SeqCst);
                down()
            }
            Mode::FailOnce => down(),
        }
    }

    /// A read: works until the process is dead.
    async fn read<T, F>(&self, op: F) -> StoreResult<T>
    where
        F: std::future::Future<Output = StoreResult<T>>,
    {
        if self.crashed() {
            return Err(StoreError::Unavailable("injected fault".into()));
        }
        op.await
    }
}

struct Faulty {
    fault: Arc<Fault>,
    inner: Ports,
}

#[async_trait]
impl Idempotency for Faulty {
    async fn claim(
        &self,
        key: &str,
        payload_hash: &str,
        data: &str,
        lease: Duration,
    ) -> StoreResult<Claim> {
        let op = self.inner.idempotency.claim(key, payload_hash, data, lease);
        self.fault.write(op).await
    }
    async fn complete(&self, key: &str, result: &str, ttl: Duration) -> StoreResult<()> {
        let op = self.inner.idempotency.complete(key, result, ttl);
        self.fault.write(op).await
    }
    async fn release(&self, key: &str) -> StoreResult<()> {
        self.fault.write(self.inner.idempotency.release(key)).await
    }
}

#[async_trait]
impl WorkQueue for Faulty {
    async fn send(&self, body: &str, delay: Duration) -> StoreResult<String> {
        self.fault.write(self.inner.queue.send(body, delay)).await
    }
    async fn send_batch(&self, items: &[(String, Duration)]) -> StoreResult<Vec<String>> {
        self.fault.write(self.inner.queue.send_batch(items)).await
    }
    async fn receive(
        &self,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> StoreResult<Vec<Message>> {
        let op = self.inner.queue.receive(max, visibility, wait);
        self.fault.read(op).await
    }
    async fn delete(&self, receipt: &str) -> StoreResult<()> {
        self.fault.write(self.inner.queue.delete(receipt)).await
    }
    async fn change_visibility(&self, receipt: &str, timeout: Duration) -> StoreResult<()> {
        let op = self.inner.queue.change_visibility(receipt, timeout);
        self.fault.write(op).await
    }
    async fn dead_letter(&self, receipt: &str, reason: &str) -> StoreResult<()> {
        let op = self.inner.queue.dead_letter(receipt, reason);
        self.fault.write(op).await
    }
    async fn dead_letters(&self, limit: usize) -> StoreResult<Vec<DeadLetter>> {
        self.fault.read(self.inner.queue.dead_letters(limit)).await
    }
    async fn redrive(&self, id: &str) -> StoreResult<String> {
        self.fault.write(self.inner.queue.redrive(id)).await
    }
}

#[async_trait]
impl RunLog for Faulty {
    async fn create(&self, run: &RunRecord) -> StoreResult<bool> {
        self.fault.write(self.inner.runs.create(run)).await
    }
    async fn put(&self, run: &RunRecord) -> StoreResult<()> {
        self.fault.write(self.inner.runs.put(run)).await
    }
    async fn get(&self, id: &str) -> StoreResult<Option<RunRecord>> {
        self.fault.read(self.inner.runs.get(id)).await
    }
    async fn list(&self, query: &RunQuery) -> StoreResult<Vec<RunRecord>> {
        self.fault.read(self.inner.runs.list(query)).await
    }
}

#[async_trait]
impl Intake for Faulty {
    async fn accept(&self, event: &NewEvent<'_>) -> StoreResult<Claim> {
        let intake = self.inner.intake.as_ref().expect("a one-step store");
        self.fault.write(intake.accept(event)).await
    }
    fn atomic(&self) -> bool {
        self.inner.intake.as_ref().is_some_and(|i| i.atomic())
    }
}

/// How ingest writes an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// Claim, send, record each run, mark seen: one write each.
    Composed,
    /// The store's [`Intake`]: one call.
    OneStep,
}

impl Path {
    /// The writes ingest makes for one new event of `form` (two workflows).
    fn writes(self) -> usize {
        match self {
            Path::Composed => INGEST_WRITES,
            Path::OneStep => 1,
        }
    }

    /// `inner` with ingest going this way.
    fn ports(self, inner: &Ports) -> Ports {
        let intake = match self {
            Path::Composed => None,
            Path::OneStep => inner.intake.clone(),
        };
        Ports {
            intake,
            ..inner.clone()
        }
    }
}

/// `inner` with every write of ingest through `fault`, going `path`.
fn faulty(inner: &Ports, fault: Arc<Fault>, path: Path) -> Ports {
    let f = Arc::new(Faulty {
        fault,
        inner: inner.clone(),
    });
    let intake: Option<Arc<dyn Intake>> = match path {
        Path::Composed => None,
        Path::OneStep => Some(f.clone()),
    };
    Ports {
        idempotency: f.clone(),
        queue: f.clone(),
        runs: f,
        // Ingest goes through the faulty ports, not around them.
        intake,
        ..inner.clone()
    }
}

// ---------------------------------------------------------------- the target

/// The target: every call is answered `200 {"ok": true}`.
async fn target() -> Target {
    let target = Target::start().await;
    target.behave("/", |_| Some(Answer::ok(serde_json::json!({ "ok": true }))));
    target
}

/// (path, event id in the body, Idempotency-Key) of every call.
fn calls(target: &Target) -> Vec<(String, String, String)> {
    target
        .seen()
        .into_iter()
        .map(|s| {
            let id = s.body["id"].as_str().unwrap_or_default().to_owned();
            let key = s.header("idempotency-key").to_owned();
            (s.path, id, key)
        })
        .collect()
}

// ---------------------------------------------------------------- the scenario

/// Two workflows on one source: `two` has two steps, `one` one.
fn config(target: &str) -> String {
    format!(
        r#"version: 1
connections:
  crm: {{ base_url: "{target}" }}
sources:
  form: {{ verify: {{ scheme: api-key, header: X-Key, secret: "${{env:KEY}}" }}, event_id: "{{{{ body.id }}}}" }}
workflows:
  two:
    trigger: {{ source: form }}
    steps:
      - {{ id: a, connection: crm, request: {{ path: /a, json: {{ id: "{{{{ body.id }}}}" }} }} }}
      - {{ id: b, connection: crm, request: {{ path: /b, json: {{ id: "{{{{ body.id }}}}" }} }} }}
  one:
    trigger: {{ source: form }}
    steps:
      - {{ id: c, connection: crm, request: {{ path: /c, json: {{ id: "{{{{ body.id }}}}" }} }} }}
"#
    )
}

fn hub(cfg: &str, ports: Ports) -> Arc<Hub> {
    let loaded = ferry::config::load_str(cfg, &|_| Some("the-key".into())).unwrap();
    Hub::new(loaded.config, loaded.secrets, ports).unwrap()
}

fn request(id: &str) -> Inbound {
    let body = format!(r#"{{"id": "{id}"}}"#);
    ferry_testkit::bench::inbound("form", &[("x-key", "the-key")], body.as_bytes())
}

/// Writes ingest makes for one new event of `form`: the claim, the enqueue,
/// a run record per workflow, the "seen" mark.
const INGEST_WRITES: usize = 5;

/// How the backend under test restarts after a crash.
#[async_trait]
trait Restart: Send + Sync {
    /// What the platform does when a new process starts on the store.
    async fn after_crash(&self);
}

struct Embedded(Arc<SqliteStore>);

#[async_trait]
impl Restart for Embedded {
    /// `ferry dev` recovers the store when it starts.
    async fn after_crash(&self) {
        self.0.recover_after_crash().await.unwrap();
    }
}

struct Lambda;

#[async_trait]
impl Restart for Lambda {
    /// A new Lambda sandbox recovers nothing: leases run out on their own.
    async fn after_crash(&self) {}
}

async fn one_run_per_event_through_any_fault(
    ports: Ports,
    clock: Arc<ManualClock>,
    restart: &dyn Restart,
    path: Path,
) {
    let target = target().await;
    let url = target.url();
    let cfg = config(&url);
    let prefix = unique("evt");

    // Each case: its own event, ingested by a "process" whose `at`-th write breaks.
    let mut cases = Vec::new();
    for at in 0..path.writes() {
        for mode in MODES {
            cases.push((format!("{prefix}-{at}-{mode:?}"), Fault::new(at, mode)));
        }
    }
    let mut pending = Vec::new();
    for (id, fault) in &cases {
        let doomed = hub(&cfg, faulty(&ports, fault.clone(), path));
        let reply = ingest(&doomed, request(id)).await;
        assert!(
            fault.writes.load(Ordering::SeqCst) > fault.at,
            "{id}: the fault point was reached"
        );
        let answered = !fault.crashed() && reply.status < 500;
        if !answered {
            pending.push(id.clone());
        }
        if !fault.crashed() {
            assert!(
                matches!(reply.status, 202 | 503),
                "{id}: {} {}",
                reply.status,
                reply.body
            );
        }
    }

    // The process restarts; senders retry what got no answer or a 503, at once
    // (all together) and again 35 s later.
    restart.after_crash().await;
    let healthy = hub(&cfg, path.ports(&ports));
    for _ in 0..2 {
        let replies =
            futures::future::join_all(pending.iter().map(|id| ingest(&healthy, request(id)))).await;
        pending = pending
            .into_iter()
            .zip(replies)
            .filter(|(_, r)| r.status >= 500)
            .map(|(id, _)| id)
            .collect();
        clock.advance(35_000);
    }
    assert!(pending.is_empty(), "still refused after 35 s: {pending:?}");
    // And every provider redelivers once more, answered or not.
    for (id, _) in &cases {
        let reply = ingest(&healthy, request(id)).await;
        assert!(
            matches!(reply.status, 200 | 202),
            "{id}: {} {}",
            reply.status,
            reply.body
        );
    }

    drain(&healthy).await;

    let runs = healthy
        .ports
        .runs
        .list(&RunQuery {
            limit: 1000,
            ..RunQuery::default()
        })
        .await
        .unwrap();
    let mut per_event: BTreeMap<(String, String), Vec<&RunRecord>> = BTreeMap::new();
    for r in runs.iter().filter(|r| r.event_id.starts_with(&prefix)) {
        per_event
            .entry((r.event_id.clone(), r.workflow.clone()))
            .or_default()
            .push(r);
    }
    let calls = calls(&target);
    for (id, _) in &cases {
        for wf in ["two", "one"] {
            let rs = per_event
                .get(&(id.clone(), wf.to_owned()))
                .unwrap_or_else(|| panic!("{id}/{wf}: no run"));
            assert_eq!(rs.len(), 1, "{id}/{wf}: one run, got {rs:?}");
            assert_eq!(rs[0].status, RunStatus::Succeeded, "{id}/{wf}: {:?}", rs[0]);
        }
        for path in ["/a", "/b", "/c"] {
            let got: Vec<_> = calls
                .iter()
                .filter(|(p, e, _)| p == path && e == id)
                .collect();
            assert_eq!(got.len(), 1, "{id}: {path} called once, got {got:?}");
        }
        let keys: BTreeSet<_> = calls
            .iter()
            .filter(|(_, e, _)| e == id)
            .map(|(_, _, k)| k.clone())
            .collect();
        assert_eq!(keys.len(), 3, "{id}: one key per step: {keys:?}");
    }
}

/// Execute every message until the queue stays empty.
async fn drain(hub: &Hub) {
    let mut empty = 0;
    for _ in 0..500 {
        let msgs = hub
            .ports
            .queue
            .receive(10, Duration::from_secs(60), Duration::ZERO)
            .await
            .unwrap();
        if msgs.is_empty() {
            empty += 1;
            if empty == 3 {
                return;
            }
            continue;
        }
        empty = 0;
        for m in &msgs {
            let d = execute(hub, m).await;
            assert_eq!(d, ferry::execute::Disposition::Done, "{}", m.body);
            settle(hub.ports.queue.as_ref(), m, d).await;
        }
    }
    panic!("the queue did not drain");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_one_run_per_event_through_any_fault() {
    embedded(Path::Composed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_one_step_one_run_per_event_through_any_fault() {
    embedded(Path::OneStep).await;
}

async fn embedded(path: Path) {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(T0);
    let store = SqliteStore::open(
        &dir.path().join("hub.db"),
        SqliteOptions {
            max_receives: 5,
            clock: clock.clone(),
        },
    )
    .unwrap();
    let ports = store.ports();
    one_run_per_event_through_any_fault(ports, clock, &Embedded(store), path).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_one_run_per_event_through_any_fault() {
    aws("aws_one_run_per_event_through_any_fault", Path::Composed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_one_step_one_run_per_event_through_any_fault() {
    aws(
        "aws_one_step_one_run_per_event_through_any_fault",
        Path::OneStep,
    )
    .await;
}

async fn aws(test: &str, path: Path) {
    let Some(b) = ferry::contract::aws::AwsBackend::new(test, 3).await else {
        return;
    };
    let clock = ManualClock::at(T0);
    let store = b.store(clock.clone()).await;
    one_run_per_event_through_any_fault(store.ports(), clock, &Lambda, path).await;
}
