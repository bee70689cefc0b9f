//! A run's writes at its two turning points, each in one operation of the
//! group commit when every port involved is this store: marking the run
//! running with its first step's claim ([`RunLog::put_claiming`], and
//! [`RunLog::put_claiming_if`] for a run not read first), and the
//! last step's result with the run's final record and the message's ack
//! ([`RunLog::put_settling`]). A single-step run then waits for two durable
//! commits instead of five (see `docs/execution.md`).
//!
//! When a port is another adapter (a test wraps one to inject faults), the
//! port's default runs instead: the same writes, one after the other.

use rusqlite::Connection;

use super::{SqliteStore, after, idempotency, queue, runs};
use crate::clock::Millis;
use crate::model::RunRecord;
use crate::ports::{
    Claim, ClaimArgs, Completion, Fresh, Idempotency, RunLog, StoreResult, WorkQueue,
    put_claiming_if_in_turn, put_claiming_in_turn, put_settling_in_turn,
};

/// Whether `port` is `store` itself (the same object behind another trait).
fn is<T: ?Sized>(store: &SqliteStore, port: &T) -> bool {
    std::ptr::addr_eq(std::ptr::from_ref(store), std::ptr::from_ref(port))
}

/// [`RunLog::put_claiming`]: the run's row and the claim in one operation.
pub(super) async fn put_claiming(
    store: &SqliteStore,
    run: &RunRecord,
    idempotency: &dyn Idempotency,
    claim: ClaimArgs<'_>,
) -> StoreResult<Claim> {
    if !is(store, idempotency) {
        return put_claiming_in_turn(store, run, idempotency, claim).await;
    }
    let row = runs::row(run)?;
    let claim = Owned::of(claim);
    store
        .write(move |conn, now| {
            runs::replace(conn, &row)?;
            claim.make(conn, now)
        })
        .await
}

/// A [`ClaimArgs`] the writer's operation can own.
struct Owned {
    key: String,
    hash: String,
    data: String,
    lease: std::time::Duration,
}

impl Owned {
    fn of(c: ClaimArgs<'_>) -> Self {
        let (key, hash, data) = (
            c.key.to_owned(),
            c.payload_hash.to_owned(),
            c.data.to_owned(),
        );
        Self {
            key,
            hash,
            data,
            lease: c.lease,
        }
    }

    /// The claim, in `conn`'s transaction.
    fn make(&self, conn: &Connection, now: Millis) -> StoreResult<Claim> {
        let until = after(now, self.lease);
        idempotency::claim(conn, now, &self.key, &self.hash, &self.data, until)
    }
}

/// [`RunLog::put_claiming_if`]: the run's row updated only where it holds
/// `expected` (compared as stored, its JSON), and the claim, in one
/// operation; otherwise nothing is written and the stored run is read.
pub(super) async fn put_claiming_if(
    store: &SqliteStore,
    expected: &RunRecord,
    run: &RunRecord,
    idempotency: &dyn Idempotency,
    claim: ClaimArgs<'_>,
) -> StoreResult<Fresh> {
    if !is(store, idempotency) {
        return put_claiming_if_in_turn(store, expected, run, idempotency, claim).await;
    }
    let expected = runs::row(expected)?;
    let row = runs::row(run)?;
    let claim = Owned::of(claim);
    let claimed = store
        .write(move |conn, now| {
            if !runs::replace_if(conn, now, &row, &expected)? {
                return Ok(None);
            }
            claim.make(conn, now).map(Some)
        })
        .await?;
    match claimed {
        Some(claim) => Ok(Fresh::Claimed(claim)),
        None => Ok(Fresh::Stored(
            RunLog::get(store, &run.id).await?.map(Box::new),
        )),
    }
}

/// [`RunLog::put_settling`]: completion, run and ack in one operation.
pub(super) async fn put_settling(
    store: &SqliteStore,
    run: &RunRecord,
    idempotency: &dyn Idempotency,
    done: Option<Completion<'_>>,
    queue: &dyn WorkQueue,
    ack: Option<&str>,
) -> StoreResult<bool> {
    if !is(store, idempotency) || !is(store, queue) {
        return put_settling_in_turn(store, run, idempotency, done, queue, ack).await;
    }
    let row = runs::row(run)?;
    let done = done.map(|d| (d.key.to_owned(), d.result.to_owned(), d.ttl));
    let ack = ack.map(str::to_owned);
    store
        .write(move |conn, now| settle(conn, now, &row, done.as_ref(), ack.as_deref()))
        .await
}

/// The one operation of [`put_settling`]. A failed completion fails it
/// whole (its changes are rolled back); a stale receipt only goes unacked.
fn settle(
    conn: &Connection,
    now: Millis,
    row: &runs::Row,
    done: Option<&(String, String, std::time::Duration)>,
    ack: Option<&str>,
) -> StoreResult<bool> {
    if let Some((key, result, ttl)) = done {
        idempotency::complete(conn, key, result, after(now, *ttl))?;
    }
    runs::replace(conn, row)?;
    let Some(receipt) = ack else { return Ok(false) };
    match queue::delete(conn, receipt) {
        Ok(()) => Ok(true),
        Err(e) if e.is_retryable() => Err(e),
        Err(_) => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::clock::ManualClock;
    use crate::contract::T0;
    use crate::model::{RunRecord, RunStatus};
    use crate::ports::{Claim, ClaimArgs, Completion, Message, Ports};
    use crate::store::{SqliteStore, WriteStats};

    fn run() -> RunRecord {
        RunRecord {
            id: crate::model::new_run_id(),
            workflow: "wf".into(),
            source: "src".into(),
            event_id: "evt".into(),
            status: RunStatus::Running,
            attempts: 1,
            created_at: T0,
            updated_at: T0,
            error: None,
            failure: None,
            steps: Vec::new(),
            event: None,
            expires_at: None,
            rerun_of: None,
            reruns: Vec::new(),
        }
    }

    /// A fresh store, its ports, and one message received from its queue.
    async fn store_with_a_message() -> (
        tempfile::TempDir,
        std::sync::Arc<SqliteStore>,
        Ports,
        Message,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_on(&dir.path().join("hub.db"), ManualClock::at(T0), 5);
        let p = store.ports();
        p.queue.send("job", Duration::ZERO).await.unwrap();
        let msg = p.queue.receive(1, Duration::from_secs(60), Duration::ZERO);
        let msg = msg.await.unwrap().remove(0);
        (dir, store, p, msg)
    }

    /// `r` marked running with its step's key `k` claimed, in one write.
    async fn claim(p: &Ports, r: &RunRecord) -> Claim {
        let args = ClaimArgs {
            key: "k",
            payload_hash: "",
            data: &r.id,
            lease: Duration::from_secs(60),
        };
        p.runs.put_claiming(r, &*p.idempotency, args).await.unwrap()
    }

    /// `r` recorded final, key `k` completed and `msg` acknowledged, in one write.
    async fn settle(p: &Ports, r: &RunRecord, msg: &Message) -> bool {
        let done = Completion {
            key: "k",
            result: "{}",
            ttl: Duration::from_secs(60),
        };
        p.runs
            .put_settling(
                r,
                &*p.idempotency,
                Some(done),
                &*p.queue,
                Some(&msg.receipt),
            )
            .await
            .unwrap()
    }

    fn since(a: WriteStats, b: WriteStats) -> (u64, u64) {
        (b.commits - a.commits, b.operations - a.operations)
    }

    /// On its own ports, each combined write is one operation, one commit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_combined_write_is_one_commit() {
        let (_dir, store, p, msg) = store_with_a_message().await;
        let mut r = run();

        let before = store.write_stats();
        assert_eq!(claim(&p, &r).await, Claim::Claimed);
        assert_eq!(since(before, store.write_stats()), (1, 1));

        r.status = RunStatus::Succeeded;
        let before = store.write_stats();
        assert!(settle(&p, &r, &msg).await);
        assert_eq!(since(before, store.write_stats()), (1, 1));
        assert_eq!(p.runs.get(&r.id).await.unwrap(), Some(r));
    }

    /// A run one at a time: the receive commits unsynced (lazy), the two
    /// combined writes synced — two durable commits, receive and ack included.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_run_alone_is_two_durable_commits() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_on(&dir.path().join("hub.db"), ManualClock::at(T0), 5);
        let p = store.ports();
        p.queue.send("job", Duration::ZERO).await.unwrap();
        let synced = |a: WriteStats, b: WriteStats| (b.commits - a.commits, b.synced - a.synced);

        let before = store.write_stats();
        let msg = p.queue.receive(1, Duration::from_secs(60), Duration::ZERO);
        let msg = msg.await.unwrap().remove(0);
        assert_eq!(synced(before, store.write_stats()), (1, 0), "receive");

        let mut r = run();
        claim(&p, &r).await;
        r.status = RunStatus::Succeeded;
        assert!(settle(&p, &r, &msg).await);
        assert_eq!(synced(before, store.write_stats()), (3, 2), "the whole run");
        // The lazy receive took effect like any other: the message is gone
        // with its receipt, nothing is left to deliver.
        let left = p.queue.receive(1, Duration::from_secs(60), Duration::ZERO);
        assert!(left.await.unwrap().is_empty());
    }
}
