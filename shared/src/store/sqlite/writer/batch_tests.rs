//! The batch runner on its own: batches built by hand, so which operations
//! share a transaction is certain (no timing), and the number of times each
//! operation ran is counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::super::sql_err;
use super::super::write_stats::Counters;
use super::batch::{Call, Op, run_batch};
use crate::clock::ManualClock;
use crate::ports::{StoreError, StoreResult};

/// What an operation does after its insert.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Then {
    Succeed,
    Refuse,
    /// Insert a blob larger than the store may grow (see [`cap`]).
    FillTheDisk,
}

/// One operation, the channel its caller waits on, and how often it ran.
struct Probe {
    reply: oneshot::Receiver<StoreResult<u32>>,
    runs: Arc<AtomicU32>,
}

impl Probe {
    fn runs(&self) -> u32 {
        self.runs.load(Ordering::SeqCst)
    }

    fn answer(&mut self) -> StoreResult<u32> {
        self.reply.try_recv().expect("answered")
    }
}

/// An operation that inserts `name` with its run number, then does `then`;
/// its result is its run number.
fn op(name: &'static str, then: Then) -> (Box<dyn Op>, Probe) {
    let runs = Arc::new(AtomicU32::new(0));
    let counted = runs.clone();
    let (tx, reply) = oneshot::channel();
    let f = move |conn: &Connection, _| {
        let run = counted.fetch_add(1, Ordering::SeqCst) + 1;
        conn.execute("INSERT INTO t (name, run) VALUES (?1, ?2)", (name, run))
            .map_err(sql_err)?;
        match then {
            Then::Succeed => Ok(run),
            Then::Refuse => Err(StoreError::NotFound(format!("{name} refused"))),
            Then::FillTheDisk => conn
                .execute(
                    "INSERT INTO t (name, run, pad) VALUES (?1 || '-big', 0, zeroblob(200000))",
                    [name],
                )
                .map(|_| run)
                .map_err(sql_err),
        }
    };
    (Box::new(Call::new(true, f, tx)), Probe { reply, runs })
}

fn store() -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let conn = Connection::open(dir.path().join("b.db")).unwrap();
    conn.execute_batch("CREATE TABLE t (name TEXT PRIMARY KEY, run INTEGER NOT NULL, pad BLOB)")
        .unwrap();
    (dir, conn)
}

/// Let the database grow by a few pages only: a big insert fails `SQLITE_FULL`.
fn cap(conn: &Connection) {
    let pages: i64 = conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    conn.query_row(&format!("PRAGMA max_page_count = {}", pages + 8), [], |r| {
        r.get::<_, i64>(0)
    })
    .unwrap();
}

/// Rows left, as `name:run`.
fn rows(conn: &Connection) -> Vec<String> {
    conn.prepare("SELECT name || ':' || run FROM t ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Run `plan` (one operation per letter name) as one batch; returns the
/// probes, whether the batch was healthy and how many redos it took.
fn run(conn: &Connection, plan: &[(&'static str, Then)]) -> (Vec<Probe>, bool, u64) {
    let (mut batch, probes): (Vec<_>, Vec<_>) = plan.iter().map(|(n, t)| op(n, *t)).unzip();
    let counters = Counters::default();
    let clock = ManualClock::at(crate::contract::T0);
    let healthy = run_batch(conn, &mut batch, &*clock, None, &counters, true);
    assert!(batch.is_empty(), "every operation was answered");
    (probes, healthy, counters.snapshot().redone)
}

const NAMES: [&str; 4] = ["a", "b", "c", "d"];

/// The first, a middle or the last operation refuses: exactly the others'
/// rows are committed, each caller hears what it would have with a savepoint
/// per operation, the refused one ran once (it is not redone), the ones
/// before it ran twice (the redo) and answer their second run, and the ones
/// after it once. A refusal of the first costs no redo.
#[test]
fn a_refusal_first_middle_or_last_leaves_exactly_the_others_writes() {
    for failing in 0..NAMES.len() {
        let (_dir, conn) = store();
        let plan: Vec<_> = NAMES
            .iter()
            .enumerate()
            .map(|(i, n)| {
                (
                    *n,
                    if i == failing {
                        Then::Refuse
                    } else {
                        Then::Succeed
                    },
                )
            })
            .collect();
        let (mut probes, healthy, redone) = run(&conn, &plan);
        assert!(healthy, "a refusal is not the store's failure");
        assert_eq!(redone, u64::from(failing > 0), "failing {failing}");
        let mut expected = Vec::new();
        for (i, p) in probes.iter_mut().enumerate() {
            let again = u32::from(i < failing);
            assert_eq!(p.runs(), 1 + again, "op {i}, failing {failing}");
            if i == failing {
                assert!(matches!(p.answer(), Err(StoreError::NotFound(_))));
            } else {
                assert_eq!(p.answer().unwrap(), 1 + again, "op {i}: its last run");
                expected.push(format!("{}:{}", NAMES[i], 1 + again));
            }
        }
        assert_eq!(rows(&conn), expected, "failing {failing}");
    }
}

/// An operation alone that refuses runs once and leaves nothing.
#[test]
fn a_refusal_alone_runs_once_and_leaves_nothing() {
    let (_dir, conn) = store();
    let (mut probes, healthy, redone) = run(&conn, &[("a", Then::Refuse)]);
    assert!(healthy);
    assert_eq!((probes[0].runs(), redone), (1, 0));
    assert!(matches!(probes[0].answer(), Err(StoreError::NotFound(_))));
    assert!(rows(&conn).is_empty());
}

/// After the first failure the operations after it run in savepoints: a
/// second failure rolls back only itself, with no second redo.
#[test]
fn a_second_failure_costs_no_second_redo() {
    let (_dir, conn) = store();
    let plan = [
        ("a", Then::Succeed),
        ("b", Then::Refuse),
        ("c", Then::Succeed),
        ("d", Then::Refuse),
        ("e", Then::Succeed),
    ];
    let (mut probes, healthy, redone) = run(&conn, &plan);
    assert!(healthy);
    assert_eq!(redone, 1);
    let runs: Vec<u32> = probes.iter().map(Probe::runs).collect();
    assert_eq!(runs, [2, 1, 1, 1, 1]);
    let answers: Vec<_> = probes.iter_mut().map(|p| p.answer().ok()).collect();
    assert_eq!(answers, [Some(2), None, Some(1), None, Some(1)]);
    assert_eq!(rows(&conn), ["a:2", "c:1", "e:1"]);
}

/// A store failure (the disk is full) in the middle of a batch fails that
/// operation only, with `Unavailable`; the batch reports the store unhealthy
/// (the writer then checkpoints the WAL) and the others are committed.
#[test]
fn a_full_disk_fails_only_the_operation_that_needed_the_space() {
    let (_dir, conn) = store();
    cap(&conn);
    let plan = [
        ("a", Then::Succeed),
        ("b", Then::FillTheDisk),
        ("c", Then::Succeed),
    ];
    let (mut probes, healthy, _) = run(&conn, &plan);
    assert!(!healthy, "the store failed an operation");
    assert_eq!(probes[0].answer().unwrap(), 2);
    let full = probes[1].answer();
    assert!(
        matches!(&full, Err(StoreError::Unavailable(why)) if why.contains("full")),
        "{full:?}"
    );
    assert_eq!(probes[2].answer().unwrap(), 1);
    assert_eq!(rows(&conn), ["a:2", "c:1"]);
}

/// Housekeeping runs after the operations, also in a redone batch, and is
/// committed with them.
#[test]
fn housekeeping_runs_in_a_redone_batch() {
    let (_dir, conn) = store();
    let (mut batch, mut probes): (Vec<_>, Vec<_>) = [("a", Then::Succeed), ("b", Then::Refuse)]
        .iter()
        .map(|(n, t)| op(n, *t))
        .unzip();
    let counters = Counters::default();
    let clock = ManualClock::at(crate::contract::T0);
    let housekeeping: super::Maintenance = |conn, _| {
        conn.execute("INSERT INTO t (name, run) VALUES ('kept', 0)", [])
            .map(drop)
    };
    assert!(run_batch(
        &conn,
        &mut batch,
        &*clock,
        Some(housekeeping),
        &counters,
        true
    ));
    assert_eq!(probes[0].answer().unwrap(), 2);
    assert!(probes[1].answer().is_err());
    assert_eq!(rows(&conn), ["a:2", "kept:0"]);
    let stats = counters.snapshot();
    assert_eq!((stats.commits, stats.operations, stats.redone), (1, 1, 1));
}
