//! Ingest when the store cannot take the event: 503 (so the provider retries)
//! and nothing half-written — the retry is accepted as new.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use ferry::clock::{Clock, ManualClock, SystemClock};
use ferry::hub::Hub;
use ferry::ingest::{Inbound, ingest};
use ferry::model::{RunQuery, run_id_for};
use ferry::ports::{
    Claim, DeadLetter, Intake, Message, NewEvent, Ports, StoreError, StoreResult, WorkQueue,
};
use ferry::store::{SqliteOptions, SqliteStore};

/// The real embedded queue and one-step intake, with a switch that makes
/// sends (and intakes) fail as if the disk were gone.
struct Flaky {
    inner: Arc<dyn WorkQueue>,
    intake: Arc<dyn Intake>,
    down: AtomicBool,
}

#[async_trait]
impl Intake for Flaky {
    async fn accept(&self, event: &NewEvent<'_>) -> StoreResult<Claim> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("disk I/O error".into()));
        }
        self.intake.accept(event).await
    }
}

#[async_trait]
impl WorkQueue for Flaky {
    async fn send(&self, body: &str, delay: Duration) -> StoreResult<String> {
        self.inner.send(body, delay).await
    }
    async fn send_batch(&self, items: &[(String, Duration)]) -> StoreResult<Vec<String>> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("disk I/O error".into()));
        }
        self.inner.send_batch(items).await
    }
    async fn receive(
        &self,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> StoreResult<Vec<Message>> {
        self.inner.receive(max, visibility, wait).await
    }
    async fn delete(&self, receipt: &str) -> StoreResult<()> {
        self.inner.delete(receipt).await
    }
    async fn change_visibility(&self, receipt: &str, timeout: Duration) -> StoreResult<()> {
        self.inner.change_visibility(receipt, timeout).await
    }
    async fn dead_letter(&self, receipt: &str, reason: &str) -> StoreResult<()> {
        self.inner.dead_letter(receipt, reason).await
    }
    async fn dead_letters(&self, limit: usize) -> StoreResult<Vec<DeadLetter>> {
        self.inner.dead_letters(limit).await
    }
    async fn redrive(&self, id: &str) -> StoreResult<String> {
        self.inner.redrive(id).await
    }
}

const CONFIG: &str = r#"version: 1
connections:
  crm: { base_url: "http://127.0.0.1:9/crm" }
sources:
  form: { verify: { scheme: api-key, header: X-Key, secret: "${env:KEY}" }, event_id: "{{ body.id }}" }
workflows:
  w: { trigger: { source: form }, steps: [ { id: a, connection: crm, request: { path: /x, json: { id: "{{ body.id }}" } } } ] }
"#;

/// Ingest composing the ports: the queue send fails.
#[tokio::test]
async fn store_down_answers_503_and_writes_nothing() {
    store_down(false).await;
}

/// Ingest in one step (the embedded store's [`Intake`]): that step fails.
#[tokio::test]
async fn store_down_in_one_step_answers_503_and_writes_nothing() {
    store_down(true).await;
}

/// The embedded store in `dir` on `clock`.
fn store(dir: &std::path::Path, clock: Arc<dyn Clock>) -> Arc<SqliteStore> {
    SqliteStore::open(
        dir,
        SqliteOptions {
            max_receives: 5,
            clock,
        },
    )
    .unwrap()
}

fn hub(ports: Ports) -> Arc<Hub> {
    let loaded = ferry::config::load_str(CONFIG, &|_| Some("the-key".into())).unwrap();
    Hub::new(loaded.config, loaded.secrets, ports).unwrap()
}

/// A signed post of event `id` to `form`.
fn request(id: &str) -> Inbound {
    let body = format!(r#"{{"id": "{id}"}}"#);
    ferry_testkit::bench::inbound("form", &[("x-key", "the-key")], body.as_bytes())
}

async fn store_down(one_step: bool) {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), Arc::new(SystemClock));
    let mut ports = store.ports();
    let flaky = Arc::new(Flaky {
        inner: ports.queue.clone(),
        intake: ports
            .intake
            .clone()
            .expect("the embedded store has an intake"),
        down: AtomicBool::new(true),
    });
    ports.queue = flaky.clone();
    ports.intake = one_step.then(|| flaky.clone() as Arc<dyn Intake>);
    let hub = hub(ports);

    let reply = ingest(&hub, request("e-1")).await;
    assert_eq!(reply.status, 503, "{:?}", reply.body);
    assert_eq!(reply.body["error"], "store_unavailable");
    assert!(
        !reply.body.to_string().contains("disk"),
        "internal errors stay in the log"
    );
    assert!(
        hub.ports
            .runs
            .list(&RunQuery::default())
            .await
            .unwrap()
            .is_empty(),
        "no run recorded"
    );

    // The provider retries once the store is back: accepted as new, not as a duplicate.
    flaky.down.store(false, Ordering::SeqCst);
    let reply = ingest(&hub, request("e-1")).await;
    assert_eq!(reply.status, 202, "{:?}", reply.body);
    assert_eq!(
        hub.ports
            .runs
            .list(&RunQuery::default())
            .await
            .unwrap()
            .len(),
        1
    );
    let msgs = hub
        .ports
        .queue
        .receive(10, Duration::from_secs(30), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(msgs.len(), 1, "exactly one job enqueued");
}

/// Run ids: in acceptance order where the intake is one atomic write (the
/// embedded store), derived from the event alone on the composed path —
/// also for an event id that comes back after its dedupe window.
#[tokio::test]
async fn run_ids_follow_acceptance_time_in_one_step_and_the_event_otherwise() {
    for one_step in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::at(1_764_547_200_000);
        let mut ports = store(dir.path(), clock.clone()).ports();
        if !one_step {
            ports.intake = None;
        }
        let hub = hub(ports);
        let send = |id: &'static str| ingest(&hub, request(id));
        // Event ids out of order, accepted 5 ms apart.
        let mut ids = Vec::new();
        for event in ["e-2", "e-9", "e-1"] {
            let reply = send(event).await;
            assert_eq!(reply.status, 202, "{:?}", reply.body);
            ids.push(reply.body["run_id"].as_str().unwrap().to_owned());
            clock.advance(5);
        }
        let again = send("e-9").await;
        assert_eq!(again.status, 200, "{:?}", again.body);
        assert_eq!(
            again.body["run_id"],
            ids[1].as_str(),
            "a duplicate, same run"
        );

        // Past the dedupe window (the default 7 days): a new event on the
        // embedded store, the run it had then on the composed path.
        clock.advance(7 * 24 * 3_600_000 + 1);
        let later = send("e-2").await;
        assert_eq!(later.status, 202, "{:?}", later.body);
        let later = later.body["run_id"].as_str().unwrap();
        if one_step {
            assert!(*later > *ids[2], "a new run, after the others");
        } else {
            assert_eq!(later, ids[0], "the run it had then");
        }

        if one_step {
            let mut sorted = ids.clone();
            sorted.sort();
            assert_eq!(sorted, ids, "ids sort in acceptance order");
            let first = uuid::Uuid::parse_str(&ids[0]).unwrap();
            assert_eq!(first.get_version_num(), 7);
            let (secs, nanos) = first.get_timestamp().unwrap().to_unix();
            assert_eq!(
                secs * 1000 + u64::from(nanos) / 1_000_000,
                1_764_547_200_000
            );
        } else {
            for (event, id) in ["e-2", "e-9", "e-1"].iter().zip(&ids) {
                assert_eq!(*id, run_id_for("form", event, "w"));
            }
        }
    }
}
