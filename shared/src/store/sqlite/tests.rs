//! The contract suites against SQLite, plus what only this adapter promises:
//! durability across reopen, group commit under concurrency, schema checks.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{SqliteOptions, SqliteStore};
use crate::clock::{Clock, ManualClock, SystemClock};
use crate::contract::{self, Backend};
use crate::model::{RunRecord, RunStatus};
use crate::ports::{Claim, Ports, StoreError};

pub(super) const MAX_RECEIVES: u32 = 3;

/// Every `ports` call opens a new database file in one temp directory.
struct SqliteBackend {
    dir: tempfile::TempDir,
}

impl SqliteBackend {
    fn shared() -> Arc<dyn Backend> {
        Arc::new(Self {
            dir: tempfile::tempdir().unwrap(),
        })
    }
}

#[async_trait]
impl Backend for SqliteBackend {
    async fn ports(&self, clock: Arc<ManualClock>) -> Ports {
        let file = self.dir.path().join(format!("{}.db", uuid::Uuid::now_v7()));
        let opts = SqliteOptions {
            max_receives: MAX_RECEIVES,
            clock,
        };
        SqliteStore::open(&file, opts).unwrap().ports()
    }

    fn max_receives(&self) -> u32 {
        MAX_RECEIVES
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_contract() {
    contract::run(SqliteBackend::shared(), "idempotency").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_contract() {
    contract::run(SqliteBackend::shared(), "queue").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_contract() {
    contract::run(SqliteBackend::shared(), "runs").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursors_contract() {
    contract::run(SqliteBackend::shared(), "cursors").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_contract() {
    contract::run(SqliteBackend::shared(), "limits").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breakers_contract() {
    contract::run(SqliteBackend::shared(), "breakers").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tallies_contract() {
    contract::run(SqliteBackend::shared(), "tallies").await;
}

pub(super) fn open(path: &Path, clock: Arc<dyn Clock>) -> Arc<SqliteStore> {
    SqliteStore::open_on(path, clock, MAX_RECEIVES)
}

fn queued_run(id: &str) -> RunRecord {
    RunRecord {
        id: id.into(),
        workflow: "wf".into(),
        source: "src".into(),
        event_id: "evt".into(),
        status: RunStatus::Queued,
        attempts: 0,
        created_at: contract::T0,
        updated_at: contract::T0,
        error: None,
        failure: None,
        steps: Vec::new(),
        event: None,
        expires_at: None,
        rerun_of: None,
        reruns: Vec::new(),
    }
}

/// After a crash: what the dead process held comes back at once, delayed
/// retries keep their delay, unfinished step claims go, finished ones stay.
#[tokio::test]
async fn recover_after_crash_releases_only_what_a_dead_process_held() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(contract::T0);
    let store = open(&dir.path().join("hub.db"), clock.clone());
    let ports = store.ports();
    let q = &ports.queue;
    q.send("held", Duration::ZERO).await.unwrap();
    q.send("retrying", Duration::ZERO).await.unwrap();
    let got = q
        .receive(2, Duration::from_secs(120), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(got.len(), 2);
    let retrying = got.iter().find(|m| m.body == "retrying").unwrap();
    q.change_visibility(&retrying.receipt, Duration::from_secs(60))
        .await
        .unwrap();
    let idem = &ports.idempotency;
    let lease = Duration::from_secs(60);
    assert_eq!(
        idem.claim("step:r1:a", "", "", lease).await.unwrap(),
        Claim::Claimed
    );
    idem.complete("step:r1:a", "{}", Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!(
        idem.claim("step:r1:b", "", "", lease).await.unwrap(),
        Claim::Claimed
    );
    assert_eq!(
        idem.claim("event:x", "", "", lease).await.unwrap(),
        Claim::Claimed
    );
    // An event the dead process was accepting: its sender's retry must not wait
    // out the lease (the retry maps to the same run ids, so it cannot run twice).
    assert_eq!(
        idem.claim("ingest:form:e-1", "h", "[]", lease)
            .await
            .unwrap(),
        Claim::Claimed
    );

    let r = store.recover_after_crash().await.unwrap();
    assert_eq!((r.messages, r.claims), (1, 2));
    let again = q
        .receive(10, Duration::from_secs(120), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        again.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["held"]
    );
    assert!(matches!(
        idem.claim("step:r1:a", "", "", lease).await.unwrap(),
        Claim::Completed { .. }
    ));
    assert_eq!(
        idem.claim("step:r1:b", "", "", lease).await.unwrap(),
        Claim::Claimed
    );
    assert_eq!(
        idem.claim("ingest:form:e-1", "h", "[]", lease)
            .await
            .unwrap(),
        Claim::Claimed
    );
    assert!(matches!(
        idem.claim("event:x", "", "", lease).await.unwrap(),
        Claim::InProgress { .. }
    ));
    clock.advance(60_000);
    let later = q
        .receive(10, Duration::from_secs(120), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        later.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["retrying"]
    );
}

#[tokio::test]
async fn everything_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(contract::T0);
    let lease = Duration::from_secs(60);
    let id = {
        let ports = open(dir.path(), clock.clone()).ports();
        let id = ports.queue.send("durable", Duration::ZERO).await.unwrap();
        assert_eq!(
            ports.idempotency.claim("k", "h", "d", lease).await.unwrap(),
            Claim::Claimed
        );
        assert!(ports.runs.create(&queued_run("run-1")).await.unwrap());
        assert_eq!(ports.cursors.put("c", "v", None).await.unwrap(), Some(1));
        id
    }; // every handle dropped: the writer has finished and closed the file
    let store = open(dir.path(), clock);
    assert_eq!(store.path(), dir.path().join(super::DEFAULT_FILE_NAME));
    let ports = store.ports();
    let got = ports
        .queue
        .receive(10, lease, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        got.iter().map(|m| (&*m.id, &*m.body)).collect::<Vec<_>>(),
        [(&*id, "durable")]
    );
    assert!(matches!(
        ports.idempotency.claim("k", "h", "x", lease).await.unwrap(),
        Claim::InProgress { .. }
    ));
    assert_eq!(
        ports.runs.get("run-1").await.unwrap(),
        Some(queued_run("run-1"))
    );
    assert_eq!(
        ports.cursors.get("c").await.unwrap().map(|c| c.version),
        Some(1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_lands_every_concurrent_send() {
    let dir = tempfile::tempdir().unwrap();
    let ports = open(dir.path(), Arc::new(SystemClock)).ports();
    let sends: Vec<_> = (0..1000)
        .map(|i| {
            let queue = ports.queue.clone();
            tokio::spawn(async move { queue.send(&format!("m{i}"), Duration::ZERO).await })
        })
        .collect();
    let mut ids = Vec::new();
    for s in sends {
        ids.push(s.await.unwrap().unwrap());
    }
    let mut bodies = Vec::new();
    loop {
        let got = ports
            .queue
            .receive(500, Duration::from_secs(600), Duration::ZERO)
            .await
            .unwrap();
        if got.is_empty() {
            break;
        }
        bodies.extend(got.into_iter().map(|m| m.body));
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 1000);
    bodies.sort();
    let mut expected: Vec<String> = (0..1000).map(|i| format!("m{i}")).collect();
    expected.sort();
    assert_eq!(bodies, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failing_op_does_not_fail_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let ports = open(dir.path(), Arc::new(SystemClock)).ports();
    // Failing ops (stale receipts) interleaved with good ones, all in flight at once.
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let queue = ports.queue.clone();
            tokio::spawn(async move {
                if i % 2 == 0 {
                    queue.send("ok", Duration::ZERO).await.map(drop)
                } else {
                    queue.delete("no-such-receipt").await
                }
            })
        })
        .collect();
    for (i, t) in tasks.into_iter().enumerate() {
        let r = t.await.unwrap();
        if i % 2 == 0 {
            r.unwrap();
        } else {
            assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
        }
    }
    let got = ports
        .queue
        .receive(1000, Duration::from_secs(600), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(got.len(), 100);
}

/// Rough throughput, for the docs: `cargo test --release -p ferry-shared -- --ignored --nocapture throughput`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, not a check"]
async fn throughput() {
    const N: usize = 40_000;
    const CONCURRENCY: usize = 512;
    let dir = tempfile::tempdir().unwrap();
    let ports = open(dir.path(), Arc::new(SystemClock)).ports();

    let start = Instant::now();
    run_concurrently(
        N,
        CONCURRENCY,
        |i, p: Ports| async move {
            p.queue
                .send(&format!(r#"{{"n":{i}}}"#), Duration::ZERO)
                .await
                .unwrap();
        },
        &ports,
    )
    .await;
    let sends = N as f64 / start.elapsed().as_secs_f64();

    let start = Instant::now();
    run_concurrently(
        N,
        CONCURRENCY,
        |i, p: Ports| async move {
            let key = format!("src:evt-{i}");
            let run_id = crate::model::new_run_id();
            let claim = p
                .idempotency
                .claim(&key, "hash", &run_id, Duration::from_secs(30))
                .await
                .unwrap();
            assert_eq!(claim, Claim::Claimed);
            p.queue
                .send(&format!(r#"{{"run":"{run_id}"}}"#), Duration::ZERO)
                .await
                .unwrap();
            let mut run = queued_run(&run_id);
            run.created_at = p.clock.now_ms();
            p.runs.create(&run).await.unwrap();
        },
        &ports,
    )
    .await;
    let accepts = N as f64 / start.elapsed().as_secs_f64();

    // One caller at a time: every send is its own commit (and fsync).
    let start = Instant::now();
    for i in 0..500 {
        ports
            .queue
            .send(&format!("seq{i}"), Duration::ZERO)
            .await
            .unwrap();
    }
    let sequential = 500.0 / start.elapsed().as_secs_f64();
    println!(
        "sqlite store: {sends:.0} sends/s, {accepts:.0} accepts/s (claim + send + create), \
         {CONCURRENCY} concurrent callers; {sequential:.0} sends/s from a single caller"
    );
}

async fn run_concurrently<F, Fut>(n: usize, concurrency: usize, f: F, ports: &Ports)
where
    F: Fn(usize, Ports) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (f, next, ports) = (f.clone(), next.clone(), ports.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    f(i, ports.clone()).await;
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
}

/// A write that fails after changing rows leaves nothing behind — alone in
/// its batch or among others (the batch is rolled back and redone without
/// it: `writer::batch`) — and the writes around it land.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_leaves_nothing_alone_or_among_others() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.db");
    let opts = SqliteOptions {
        max_receives: 5,
        clock: ManualClock::at(1_800_000_000_000),
    };
    let store = Arc::new(SqliteStore::open(&path, opts).unwrap());
    let put = |name: &'static str, fail: bool| {
        let store = store.clone();
        async move {
            store
                .write(move |conn, _| {
                    conn.execute(
                        "INSERT INTO cursors (name, value, version, updated_at) VALUES (?1, 'v', 1, 0)",
                        [name],
                    )
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    if fail {
                        Err(StoreError::NotFound(name.into()))
                    } else {
                        Ok(())
                    }
                })
                .await
        }
    };
    assert!(matches!(put("a", true).await, Err(StoreError::NotFound(_))));
    put("b", false).await.unwrap();
    let (c, d, e) = tokio::join!(put("c", true), put("d", false), put("e", true));
    assert!(matches!(c, Err(StoreError::NotFound(_))));
    d.unwrap();
    assert!(matches!(e, Err(StoreError::NotFound(_))));
    put("f", false).await.unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let names: Vec<String> = conn
        .prepare("SELECT name FROM cursors ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(names, ["b", "d", "f"]);
}
