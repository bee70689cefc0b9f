//! A full disk, simulated deterministically with `PRAGMA max_page_count` on
//! the write connection (SQLite answers `SQLITE_FULL` at the limit; raising it
//! is "space returns"), and the WAL housekeeping that lets a small volume
//! recover (see `writer`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::SqliteStore;
use crate::clock::{Clock, ManualClock, SystemClock};
use crate::hub::Hub;
use crate::ingest::{Inbound, ingest};
use crate::model::Job;
use crate::ports::StoreError;

/// No limit worth the name (SQLite's default maximum).
const UNLIMITED: i64 = 1_073_741_823;

impl SqliteStore {
    /// Cap the database at its current size plus `extra` pages (`None`: lift the cap).
    async fn limit_pages(&self, extra: Option<i64>) {
        self.write(move |conn, _| {
            let now: i64 = conn
                .query_row("PRAGMA page_count", [], |r| r.get(0))
                .unwrap();
            let max = extra.map_or(UNLIMITED, |e| now + e);
            conn.query_row(&format!("PRAGMA max_page_count = {max}"), [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap();
            Ok(())
        })
        .await
        .unwrap();
    }
}

fn open(path: &Path, clock: Arc<dyn Clock>) -> Arc<SqliteStore> {
    SqliteStore::open_on(path, clock, 3)
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

fn wal(db: &Path) -> std::path::PathBuf {
    db.with_file_name(format!("{}-wal", db.file_name().unwrap().to_string_lossy()))
}

/// Without a checkpoint the WAL only grows (SQLite's own starts at 1,000
/// pages): on a small volume, a store that once filled it stays full.
#[tokio::test]
async fn after_a_failed_write_the_wal_is_checkpointed_and_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hub.db");
    let store = open(&db, Arc::new(SystemClock));
    let ports = store.ports();
    let body = "x".repeat(4000);
    for _ in 0..50 {
        ports.queue.send(&body, Duration::ZERO).await.unwrap();
    }
    let wal_before = size(&wal(&db));
    assert!(
        wal_before > 100_000,
        "the WAL holds the writes: {wal_before}"
    );

    store.limit_pages(Some(2)).await;
    let mut failed = false;
    for _ in 0..20 {
        match ports.queue.send(&body, Duration::ZERO).await {
            Ok(_) => {}
            Err(e) => {
                assert!(matches!(e, StoreError::Unavailable(_)), "{e}");
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "the store filled up");

    store.limit_pages(None).await;
    ports.queue.send("small", Duration::ZERO).await.unwrap();
    let wal_after = size(&wal(&db));
    assert!(
        wal_after < wal_before,
        "the WAL was checkpointed and truncated: {wal_before} -> {wal_after} bytes"
    );
    assert!(size(&db) > 100_000, "its pages are in the database file");
}

/// The writer also checkpoints on its own every housekeeping period, so the
/// WAL is never the only copy of much: afterwards the database file holds
/// every page.
#[tokio::test]
async fn the_wal_is_checkpointed_every_housekeeping_period() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hub.db");
    let clock = ManualClock::at(crate::contract::T0);
    let store = open(&db, clock.clone());
    let ports = store.ports();
    let in_file = || i64::try_from(size(&db) / 4096).unwrap();
    let in_store = || {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.query_row("PRAGMA page_count", [], |r| r.get::<_, i64>(0))
            .unwrap()
    };
    let body = "x".repeat(4000);
    for _ in 0..20 {
        ports.queue.send(&body, Duration::ZERO).await.unwrap();
    }
    assert!(in_file() < in_store(), "some pages are only in the WAL");
    clock.advance(11_000);
    ports.queue.send("small", Duration::ZERO).await.unwrap();
    let pages = in_store();
    // The checkpoint follows that commit; the writer takes this (a write
    // that changes nothing) only after it.
    let stale = ports.queue.delete("no-such-receipt").await;
    assert!(matches!(stale, Err(StoreError::NotFound(_))), "{stale:?}");
    assert_eq!(in_file(), pages, "every page is in the database file");
}

const CONFIG: &str = r#"version: 1
connections:
  crm: { base_url: "http://127.0.0.1:9/crm" }
sources:
  form: { verify: { scheme: none }, event_id: "{{ body.id }}" }
workflows:
  w: { trigger: { source: form }, steps: [ { id: a, connection: crm, request: { path: /x, json: { id: "{{ body.id }}" } } } ] }
"#;

fn event(id: &str) -> Inbound {
    let mut headers = http::HeaderMap::new();
    headers.insert("content-type", "application/json".parse().unwrap());
    let body = serde_json::json!({ "id": id, "pad": "p".repeat(3000) }).to_string();
    Inbound {
        method: http::Method::POST,
        source: "form".into(),
        headers,
        query: None,
        body: bytes::Bytes::from(body),
    }
}

/// Fill the store until ingest answers 503; give the space back; ingest
/// answers 202 again without a restart, the refused events are accepted on
/// retry, and every event that got a 202 is in the queue exactly once.
#[tokio::test]
async fn a_full_store_recovers_by_itself_and_every_accepted_event_is_queued_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("hub.db"), Arc::new(SystemClock));
    let loaded = crate::config::load_str(CONFIG, &|_| None).unwrap();
    let hub = Hub::new(loaded.config, loaded.secrets, store.ports()).unwrap();

    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    store.limit_pages(Some(20)).await;
    for n in 0..200 {
        let id = format!("e-{n}");
        let reply = ingest(&hub, event(&id)).await;
        match reply.status {
            202 => accepted.push(id),
            503 => {
                assert_eq!(reply.body["error"], "store_unavailable", "{}", reply.body);
                refused.push(id);
                if refused.len() == 5 {
                    break;
                }
            }
            other => panic!("{id}: {other} {}", reply.body),
        }
    }
    assert_eq!(refused.len(), 5, "the store filled up");
    assert!(!accepted.is_empty());

    store.limit_pages(None).await; // space returns
    for id in refused
        .iter()
        .chain(["after-1".to_owned(), "after-2".to_owned()].iter())
    {
        let reply = ingest(&hub, event(id)).await;
        assert_eq!(reply.status, 202, "{id}: {}", reply.body);
        accepted.push(id.clone());
    }

    let mut queued: BTreeMap<String, usize> = BTreeMap::new();
    loop {
        let got = hub
            .ports
            .queue
            .receive(100, Duration::from_secs(600), Duration::ZERO)
            .await
            .unwrap();
        if got.is_empty() {
            break;
        }
        for m in got {
            let Job::Run(job) = Job::decode(&m.body).unwrap();
            *queued.entry(job.event_id).or_default() += 1;
        }
    }
    let expected: BTreeMap<String, usize> = accepted.iter().map(|id| (id.clone(), 1)).collect();
    assert_eq!(queued, expected, "every 202 is queued exactly once");
}
