//! A message's first delivery runs from the queued record it rebuilds from
//! its job, without reading the run first, when that record is the stored
//! run (`RunLog::put_claiming_if`). Whatever else is stored, the run goes on
//! exactly as if it had been read: a finished run is not run again, a
//! retrying one resumes with its history, a missing one is recorded.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use ferry::clock::ManualClock;
use ferry::contract::{T0, unique};
use ferry::execute::{Disposition, execute_acking};
use ferry::hub::Hub;
use ferry::ingest::ingest;
use ferry::model::{Event, Job, RunJob, RunQuery, RunRecord, RunStatus};
use ferry::ports::{
    Claim, ClaimArgs, Completion, Fresh, Idempotency, Ports, RunLog, StoreResult, WorkQueue,
};
use ferry::store::{SqliteOptions, SqliteStore};
use ferry::worker::settle;
use ferry_testkit::target::{Answer, Target};

mod one_step;
use one_step::{hub, request};

/// The store's run log, counting its reads by id.
struct Counting {
    inner: Ports,
    gets: AtomicUsize,
}

#[async_trait]
impl RunLog for Counting {
    async fn create(&self, run: &RunRecord) -> StoreResult<bool> {
        self.inner.runs.create(run).await
    }
    async fn put(&self, run: &RunRecord) -> StoreResult<()> {
        self.inner.runs.put(run).await
    }
    async fn get(&self, id: &str) -> StoreResult<Option<RunRecord>> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.runs.get(id).await
    }
    async fn list(&self, query: &RunQuery) -> StoreResult<Vec<RunRecord>> {
        self.inner.runs.list(query).await
    }
    async fn put_claiming(
        &self,
        run: &RunRecord,
        idempotency: &dyn Idempotency,
        claim: ClaimArgs<'_>,
    ) -> StoreResult<Claim> {
        self.inner.runs.put_claiming(run, idempotency, claim).await
    }
    async fn put_claiming_if(
        &self,
        expected: &RunRecord,
        run: &RunRecord,
        idempotency: &dyn Idempotency,
        claim: ClaimArgs<'_>,
    ) -> StoreResult<Fresh> {
        let write = self
            .inner
            .runs
            .put_claiming_if(expected, run, idempotency, claim);
        write.await
    }
    async fn put_settling(
        &self,
        run: &RunRecord,
        idempotency: &dyn Idempotency,
        done: Option<Completion<'_>>,
        queue: &dyn WorkQueue,
        ack: Option<&str>,
    ) -> StoreResult<bool> {
        let write = self
            .inner
            .runs
            .put_settling(run, idempotency, done, queue, ack);
        write.await
    }
}

struct World {
    _dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    ports: Ports,
    log: Arc<Counting>,
    hub: Arc<Hub>,
    target: Target,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(T0);
    let opts = SqliteOptions {
        max_receives: 5,
        clock: clock.clone(),
    };
    let store = SqliteStore::open(&dir.path().join("hub.db"), opts).unwrap();
    let ports = store.ports();
    let log = Arc::new(Counting {
        inner: ports.clone(),
        gets: AtomicUsize::new(0),
    });
    let target = Target::start().await;
    target.respond_with("/send", Answer::ok(serde_json::json!({ "ok": true })));
    let counted = Ports {
        runs: log.clone(),
        ..ports.clone()
    };
    let hub = hub(&target.url(), counted);
    World {
        _dir: dir,
        clock,
        ports,
        log,
        hub,
        target,
    }
}

impl World {
    async fn accept(&self, id: &str) {
        assert_eq!(ingest(&self.hub, request(id)).await.status, 202);
    }

    /// Receive one message and run it as the worker loop does.
    async fn deliver(&self) -> (Disposition, String) {
        let queue = self.ports.queue.as_ref();
        let msg = queue.receive(1, Duration::from_secs(60), Duration::ZERO);
        let msg = msg.await.unwrap().remove(0);
        let ran = execute_acking(&self.hub, &msg).await;
        if !ran.acked {
            settle(queue, &msg, ran.disposition.clone()).await;
        }
        (ran.disposition, msg.body)
    }

    async fn the_run(&self, body: &str) -> RunRecord {
        let Job::Run(job) = Job::decode(body).unwrap();
        self.ports.runs.get(&job.run_id).await.unwrap().unwrap()
    }

    fn gets(&self) -> usize {
        self.log.gets.load(Ordering::SeqCst)
    }
}

/// The queued record ingest wrote is the stored run: the first delivery
/// runs it without reading it, and the run ends as a read one would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_delivery_does_not_read_its_run() {
    let w = world().await;
    let id = unique("evt");
    w.accept(&id).await;
    let (done, body) = w.deliver().await;
    assert_eq!(done, Disposition::Done);
    assert_eq!(w.gets(), 0, "the run was not read");
    let run = w.the_run(&body).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!((run.attempts, run.created_at), (1, T0));
    assert_eq!(run.event.as_ref().map(|e| e.received_at), Some(T0));
    assert_eq!(w.target.count("/send"), 1);

    // A copy of the message (a duplicate send) finds the run finished.
    w.ports.queue.send(&body, Duration::ZERO).await.unwrap();
    assert_eq!(w.deliver().await.0, Disposition::Done);
    assert_eq!(w.target.count("/send"), 1, "not run again");
    assert_eq!(w.the_run(&body).await, run);
}

/// A fresh copy of the message of a retrying run (as a rate limit's
/// requeue sends) resumes it with its history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_delivery_of_a_retrying_run_resumes_it() {
    let w = world().await;
    w.target
        .script("/send", [Answer::status(503, serde_json::json!({}))]);
    let id = unique("evt");
    w.accept(&id).await;
    let (retry, body) = w.deliver().await;
    assert!(matches!(retry, Disposition::RetryIn(_)), "{retry:?}");
    assert_eq!(w.the_run(&body).await.status, RunStatus::Retrying);

    // The retried message is replaced by a fresh copy of it.
    w.clock.advance(600_000);
    let queue = w.ports.queue.as_ref();
    let old = queue.receive(1, Duration::from_secs(60), Duration::ZERO);
    queue.delete(&old.await.unwrap()[0].receipt).await.unwrap();
    queue.send(&body, Duration::ZERO).await.unwrap();
    assert_eq!(w.deliver().await.0, Disposition::Done);
    let run = w.the_run(&body).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(run.attempts, 2);
    assert_eq!(run.steps[0].attempts.len(), 2, "{run:?}");
    assert_eq!(w.target.count("/send"), 2);
}

/// No run stored (ingest's write lost): the first delivery records and runs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_delivery_without_its_record_records_it() {
    let w = world().await;
    let id = unique("evt");
    let job = RunJob {
        run_id: ferry::model::new_run_id(),
        workflow: "one".into(),
        source: "form".into(),
        event_id: id.clone(),
        event: Event {
            body: serde_json::json!({ "id": id }),
            received_at: T0 - 1_000,
            ..Event::default()
        },
    };
    let body = Job::Run(job).encode();
    w.ports.queue.send(&body, Duration::ZERO).await.unwrap();
    assert_eq!(w.deliver().await.0, Disposition::Done);
    let run = w.the_run(&body).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    // Created when execute found it missing, as before.
    assert_eq!((run.attempts, run.created_at), (1, T0));
    assert_eq!(w.target.count("/send"), 1);
}
