//! The single writer thread and its group commit.
//!
//! Every write goes through one thread that owns the write connection. It takes
//! whatever operations are queued (up to [`MAX_BATCH`]), runs them in ONE
//! transaction (without a `SAVEPOINT` each; when one fails, the batch is
//! rolled back and redone so that only the failing one loses its changes: see
//! `batch`), commits once (one fsync for the whole batch), and only then
//! answers each caller. While a commit is syncing, new operations queue up and
//! form the next batch, so throughput grows with concurrency instead of being
//! capped at one fsync per operation.
//!
//! An operation may be *lazy* ([`Writer::call_lazily`]): a batch of only lazy
//! operations commits with `synchronous=NORMAL`, without a sync of its own.
//! In WAL mode that commit is consistent and survives a crash of the process
//! (its frames are in the WAL file); a power loss can undo it, but only
//! together with every commit after it up to the next synced one, whose sync
//! covers the whole WAL. So a lazy write is durable as soon as any later
//! durable write is. The queue's receive is lazy: a receive lost to a power
//! loss is a message delivered again, and a run always writes durably
//! (its step's claim) before it calls out.
//!
//! The writer also keeps the WAL from eating the disk: every
//! [`MAINTENANCE_EVERY_MS`] it checkpoints the WAL into the database file
//! (`PASSIVE`: it never waits for readers), and at start and after any write
//! failed for want of the store (disk full, I/O error) it checkpoints and
//! truncates it (`TRUNCATE`). While a checkpoint fails (the disk is full),
//! writes are refused unattempted and the `TRUNCATE` is retried before each
//! batch: whatever space returns goes to the checkpoint, which then frees the
//! whole WAL. SQLite's own checkpoint only starts at 1,000 WAL
//! pages (4 MB): on a small volume the WAL would never reach it and never
//! shrink, and every write would eat returning space, so the store stayed full.

use std::sync::Arc;
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::sql_err;
use super::write_stats::{Counters, WriteStats};
use crate::clock::{Clock, Millis};
use crate::ports::{StoreError, StoreResult};

mod batch;
#[cfg(test)]
mod batch_tests;

use batch::{Call, Op, run_batch};

/// Most operations committed in one transaction.
const MAX_BATCH: usize = 2048;
/// Operations that may wait for the writer before senders are held back.
const CHANNEL_CAPACITY: usize = 8192;
/// How often (in clock time) the writer runs housekeeping.
const MAINTENANCE_EVERY_MS: Millis = 10_000;

/// Housekeeping run inside a batch's transaction now and then (e.g. purging
/// expired idempotency keys). Errors are logged and otherwise ignored.
pub(super) type Maintenance = fn(&Connection, Millis) -> rusqlite::Result<()>;

/// Handle to the writer thread. Dropping it lets the thread finish what is
/// queued, close the connection and exit; drop waits for that.
pub(super) struct Writer {
    tx: Option<mpsc::Sender<Box<dyn Op>>>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl Writer {
    /// Start the writer thread on `conn` (already configured and migrated).
    pub(super) fn start(
        conn: Connection,
        clock: Arc<dyn Clock>,
        maintenance: Maintenance,
    ) -> StoreResult<Self> {
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let counters = Arc::new(Counters::default());
        let counted = counters.clone();
        let thread = std::thread::Builder::new()
            .name("ferry-sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx, clock, maintenance, &counted))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
            counters,
        })
    }

    /// Transactions and operations committed so far.
    pub(super) fn stats(&self) -> WriteStats {
        self.counters.snapshot()
    }

    /// Run `f` on the write connection, inside the next batch, and return its
    /// result once the batch is durably committed. `f` gets the clock's now.
    /// `f` may run more than once (the batch is redone when another operation
    /// in it fails; the last run's result is returned), so it must be a pure
    /// function of the connection: no effect outside SQLite.
    pub(super) async fn call<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnMut(&Connection, Millis) -> StoreResult<T> + Send + 'static,
    {
        self.submit(true, f).await
    }

    /// [`Writer::call`] for a lazy operation: answered once committed, its
    /// sync left to the next durable commit (see the module's doc). Only for
    /// writes whose loss to a power cut is harmless until a durable write
    /// follows them.
    pub(super) async fn call_lazily<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnMut(&Connection, Millis) -> StoreResult<T> + Send + 'static,
    {
        self.submit(false, f).await
    }

    async fn submit<T, F>(&self, durable: bool, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnMut(&Connection, Millis) -> StoreResult<T> + Send + 'static,
    {
        let stopped = || StoreError::Unavailable("the store's writer has stopped".into());
        let tx = self.tx.as_ref().ok_or_else(stopped)?;
        let (reply, answer) = oneshot::channel();
        let op = Box::new(Call::new(durable, f, reply));
        tx.send(op).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            // Only the queued operations remain; this returns in one batch's time.
            let _ = thread.join();
        }
    }
}

fn writer_loop(
    conn: Connection,
    mut rx: mpsc::Receiver<Box<dyn Op>>,
    clock: Arc<dyn Clock>,
    maintenance: Maintenance,
    counters: &Counters,
) {
    let mut batch: Vec<Box<dyn Op>> = Vec::with_capacity(MAX_BATCH);
    let mut last_maintenance: Millis = clock.now_ms();
    // A previous process may have left a long WAL behind (a crash, a full disk).
    let mut wal = Wal::Unknown;
    // `open_writer` leaves the connection at `synchronous=FULL`.
    let mut synced = true;
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        if wal != Wal::Clean {
            wal = checkpoint(&conn, "TRUNCATE");
        }
        if let Wal::Stuck(why) = &wal {
            // Every write now would go to the WAL and eat the space its
            // checkpoint needs: refuse them until the checkpoint succeeds.
            let why = format!("the store cannot write until its WAL is checkpointed: {why}");
            batch.drain(..).for_each(|op| op.answer(Some(&why)));
            continue;
        }
        let now = clock.now_ms();
        let maintain = now.saturating_sub(last_maintenance) >= MAINTENANCE_EVERY_MS;
        if maintain {
            last_maintenance = now;
        }
        let durable = batch.iter().any(|op| op.durable());
        if durable != synced {
            // Only outside a transaction. A failure leaves the level as it
            // was: a durable batch is then refused below, never run unsynced.
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            let level = if durable { "FULL" } else { "NORMAL" };
            if conn
                .execute_batch(&format!("PRAGMA synchronous = {level}"))
                .is_ok()
            {
                synced = durable;
            }
        }
        if durable && !synced {
            let why = "cannot make the store's commits durable (PRAGMA synchronous = FULL failed)";
            batch.drain(..).for_each(|op| op.answer(Some(why)));
            continue;
        }
        let healthy = run_batch(
            &conn,
            &mut batch,
            &*clock,
            maintain.then_some(maintenance),
            counters,
            synced,
        );
        if !healthy {
            wal = checkpoint(&conn, "TRUNCATE");
        } else if maintain {
            wal = checkpoint(&conn, "PASSIVE");
        }
    }
}

/// The state of the WAL, as the writer last found it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Wal {
    /// The last checkpoint worked (or only readers were in its way).
    Clean,
    /// Not checkpointed yet since the store opened.
    Unknown,
    /// The last checkpoint failed (disk full, I/O error): writes wait for one to succeed.
    Stuck(String),
}

/// Copy the WAL into the database file: `PASSIVE` as far as readers allow,
/// or `TRUNCATE`, which waits (up to the busy timeout) for readers on older
/// snapshots, then truncates the WAL to nothing.
fn checkpoint(conn: &Connection, mode: &str) -> Wal {
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    let sql = format!("PRAGMA wal_checkpoint({mode})");
    let done = conn.query_row(&sql, [], |r| r.get::<_, i64>(0));
    match done {
        Ok(0) => Wal::Clean,
        Ok(_) => {
            // Readers kept it from finishing: not a lack of space; the next
            // period (or failure) tries again.
            tracing::debug!(
                mode,
                "WAL checkpoint could not finish; readers were in the way"
            );
            Wal::Clean
        }
        Err(e) => {
            let why = sql_err(e).to_string();
            tracing::warn!(error = %why, "WAL checkpoint failed; writes wait until it succeeds");
            Wal::Stuck(why)
        }
    }
}
