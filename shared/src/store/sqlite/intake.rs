//! [`Intake`] on SQLite: a new event's dedupe key, queue messages and runs
//! in one write — one operation in the writer's next group commit — where
//! composing the ports takes three (claim, send, record and complete), each
//! waiting for a commit of its own. The key is stored completed at once: no
//! lease is ever left behind, since nothing is written unless all of it is.

use async_trait::async_trait;

use super::{SqliteStore, after, idempotency, queue, runs};
use crate::ports::{Claim, Intake, NewEvent, StoreResult};

#[async_trait]
impl Intake for SqliteStore {
    async fn accept(&self, event: &NewEvent<'_>) -> StoreResult<Claim> {
        let key = event.key.to_owned();
        let hash = event.payload_hash.to_owned();
        let result = event.result.to_owned();
        let window = event.window;
        let messages: Vec<(String, String, std::time::Duration)> = event
            .messages
            .iter()
            .map(|(body, delay)| (queue::new_id(), body.clone(), *delay))
            .collect();
        let rows = event
            .runs
            .iter()
            .map(runs::row)
            .collect::<StoreResult<Vec<_>>>()?;
        let sent = !messages.is_empty();
        let claim = self
            .write(move |conn, now| {
                if let Some(held) = idempotency::held(conn, now, &key, &hash)? {
                    return Ok(held);
                }
                for (id, body, delay) in &messages {
                    queue::insert(conn, id, body, now, after(now, *delay), 0)?;
                }
                for row in &rows {
                    runs::create(conn, now, row)?;
                }
                idempotency::put_completed(conn, &key, &hash, &result, after(now, window))?;
                Ok(Claim::Claimed)
            })
            .await?;
        if sent && claim == Claim::Claimed {
            self.queue_changed.notify_waiters();
        }
        Ok(claim)
    }

    /// One transaction: the key, the messages and the runs, or none of them.
    fn atomic(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::model::{RunRecord, RunStatus};
    use crate::store::SqliteOptions;

    fn run(id: &str, now: i64) -> RunRecord {
        RunRecord {
            id: id.into(),
            workflow: "wf".into(),
            source: "src".into(),
            event_id: "e1".into(),
            status: RunStatus::Queued,
            attempts: 0,
            created_at: now,
            updated_at: now,
            error: None,
            failure: None,
            steps: Vec::new(),
            event: None,
            expires_at: None,
            rerun_of: None,
            reruns: Vec::new(),
        }
    }

    /// Event `e1` of source `src`, accepted as run `r1`, deduplicated for a minute.
    fn event<'a>(messages: &'a [(String, Duration)], runs: &'a [RunRecord]) -> NewEvent<'a> {
        NewEvent {
            key: "ingest/src/e1",
            payload_hash: "h1",
            result: r#"["r1"]"#,
            window: Duration::from_secs(60),
            messages,
            runs,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn accepts_once_then_answers_as_a_claim_would() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::at(1_000_000);
        let store = SqliteStore::open_on(&dir.path().join("t.db"), clock.clone(), 3);
        let ports = store.ports();
        let intake = ports.intake.clone().expect("the embedded store has one");
        let now = clock.now_ms();
        let messages = vec![("job-1".to_owned(), Duration::ZERO)];
        let records = vec![run("r1", now)];
        let event = event(&messages, &records);
        assert_eq!(intake.accept(&event).await.unwrap(), Claim::Claimed);

        // All of it is written: the message, the run, the key completed.
        let got = ports
            .queue
            .receive(10, Duration::from_secs(30), Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(
            got.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
            ["job-1"]
        );
        let r1 = ports.runs.get("r1").await.unwrap().expect("run recorded");
        assert_eq!(r1.status, RunStatus::Queued);
        let completed = Claim::Completed {
            result: r#"["r1"]"#.into(),
        };
        assert_eq!(
            ports
                .idempotency
                .claim("ingest/src/e1", "h1", "x", Duration::from_secs(1))
                .await
                .unwrap(),
            completed
        );

        // Again: a duplicate, nothing more written.
        assert_eq!(intake.accept(&event).await.unwrap(), completed);
        let other = NewEvent {
            payload_hash: "h2",
            ..event
        };
        assert_eq!(
            intake.accept(&other).await.unwrap(),
            Claim::PayloadMismatch {
                stored_hash: "h1".into()
            }
        );
        clock.advance(31_000);
        let again = ports
            .queue
            .receive(10, Duration::from_secs(30), Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(again.len(), 1, "only the first accept sent a message");

        // Past the window the key is free again.
        clock.advance(60_000);
        assert_eq!(intake.accept(&other).await.unwrap(), Claim::Claimed);
    }

    /// A key leased by a claim (the composed path) is held: the intake
    /// answers in progress and writes nothing; once the lease is over the
    /// key is free again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_leased_key_is_held_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::at(1_000_000);
        let store = SqliteStore::open_on(&dir.path().join("t.db"), clock.clone(), 3);
        let ports = store.ports();
        let intake = ports.intake.clone().unwrap();
        assert_eq!(
            ports
                .idempotency
                .claim("ingest/src/e1", "h1", "lease", Duration::from_secs(30))
                .await
                .unwrap(),
            Claim::Claimed
        );
        let messages = vec![("job-1".to_owned(), Duration::ZERO)];
        let records = vec![run("r1", clock.now_ms())];
        let event = event(&messages, &records);
        assert!(matches!(
            intake.accept(&event).await.unwrap(),
            Claim::InProgress { .. }
        ));
        assert!(
            ports.runs.get("r1").await.unwrap().is_none(),
            "no run written"
        );
        let got = ports
            .queue
            .receive(10, Duration::from_secs(30), Duration::ZERO)
            .await
            .unwrap();
        assert!(got.is_empty(), "no message written: {got:?}");
        clock.advance(31_000);
        assert_eq!(intake.accept(&event).await.unwrap(), Claim::Claimed);
        assert!(ports.runs.get("r1").await.unwrap().is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_nothing_when_a_part_fails() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.db"), SqliteOptions::default()).unwrap();
        let ports = store.ports();
        let intake = ports.intake.clone().unwrap();
        let now = ports.clock.now_ms();
        // The run insert fails, after the message was inserted.
        store
            .write(|conn, _| {
                conn.execute_batch(
                    "CREATE TRIGGER no_runs BEFORE INSERT ON runs BEGIN SELECT RAISE(ABORT, 'no'); END;",
                )
                .map_err(super::super::sql_err)
            })
            .await
            .unwrap();
        let messages = vec![("job-1".to_owned(), Duration::ZERO)];
        let records = vec![run("r1", now)];
        let event = event(&messages, &records);
        assert!(intake.accept(&event).await.is_err());
        let got = ports
            .queue
            .receive(10, Duration::from_secs(30), Duration::ZERO)
            .await
            .unwrap();
        assert!(got.is_empty(), "the message was rolled back: {got:?}");
        assert_eq!(
            ports
                .idempotency
                .claim("ingest/src/e1", "h1", "x", Duration::from_secs(1))
                .await
                .unwrap(),
            Claim::Claimed,
            "the key was left free"
        );
    }
}
