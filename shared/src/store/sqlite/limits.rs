//! [`RateLimits`] on the `rate_limits` table: one token bucket per key, shared
//! by every worker of the process and every process on the file (the AWS
//! adapter keeps the same row in DynamoDB).
//!
//! The bucket's arithmetic is `store::bucket`, shared with the AWS adapter.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::{SqliteStore, sql_err};
use crate::clock::Millis;
use crate::ports::{Acquire, Bucket, RateLimits, StoreResult};
use crate::store::bucket::{self, State};

#[async_trait]
impl RateLimits for SqliteStore {
    async fn acquire_n(&self, key: &str, bucket: Bucket, cost: f64) -> StoreResult<Acquire> {
        let key = key.to_owned();
        self.write(move |conn, now| acquire(conn, now, &key, bucket, cost))
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

    async fn paused_until(&self, key: &str) -> StoreResult<Millis> {
        let key = key.to_owned();
        self.read(move |conn| {
            conn.prepare_cached("SELECT paused_until FROM rate_limits WHERE key = ?1")
                .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional())
                .map(|p| p.unwrap_or(0))
                .map_err(sql_err)
        })
        .await
    }
}

fn acquire(
    conn: &Connection,
    now: Millis,
    key: &str,
    bucket: Bucket,
    cost: f64,
) -> StoreResult<Acquire> {
    let row: Option<(Option<f64>, Millis, Millis)> = conn
        .prepare_cached("SELECT tokens, updated_at, paused_until FROM rate_limits WHERE key = ?1")
        .and_then(|mut s| {
            s.query_row([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
        })
        .map_err(sql_err)?;
    let state = row.map_or(State::new(now), |(tokens, updated_at, paused_until)| {
        State {
            tokens,
            updated_at,
            paused_until,
        }
    });
    let (answer, next) = bucket::take(state, now, bucket, cost);
    conn.prepare_cached(
        "INSERT INTO rate_limits (key, tokens, updated_at, paused_until) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (key) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at",
    )
    .and_then(|mut s| s.execute(params![key, next.tokens, next.updated_at, next.paused_until]))
    .map_err(sql_err)?;
    Ok(answer)
}
