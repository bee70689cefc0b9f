//! Connection settings and the schema, migrated on open (`PRAGMA user_version`).

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::sql_err;
use crate::ports::{StoreError, StoreResult};

/// The schema version this code writes. Bump it and add a step to [`MIGRATIONS`].
pub(super) const SCHEMA_VERSION: i64 = 8;

const _: () = assert!(MIGRATIONS.len() as i64 == SCHEMA_VERSION);

/// WAL pages after which a commit checkpoints (SQLite's default is 1,000,
/// 4 MB). Smaller keeps the WAL — which holds every version of a page written
/// since the last checkpoint — from filling a small volume between the
/// writer's own checkpoints (see `writer`).
const WAL_AUTOCHECKPOINT_PAGES: u32 = 256;
/// Size the WAL file is cut back to when it starts over after a checkpoint
/// (it would otherwise keep the size of its largest burst). Above the size an
/// autocheckpoint leaves (256 frames of 4 KiB plus headers, a batch more at
/// most): a limit below it cut the WAL at every restart, and the next commits
/// grew the file again (a truncate and new blocks every few commits).
const WAL_SIZE_LIMIT_BYTES: i64 = 2 * 1024 * 1024;

/// How long a connection waits for another one (another process, e.g. the CLI)
/// holding the write lock before giving up with `Unavailable`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Step `i` migrates from `user_version` `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 0 -> 1: every port.
    r#"
    CREATE TABLE idempotency (
        key          TEXT PRIMARY KEY,
        payload_hash TEXT NOT NULL,
        data         TEXT NOT NULL,
        completed    INTEGER NOT NULL DEFAULT 0,
        result       TEXT,
        -- lease end while in progress, TTL end once completed
        expires_at   INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX idempotency_expires ON idempotency (expires_at);

    CREATE TABLE queue (
        seq           INTEGER PRIMARY KEY,
        id            TEXT NOT NULL UNIQUE,
        body          TEXT NOT NULL,
        sent_at       INTEGER NOT NULL,
        visible_at    INTEGER NOT NULL,
        receive_count INTEGER NOT NULL DEFAULT 0,
        -- handle of the latest receive; NULL before the first
        receipt       TEXT UNIQUE
    );
    CREATE INDEX queue_visible ON queue (visible_at, seq);

    CREATE TABLE dead_letters (
        seq           INTEGER PRIMARY KEY,
        id            TEXT NOT NULL UNIQUE,
        body          TEXT NOT NULL,
        sent_at       INTEGER NOT NULL,
        reason        TEXT NOT NULL,
        receive_count INTEGER NOT NULL,
        dead_at       INTEGER NOT NULL
    );
    CREATE INDEX dead_letters_dead_at ON dead_letters (dead_at, seq);

    CREATE TABLE runs (
        id         TEXT PRIMARY KEY,
        workflow   TEXT NOT NULL,
        status     TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        record     TEXT NOT NULL
    );
    CREATE INDEX runs_created ON runs (created_at, id);
    CREATE INDEX runs_workflow ON runs (workflow, created_at, id);
    CREATE INDEX runs_status ON runs (status, created_at, id);

    CREATE TABLE cursors (
        name       TEXT PRIMARY KEY,
        value      TEXT NOT NULL,
        version    INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE rate_limits (
        key          TEXT PRIMARY KEY,
        -- NULL: full (the bucket's shape is only known at acquire)
        tokens       REAL,
        updated_at   INTEGER NOT NULL,
        paused_until INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;
    "#,
    // 1 -> 2: which messages a worker holds (received, not yet settled), so a
    // restart after a crash can release them without cutting retry delays short.
    r#"
    ALTER TABLE queue ADD COLUMN in_flight INTEGER NOT NULL DEFAULT 0;
    "#,
    // 2 -> 3: open circuit breakers, one row per connection (absent: closed).
    r#"
    CREATE TABLE breakers (
        name        TEXT PRIMARY KEY,
        since       INTEGER NOT NULL,
        until       INTEGER NOT NULL,
        why         TEXT NOT NULL,
        -- lease end of the probe in flight; 0: none
        probe_until INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;
    "#,
    // 3 -> 4: when each run expires (clock ms); runs written before keep the
    // default retention of 30 days from their last change, as their records say.
    r#"
    ALTER TABLE runs ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0;
    UPDATE runs SET expires_at =
        COALESCE(json_extract(record, '$.updated_at'), created_at) + 2592000000;
    CREATE INDEX runs_expires ON runs (expires_at);
    "#,
    // 4 -> 5: counters for alerts, one row per subject and window.
    r#"
    CREATE TABLE tallies (
        window  INTEGER NOT NULL,
        subject TEXT NOT NULL,
        count   INTEGER NOT NULL,
        first   INTEGER NOT NULL,
        last    INTEGER NOT NULL,
        sample  TEXT NOT NULL,
        PRIMARY KEY (window, subject)
    ) WITHOUT ROWID;
    "#,
    // 5 -> 6: a workflow's index also holds each run's status and expiry,
    // so the overview counts a day of runs from the index alone
    // (`RunLog::counts`), reading no row.
    r#"
    DROP INDEX runs_workflow;
    CREATE INDEX runs_workflow ON runs (workflow, created_at, id, status, expires_at);
    "#,
    // 6 -> 7: a queued message writes two B-trees instead of four. No query
    // looks a message up by `id` (its uniqueness came from the UUID, not the
    // index), and a message not yet received has no receipt: the receipts'
    // unique index only holds the messages in flight.
    r#"
    CREATE TABLE queue_v7 (
        seq           INTEGER PRIMARY KEY,
        id            TEXT NOT NULL,
        body          TEXT NOT NULL,
        sent_at       INTEGER NOT NULL,
        visible_at    INTEGER NOT NULL,
        receive_count INTEGER NOT NULL DEFAULT 0,
        -- handle of the latest receive; NULL before the first
        receipt       TEXT,
        in_flight     INTEGER NOT NULL DEFAULT 0
    );
    INSERT INTO queue_v7 (seq, id, body, sent_at, visible_at, receive_count, receipt, in_flight)
        SELECT seq, id, body, sent_at, visible_at, receive_count, receipt, in_flight FROM queue;
    DROP TABLE queue;
    ALTER TABLE queue_v7 RENAME TO queue;
    CREATE UNIQUE INDEX queue_receipt ON queue (receipt) WHERE receipt IS NOT NULL;
    CREATE INDEX queue_visible ON queue (visible_at, seq);
    "#,
    // 7 -> 8: every filter combination of a listing is an index range
    // (`run_branches`): a workflow's runs by status, a source's runs by
    // workflow. A listing by status or source without a workflow reads one
    // range per workflow and merges them, so no filter walks runs it drops.
    // `source` becomes a column (it was only in the record).
    r#"
    ALTER TABLE runs ADD COLUMN source TEXT NOT NULL DEFAULT '';
    UPDATE runs SET source = COALESCE(record ->> '$.source', '');
    DROP INDEX runs_status;
    CREATE INDEX runs_workflow_status ON runs (workflow, status, created_at, id);
    CREATE INDEX runs_source ON runs (source, workflow, created_at, id);
    "#,
];

/// Open the write connection: WAL, `synchronous=FULL`, schema migrated.
///
/// Durability: in WAL mode `synchronous=NORMAL` only syncs at checkpoints, so a
/// power loss can undo transactions that were already reported committed. The
/// ingest path answers 2xx only once a webhook is durably accepted, so we use
/// `FULL`: every commit syncs the WAL. Group commit (see `writer`) pays that
/// sync once per batch, not once per operation.
pub(super) fn open_writer(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open(path).map_err(|e| open_err(path, e))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(sql_err)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(sql_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Unavailable(format!(
            "{}: cannot switch to WAL mode (got {mode})",
            path.display()
        )));
    }
    conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)
        .map_err(sql_err)?;
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT_BYTES)
        .map_err(sql_err)?;
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = OFF;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -16000;",
    )
    .map_err(sql_err)?;
    conn.set_prepared_statement_cache_capacity(64);
    migrate(&conn, path)?;
    Ok(conn)
}

/// Open a read connection (the writer must have opened and migrated the file).
pub(super) fn open_reader(path: &Path) -> StoreResult<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| open_err(path, e))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(sql_err)?;
    conn.execute_batch("PRAGMA query_only = ON; PRAGMA cache_size = -8000;")
        .map_err(sql_err)?;
    Ok(conn)
}

fn migrate(conn: &Connection, path: &Path) -> StoreResult<()> {
    // Each step re-reads the version under the write lock, so two processes
    // opening the same new file at once do not both create the tables.
    loop {
        conn.execute_batch("BEGIN IMMEDIATE").map_err(sql_err)?;
        let step = migrate_step(conn, path);
        let done = match step {
            Ok(done) => conn.execute_batch("COMMIT").map_err(sql_err).map(|()| done),
            Err(e) => Err(e),
        };
        match done {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => {
                if !conn.is_autocommit() {
                    let _ = conn.execute_batch("ROLLBACK");
                }
                return Err(e);
            }
        }
    }
}

/// Apply the next migration, if any. Returns whether the schema is current.
fn migrate_step(conn: &Connection, path: &Path) -> StoreResult<bool> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql_err)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Corrupt(format!(
            "{}: schema version {version} is newer than this ferry understands ({SCHEMA_VERSION})",
            path.display()
        )));
    }
    let Some(step) = MIGRATIONS.get(version.max(0) as usize) else {
        return Ok(true);
    };
    let to = version + 1;
    conn.execute_batch(&format!("{step}\nPRAGMA user_version = {to};"))
        .map_err(|e| {
            StoreError::Unavailable(format!(
                "{}: migrating the schema to version {to} failed: {}",
                path.display(),
                sql_err(e)
            ))
        })?;
    Ok(false)
}

fn open_err(path: &Path, e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(format!("cannot open {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan of `sql` (with `?1` bound to a receipt).
    fn plan(conn: &Connection, sql: &str) -> Vec<String> {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        stmt.query_map(["r"], |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// Version 7: a queued message is in two B-trees (the table and
    /// `queue_visible`); receipts stay unique, and every lookup by receipt
    /// still uses an index.
    #[test]
    fn a_queued_message_writes_the_table_and_one_index() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_writer(&dir.path().join("ferry.db")).unwrap();
        let indexes: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'queue' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(indexes, ["queue_receipt", "queue_visible"]);
        for sql in [
            "DELETE FROM queue WHERE receipt = ?1",
            "SELECT seq FROM queue WHERE receipt = ?1",
            "UPDATE queue SET visible_at = 1, in_flight = 0 WHERE receipt = ?1",
        ] {
            let plan = plan(&conn, sql);
            assert!(
                plan.iter().any(|s| s.contains("INDEX queue_receipt")),
                "{sql}: {plan:?}"
            );
        }
        let insert =
            "INSERT INTO queue (id, body, sent_at, visible_at, receipt) VALUES (?1, 'b', 0, 0, ?2)";
        conn.execute(insert, ["m1", "r1"]).unwrap();
        conn.execute(insert, ["m2", "r2"]).unwrap();
        assert!(
            conn.execute(insert, ["m3", "r1"]).is_err(),
            "a receipt names one message"
        );
        // Messages not received yet (no receipt) do not collide.
        conn.execute("INSERT INTO queue (id, body, sent_at, visible_at) VALUES ('m4', 'b', 0, 0), ('m5', 'b', 0, 0)", [])
            .unwrap();
    }

    /// seq, id, body, sent_at, visible_at, receive_count, receipt, in_flight.
    type QueueRow = (i64, String, String, i64, i64, i64, Option<String>, i64);

    /// Migrating 6 → 7 keeps every message as it was: queued, in flight
    /// (receipt, receive count, `in_flight`) and its place in line (`seq`).
    #[test]
    fn migrating_to_7_keeps_the_queue() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferry.db");
        {
            let conn = Connection::open(&path).unwrap();
            for step in &MIGRATIONS[..6] {
                conn.execute_batch(step).unwrap();
            }
            conn.execute_batch(
                "PRAGMA user_version = 6;
                 INSERT INTO queue (seq, id, body, sent_at, visible_at, receive_count, receipt, in_flight)
                 VALUES (7, 'm1', 'one', 10, 20, 0, NULL, 0), (9, 'm2', 'two', 11, 90, 2, 'r2', 1);",
            )
            .unwrap();
        }
        let conn = open_writer(&path).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let rows: Vec<QueueRow> = conn
            .prepare("SELECT seq, id, body, sent_at, visible_at, receive_count, receipt, in_flight FROM queue ORDER BY seq")
            .unwrap()
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            rows,
            [
                (7, "m1".into(), "one".into(), 10, 20, 0, None, 0),
                (
                    9,
                    "m2".into(),
                    "two".into(),
                    11,
                    90,
                    2,
                    Some("r2".into()),
                    1
                ),
            ]
        );
        // A new message goes after the migrated ones.
        conn.execute(
            "INSERT INTO queue (id, body, sent_at, visible_at) VALUES ('m3', 'b', 0, 0)",
            [],
        )
        .unwrap();
        let seq: i64 = conn
            .query_row("SELECT seq FROM queue WHERE id = 'm3'", [], |r| r.get(0))
            .unwrap();
        assert!(seq > 9, "{seq}");
    }
}
