//! The writer's running totals: transactions, durable commits, operations
//! and time in `COMMIT`, for `ferry bench execute` (durable commits per run,
//! and how much of a run's time is the disk's).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What the writer has committed since the store opened: read by
/// `ferry bench execute` to show durable commits per run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Transactions committed, synced or not.
    pub commits: u64,
    /// Durable commits: transactions committed with a sync of the WAL
    /// (`synchronous=FULL`). The others held only lazy operations.
    pub synced: u64,
    /// Operations (port writes) in those transactions.
    pub operations: u64,
    /// Time spent in `COMMIT` (writing the WAL frames and, when synced,
    /// the sync), in microseconds.
    pub commit_micros: u64,
    /// Batches rolled back and run again because an operation failed
    /// without a savepoint after others had run (the writer's redo).
    pub redone: u64,
}

/// The writer's running totals behind [`WriteStats`].
#[derive(Debug, Default)]
pub(super) struct Counters {
    commits: AtomicU64,
    synced: AtomicU64,
    operations: AtomicU64,
    commit_micros: AtomicU64,
    redone: AtomicU64,
}

impl Counters {
    /// The totals now.
    pub(super) fn snapshot(&self) -> WriteStats {
        WriteStats {
            commits: self.commits.load(Ordering::Relaxed),
            synced: self.synced.load(Ordering::Relaxed),
            operations: self.operations.load(Ordering::Relaxed),
            commit_micros: self.commit_micros.load(Ordering::Relaxed),
            redone: self.redone.load(Ordering::Relaxed),
        }
    }

    /// A `COMMIT` took `d`, whether it succeeded or not.
    pub(super) fn timed(&self, d: Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.commit_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// A batch was rolled back to be run again.
    pub(super) fn redone(&self) {
        self.redone.fetch_add(1, Ordering::Relaxed);
    }

    /// A transaction of `operations` committed, `synced` or not.
    pub(super) fn committed(&self, operations: usize, synced: bool) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.synced.fetch_add(u64::from(synced), Ordering::Relaxed);
        self.operations
            .fetch_add(operations as u64, Ordering::Relaxed);
    }
}
