//! Text search over the run log's event payloads: the bounded scan every
//! adapter has by default ([`scan`], behind [`RunLog::search`]), and the
//! match rule all adapters share ([`payload_contains`]).
//!
//! The embedded store does the same search inside SQLite over the newest
//! 25,000 runs of the query, without decoding them; DynamoDB has no
//! substring index, so its adapter keeps the default: the newest
//! [`SCAN_RUNS`] runs of the query are read and decoded. Either way the
//! console says how many runs were read next to the results.

use std::collections::HashSet;

use crate::model::{RunQuery, RunRecord};
use crate::ports::{RunLog, StoreResult};

/// The newest runs of a query the default search reads at most.
pub const SCAN_RUNS: usize = 10_000;
/// Runs read per page of the default search.
const SCAN_PAGE: usize = 200;
/// Matches returned when a query's `limit` is 0 (the adapters' listing default).
const DEFAULT_LIMIT: usize = 100;

/// Whether the run's event payload, as JSON text, contains `text` (ASCII
/// case-insensitive). A run without its event never matches.
pub fn payload_contains(run: &RunRecord, text: &str) -> bool {
    let Some(ev) = &run.event else {
        return false;
    };
    let hay = ev.payload.to_string().to_ascii_lowercase();
    hay.contains(&text.to_ascii_lowercase())
}

/// The runs of `query` whose payload contains `text`, newest first, at most
/// `query.limit`, reading at most the newest `bound` runs of `query` a page
/// at a time through [`RunLog::list`].
pub async fn scan<L: RunLog + ?Sized>(
    log: &L,
    query: &RunQuery,
    text: &str,
    bound: usize,
) -> StoreResult<Vec<RunRecord>> {
    let want = if query.limit == 0 {
        DEFAULT_LIMIT
    } else {
        query.limit
    };
    let mut page = RunQuery {
        limit: SCAN_PAGE,
        ..query.clone()
    };
    let (mut out, mut seen, mut read) = (Vec::new(), HashSet::new(), 0);
    while read < bound {
        page.limit = SCAN_PAGE.min(bound - read);
        let got = log.list(&page).await?;
        let full = got.len() >= page.limit;
        let oldest = got.last().map(|r| r.created_at);
        for run in got {
            if !seen.insert(run.id.clone()) {
                continue;
            }
            read += 1;
            if payload_contains(&run, text) {
                out.push(run);
                if out.len() >= want {
                    return Ok(out);
                }
            }
        }
        match oldest {
            // Runs of the oldest millisecond may continue on the next page.
            Some(at) if full && page.until != Some(at + 1) => page.until = Some(at + 1),
            Some(at) if full => page.until = Some(at),
            _ => break,
        }
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::json;

    use super::*;
    use crate::clock::ManualClock;
    use crate::contract::T0;
    use crate::model::RunStatus;
    use crate::runlog::ReceivedEvent;
    use crate::store::sqlite::SqliteStore;

    /// Run `r-<i>`, created at `T0 + i`, of an event with `payload`.
    pub(crate) fn run(i: i64, payload: serde_json::Value) -> RunRecord {
        RunRecord {
            id: format!("r-{i}"),
            workflow: "wf".into(),
            source: "src".into(),
            event_id: format!("e-{i}"),
            status: RunStatus::Succeeded,
            attempts: 1,
            created_at: T0 + i,
            updated_at: T0 + i,
            error: None,
            failure: None,
            steps: Vec::new(),
            event: Some(ReceivedEvent {
                received_at: T0 + i,
                headers: Default::default(),
                query: Default::default(),
                payload,
                truncated: false,
            }),
            expires_at: None,
            rerun_of: None,
            reruns: Vec::new(),
        }
    }

    /// The default search reads only the newest `bound` runs of the query,
    /// across pages; the embedded store's own search (bounded far higher) finds both.
    #[tokio::test]
    async fn the_default_scan_reads_the_newest_bound_runs() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_on(&dir.path().join("f.db"), ManualClock::at(T0), 5);
        let ports = store.ports();
        let total = SCAN_PAGE as i64 + 50;
        // The oldest run holds the needle; the newest, another.
        for i in 0..total {
            let text = if i == 0 || i == total - 1 {
                "Needle"
            } else {
                "hay"
            };
            ports.runs.put(&run(i, json!({ "t": text }))).await.unwrap();
        }
        let query = RunQuery {
            limit: 10,
            ..RunQuery::default()
        };
        let ids = |rs: Vec<RunRecord>| rs.into_iter().map(|r| r.id).collect::<Vec<_>>();
        let newest = format!("r-{}", total - 1);
        let all = scan(&*ports.runs, &query, "needle", total as usize)
            .await
            .unwrap();
        assert_eq!(ids(all), [newest.clone(), "r-0".to_owned()]);
        let bounded = scan(&*ports.runs, &query, "needle", total as usize - 1)
            .await
            .unwrap();
        assert_eq!(ids(bounded), std::slice::from_ref(&newest));
        let inside = ports.runs.search(&query, "needle").await.unwrap();
        assert_eq!(ids(inside), [newest, "r-0".to_owned()]);
    }
}
