//! The embedded adapter: every port on one SQLite file, with the semantics of
//! DynamoDB + SQS (see `docs/store.md`).
//!
//! - Writes go through one writer thread with group commit (`writer.rs`).
//! - Reads use a small pool of read connections on blocking threads (WAL lets
//!   them run while the writer commits).
//! - Time comes from the injected [`Clock`], never from the system directly.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use ferry::clock::SystemClock;
//! # use ferry::store::{SqliteOptions, SqliteStore};
//! let store = SqliteStore::open(
//!     std::path::Path::new(".ferry"),
//!     SqliteOptions { max_receives: 5, clock: Arc::new(SystemClock) },
//! )?;
//! let ports = store.ports();
//! # Ok::<(), ferry::ports::StoreError>(())
//! ```

mod breakers;
mod idempotency;
mod import;
mod intake;
mod limits;
mod queue;
mod run_branches;
mod run_reads;
mod runs;
mod schema;
mod settle;
mod tallies;
mod write_stats;
mod writer;

#[cfg(test)]
mod full_tests;
#[cfg(test)]
mod long_poll_tests;
#[cfg(test)]
mod schema_tests;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::{Notify, Semaphore};

use crate::clock::{Clock, Millis, SystemClock};
use crate::ports::{Ports, StoreError, StoreResult};
pub use queue::Recovered;
pub use write_stats::WriteStats;
use writer::Writer;

/// The file name used when [`SqliteStore::open`] is given a directory.
pub const DEFAULT_FILE_NAME: &str = "ferry.db";

/// Reads running at once (each on its own connection and blocking thread);
/// as many idle read connections are kept open.
const MAX_READERS: usize = 4;

/// How an [`SqliteStore`] behaves.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// A message received this many times goes to the dead-letter queue instead
    /// of being delivered again (SQS's `maxReceiveCount`). At least 1.
    pub max_receives: u32,
    /// The clock for leases, TTLs, delays, visibility and rate limits.
    pub clock: Arc<dyn Clock>,
}

impl Default for SqliteOptions {
    /// Five receives, the system clock.
    fn default() -> Self {
        Self {
            max_receives: 5,
            clock: Arc::new(SystemClock),
        }
    }
}

/// Every port on one SQLite file. Build with [`SqliteStore::open`], hand out
/// with [`SqliteStore::ports`]. Dropping the last handle finishes the queued
/// writes and closes the file.
pub struct SqliteStore {
    path: PathBuf,
    writer: Writer,
    readers: Arc<ReadPool>,
    /// Bounds concurrent reads, hence read connections and blocking threads.
    read_slots: Arc<Semaphore>,
    clock: Arc<dyn Clock>,
    max_receives: u32,
    /// Poked after every write that may make a message receivable.
    queue_changed: Notify,
    /// Longest a long poll sleeps before looking again (see `queue`).
    recheck: Duration,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("max_receives", &self.max_receives)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Open (creating and migrating as needed) the store at `dir_or_file`: a
    /// directory holds [`DEFAULT_FILE_NAME`]; a file (an existing one, or a new
    /// path with an extension, like `hub.db`) is the database itself. A new
    /// path without an extension (like `.ferry`) is created as a directory.
    ///
    /// Blocks briefly (opening, migrating); call it at startup.
    pub fn open(dir_or_file: &Path, opts: SqliteOptions) -> StoreResult<Arc<Self>> {
        Self::open_with_recheck(dir_or_file, opts, queue::RECHECK)
    }

    fn open_with_recheck(
        dir_or_file: &Path,
        opts: SqliteOptions,
        recheck: Duration,
    ) -> StoreResult<Arc<Self>> {
        let path = db_file(dir_or_file);
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Unavailable(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let conn = schema::open_writer(&path)?;
        let readers = Arc::new(ReadPool {
            path: path.clone(),
            idle: Mutex::new(Vec::new()),
        });
        // Open one reader now so a bad file fails here, not at the first read.
        let first = schema::open_reader(&path)?;
        readers.put(first);
        let writer = Writer::start(conn, opts.clock.clone(), housekeeping)?;
        Ok(Arc::new(Self {
            path,
            writer,
            readers,
            read_slots: Arc::new(Semaphore::new(MAX_READERS)),
            clock: opts.clock,
            max_receives: opts.max_receives.max(1),
            queue_changed: Notify::new(),
            recheck,
        }))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Transactions (and of those, durable commits) and operations the
    /// writer has committed since the store opened; for benchmarks.
    pub fn write_stats(&self) -> WriteStats {
        self.writer.stats()
    }

    /// The store as every port, sharing this store's clock.
    pub fn ports(self: &Arc<Self>) -> Ports {
        Ports {
            idempotency: self.clone(),
            queue: self.clone(),
            runs: self.clone(),
            cursors: self.clone(),
            limits: self.clone(),
            breakers: self.clone(),
            tallies: self.clone(),
            clock: self.clock.clone(),
            data_keys: None,
            intake: Some(self.clone()),
        }
    }

    /// Run a write in the next group commit; answered once it is durable.
    /// `f` may run more than once (`writer::batch`): no effect outside SQLite.
    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnMut(&Connection, Millis) -> StoreResult<T> + Send + 'static,
    {
        self.writer.call(f).await
    }

    /// [`SqliteStore::write`] without a sync of its own: durable with the
    /// next durable write (`writer`'s doc, "lazy"). For the queue's receive.
    async fn write_lazily<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnMut(&Connection, Millis) -> StoreResult<T> + Send + 'static,
    {
        self.writer.call_lazily(f).await
    }

    /// Run a read on a pooled read connection, off the async runtime.
    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let slot = self
            .read_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Unavailable("the store's readers are closed".into()))?;
        let pool = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let conn = pool.take()?;
            let out = f(&conn);
            pool.put(conn);
            drop(slot);
            out
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("read task failed: {e}")))?
    }
}

/// The database file for `dir_or_file` (see [`SqliteStore::open`]).
fn db_file(dir_or_file: &Path) -> PathBuf {
    let is_file = match std::fs::metadata(dir_or_file) {
        Ok(meta) => !meta.is_dir(),
        Err(_) => dir_or_file.extension().is_some(),
    };
    if is_file {
        dir_or_file.to_path_buf()
    } else {
        dir_or_file.join(DEFAULT_FILE_NAME)
    }
}

/// Idle read connections.
struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl ReadPool {
    fn take(&self) -> StoreResult<Connection> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match idle {
            Some(conn) => Ok(conn),
            None => schema::open_reader(&self.path),
        }
    }

    fn put(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_READERS {
            idle.push(conn);
        }
    }
}

/// Map a SQLite error: undecodable data is `Corrupt`, the rest `Unavailable`.
fn sql_err(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) =>
        {
            StoreError::Corrupt(e.to_string())
        }
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::Utf8Error(..) => StoreError::Corrupt(e.to_string()),
        _ => StoreError::Unavailable(e.to_string()),
    }
}

/// `now + d` in clock milliseconds, saturating.
fn after(now: Millis, d: Duration) -> Millis {
    now.saturating_add(Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX))
}

/// The writer's housekeeping: expired idempotency keys, runs and tallies.
fn housekeeping(conn: &Connection, now: Millis) -> rusqlite::Result<()> {
    idempotency::purge_expired(conn, now)?;
    runs::purge_expired(conn, now)?;
    tallies::purge_expired(conn, now)
}

#[cfg(test)]
impl SqliteStore {
    /// For tests: the store at `path` on `clock`, a message received at most
    /// `max_receives` times.
    pub(crate) fn open_on(path: &Path, clock: Arc<dyn Clock>, max_receives: u32) -> Arc<Self> {
        let opts = SqliteOptions {
            max_receives,
            clock,
        };
        Self::open(path, opts).expect("open the test store")
    }
}
