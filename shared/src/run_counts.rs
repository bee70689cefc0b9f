//! Runs counted by status and by time slice, for the overview's 24-hour
//! counts and chart ([`RunLog::counts`]): what every adapter can do by
//! default ([`from_summaries`], bounded by the query's limit), and the
//! slicing rule all adapters share ([`slice_of`]).
//!
//! The embedded store counts every run of the query inside SQLite, with one
//! `GROUP BY` over an index that holds each run's time and status, so no
//! row is read and nothing is returned but the counts.

use std::collections::BTreeMap;

use crate::clock::Millis;
use crate::model::{RunQuery, RunStatus};
use crate::ports::{RunLog, StoreResult};

/// Runs per (slice, status) before a moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunCounts {
    /// `(slice, status) → runs`: slice `k` holds the runs created in
    /// `(at − (k+1)·width, at − k·width]` ([`slice_of`]); only non-zero cells.
    pub cells: BTreeMap<(u64, RunStatus), usize>,
    /// Every run of the query was counted. `false`: only the newest
    /// `query.limit` (the default implementation reached the limit).
    pub complete: bool,
}

impl RunCounts {
    /// Runs of `status` over every slice.
    pub fn of(&self, status: RunStatus) -> usize {
        self.cells
            .iter()
            .filter(|((_, s), _)| *s == status)
            .map(|(_, n)| n)
            .sum()
    }
}

/// The slice a run created at `created_at` falls in, counting back from
/// `at` in steps of `width` ms (`width` > 0). A run created after `at`
/// (another clock ahead) counts in slice 0.
pub fn slice_of(at: Millis, created_at: Millis, width: Millis) -> u64 {
    u64::try_from((at - created_at).max(0) / width.max(1)).unwrap_or(0)
}

/// The counts of [`RunLog::summaries`] under `query` — its limit bounds
/// them: at the limit, `complete` is `false`.
pub async fn from_summaries<L: RunLog + ?Sized>(
    log: &L,
    query: &RunQuery,
    at: Millis,
    width: Millis,
) -> StoreResult<RunCounts> {
    let got = log.summaries(query).await?;
    let mut counts = RunCounts {
        // Limit 0: the adapter's default applies, not known here.
        complete: query.limit != 0 && got.len() < query.limit,
        ..RunCounts::default()
    };
    for (created_at, status) in got {
        *counts
            .cells
            .entry((slice_of(at, created_at, width), status))
            .or_insert(0) += 1;
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_count_back_from_the_moment() {
        let (at, hour) = (10 * 3_600_000, 3_600_000);
        assert_eq!(slice_of(at, at, hour), 0);
        assert_eq!(slice_of(at, at - 1, hour), 0);
        assert_eq!(slice_of(at, at - hour + 1, hour), 0);
        assert_eq!(slice_of(at, at - hour, hour), 1);
        assert_eq!(slice_of(at, at - 23 * hour - 1, hour), 23);
        assert_eq!(slice_of(at, at + 5_000, hour), 0, "ahead of the clock");
    }

    #[test]
    fn of_sums_a_status_over_its_slices() {
        let mut c = RunCounts::default();
        c.cells.insert((0, RunStatus::Succeeded), 2);
        c.cells.insert((5, RunStatus::Succeeded), 3);
        c.cells.insert((5, RunStatus::Queued), 7);
        assert_eq!(c.of(RunStatus::Succeeded), 5);
        assert_eq!(c.of(RunStatus::Queued), 7);
        assert_eq!(c.of(RunStatus::DeadLettered), 0);
    }
}
