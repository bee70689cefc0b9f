//! [`RunLog`] on the `runs` table (the record as JSON plus indexed columns) and
//! [`Cursors`] on the `cursors` table (optimistic versions).

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter, types::Value};

use super::{SqliteStore, sql_err};
use crate::model::{RunQuery, RunRecord};
use crate::ports::{Cursor, Cursors, RunLog, StoreError, StoreResult};

/// Runs listed when a query's `limit` is 0.
const DEFAULT_LIST_LIMIT: usize = 100;

/// The row for `run`: id, workflow, status, created_at, JSON.
fn row(run: &RunRecord) -> StoreResult<(String, String, &'static str, i64, String)> {
    let json = crate::runlog::encode(run)
        .map_err(|e| StoreError::Corrupt(format!("run {:?} cannot be encoded: {e}", run.id)))?;
    Ok((
        run.id.clone(),
        run.workflow.clone(),
        run.status.as_str(),
        run.created_at,
        json,
    ))
}

fn decode(json: &str) -> StoreResult<RunRecord> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("run record: {e}")))
}

fn write_run(
    conn: &Connection,
    verb: &str,
    run: &(String, String, &str, i64, String),
) -> StoreResult<usize> {
    let (id, workflow, status, created_at, json) = run;
    conn.prepare_cached(&format!(
        "{verb} INTO runs (id, workflow, status, created_at, record) VALUES (?1, ?2, ?3, ?4, ?5)"
    ))
    .and_then(|mut s| s.execute(params![id, workflow, status, created_at, json]))
    .map_err(sql_err)
}

#[async_trait]
impl RunLog for SqliteStore {
    async fn create(&self, run: &RunRecord) -> StoreResult<bool> {
        let run = row(run)?;
        self.write(move |conn, _| Ok(write_run(conn, "INSERT OR IGNORE", &run)? == 1))
            .await
    }

    async fn put(&self, run: &RunRecord) -> StoreResult<()> {
        let run = row(run)?;
        self.write(move |conn, _| write_run(conn, "INSERT OR REPLACE", &run).map(drop))
            .await
    }

    async fn get(&self, id: &str) -> StoreResult<Option<RunRecord>> {
        let id = id.to_owned();
        self.read(move |conn| {
            let json: Option<String> = conn
                .prepare_cached("SELECT record FROM runs WHERE id = ?1")
                .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
                .map_err(sql_err)?;
            json.as_deref().map(decode).transpose()
        })
        .await
    }

    async fn list(&self, query: &RunQuery) -> StoreResult<Vec<RunRecord>> {
        let mut filters = Vec::new();
        let mut args: Vec<Value> = Vec::new();
        if let Some(workflow) = &query.workflow {
            args.push(Value::Text(workflow.clone()));
            filters.push(format!("workflow = ?{}", args.len()));
        }
        if let Some(status) = query.status {
            args.push(Value::Text(status.as_str().to_owned()));
            filters.push(format!("status = ?{}", args.len()));
        }
        let limit = if query.limit == 0 {
            DEFAULT_LIST_LIMIT
        } else {
            query.limit
        };
        args.push(Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
        let filter = if filters.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", filters.join(" AND "))
        };
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
