//! [`Idempotency`] on the `idempotency` table: one row per key, `expires_at`
//! being the lease end while in progress and the TTL end once completed. An
//! expired row behaves exactly like an absent one.

use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::{SqliteStore, after, sql_err};
use crate::clock::Millis;
use crate::ports::{Claim, Idempotency, StoreError, StoreResult};

/// Expired rows are kept this long before housekeeping deletes them, so a
/// worker finishing just after its lease ran out can still `complete`.
const PURGE_GRACE_MS: Millis = 10 * 60 * 1000;
/// Most rows one housekeeping pass deletes (keeps a batch's commit short).
const PURGE_LIMIT: i64 = 5_000;

#[async_trait]
impl Idempotency for SqliteStore {
    async fn claim(
        &self,
        key: &str,
        payload_hash: &str,
        data: &str,
        lease: Duration,
    ) -> StoreResult<Claim> {
        let (key, hash, data) = (key.to_owned(), payload_hash.to_owned(), data.to_owned());
        self.write(move |conn, now| claim(conn, now, &key, &hash, &data, after(now, lease)))
            .await
    }

    async fn complete(&self, key: &str, result: &str, ttl: Duration) -> StoreResult<()> {
        let (key, result) = (key.to_owned(), result.to_owned());
        self.write(move |conn, now| complete(conn, &key, &result, after(now, ttl)))
            .await
    }

    async fn release(&self, key: &str) -> StoreResult<()> {
        let key = key.to_owned();
        self.write(move |conn, _| {
            conn.prepare_cached("DELETE FROM idempotency WHERE key = ?1")
                .and_then(|mut s| s.execute([&key]))
                .map_err(sql_err)?;
            Ok(())
        })
        .await
    }
}

/// Mark `key` completed with `result` until `expires_at`; `NotFound` when
/// nobody holds it.
pub(super) fn complete(
    conn: &Connection,
    key: &str,
    result: &str,
    expires_at: Millis,
) -> StoreResult<()> {
    let changed = conn
        .prepare_cached(
            "UPDATE idempotency SET completed = 1, result = ?2, expires_at = ?3 WHERE key = ?1",
        )
        .and_then(|mut s| s.execute(params![key, result, expires_at]))
        .map_err(sql_err)?;
    if changed == 0 {
        return Err(StoreError::NotFound(format!(
            "idempotency key {key:?} is not claimed"
        )));
    }
    Ok(())
}

/// Claim `key` until `lease_until` (see [`Idempotency::claim`]).
///
/// One statement when the key is free (the usual case): an insert that
/// overwrites only an expired row. The row is read only when it is held.
pub(super) fn claim(
    conn: &Connection,
    now: Millis,
    key: &str,
    hash: &str,
    data: &str,
    lease_until: Millis,
) -> StoreResult<Claim> {
    let claimed = conn
        .prepare_cached(
            "INSERT INTO idempotency (key, payload_hash, data, completed, result, expires_at)
             VALUES (?1, ?2, ?3, 0, NULL, ?4)
             ON CONFLICT (key) DO UPDATE SET
               payload_hash = excluded.payload_hash, data = excluded.data,
               completed = 0, result = NULL, expires_at = excluded.expires_at
             WHERE idempotency.expires_at <= ?5",
        )
        .and_then(|mut s| s.execute(params![key, hash, data, lease_until, now]))
        .map_err(sql_err)?;
    if claimed == 1 {
        return Ok(Claim::Claimed);
    }
    // Not written: a live row holds the key, in this same transaction.
    held(conn, now, key, hash)?.ok_or_else(|| {
        StoreError::Corrupt(format!("idempotency key {key:?} neither free nor held"))
    })
}

/// What holds `key` now (a live row), as a claim of it with `hash` would
/// answer; `None` when it is free (absent or expired).
pub(super) fn held(
    conn: &Connection,
    now: Millis,
    key: &str,
    hash: &str,
) -> StoreResult<Option<Claim>> {
    let row = conn
        .prepare_cached(
            "SELECT payload_hash, data, completed, result, expires_at FROM idempotency WHERE key = ?1",
        )
        .and_then(|mut s| {
            s.query_row([key], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Millis>(4)?,
                ))
            })
            .optional()
        })
        .map_err(sql_err)?;
    // An expired row (lease or TTL over) is as good as absent.
    let Some((stored_hash, stored_data, completed, result, expires_at)) = row else {
        return Ok(None);
    };
    if expires_at <= now {
        return Ok(None);
    }
    Ok(Some(if stored_hash != hash {
        Claim::PayloadMismatch { stored_hash }
    } else if completed {
        Claim::Completed {
            result: result.unwrap_or_default(),
        }
    } else {
        Claim::InProgress {
            data: stored_data,
            lease_until: expires_at,
        }
    }))
}

/// Store `key` completed with `result` until `expires_at`, over whatever was there.
pub(super) fn put_completed(
    conn: &Connection,
    key: &str,
    hash: &str,
    result: &str,
    expires_at: Millis,
) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO idempotency (key, payload_hash, data, completed, result, expires_at)
         VALUES (?1, ?2, ?3, 1, ?3, ?4)",
    )
    .and_then(|mut s| s.execute(params![key, hash, result, expires_at]))
    .map_err(sql_err)?;
    Ok(())
}

/// Housekeeping: delete keys expired for longer than the grace period.
pub(super) fn purge_expired(conn: &Connection, now: Millis) -> rusqlite::Result<()> {
    let purged = conn
        .prepare_cached(
            "DELETE FROM idempotency WHERE key IN
           (SELECT key FROM idempotency WHERE expires_at <= ?1 LIMIT ?2)",
        )?
        .execute(params![now.saturating_sub(PURGE_GRACE_MS), PURGE_LIMIT])?;
    if purged > 0 {
        tracing::debug!(purged, "purged expired idempotency keys");
    }
    Ok(())
}
