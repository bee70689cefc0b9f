//! [`WorkQueue`] on the `queue` and `dead_letters` tables, with SQS semantics.
//!
//! Time: delays and visibility timeouts are clock milliseconds (the injected
//! clock); a long poll waits in real time. While waiting it wakes when a write
//! may have made a message receivable (send, change-visibility, redrive), at the
//! earliest `visible_at` as seen by the clock, and at least every
//! [`RECHECK`] so a clock that jumps (a test's `ManualClock`, an NTP step) is
//! noticed. With a `ManualClock` a test advances the clock, then receives.

use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::time::Instant;

use super::{SqliteStore, after, sql_err};
use crate::clock::Millis;
use crate::ports::{DeadLetter, Message, StoreError, StoreResult, WorkQueue};

/// Longest a long poll sleeps before looking again.
pub(super) const RECHECK: Duration = Duration::from_secs(1);

pub(super) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[async_trait]
impl WorkQueue for SqliteStore {
    async fn max_receives(&self) -> Option<u32> {
        Some(self.max_receives)
    }

    async fn send(&self, body: &str, delay: Duration) -> StoreResult<String> {
        let (id, body) = (new_id(), body.to_owned());
        let sent = id.clone();
        self.write(move |conn, now| insert(conn, &sent, &body, now, after(now, delay), 0))
            .await?;
        self.queue_changed.notify_waiters();
        Ok(id)
    }

    async fn send_batch(&self, items: &[(String, Duration)]) -> StoreResult<Vec<String>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let items: Vec<(String, String, Duration)> = items
            .iter()
            .map(|(body, delay)| (new_id(), body.clone(), *delay))
            .collect();
        let ids = items.iter().map(|(id, ..)| id.clone()).collect();
        self.write(move |conn, now| {
            // One operation for the whole batch: all or nothing.
            for (id, body, delay) in &items {
                insert(conn, id, body, now, after(now, *delay), 0)?;
            }
            Ok(())
        })
        .await?;
        self.queue_changed.notify_waiters();
        Ok(ids)
    }

    async fn receive(
        &self,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> StoreResult<Vec<Message>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let deadline = Instant::now() + wait;
        loop {
            // Register for wake-ups before looking, so a send that commits
            // between the look and the wait is not missed.
            let changed = self.queue_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();

            let max_receives = self.max_receives;
            // Lazy: a receive undone by a power cut only delivers the message
            // again; whoever runs it writes durably before any effect.
            let (messages, next_visible_at) = self
                .write_lazily(move |conn, now| {
                    receive(conn, now, max, after(now, visibility), max_receives)
                })
                .await?;
            let now_real = Instant::now();
            if !messages.is_empty() || now_real >= deadline {
                return Ok(messages);
            }
            let mut nap = (deadline - now_real).min(self.recheck);
            if let Some(at) = next_visible_at {
                let until = at.saturating_sub(self.clock.now_ms()).max(1);
                nap = nap.min(Duration::from_millis(until.unsigned_abs()));
            }
            tokio::select! {
                () = &mut changed => {}
                () = tokio::time::sleep(nap) => {}
            }
        }
    }

    async fn delete(&self, receipt: &str) -> StoreResult<()> {
        let receipt = receipt.to_owned();
        self.write(move |conn, _| delete(conn, &receipt)).await
    }

    async fn change_visibility(&self, receipt: &str, timeout: Duration) -> StoreResult<()> {
        let receipt = receipt.to_owned();
        self.write(move |conn, now| {
            let n = conn
                .prepare_cached(
                    "UPDATE queue SET visible_at = ?2, in_flight = 0 WHERE receipt = ?1",
                )
                .and_then(|mut s| s.execute(params![receipt, after(now, timeout)]))
                .map_err(sql_err)?;
            if n == 0 {
                return Err(stale(&receipt));
            }
            Ok(())
        })
        .await?;
        self.queue_changed.notify_waiters();
        Ok(())
    }

    async fn dead_letter(&self, receipt: &str, reason: &str) -> StoreResult<()> {
        let (receipt, reason) = (receipt.to_owned(), reason.to_owned());
        self.write(move |conn, now| {
            let seq: Option<i64> = conn
                .prepare_cached("SELECT seq FROM queue WHERE receipt = ?1")
                .and_then(|mut s| s.query_row([&receipt], |r| r.get(0)).optional())
                .map_err(sql_err)?;
            let seq = seq.ok_or_else(|| stale(&receipt))?;
            move_to_dead_letters(conn, seq, &reason, now)
        })
        .await
    }

    async fn dead_letters(&self, limit: usize) -> StoreResult<Vec<DeadLetter>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, body, reason, receive_count, dead_at FROM dead_letters
                     ORDER BY dead_at DESC, seq DESC LIMIT ?1",
                )
                .map_err(sql_err)?;
            let rows = stmt
                .query_map([limit], |r| {
                    Ok(DeadLetter {
                        id: r.get(0)?,
                        body: r.get(1)?,
                        reason: r.get(2)?,
                        receive_count: r.get(3)?,
                        dead_at: r.get(4)?,
                    })
                })
                .map_err(sql_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
        })
        .await
    }

    async fn dead_letter_depth(&self, at_most: usize) -> StoreResult<usize> {
        // Counted on the `dead_at` index: no message body is read.
        let at_most = i64::try_from(at_most).unwrap_or(i64::MAX);
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT count(*) FROM (SELECT 1 FROM dead_letters INDEXED BY dead_letters_dead_at LIMIT ?1)",
            )
            .and_then(|mut s| s.query_row([at_most], |r| r.get::<_, i64>(0)))
            .map(|n| usize::try_from(n).unwrap_or(0))
            .map_err(sql_err)
        })
        .await
    }

    async fn redrive(&self, id: &str) -> StoreResult<String> {
        let id = id.to_owned();
        let key = id.clone();
        self.write(move |conn, now| {
            let row: Option<(String, Millis)> = conn
                .prepare_cached("SELECT body, sent_at FROM dead_letters WHERE id = ?1")
                .and_then(|mut s| {
                    s.query_row([&key], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()
                })
                .map_err(sql_err)?;
            let (body, sent_at) =
                row.ok_or_else(|| StoreError::NotFound(format!("dead letter {key:?}")))?;
            conn.prepare_cached("DELETE FROM dead_letters WHERE id = ?1")
                .and_then(|mut s| s.execute([&key]))
                .map_err(sql_err)?;
            // Same id, receive count reset, visible now.
            insert(conn, &key, &body, sent_at, now, 0)
        })
        .await?;
        self.queue_changed.notify_waiters();
        Ok(id)
    }
}

impl SqliteStore {
    /// After the previous process on this file died (`kill -9`, a crash):
    /// make the messages it held visible at once, instead of after their
    /// visibility timeout, and drop its unfinished event, step and token-refresh
    /// claims and its concurrency slots (`ingest:…`, `step:…`, `oauth2:…`,
    /// `conc:…`), so a sender's retry and the
    /// runs' retries need not wait for the leases to run out. Delayed retries
    /// keep their delay. Releasing an event's claim is safe: only the
    /// composed path leaves one (the store's intake writes an event whole or
    /// not at all), and its runs have ids derived from the event, so
    /// enqueueing it again makes no new run.
    ///
    /// Only call this while no other process uses the file (`ferry dev` holds
    /// a lock on its data directory); it would steal that process's work.
    pub async fn recover_after_crash(&self) -> StoreResult<Recovered> {
        let recovered = self
            .write(|conn, now| {
                let messages = conn
                    .prepare_cached(
                        "UPDATE queue SET visible_at = ?1, in_flight = 0
                         WHERE in_flight = 1 AND visible_at > ?1",
                    )
                    .and_then(|mut s| s.execute([now]))
                    .map_err(sql_err)?;
                let claims = conn
                    .prepare_cached(
                        "DELETE FROM idempotency WHERE completed = 0
                         AND (key LIKE 'ingest:%' OR key LIKE 'step:%' OR key LIKE 'oauth2:%'
                              OR key LIKE 'conc:%')",
                    )
                    .and_then(|mut s| s.execute([]))
                    .map_err(sql_err)?;
                Ok(Recovered { messages, claims })
            })
            .await?;
        self.queue_changed.notify_waiters();
        Ok(recovered)
    }
}

/// What [`SqliteStore::recover_after_crash`] released.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Messages made visible.
    pub messages: usize,
    /// Claims dropped.
    pub claims: usize,
}

/// Delete the message `receipt` was given for; `NotFound` when stale.
pub(super) fn delete(conn: &Connection, receipt: &str) -> StoreResult<()> {
    let n = conn
        .prepare_cached("DELETE FROM queue WHERE receipt = ?1")
        .and_then(|mut s| s.execute([receipt]))
        .map_err(sql_err)?;
    if n == 0 {
        return Err(stale(receipt));
    }
    Ok(())
}

fn stale(receipt: &str) -> StoreError {
    StoreError::NotFound(format!(
        "receipt {receipt:?} is unknown or superseded by a later receive"
    ))
}

pub(super) fn insert(
    conn: &Connection,
    id: &str,
    body: &str,
    sent_at: Millis,
    visible_at: Millis,
    receive_count: u32,
) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO queue (id, body, sent_at, visible_at, receive_count) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| s.execute(params![id, body, sent_at, visible_at, receive_count]))
    .map_err(sql_err)?;
    Ok(())
}

/// Take up to `max` visible messages, oldest visible first, hiding each until
/// `hidden_until` under a new receipt. Messages already received `max_receives`
/// times are dead-lettered instead. When nothing is delivered, also returns the
/// earliest time a message becomes visible.
fn receive(
    conn: &Connection,
    now: Millis,
    max: usize,
    hidden_until: Millis,
    max_receives: u32,
) -> StoreResult<(Vec<Message>, Option<Millis>)> {
    let mut out: Vec<Message> = Vec::new();
    loop {
        let want = i64::try_from(max - out.len()).unwrap_or(i64::MAX);
        let candidates: Vec<(i64, String, String, u32)> = {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT seq, id, body, receive_count FROM queue
                     WHERE visible_at <= ?1 ORDER BY visible_at, seq LIMIT ?2",
                )
                .map_err(sql_err)?;
            let rows = stmt
                .query_map(params![now, want], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .map_err(sql_err)?;
            rows.collect::<Result<_, _>>().map_err(sql_err)?
        };
        if candidates.is_empty() {
            break;
        }
        let mut dead = 0;
        for (seq, id, body, count) in candidates {
            if count >= max_receives {
                let reason = format!("exceeded max receives ({max_receives})");
                move_to_dead_letters(conn, seq, &reason, now)?;
                dead += 1;
                continue;
            }
            let receipt = new_id();
            conn.prepare_cached(
                "UPDATE queue SET receive_count = receive_count + 1, receipt = ?2, visible_at = ?3,
                 in_flight = 1 WHERE seq = ?1",
            )
            .and_then(|mut s| s.execute(params![seq, receipt, hidden_until]))
            .map_err(sql_err)?;
            out.push(Message {
                id,
                receipt,
                body,
                receive_count: count + 1,
                redrive: None,
            });
        }
        if dead == 0 || out.len() >= max {
            break;
        }
    }
    let next_visible_at = if out.is_empty() {
        conn.prepare_cached("SELECT MIN(visible_at) FROM queue")
            .and_then(|mut s| s.query_row([], |r| r.get::<_, Option<Millis>>(0)))
            .map_err(sql_err)?
    } else {
        None
    };
    Ok((out, next_visible_at))
}

fn move_to_dead_letters(conn: &Connection, seq: i64, reason: &str, now: Millis) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO dead_letters (id, body, sent_at, reason, receive_count, dead_at)
         SELECT id, body, sent_at, ?2, receive_count, ?3 FROM queue WHERE seq = ?1",
    )
    .and_then(|mut s| s.execute(params![seq, reason, now]))
    .map_err(sql_err)?;
    conn.prepare_cached("DELETE FROM queue WHERE seq = ?1")
        .and_then(|mut s| s.execute([seq]))
        .map_err(sql_err)?;
    Ok(())
}
