//! [`RunLog`] on the `runs` table (the record as JSON plus indexed columns) and
//! [`Cursors`] on the `cursors` table (optimistic versions).
//!
//! A run is kept until its `expires_at` ([`RunRecord::expiry`]): reads hide
//! it from then on, and the writer's housekeeping ([`purge_expired`], every
//! few seconds of writes) deletes it.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::run_branches::newest;
use super::{SqliteStore, sql_err};
use crate::clock::Millis;
use crate::model::{RunQuery, RunRecord, RunStatus};
use crate::ports::{
    Claim, ClaimArgs, Completion, Cursor, Cursors, Fresh, Idempotency, RunLog, StoreError,
    StoreResult, WorkQueue,
};
use crate::run_counts::RunCounts;

/// Most expired runs one housekeeping pass deletes (keeps a batch's commit short).
const PURGE_LIMIT: i64 = 1_000;

/// A `runs` row: id, workflow, status, created_at, expires_at, JSON, source.
pub(super) type Row = (String, String, &'static str, i64, i64, String, String);

/// The row for `run`.
pub(super) fn row(run: &RunRecord) -> StoreResult<Row> {
    let json = crate::runlog::encode(run)
        .map_err(|e| StoreError::Corrupt(format!("run {:?} cannot be encoded: {e}", run.id)))?;
    Ok((
        run.id.clone(),
        run.workflow.clone(),
        run.status.as_str(),
        run.created_at,
        run.expiry(),
        json,
        run.source.clone(),
    ))
}

/// Housekeeping: delete runs (and their payloads) past their expiry.
pub(super) fn purge_expired(conn: &Connection, now: Millis) -> rusqlite::Result<()> {
    let purged = conn
        .prepare_cached(
            "DELETE FROM runs WHERE id IN
           (SELECT id FROM runs WHERE expires_at <= ?1 LIMIT ?2)",
        )?
        .execute(params![now, PURGE_LIMIT])?;
    if purged > 0 {
        tracing::debug!(purged, "purged expired runs");
    }
    Ok(())
}

pub(super) fn decode(json: &str) -> StoreResult<RunRecord> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("run record: {e}")))
}

pub(super) fn write_run(conn: &Connection, verb: &str, run: &Row) -> StoreResult<usize> {
    let (id, workflow, status, created_at, expires_at, json, source) = run;
    conn.prepare_cached(&format!(
        "{verb} INTO runs (id, workflow, status, created_at, expires_at, record, source)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
    ))
    .and_then(|mut s| {
        s.execute(params![
            id, workflow, status, created_at, expires_at, json, source
        ])
    })
    .map_err(sql_err)
}

/// Insert or replace `run` (`INSERT OR REPLACE`). A run already stored
/// with its id, workflow, source and creation time (a run written before:
/// the usual case) is updated in place instead: only its status, expiry and
/// record change, so the index entries that hold none of them stay put.
pub(super) fn replace(conn: &Connection, run: &Row) -> StoreResult<()> {
    let (id, workflow, status, created_at, expires_at, json, source) = run;
    let updated = conn
        .prepare_cached(
            "UPDATE runs SET status = ?2, expires_at = ?3, record = ?4
             WHERE id = ?1 AND workflow = ?5 AND created_at = ?6 AND source = ?7",
        )
        .and_then(|mut s| {
            s.execute(params![
                id, status, expires_at, json, workflow, created_at, source
            ])
        })
        .map_err(sql_err)?;
    if updated == 0 {
        write_run(conn, "INSERT OR REPLACE", run)?;
    }
    Ok(())
}

/// Replace the live run `run.0` with `run` only where its stored JSON is
/// `expected` (so its other columns are `expected`'s too); whether it was
/// replaced. When `run` keeps `expected`'s workflow, source and creation
/// time, only its status, expiry and record are set (see [`replace`]).
pub(super) fn replace_if(
    conn: &Connection,
    now: Millis,
    run: &Row,
    expected: &Row,
) -> StoreResult<bool> {
    let (id, workflow, status, created_at, expires_at, json, source) = run;
    let same = (workflow, created_at, source) == (&expected.1, &expected.3, &expected.6);
    let sql = if same {
        "UPDATE runs SET status = ?2, expires_at = ?3, record = ?4
         WHERE id = ?1 AND record = ?8 AND expires_at > ?9"
    } else {
        "UPDATE runs SET status = ?2, expires_at = ?3, record = ?4,
           workflow = ?5, created_at = ?6, source = ?7
         WHERE id = ?1 AND record = ?8 AND expires_at > ?9"
    };
    conn.prepare_cached(sql)
        .and_then(|mut s| {
            s.execute(params![
                id, status, expires_at, json, workflow, created_at, source, expected.5, now
            ])
        })
        .map(|changed| changed == 1)
        .map_err(sql_err)
}

/// Insert `run` unless a live run has its id; whether it was inserted.
///
/// One statement: an expired run not purged yet is gone already, so its row
/// is overwritten (the `WHERE` of the upsert); a live one is left alone.
pub(super) fn create(conn: &Connection, now: Millis, run: &Row) -> StoreResult<bool> {
    let (id, workflow, status, created_at, expires_at, json, source) = run;
    conn.prepare_cached(
        "INSERT INTO runs (id, workflow, status, created_at, expires_at, record, source)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (id) DO UPDATE SET
           workflow = excluded.workflow, status = excluded.status,
           created_at = excluded.created_at, expires_at = excluded.expires_at,
           record = excluded.record, source = excluded.source
         WHERE runs.expires_at <= ?8",
    )
    .and_then(|mut s| {
        s.execute(params![
            id, workflow, status, created_at, expires_at, json, source, now
        ])
    })
    .map(|changed| changed == 1)
    .map_err(sql_err)
}

#[async_trait]
impl RunLog for SqliteStore {
    async fn create(&self, run: &RunRecord) -> StoreResult<bool> {
        let run = row(run)?;
        self.write(move |conn, now| create(conn, now, &run)).await
    }

    async fn put(&self, run: &RunRecord) -> StoreResult<()> {
        let run = row(run)?;
        self.write(move |conn, _| replace(conn, &run)).await
    }

    async fn put_claiming(
        &self,
        run: &RunRecord,
        idempotency: &dyn Idempotency,
        claim: ClaimArgs<'_>,
    ) -> StoreResult<Claim> {
        super::settle::put_claiming(self, run, idempotency, claim).await
    }

    async fn put_claiming_if(
        &self,
        expected: &RunRecord,
        run: &RunRecord,
        idempotency: &dyn Idempotency,
        claim: ClaimArgs<'_>,
    ) -> StoreResult<Fresh> {
        super::settle::put_claiming_if(self, expected, run, idempotency, claim).await
    }

    async fn put_settling(
        &self,
        run: &RunRecord,
        idempotency: &dyn Idempotency,
        done: Option<Completion<'_>>,
        queue: &dyn WorkQueue,
        ack: Option<&str>,
    ) -> StoreResult<bool> {
        super::settle::put_settling(self, run, idempotency, done, queue, ack).await
    }

    async fn get(&self, id: &str) -> StoreResult<Option<RunRecord>> {
        let id = id.to_owned();
        let now = self.clock.now_ms();
        self.read(move |conn| {
            let json: Option<String> = conn
                .prepare_cached("SELECT record FROM runs WHERE id = ?1 AND expires_at > ?2")
                .and_then(|mut s| s.query_row(params![id, now], |r| r.get(0)).optional())
                .map_err(sql_err)?;
            json.as_deref().map(decode).transpose()
        })
        .await
    }

    async fn list(&self, query: &RunQuery) -> StoreResult<Vec<RunRecord>> {
        let now = self.clock.now_ms();
        let query = query.clone();
        self.read(move |conn| {
            let records = newest(conn, &query, now, "record", |r| r.get::<_, String>(2))?;
            records.iter().map(|json| decode(json)).collect()
        })
        .await
    }

    async fn summaries(&self, query: &RunQuery) -> StoreResult<Vec<(Millis, RunStatus)>> {
        super::run_reads::summaries(self, query).await
    }

    async fn counts(&self, query: &RunQuery, at: Millis, width: Millis) -> StoreResult<RunCounts> {
        super::run_reads::counts(self, query, at, width).await
    }

    async fn search(&self, query: &RunQuery, text: &str) -> StoreResult<Vec<RunRecord>> {
        super::run_reads::search(self, query, text).await
    }

    fn search_bound(&self) -> Option<usize> {
        Some(super::run_reads::SEARCH_RUNS)
    }
}

#[async_trait]
impl Cursors for SqliteStore {
    async fn get(&self, name: &str) -> StoreResult<Option<Cursor>> {
        let name = name.to_owned();
        self.read(move |conn| {
            conn.prepare_cached("SELECT value, version, updated_at FROM cursors WHERE name = ?1")
                .and_then(|mut s| {
                    s.query_row([name], |r| {
                        Ok(Cursor {
                            value: r.get(0)?,
                            version: r.get::<_, i64>(1)?.try_into().unwrap_or(0),
                            updated_at: r.get(2)?,
                        })
                    })
                    .optional()
                })
                .map_err(sql_err)
        })
        .await
    }

    async fn put(
        &self,
        name: &str,
        value: &str,
        expected: Option<u64>,
    ) -> StoreResult<Option<u64>> {
        let (name, value) = (name.to_owned(), value.to_owned());
        self.write(move |conn, now| {
            let (sql, version) = match expected {
                None => (
                    "INSERT OR IGNORE INTO cursors (name, value, version, updated_at)
                     VALUES (?1, ?2, ?3, ?4)",
                    1,
                ),
                Some(v) => (
                    "UPDATE cursors SET value = ?2, version = ?3, updated_at = ?4
                     WHERE name = ?1 AND version = ?3 - 1",
                    v.saturating_add(1),
                ),
            };
            let version_sql = i64::try_from(version).map_err(|_| {
                StoreError::Corrupt(format!("cursor {name:?}: version {version} too large"))
            })?;
            let changed = conn
                .prepare_cached(sql)
                .and_then(|mut s| s.execute(params![name, value, version_sql, now]))
                .map_err(sql_err)?;
            Ok((changed == 1).then_some(version))
        })
        .await
    }
}

#[cfg(test)]
mod tests {

    use crate::clock::ManualClock;
    use crate::contract::T0;
    use crate::model::{RunRecord, RunStatus};
    use crate::store::sqlite::{SqliteOptions, SqliteStore};

    const HOUR: i64 = 3_600_000;

    fn run(id: &str, expires_at: Option<i64>) -> RunRecord {
        RunRecord {
            id: id.into(),
            workflow: "wf".into(),
            source: "src".into(),
            event_id: id.into(),
            status: RunStatus::Succeeded,
            attempts: 1,
            created_at: T0,
            updated_at: T0,
            error: None,
            failure: None,
            steps: Vec::new(),
            event: None,
            expires_at,
            rerun_of: None,
            reruns: Vec::new(),
        }
    }

    fn rows(path: &std::path::Path) -> Vec<(String, i64)> {
        let conn = rusqlite::Connection::open(path).unwrap();
        let mut stmt = conn
            .prepare("SELECT id, expires_at FROM runs ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// The writer's housekeeping deletes expired runs from the file (reads
    /// hid them already); younger ones stay.
    #[tokio::test]
    async fn housekeeping_purges_expired_runs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.db");
        let clock = ManualClock::at(T0);
        let ports = SqliteStore::open_on(&path, clock.clone(), 5).ports();
        ports
            .runs
            .put(&run("a-old", Some(T0 + HOUR)))
            .await
            .unwrap();
        ports
            .runs
            .put(&run("b-young", Some(T0 + 3 * HOUR)))
            .await
            .unwrap();
        clock.advance(2 * HOUR);
        assert_eq!(ports.runs.get("a-old").await.unwrap(), None);
        assert_eq!(rows(&path).len(), 2, "hidden, not deleted yet");
        // Any write after 10 s of clock time runs the housekeeping.
        ports
            .runs
            .put(&run("c-new", Some(T0 + 5 * HOUR)))
            .await
            .unwrap();
        let ids: Vec<String> = rows(&path).into_iter().map(|r| r.0).collect();
        assert_eq!(ids, ["b-young", "c-new"]);
    }

    /// Runs written before retention get 30 days from their last change.
    #[tokio::test]
    async fn the_migration_gives_old_runs_the_default_retention() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.db");
        let ports = SqliteStore::open(&path, SqliteOptions::default())
            .unwrap()
            .ports();
        let mut old = run("legacy", None);
        old.updated_at = T0 + 5;
        ports.runs.put(&old).await.unwrap();
        drop(ports);
        // Back to version 3: no `expires_at` column.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP INDEX runs_source; DROP INDEX runs_workflow_status;
             CREATE INDEX runs_status ON runs (status, created_at, id);
             ALTER TABLE runs DROP COLUMN source;
             DROP TABLE tallies; DROP INDEX runs_expires;
             DROP INDEX runs_workflow; CREATE INDEX runs_workflow ON runs (workflow, created_at, id);
             ALTER TABLE runs DROP COLUMN expires_at; PRAGMA user_version = 3;",
        )
        .unwrap();
        drop(conn);
        let clock = ManualClock::at(T0);
        let ports = SqliteStore::open_on(&path, clock.clone(), 5).ports();
        let thirty_days = 30 * 24 * HOUR;
        assert_eq!(rows(&path), [("legacy".to_owned(), T0 + 5 + thirty_days)]);
        assert_eq!(ports.runs.get("legacy").await.unwrap(), Some(old));
        clock.set(T0 + 5 + thirty_days);
        assert_eq!(ports.runs.get("legacy").await.unwrap(), None);
    }
}
