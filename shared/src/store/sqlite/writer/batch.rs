//! One group commit: a batch of queued operations in one transaction.
//!
//! A batch runs **optimistically**: every operation straight in the
//! transaction, without a `SAVEPOINT` each (a savepoint makes SQLite copy
//! every page the operation touches into a statement journal, only to be able
//! to roll it back alone). Operations almost never fail, so the batch then
//! commits as it ran.
//!
//! When one fails (refused, or failed by the store) without a savepoint, the
//! whole transaction is rolled back and the batch runs again: the failed
//! operation is answered with its failure and not run again (it ran on the
//! very state the redo rebuilds, and its changes are gone with the
//! transaction), the operations before it run again as they did, and the ones
//! after it each in their own `SAVEPOINT`, so a second failure rolls back only
//! itself and costs no further redo. An operation can therefore run more than
//! once; its caller gets its last run's result. Each operation must be a pure
//! function of the connection (and its `now`): nothing outside SQLite may
//! happen in a run that is rolled back.
//!
//! A failure of the first operation to run costs no redo: rolling the
//! transaction back undoes only it, and the rest of the batch goes on
//! optimistically (an operation alone in its batch is the common case).

use std::panic::{AssertUnwindSafe, catch_unwind};

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::super::sql_err;
use super::super::write_stats::Counters;
use super::Maintenance;
use crate::clock::{Clock, Millis};
use crate::ports::{StoreError, StoreResult};

/// How an operation ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ran {
    /// It succeeded.
    Ok,
    /// It refused (a stale receipt, bad data): its changes are rolled back.
    Refused,
    /// The store failed it (disk full, I/O): rolled back, and the WAL is checkpointed.
    StoreFailed,
}

/// One queued write: run inside the batch's transaction, answered after commit.
pub(super) trait Op: Send {
    /// Whether its commit must be synced before it is answered (see the
    /// writer's doc on lazy operations).
    fn durable(&self) -> bool;
    /// Run the operation, keeping its result. It may run more than once (the
    /// batch is redone after a failure): the last run's result is answered.
    fn run(&mut self, conn: &Connection, now: Millis) -> Ran;
    /// Answer the caller: with the operation's own result when the batch
    /// committed, else with the commit's failure.
    fn answer(self: Box<Self>, commit_failure: Option<&str>);
}

/// An [`Op`] made of a closure and the channel its caller waits on.
pub(super) struct Call<T, F> {
    durable: bool,
    f: F,
    out: Option<StoreResult<T>>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> Call<T, F> {
    /// `f`, answered on `reply`; `durable` as in [`Op::durable`].
    pub(super) fn new(durable: bool, f: F, reply: oneshot::Sender<StoreResult<T>>) -> Self {
        Self {
            durable,
            f,
            out: None,
            reply,
        }
    }
}

impl<T, F> Op for Call<T, F>
where
    T: Send,
    F: FnMut(&Connection, Millis) -> StoreResult<T> + Send,
{
    fn durable(&self) -> bool {
        self.durable
    }

    fn run(&mut self, conn: &Connection, now: Millis) -> Ran {
        let f = &mut self.f;
        let out = catch_unwind(AssertUnwindSafe(|| f(conn, now)))
            .unwrap_or_else(|_| Err(StoreError::Unavailable("store operation panicked".into())));
        let ran = match &out {
            Ok(_) => Ran::Ok,
            Err(e) if e.is_retryable() => Ran::StoreFailed,
            Err(_) => Ran::Refused,
        };
        self.out = Some(out);
        ran
    }

    fn answer(self: Box<Self>, commit_failure: Option<&str>) {
        let out = match (commit_failure, self.out) {
            (_, Some(Err(e))) => Err(e),
            (None, Some(ok)) => ok,
            (Some(why), _) => Err(StoreError::Unavailable(why.to_string())),
            (None, None) => Err(StoreError::Unavailable("operation did not run".into())),
        };
        // The caller may have gone away (timeout, cancelled request): nothing to do.
        let _ = self.reply.send(out);
    }
}

/// What SQLite's rollback of a whole transaction tells the operations in it.
const ROLLED_BACK: &str = "the store rolled back the transaction (I/O error?)";
/// What an operation hears when its savepoint could not be opened.
const NO_SAVEPOINT: &str = "the store could not open a savepoint for the operation";

/// Run `batch` (left empty) in one transaction as the module's doc says, and
/// answer every operation after the commit. Returns false when the store
/// failed something (a write, the commit).
pub(super) fn run_batch(
    conn: &Connection,
    batch: &mut Vec<Box<dyn Op>>,
    clock: &dyn Clock,
    maintenance: Option<Maintenance>,
    counters: &Counters,
    synced: bool,
) -> bool {
    let mut healthy = true;
    // The operations from this index on run in their own savepoint: none yet.
    let mut from = batch.len();
    'pass: loop {
        if !conn.is_autocommit() {
            // Left open by a failure nothing could roll back: never build on it.
            let _ = conn.execute_batch("ROLLBACK");
        }
        if batch.is_empty() && maintenance.is_none() {
            return healthy;
        }
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            let why = format!("cannot begin a transaction: {}", sql_err(e));
            batch.drain(..).for_each(|op| op.answer(Some(&why)));
            return false;
        }
        // Every operation before `i` ran in this transaction (and the failed
        // ones among them were rolled back alone).
        let mut i = 0;
        while let Some(op) = batch.get_mut(i) {
            let bare = i < from;
            let outcome = if bare {
                Some(op.run(conn, clock.now_ms()))
            } else {
                in_savepoint(conn, |conn| op.run(conn, clock.now_ms()))
            };
            let Some(outcome) = outcome else {
                // It did not run (what an earlier run left is rolled back).
                healthy = false;
                batch.remove(i).answer(Some(NO_SAVEPOINT));
                if conn.is_autocommit() {
                    batch.drain(..i).for_each(|op| op.answer(Some(ROLLED_BACK)));
                    from = 0;
                    continue 'pass;
                }
                continue;
            };
            healthy &= outcome != Ran::StoreFailed;
            if outcome == Ran::Ok {
                i += 1;
            } else if bare {
                // Nothing to roll back but the transaction (the loop's top
                // does it). This failure stands: the redo rebuilds the state
                // it failed on, without its changes.
                let optimistic = from >= batch.len();
                batch.remove(i).answer(None);
                from = if optimistic && i == 0 {
                    batch.len()
                } else {
                    counters.redone();
                    i
                };
                continue 'pass;
            } else if conn.is_autocommit() {
                // SQLite rolled the whole transaction back (I/O error, disk
                // full, ...): everything that ran in it is lost. Fail those
                // and go on with the rest in a new transaction.
                batch
                    .drain(..=i)
                    .for_each(|op| op.answer(Some(ROLLED_BACK)));
                from = 0;
                continue 'pass;
            } else {
                // Rolled back alone: answered with its failure after the commit.
                i += 1;
            }
        }
        break;
    }
    if let Some(maintain) = maintenance {
        let now = clock.now_ms();
        let outcome = in_savepoint(conn, |conn| match maintain(conn, now) {
            Ok(()) => Ran::Ok,
            Err(e) => {
                tracing::warn!(error = %e, "sqlite store housekeeping failed");
                Ran::StoreFailed
            }
        })
        .unwrap_or(Ran::StoreFailed);
        healthy &= outcome == Ran::Ok;
        if outcome != Ran::Ok && conn.is_autocommit() {
            batch.drain(..).for_each(|op| op.answer(Some(ROLLED_BACK)));
            return false;
        }
    }
    let started = std::time::Instant::now();
    let committed = conn.execute_batch("COMMIT");
    counters.timed(started.elapsed());
    match committed {
        Ok(()) => {
            counters.committed(batch.len(), synced);
            batch.drain(..).for_each(|op| op.answer(None));
        }
        Err(e) => {
            // Nothing of the batch is durable: every caller hears so, and the
            // connection leaves the transaction before the next batch.
            let why = format!("commit failed: {}", sql_err(e));
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            batch.drain(..).for_each(|op| op.answer(Some(&why)));
            return false;
        }
    }
    healthy
}

/// Run `f` inside a savepoint: released when `f` succeeds, rolled back
/// otherwise. `None` when the savepoint could not be opened (`f` did not run).
fn in_savepoint(conn: &Connection, f: impl FnOnce(&Connection) -> Ran) -> Option<Ran> {
    let exec = |sql: &str| conn.prepare_cached(sql).and_then(|mut s| s.execute([]));
    if exec("SAVEPOINT op").is_err() {
        return None;
    }
    let ran = f(conn);
    if conn.is_autocommit() {
        // The transaction (and the savepoint with it) is already gone.
        return Some(ran);
    }
    if ran != Ran::Ok {
        let _ = exec("ROLLBACK TO op");
    }
    let _ = exec("RELEASE op");
    Some(ran)
}
