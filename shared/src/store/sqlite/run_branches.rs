//! How a run listing reads only the runs it answers with, whatever its
//! filters, at millions of runs: each query is read as one or more index
//! ranges ("branches") that are already in time order, and their newest
//! rows merged.
//!
//! - No filter, a time range: `runs_created`.
//! - A workflow: `runs_workflow`; with a status `runs_workflow_status`; with
//!   a source `runs_source` (source, workflow).
//! - A status or a source without a workflow: one branch per workflow
//!   (found by skipping through an index: one seek per workflow, not a
//!   walk), each a range of the indexes above, merged newest first. Without
//!   this, `status = 'auth_failed'` combined with a workflow that has none
//!   walked every run of that status, and a source filter every run.
//!
//! The event-id filter stays a check on the record within these ranges.

use rusqlite::{Connection, OptionalExtension, Row, params_from_iter, types::Value};

use super::run_reads::run_filter;
use super::sql_err;
use crate::clock::Millis;
use crate::model::RunQuery;
use crate::ports::StoreResult;

/// Most workflows a listing fans out to; with more (names of long-gone
/// workflows kept by old runs) it reads one range instead, checking each row.
const MAX_BRANCHES: usize = 256;

/// The queries `query` is read as (their union is `query`'s runs).
pub(super) fn branches(conn: &Connection, query: &RunQuery) -> StoreResult<Vec<RunQuery>> {
    if query.workflow.is_some() || (query.status.is_none() && query.source.is_none()) {
        return Ok(vec![query.clone()]);
    }
    let workflows = workflows(conn, query.source.as_deref())?;
    if workflows.len() > MAX_BRANCHES {
        return Ok(vec![query.clone()]);
    }
    Ok(workflows
        .into_iter()
        .map(|workflow| RunQuery {
            workflow: Some(workflow),
            ..query.clone()
        })
        .collect())
}

/// Every workflow with a run in the store (of `source`, if given), expired
/// runs included: one index seek each (a "skip scan"), in name order. At
/// most [`MAX_BRANCHES`] + 1.
fn workflows(conn: &Connection, source: Option<&str>) -> StoreResult<Vec<String>> {
    let (sql, mut args) = match source {
        Some(s) => (
            "SELECT workflow FROM runs WHERE source = ?1 AND workflow > ?2
             ORDER BY source, workflow LIMIT 1",
            vec![Value::Text(s.to_owned())],
        ),
        None => (
            "SELECT workflow FROM runs WHERE workflow > ?1 ORDER BY workflow LIMIT 1",
            Vec::new(),
        ),
    };
    let mut stmt = conn.prepare_cached(sql).map_err(sql_err)?;
    let mut out: Vec<String> = Vec::new();
    args.push(Value::Text(String::new()));
    while out.len() <= MAX_BRANCHES {
        let next: Option<String> = stmt
            .query_row(params_from_iter(args.iter()), |r| r.get(0))
            .optional()
            .map_err(sql_err)?;
        let Some(next) = next else { break };
        *args.last_mut().expect("the last argument") = Value::Text(next.clone());
        out.push(next);
    }
    Ok(out)
}

/// The newest runs of `query` (at most its limit), newest first: `columns`
/// of each, read by `map` from column 2 on (0 and 1 are `created_at` and
/// `id`, the merge order).
pub(super) fn newest<T>(
    conn: &Connection,
    query: &RunQuery,
    now: Millis,
    columns: &str,
    map: impl Fn(&Row<'_>) -> rusqlite::Result<T>,
) -> StoreResult<Vec<T>> {
    let parts = branches(conn, query)?;
    let mut rows: Vec<(i64, String, T)> = Vec::new();
    let mut limit = 0;
    for part in &parts {
        let (sql, args) = list_sql(part, now, columns);
        limit = match args.last() {
            Some(Value::Integer(n)) => usize::try_from(*n).unwrap_or(usize::MAX),
            _ => usize::MAX,
        };
        let mut stmt = conn.prepare_cached(&sql).map_err(sql_err)?;
        let got = stmt
            .query_map(params_from_iter(args), |r| {
                Ok((r.get(0)?, r.get(1)?, map(r)?))
            })
            .map_err(sql_err)?;
        for row in got {
            rows.push(row.map_err(sql_err)?);
        }
    }
    if parts.len() > 1 {
        rows.sort_by(|a, b| (b.0, &b.1).cmp(&(a.0, &a.1)));
        rows.truncate(limit);
    }
    Ok(rows.into_iter().map(|(_, _, t)| t).collect())
}

/// The statement reading one branch of [`newest`], and its arguments.
fn list_sql(part: &RunQuery, now: Millis, columns: &str) -> (String, Vec<Value>) {
    let (filter, args) = run_filter(part, now);
    let sql = format!(
        "SELECT created_at, id, {columns} FROM runs {filter}
         ORDER BY created_at DESC, id DESC LIMIT ?{}",
        args.len()
    );
    (sql, args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RunRecord;
    use crate::store::sqlite::{runs, schema};

    fn query(flags: &[(&str, &str)]) -> RunQuery {
        let mut q = RunQuery {
            limit: 50,
            ..RunQuery::default()
        };
        for (flag, v) in flags {
            let v = (*v).to_owned();
            match *flag {
                "workflow" => q.workflow = Some(v),
                "source" => q.source = Some(v),
                "status" => q.status = crate::run_filter::parse_status(&v).ok(),
                "since" => q.since = Some(1_000),
                "until" => q.until = Some(9_000),
                "event" => q.event_id = Some(v),
                _ => unreachable!("{flag}"),
            }
        }
        q
    }

    /// Every filter of a listing, alone and combined, is read as ranges of
    /// an index in the listing's order: no branch scans the table or an
    /// index it does not seek into, and none sorts. (What matters, not
    /// which index: a merge may rename them.)
    #[test]
    fn every_listing_reads_index_ranges_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let conn = schema::open_writer(&dir.path().join("ferry.db")).unwrap();
        for (i, (wf, src)) in [("lead", "form"), ("order", "shop"), ("refund", "shop")]
            .into_iter()
            .enumerate()
        {
            let mut run: RunRecord = crate::run_search::tests::run(i as i64, serde_json::json!({}));
            (run.workflow, run.source) = (wf.into(), src.into());
            runs::write_run(&conn, "INSERT", &runs::row(&run).unwrap()).unwrap();
        }
        let combos: &[&[(&str, &str)]] = &[
            &[],
            &[("workflow", "order")],
            &[("status", "dead_lettered")],
            &[("source", "shop")],
            &[("since", ""), ("until", "")],
            &[("workflow", "order"), ("status", "dead_lettered")],
            &[("source", "shop"), ("status", "retrying")],
            &[("source", "shop"), ("workflow", "order")],
            &[
                ("source", "shop"),
                ("workflow", "order"),
                ("status", "queued"),
            ],
            &[("workflow", "refund"), ("since", ""), ("until", "")],
            &[("status", "auth_failed"), ("since", "")],
            &[("source", "form"), ("status", "skipped"), ("since", "")],
            &[("source", "nope")],
            &[("event", "e-1"), ("source", "shop")],
        ];
        for flags in combos {
            let q = query(flags);
            let parts = branches(&conn, &q).unwrap();
            if q.source.as_deref() == Some("shop") && q.workflow.is_none() {
                assert_eq!(
                    parts.len(),
                    2,
                    "{flags:?}: one range per workflow of the source"
                );
            }
            for part in parts {
                let (sql, args) = list_sql(&part, 5_000, "record");
                let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
                let plan: Vec<String> = stmt
                    .query_map(params_from_iter(args), |r| r.get::<_, String>(3))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
                // Each filter is part of the seek, not a check on what it walks
                // (the source is a check once a status picks the range).
                let mut seeks = Vec::new();
                if part.workflow.is_some() {
                    seeks.push("workflow=?");
                }
                if part.status.is_some() {
                    seeks.push("status=?");
                } else if part.source.is_some() {
                    seeks.push("source=?");
                }
                if part.since.is_some() {
                    seeks.push("created_at>?");
                }
                if part.until.is_some() {
                    seeks.push("created_at<?");
                }
                assert!(
                    plan.len() == 1
                        && plan[0].contains(" USING ")
                        && !plan[0].contains("TEMP B-TREE")
                        && seeks.iter().all(|k| plan[0].contains(k)),
                    "{flags:?} wants {seeks:?}: {plan:?}"
                );
            }
        }
    }
}
