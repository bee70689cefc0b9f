//! [`Breakers`] on the `breakers` table: one row per open breaker (a closed
//! one has none). Every change is one statement in the group commit, so the
//! conditions (only extend, one probe) hold across every process on the file.

use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::{SqliteStore, after, sql_err};
use crate::clock::Millis;
use crate::ports::{Breaker, Breakers, StoreResult};

const COLUMNS: &str = "name, since, until, why, probe_until";

#[async_trait]
impl Breakers for SqliteStore {
    async fn get(&self, name: &str) -> StoreResult<Option<Breaker>> {
        let name = name.to_owned();
        self.read(move |conn| select(conn, &name)).await
    }

    async fn open(&self, name: &str, until: Millis, why: &str) -> StoreResult<Breaker> {
        let (name, why) = (name.to_owned(), why.to_owned());
        self.write(move |conn, now| {
            conn.prepare_cached(
                "INSERT INTO breakers (name, since, until, why, probe_until) VALUES (?1, ?2, ?3, ?4, 0)
                 ON CONFLICT (name) DO UPDATE SET until = max(until, excluded.until),
                     why = excluded.why, probe_until = 0",
            )
            .and_then(|mut s| s.execute(params![name, now, until, why]))
            .map_err(sql_err)?;
            select(conn, &name)?.ok_or_else(|| {
                crate::ports::StoreError::Unavailable(format!("breaker {name:?} vanished"))
            })
        })
        .await
    }

    async fn probe(&self, name: &str, lease: Duration) -> StoreResult<bool> {
        let name = name.to_owned();
        self.write(move |conn, now| {
            let changed = conn
                .prepare_cached(
                    "UPDATE breakers SET probe_until = ?2
                     WHERE name = ?1 AND until <= ?3 AND probe_until <= ?3",
                )
                .and_then(|mut s| s.execute(params![name, after(now, lease), now]))
                .map_err(sql_err)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn release(&self, name: &str) -> StoreResult<()> {
        let name = name.to_owned();
        self.write(move |conn, _| {
            conn.prepare_cached("UPDATE breakers SET probe_until = 0 WHERE name = ?1")
                .and_then(|mut s| s.execute([&name]))
                .map_err(sql_err)?;
            Ok(())
        })
        .await
    }

    async fn close(&self, name: &str) -> StoreResult<()> {
        let name = name.to_owned();
        self.write(move |conn, _| {
            conn.prepare_cached("DELETE FROM breakers WHERE name = ?1")
                .and_then(|mut s| s.execute([&name]))
                .map_err(sql_err)?;
            Ok(())
        })
        .await
    }
}

fn select(conn: &Connection, name: &str) -> StoreResult<Option<Breaker>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM breakers WHERE name = ?1"))
        .and_then(|mut s| {
            s.query_row([name], |r| {
                Ok(Breaker {
                    name: r.get(0)?,
                    since: r.get(1)?,
                    until: r.get(2)?,
                    why: r.get(3)?,
                    probe_until: r.get(4)?,
                })
            })
            .optional()
        })
        .map_err(sql_err)
}
