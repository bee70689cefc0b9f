//! Execute's last write, broken: a single-step run's result, final record and
//! ack are one write on the embedded store ([`RunLog::put_settling`]). The
//! step's call has gone out when that write is made, so whatever breaks it,
//! after a restart the run must be neither lost (it ends succeeded, its
//! message gone) nor executed twice concurrently: every call of the step
//! carries the run's one `Idempotency-Key`, a redelivery while the step's
//! claim is held calls nothing, and a run whose write committed is never
//! called again.
//!
//! The write is broken four ways, each on its own event: the process dies
//! before it reaches the store, or after it committed but before its answer;
//! the store refuses it; or it fails *mid-way* — the step's result already
//! written inside the operation, the run's row refused by a trigger — and
//! must leave nothing of itself behind.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use ferry::clock::ManualClock;
use ferry::contract::{T0, unique};
use ferry::execute::{Disposition, execute_acking};
use ferry::hub::Hub;
use ferry::ingest::ingest;
use ferry::model::{RunQuery, RunRecord, RunStatus};
use ferry::ports::{
    Claim, ClaimArgs, Completion, Idempotency, Ports, RunLog, StoreError, StoreResult, WorkQueue,
};
use ferry::store::{SqliteOptions, SqliteStore};
use ferry::worker::settle;
use ferry_testkit::target::{Answer, Target};

mod one_step;
use one_step::{hub, request};

/// How the run's last write breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Break {
    /// The process dies before the write reaches the store.
    CrashBefore,
    /// The write commits, then the process dies before it sees the answer.
    CrashAfter,
    /// The store refuses the write; the process goes on.
    Refused,
    /// The operation fails half done (the step's result written, the run's
    /// row refused); the process goes on.
    MidWay,
}

/// The run log of one "process": the store's own, until `put_settling`
/// breaks as planned; after a crash every call fails.
struct Settling {
    inner: Ports,
    plan: Break,
    dead: AtomicBool,
}

impl Settling {
    fn alive(&self) -> StoreResult<()> {
        if self.dead.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("the process is dead".into()));
        }
        Ok(())
    }
}

#[async_trait]
impl RunLog for Settling {
    async fn create(&self, run: &RunRecord) -> StoreResult<bool> {
        self.alive()?;
        self.inner.runs.create(run).await
    }
    async fn put(&self, run: &RunRecord) -> StoreResult<()> {
        self.alive()?;
        self.inner.runs.put(run).await
    }
    async fn get(&self, id: &str) -> StoreResult<Option<RunRecord>> {
        self.alive()?;
        self.inner.runs.get(id).await
    }
    async fn list(&self, query: &RunQuery) -> StoreResult<Vec<RunRecord>> {
        self.alive()?;
        self.inner.runs.list(query).await
    }
    async fn put_claiming(
        &self,
        run: &RunRecord,
        idempotency: &dyn Idempotency,
        claim: ClaimArgs<'_>,
    ) -> StoreResult<Claim> {
        self.alive()?;
        // The store's own combined write (its ports are passed through).
        self.inner.runs.put_claiming(run, idempotency, claim).await
    }
    async fn put_settling(
        &self,
        run: &RunRecord,
        idempotency: &dyn Idempotency,
        done: Option<Completion<'_>>,
        queue: &dyn WorkQueue,
        ack: Option<&str>,
    ) -> StoreResult<bool> {
        self.alive()?;
        let write = self
            .inner
            .runs
            .put_settling(run, idempotency, done, queue, ack);
        match self.plan {
            Break::CrashBefore => {
                self.dead.store(true, Ordering::SeqCst);
                Err(StoreError::Unavailable("crashed before the write".into()))
            }
            Break::CrashAfter => {
                write.await?;
                self.dead.store(true, Ordering::SeqCst);
                Err(StoreError::Unavailable("crashed after the write".into()))
            }
            Break::Refused => Err(StoreError::Unavailable("injected refusal".into())),
            Break::MidWay => write.await,
        }
    }
}

/// Receive every visible message and run it (the worker loop's way), until
/// none is left; what each execution decided.
async fn drain(hub: &Hub) -> Vec<Disposition> {
    let mut seen = Vec::new();
    for _ in 0..50 {
        let queue = hub.ports.queue.as_ref();
        let msgs = queue.receive(10, Duration::from_secs(60), Duration::ZERO);
        let msgs = msgs.await.unwrap();
        if msgs.is_empty() {
            return seen;
        }
        for m in &msgs {
            let ran = execute_acking(hub, m).await;
            if !ran.acked {
                settle(queue, m, ran.disposition.clone()).await;
            }
            seen.push(ran.disposition);
        }
    }
    panic!("the queue did not drain");
}

/// The `Idempotency-Key` of every call made for event `id`.
fn keys_called(target: &Target, id: &str) -> Vec<String> {
    target
        .seen_at("/send")
        .into_iter()
        .filter(|s| s.body["id"] == id)
        .map(|s| s.header("idempotency-key").to_owned())
        .collect()
}

async fn the_run(ports: &Ports, id: &str) -> RunRecord {
    let query = RunQuery {
        limit: 1000,
        ..RunQuery::default()
    };
    let runs: Vec<RunRecord> = ports
        .runs
        .list(&query)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.event_id == id)
        .collect();
    assert_eq!(runs.len(), 1, "{id}: one run, got {runs:?}");
    runs.into_iter().next().unwrap()
}

/// Refuse the run's row when it is written succeeded (inserted, or updated
/// in place): the operation fails after its step's result is written,
/// inside the same savepoint.
fn refuse_succeeded(db: &std::path::Path, on: bool) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    let sql = if on {
        "CREATE TRIGGER refuse_succeeded BEFORE INSERT ON runs WHEN NEW.status = 'succeeded'
         BEGIN SELECT RAISE(ABORT, 'injected: the run row is refused'); END;
         CREATE TRIGGER refuse_succeeded_update BEFORE UPDATE ON runs WHEN NEW.status = 'succeeded'
         BEGIN SELECT RAISE(ABORT, 'injected: the run row is refused'); END;"
    } else {
        "DROP TRIGGER refuse_succeeded; DROP TRIGGER refuse_succeeded_update;"
    };
    conn.execute_batch(sql).unwrap();
}

async fn broken_settle(plan: Break) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hub.db");
    let clock = ManualClock::at(T0);
    let opts = SqliteOptions {
        max_receives: 5,
        clock: clock.clone(),
    };
    let store = SqliteStore::open(&db, opts).unwrap();
    let ports = store.ports();
    let target = Target::start().await;
    target.behave("/", |_| Some(Answer::ok(serde_json::json!({ "ok": true }))));
    let healthy = hub(&target.url(), ports.clone());
    let id = unique("evt");
    assert_eq!(ingest(&healthy, request(&id)).await.status, 202);

    // The process whose last write breaks.
    let log = Arc::new(Settling {
        inner: ports.clone(),
        plan,
        dead: AtomicBool::new(false),
    });
    let doomed = hub(
        &target.url(),
        Ports {
            runs: log.clone(),
            ..ports.clone()
        },
    );
    if plan == Break::MidWay {
        refuse_succeeded(&db, true);
    }
    let queue = ports.queue.as_ref();
    let msg = queue.receive(1, Duration::from_secs(60), Duration::ZERO);
    let msg = msg.await.unwrap().remove(0);
    let ran = execute_acking(&doomed, &msg).await;
    assert_eq!(
        keys_called(&target, &id).len(),
        1,
        "{plan:?}: the call went out"
    );
    assert!(!ran.acked, "{plan:?}: {ran:?}");
    let crashed = log.dead.load(Ordering::SeqCst);
    assert_eq!(
        crashed,
        matches!(plan, Break::CrashBefore | Break::CrashAfter)
    );
    if plan == Break::MidWay {
        refuse_succeeded(&db, false);
        // Nothing of the operation shows: the run is not succeeded and its
        // step's claim is still in progress, not completed.
        let run = the_run(&ports, &id).await;
        assert_eq!(run.status, RunStatus::Running, "{run:?}");
        let key = ferry::keys::step(&run.id, "send");
        let again = ports
            .idempotency
            .claim(&key, "", &run.id, Duration::from_secs(1));
        assert!(
            matches!(again.await.unwrap(), Claim::InProgress { .. }),
            "{plan:?}: the step's result was rolled back with the run's row"
        );
    }
    if crashed {
        // `ferry dev` starts again on the store.
        store.recover_after_crash().await.unwrap();
    } else {
        assert_eq!(
            ran.disposition,
            Disposition::RetryIn(Duration::from_secs(5))
        );
        settle(queue, &msg, ran.disposition).await;
        // Redelivered while the claim is held: waits, calls nothing.
        clock.advance(5_000);
        let waits = drain(&healthy).await;
        assert!(
            matches!(waits.as_slice(), [Disposition::RetryIn(_)]),
            "{plan:?}: {waits:?}"
        );
        assert_eq!(
            keys_called(&target, &id).len(),
            1,
            "{plan:?}: no second call"
        );
        // The claim's lease ends (2 × the 10 s timeout + 30 s).
        clock.advance(60_000);
    }
    drain(&healthy).await;

    let run = the_run(&ports, &id).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{plan:?}: {run:?}");
    let keys = keys_called(&target, &id);
    let expected = if plan == Break::CrashAfter { 1 } else { 2 };
    assert_eq!(keys.len(), expected, "{plan:?}: calls {keys:?}");
    assert!(
        keys.iter().all(|k| *k == keys[0]),
        "{plan:?}: one Idempotency-Key for every call: {keys:?}"
    );
    // The message is gone, and a late duplicate of it runs nothing.
    clock.advance(120_000);
    assert!(drain(&healthy).await.is_empty(), "{plan:?}: message left");
    queue.send(&msg.body, Duration::ZERO).await.unwrap();
    assert_eq!(drain(&healthy).await, vec![Disposition::Done]);
    assert_eq!(keys_called(&target, &id).len(), expected, "{plan:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_before_the_settling_write() {
    broken_settle(Break::CrashBefore).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_the_settling_write() {
    broken_settle(Break::CrashAfter).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settling_write_refused() {
    broken_settle(Break::Refused).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settling_write_fails_mid_way() {
    broken_settle(Break::MidWay).await;
}
