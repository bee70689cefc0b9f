//! Bulk writes of run records: how `ferry bench seed` fills a store with
//! millions of runs in minutes, through the same rows, schema and indexes
//! as the run log's own writes ([`super::runs::write_run`]).

use super::SqliteStore;
use super::runs::{row, write_run};
use crate::model::RunRecord;
use crate::ports::StoreResult;

impl SqliteStore {
    /// Write `runs` (replacing any run with the same id) in one transaction
    /// of the writer, answered once it is durable. For filling a store in
    /// bulk (benchmarks, restores), not for the hot path: one call holds the
    /// writer for every row it carries, so keep batches to some thousands.
    pub async fn import_runs(&self, runs: &[RunRecord]) -> StoreResult<usize> {
        let rows = runs.iter().map(row).collect::<StoreResult<Vec<_>>>()?;
        self.write(move |conn, _| {
            for r in &rows {
                write_run(conn, "INSERT OR REPLACE", r)?;
            }
            Ok(rows.len())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use crate::clock::ManualClock;
    use crate::contract::T0;
    use crate::model::{RunQuery, RunRecord, RunStatus};
    use crate::store::sqlite::SqliteStore;

    fn run(i: i64) -> RunRecord {
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
            event: None,
            expires_at: None,
            rerun_of: None,
            reruns: Vec::new(),
        }
    }

    /// Imported runs read back as written, through the run log's reads,
    /// and an import of the same id replaces the run.
    #[tokio::test]
    async fn imported_runs_are_the_run_logs_runs() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_on(&dir.path().join("f.db"), ManualClock::at(T0), 5);
        let runs: Vec<RunRecord> = (0..300).map(run).collect();
        assert_eq!(store.import_runs(&runs).await.unwrap(), 300);
        let mut again = run(7);
        again.status = RunStatus::DeadLettered;
        store
            .import_runs(std::slice::from_ref(&again))
            .await
            .unwrap();
        let ports = store.ports();
        assert_eq!(ports.runs.get("r-7").await.unwrap(), Some(again));
        assert_eq!(ports.runs.get("r-299").await.unwrap(), Some(run(299)));
        let listed = ports
            .runs
            .list(&RunQuery {
                limit: 1000,
                ..RunQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(listed.len(), 300);
    }
}
