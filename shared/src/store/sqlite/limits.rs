//! [`RateLimits`] on the `rate_limits` table: one token bucket per key, shared
//! by every worker of the process and every process on the file (the AWS
//! adapter keeps the same row in DynamoDB).
//!
//! A bucket starts full, refills continuously at `rate_per_sec` up to `burst`,
//! and each acquire takes one token. Waits are rounded up to whole clock
//! milliseconds, so sleeping for the returned duration is always enough.

use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::{SqliteStore, sql_err};
use crate::clock::Millis;
use crate::ports::{Acquire, Bucket, RateLimits, StoreResult};

/// Longest wait ever returned (a bucket with a zero rate never refills;
/// callers look again after this).
const MAX_WAIT_MS: f64 = 3_600_000.0;
/// Float slack when comparing token counts.
const EPSILON: f64 = 1e-9;

#[async_trait]
impl RateLimits for SqliteStore {
    async fn acquire(&self, key: &str, bucket: Bucket) -> StoreResult<Acquire> {
        let key = key.to_owned();
        self.write(move |conn, now| acquire(conn, now, &key, bucket))
            .await
    }

    async fn pause(&self, key: &str, until: Millis) -> StoreResult<()> {
        let key = key.to_owned();
        self.write(move |conn, now| {
            // A pause only ever extends: two workers hitting 429s keep the later end.
            conn.prepare_cached(
                "INSERT INTO rate_limits (key, tokens, updated_at, paused_until) VALUES (?1, NULL, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET paused_until = max(paused_until, excluded.paused_until)",
            )
            .and_then(|mut s| s.execute(params![key, now, until]))
            .map_err(sql_err)?;
            Ok(())
        })
        .await
    }
}

fn acquire(conn: &Connection, now: Millis, key: &str, bucket: Bucket) -> StoreResult<Acquire> {
    let burst = if bucket.burst.is_finite() {
        bucket.burst.max(1.0)
    } else {
        1.0
    };
    let rate = if bucket.rate_per_sec.is_finite() {
        bucket.rate_per_sec.max(0.0)
    } else {
        0.0
    };
    let row: Option<(Option<f64>, Millis, Millis)> = conn
        .prepare_cached("SELECT tokens, updated_at, paused_until FROM rate_limits WHERE key = ?1")
        .and_then(|mut s| {
            s.query_row([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
        })
        .map_err(sql_err)?;
    let (tokens, updated_at, paused_until) = row.unwrap_or((None, now, 0));
    // Refill for the time since the last acquire (never backwards).
    let since = updated_at.min(now);
    let elapsed_ms = (now - since) as f64;
    let mut tokens = tokens.map_or(burst, |t| (t + elapsed_ms * rate / 1000.0).min(burst));

    let token_wait_ms = if tokens + EPSILON >= 1.0 {
        0.0
    } else if rate > 0.0 {
        (((1.0 - tokens) * 1000.0 / rate) - 1e-6)
            .ceil()
            .clamp(1.0, MAX_WAIT_MS)
    } else {
        MAX_WAIT_MS
    };
    let pause_wait_ms = (paused_until - now).max(0) as f64;
    let answer = if token_wait_ms == 0.0 && pause_wait_ms == 0.0 {
        tokens = (tokens - 1.0).max(0.0);
        Acquire::Granted
    } else {
        Acquire::Wait(Duration::from_millis(
            token_wait_ms.max(pause_wait_ms) as u64
        ))
    };
    conn.prepare_cached(
        "INSERT INTO rate_limits (key, tokens, updated_at, paused_until) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (key) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at",
    )
    .and_then(|mut s| s.execute(params![key, tokens, now.max(updated_at), paused_until]))
    .map_err(sql_err)?;
    Ok(answer)
}
