//! [`Tallies`] on the `tallies` table: one row per (window, subject), each
//! add one upsert in the group commit. Rows older than [`TALLY_KEEP`] are
//! purged with expired runs.

use async_trait::async_trait;
use rusqlite::params;

use super::{SqliteStore, sql_err};
use crate::clock::Millis;
use crate::ports::{StoreResult, TALLY_KEEP, Tallies, Tally};

#[async_trait]
impl Tallies for SqliteStore {
    async fn add(
        &self,
        subject: &str,
        window: Millis,
        at: Millis,
        sample: &str,
    ) -> StoreResult<()> {
        let (subject, sample) = (subject.to_owned(), sample.to_owned());
        self.write(move |conn, _| {
            conn.prepare_cached(
                "INSERT INTO tallies (window, subject, count, first, last, sample)
                 VALUES (?1, ?2, 1, ?3, ?3, ?4)
                 ON CONFLICT (window, subject) DO UPDATE SET count = count + 1,
                     last = excluded.last, sample = excluded.sample",
            )
            .and_then(|mut s| s.execute(params![window, subject, at, sample]))
            .map_err(sql_err)?;
            Ok(())
        })
        .await
    }

    async fn window(&self, window: Millis) -> StoreResult<Vec<Tally>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT subject, count, first, last, sample FROM tallies
                     WHERE window = ?1 ORDER BY subject",
                )
                .map_err(sql_err)?;
            let rows = stmt
                .query_map([window], |r| {
                    Ok(Tally {
                        subject: r.get(0)?,
                        window,
                        count: r.get::<_, i64>(1)? as u64,
                        first: r.get(2)?,
                        last: r.get(3)?,
                        sample: r.get(4)?,
                    })
                })
                .map_err(sql_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
        })
        .await
    }
}

/// Delete tallies whose window started more than [`TALLY_KEEP`] before `now`.
pub(super) fn purge_expired(conn: &rusqlite::Connection, now: Millis) -> rusqlite::Result<()> {
    let before = now - TALLY_KEEP.as_millis() as Millis;
    conn.prepare_cached("DELETE FROM tallies WHERE window < ?1")?
        .execute([before])?;
    Ok(())
}
