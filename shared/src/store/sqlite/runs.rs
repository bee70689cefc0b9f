//! [`RunLog`] on the `runs` table (the record as JSON plus indexed columns) and
//! [`Cursors`] on the `cursors` table (optimistic versions).
//!
//! A run is kept until its `expires_at` ([`RunRecord::expiry`]): reads hide
//! it from then on, and the writer's housekeeping ([`purge_expired`], every
//! few seconds of writes) deletes it.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter, types::Value};

use super::{SqliteStore, sql_err};
use crate::clock::Millis;
use crate::model::{RunQuery, RunRecord, RunStatus};
use crate::ports::{
    Claim, ClaimArgs, Completion, Cursor, Cursors, Idempotency, RunLog, StoreError, StoreResult,
    WorkQueue,
};

/// Runs listed when a query's `limit` is 0.
const DEFAULT_LIST_LIMIT: usize = 100;

/// Most expired runs one housekeeping pass deletes (keeps a batch's commit short).
const PURGE_LIMIT: i64 = 1_000;

/// A `runs` row: id, workflow, status, created_at, expires_at, JSON.
pub(super) type Row = (String, String, &'static str, i64, i64, String);

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

fn decode(json: &str) -> StoreResult<RunRecord> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("run record: {e}")))
}

pub(super) fn write_run(conn: &Connection, verb: &str, run: &Row) -> StoreResult<usize> {
    let (id, workflow, status, created_at, expires_at, json) = run;
    conn.prepare_cached(&format!(
        "{verb} INTO runs (id, workflow, status, created_at, expires_at, record)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
    ))
    .and_then(|mut s| s.execute(params![id, workflow, status, created_at, expires_at, json]))
    .map_err(sql_err)
}

#[async_trait]
impl RunLog for SqliteStore {
    async fn create(&self, run: &RunRecord) -> StoreResult<bool> {
        let run = row(run)?;
        self.write(move |conn, now| {
            // An expired run not purged yet is gone already: make room.
            conn.prepare_cached("DELETE FROM runs WHERE id = ?1 AND expires_at <= ?2")
                .and_then(|mut s| s.execute(params![run.0, now]))
                .map_err(sql_err)?;
            Ok(write_run(conn, "INSERT OR IGNORE", &run)? == 1)
        })
        .await
    }

    async fn put(&self, run: &RunRecord) -> StoreResult<()> {
        let run = row(run)?;
        self.write(move |conn, _| write_run(conn, "INSERT OR REPLACE", &run).map(drop))
            .await
    }

    async fn put_claiming(
        &self,
        run: &RunRecord,
        idempotency: &dyn Idempotency,
        claim: ClaimArgs<'_>,
    ) -> StoreResult<Claim> {
        super::settle::put_claiming(self, run, idempotency, claim).await
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
        let (filter, args) = run_filter(query, self.clock.now_ms());
        let sql = format!(
            "SELECT record FROM runs {filter} ORDER BY created_at DESC, id DESC LIMIT ?{}",
            args.len()
        );
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&sql).map_err(sql_err)?;
            let rows = stmt
                .query_map(params_from_iter(args), |r| r.get::<_, String>(0))
                .map_err(sql_err)?;
            rows.map(|json| decode(&json.map_err(sql_err)?)).collect()
        })
        .await
    }

    async fn summaries(&self, query: &RunQuery) -> StoreResult<Vec<(Millis, RunStatus)>> {
        // The columns only: no record is decoded.
        let (filter, args) = run_filter(query, self.clock.now_ms());
        let sql = format!(
            "SELECT created_at, status FROM runs {filter} ORDER BY created_at DESC, id DESC LIMIT ?{}",
            args.len()
        );
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&sql).map_err(sql_err)?;
            let rows = stmt
                .query_map(params_from_iter(args), |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(sql_err)?;
            rows.map(|row| {
                let (at, status) = row.map_err(sql_err)?;
                let status = RunStatus::ALL
                    .into_iter()
                    .find(|s| s.as_str() == status)
                    .ok_or_else(|| StoreError::Corrupt(format!("run status {status:?}")))?;
                Ok((at, status))
            })
            .collect()
        })
        .await
    }

    async fn search(&self, query: &RunQuery, text: &str) -> StoreResult<Vec<RunRecord>> {
        // Every run of the query, inside SQLite: `LIKE` (ASCII
        // case-insensitive, no copy) over the whole record rules out nearly
        // every run cheaply; the payload is a substring of the record, so it
        // drops no match. Then the payload itself, as JSON text, lowercased:
        // the rule of `payload_contains`.
        let (filter, mut args) = run_filter(query, self.clock.now_ms());
        let limit = args.pop().unwrap_or(Value::Integer(0));
        args.push(Value::Text(like_anywhere(text)));
        args.push(Value::Text(text.to_ascii_lowercase()));
        args.push(limit);
        let n = args.len();
        let sql = format!(
            "SELECT record FROM runs {filter}
               AND record LIKE ?{} ESCAPE '\\'
               AND instr(lower(record -> '$.event.payload'), ?{}) > 0
             ORDER BY created_at DESC, id DESC LIMIT ?{n}",
            n - 2,
            n - 1,
        );
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&sql).map_err(sql_err)?;
            let rows = stmt
                .query_map(params_from_iter(args), |r| r.get::<_, String>(0))
                .map_err(sql_err)?;
            rows.map(|json| decode(&json.map_err(sql_err)?)).collect()
        })
        .await
    }

    fn search_bound(&self) -> Option<usize> {
        None
    }
}

/// `text` as a `LIKE` pattern matching it anywhere (`\\` escapes).
fn like_anywhere(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// The `WHERE` clause of `query` (live runs at `now`) and its arguments,
/// the limit last.
fn run_filter(query: &RunQuery, now: Millis) -> (String, Vec<Value>) {
    let mut args: Vec<Value> = vec![Value::Integer(now)];
    // `+expires_at`: never walk the expiry index for a listing (nearly every
    // run is live); the time-ordered indexes bound the walk by the limit.
    let mut filters = vec!["+expires_at > ?1".to_owned()];
    if let Some(workflow) = &query.workflow {
        args.push(Value::Text(workflow.clone()));
        filters.push(format!("workflow = ?{}", args.len()));
    }
    if let Some(status) = query.status {
        args.push(Value::Text(status.as_str().to_owned()));
        filters.push(format!("status = ?{}", args.len()));
    }
    // Source and event id live in the record's JSON (no column yet): the
    // runs_created order bounds the walk by the limit and time range.
    if let Some(source) = &query.source {
        args.push(Value::Text(source.clone()));
        filters.push(format!(
            "json_extract(record, '$.source') = ?{}",
            args.len()
        ));
    }
    if let Some(event_id) = &query.event_id {
        args.push(Value::Text(event_id.clone()));
        filters.push(format!(
            "json_extract(record, '$.event_id') = ?{}",
            args.len()
        ));
    }
    if let Some(since) = query.since {
        args.push(Value::Integer(since));
        filters.push(format!("created_at >= ?{}", args.len()));
    }
    if let Some(until) = query.until {
        args.push(Value::Integer(until));
        filters.push(format!("created_at < ?{}", args.len()));
    }
    let limit = if query.limit == 0 {
        DEFAULT_LIST_LIMIT
    } else {
        query.limit
    };
    args.push(Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
    (format!("WHERE {}", filters.join(" AND ")), args)
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
        let opts = SqliteOptions {
            max_receives: 5,
            clock: clock.clone(),
        };
        let ports = SqliteStore::open(&path, opts).unwrap().ports();
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
            "DROP TABLE tallies; DROP INDEX runs_expires; ALTER TABLE runs DROP COLUMN expires_at;
             PRAGMA user_version = 3;",
        )
        .unwrap();
        drop(conn);
        let clock = ManualClock::at(T0);
        let opts = SqliteOptions {
            max_receives: 5,
            clock: clock.clone(),
        };
        let ports = SqliteStore::open(&path, opts).unwrap().ports();
        let thirty_days = 30 * 24 * HOUR;
        assert_eq!(rows(&path), [("legacy".to_owned(), T0 + 5 + thirty_days)]);
        assert_eq!(ports.runs.get("legacy").await.unwrap(), Some(old));
        clock.set(T0 + 5 + thirty_days);
        assert_eq!(ports.runs.get("legacy").await.unwrap(), None);
    }
}
