//! The embedded store's reads over many runs: the `WHERE` clause every
//! listing shares ([`run_filter`]), the overview's time-and-status reads
//! ([`summaries`], [`counts`]) and the payload search ([`search`]).

use rusqlite::{params_from_iter, types::Value};

use super::run_branches::{branches, newest};
use super::runs::decode;
use super::{SqliteStore, sql_err};
use crate::clock::Millis;
use crate::model::{RunQuery, RunRecord, RunStatus};
use crate::ports::{StoreError, StoreResult};
use crate::run_counts::{RunCounts, slice_of};

/// The newest runs of a query the payload search reads: a `LIKE` over each
/// record costs about 2 µs (release, 2 vCPU), so 25,000 keep the run list
/// under its 100 ms goal; narrowing the filter (indexed: workflow, status,
/// time) reaches older runs.
pub(super) const SEARCH_RUNS: usize = 25_000;

/// Runs listed when a query's `limit` is 0.
const DEFAULT_LIST_LIMIT: usize = 100;

/// The `WHERE` clause of `query` (live runs at `now`) and its arguments,
/// the limit last.
pub(super) fn run_filter(query: &RunQuery, now: Millis) -> (String, Vec<Value>) {
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
    if let Some(source) = &query.source {
        args.push(Value::Text(source.clone()));
        // With a status, the (workflow, status) range is the one to read
        // (`run_branches`) and the source a check on it: `+` keeps SQLite
        // from reading the source's range instead.
        let column = if query.status.is_some() {
            "+source"
        } else {
            "source"
        };
        filters.push(format!("{column} = ?{}", args.len()));
    }
    // The event id lives in the record's JSON only: checked within the range.
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

pub(super) async fn summaries(
    store: &SqliteStore,
    query: &RunQuery,
) -> StoreResult<Vec<(Millis, RunStatus)>> {
    // The columns only: no record is decoded.
    let now = store.clock.now_ms();
    let query = query.clone();
    store
        .read(move |conn| {
            let rows = newest(conn, &query, now, "status", |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(2)?))
            })?;
            rows.into_iter()
                .map(|(at, status)| Ok((at, status_of(&status)?)))
                .collect()
        })
        .await
}

/// Every run of `query` (its limit aside) counted by `width`-ms slice back
/// from `at` and by status. `runs_workflow` holds each run's time, status
/// and expiry, so a workflow's count reads that index only, never a row.
/// The rows are summed here rather than by a `GROUP BY`, which would sort
/// them in a temporary B-tree first (about 3× the time).
pub(super) async fn counts(
    store: &SqliteStore,
    query: &RunQuery,
    at: Millis,
    width: Millis,
) -> StoreResult<RunCounts> {
    let now = store.clock.now_ms();
    let query = query.clone();
    store
        .read(move |conn| {
            let mut counts = RunCounts {
                complete: true,
                ..RunCounts::default()
            };
            for part in branches(conn, &query)? {
                let (sql, args) = counts_sql(&part, now);
                let mut stmt = conn.prepare_cached(&sql).map_err(sql_err)?;
                let mut rows = stmt.query(params_from_iter(args)).map_err(sql_err)?;
                while let Some(row) = rows.next().map_err(sql_err)? {
                    let created_at: i64 = row.get(0).map_err(sql_err)?;
                    let status = row.get_ref(1).map_err(sql_err)?;
                    let status = status_of(
                        status
                            .as_str()
                            .map_err(|e| StoreError::Corrupt(format!("run status: {e}")))?,
                    )?;
                    *counts
                        .cells
                        .entry((slice_of(at, created_at, width), status))
                        .or_insert(0) += 1;
                }
            }
            Ok(counts)
        })
        .await
}

/// The statement of [`counts`] and its arguments.
fn counts_sql(query: &RunQuery, now: Millis) -> (String, Vec<Value>) {
    let (filter, mut args) = run_filter(query, now);
    args.pop(); // the limit: every run counts
    (
        format!("SELECT created_at, status FROM runs {filter}"),
        args,
    )
}

pub(super) async fn search(
    store: &SqliteStore,
    query: &RunQuery,
    text: &str,
) -> StoreResult<Vec<RunRecord>> {
    search_within(store, query, text, SEARCH_RUNS).await
}

/// [`search`] over the newest `bound` runs of `query`, inside SQLite: `LIKE`
/// (ASCII case-insensitive, no copy) over the whole record rules out nearly
/// every run cheaply; the payload is a substring of the record, so it drops
/// no match. Then the payload itself, as JSON text, lowercased: the rule of
/// `payload_contains`.
pub(super) async fn search_within(
    store: &SqliteStore,
    query: &RunQuery,
    text: &str,
    bound: usize,
) -> StoreResult<Vec<RunRecord>> {
    let now = store.clock.now_ms();
    let (query, text) = (query.clone(), text.to_owned());
    store
        .read(move |conn| {
            let parts = branches(conn, &query)?;
            // Split among the branches (the newest of each workflow), so the
            // search reads `bound` runs in all.
            let bound = (bound / parts.len().max(1)).max(1);
            let mut found: Vec<(i64, String, String)> = Vec::new();
            let mut limit = 0;
            for part in &parts {
                let (sql, args) = search_sql(part, now, &text, bound);
                limit = match args.last() {
                    Some(Value::Integer(n)) => usize::try_from(*n).unwrap_or(usize::MAX),
                    _ => usize::MAX,
                };
                let mut stmt = conn.prepare_cached(&sql).map_err(sql_err)?;
                let rows = stmt
                    .query_map(params_from_iter(args), |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })
                    .map_err(sql_err)?;
                for row in rows {
                    found.push(row.map_err(sql_err)?);
                }
            }
            found.sort_by(|a, b| (b.0, &b.1).cmp(&(a.0, &a.1)));
            found.truncate(limit);
            found.iter().map(|(_, _, json)| decode(json)).collect()
        })
        .await
}

/// The statement of one branch of [`search_within`] and its arguments.
fn search_sql(query: &RunQuery, now: Millis, text: &str, bound: usize) -> (String, Vec<Value>) {
    let (filter, mut args) = run_filter(query, now);
    let limit = args.pop().unwrap_or(Value::Integer(0));
    args.push(Value::Integer(i64::try_from(bound).unwrap_or(i64::MAX)));
    args.push(Value::Text(like_anywhere(text)));
    args.push(Value::Text(text.to_ascii_lowercase()));
    args.push(limit);
    let n = args.len();
    let sql = format!(
        "SELECT created_at, id, record FROM (
           SELECT record, created_at, id FROM runs {filter}
           ORDER BY created_at DESC, id DESC LIMIT ?{})
         WHERE record LIKE ?{} ESCAPE '\\'
           AND instr(lower(record -> '$.event.payload'), ?{}) > 0
         ORDER BY created_at DESC, id DESC LIMIT ?{n}",
        n - 3,
        n - 2,
        n - 1,
    );
    (sql, args)
}

/// A `status` column's value as a status.
fn status_of(text: &str) -> StoreResult<RunStatus> {
    RunStatus::ALL
        .into_iter()
        .find(|s| s.as_str() == text)
        .ok_or_else(|| StoreError::Corrupt(format!("run status {text:?}")))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::contract::T0;

    /// The search reads the newest `bound` runs of the query: a match just
    /// older is not found; a time range that reaches it finds it.
    #[tokio::test]
    async fn the_search_reads_the_newest_bound_runs() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_on(&dir.path().join("f.db"), ManualClock::at(T0), 5);
        let ports = store.ports();
        for i in 0..20_i64 {
            let text = if i == 0 { "the Needle" } else { "hay" };
            let run = crate::run_search::tests::run(i, serde_json::json!({ "t": text }));
            ports.runs.put(&run).await.unwrap();
        }
        let query = RunQuery {
            limit: 10,
            ..RunQuery::default()
        };
        let ids = |rs: Vec<RunRecord>| rs.into_iter().map(|r| r.id).collect::<Vec<_>>();
        let all = search_within(&store, &query, "needle", 20).await.unwrap();
        assert_eq!(ids(all), ["r-0"]);
        let newest = search_within(&store, &query, "needle", 19).await.unwrap();
        assert!(newest.is_empty(), "{newest:?}");
        let older = RunQuery {
            until: Some(T0 + 5),
            ..query
        };
        let reached = search_within(&store, &older, "needle", 19).await.unwrap();
        assert_eq!(ids(reached), ["r-0"]);
    }

    /// A workflow's day is counted from `runs_workflow` alone: the plan
    /// reads a covering index, never the table's rows.
    #[test]
    fn a_workflows_counts_read_only_its_index() {
        let dir = tempfile::tempdir().unwrap();
        let conn = super::super::schema::open_writer(&dir.path().join("ferry.db")).unwrap();
        let query = RunQuery {
            workflow: Some("orders".into()),
            since: Some(1_000),
            limit: 10,
            ..RunQuery::default()
        };
        let (sql, args) = counts_sql(&query, 5_000);
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let plan: Vec<String> = stmt
            .query_map(params_from_iter(args), |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(
            plan.iter()
                .any(|step| step.contains("USING COVERING INDEX runs_workflow")),
            "{plan:?}"
        );
    }
}
