//! This process's copies of connection pauses: the ones its own `429`s set
//! (held at once, before the store's write lands), and the store's (set by
//! any instance), read again at most every [`STORE_REFRESH`] per key.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::clock::{Millis, after};
use crate::ports::{Ports, StoreError};

/// Longest this process trusts its copy of a connection's pause as stored.
/// A call on a connection without a rate limit (or with a per-key one) is
/// held only by a pause; it reads the store's at most this often, so a pause
/// another instance sets after a `429` holds calls here within this long
/// (a pause this process sets holds them at once).
pub const STORE_REFRESH: Duration = Duration::from_millis(100);

/// The pauses this process knows of, by connection key.
#[derive(Debug, Default)]
pub(super) struct Pauses {
    /// Set here: when each ends.
    here: Mutex<HashMap<String, Millis>>,
    /// The store's as last read: when each ends, and when it was read.
    stored: Mutex<HashMap<String, (Millis, Millis)>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Pauses {
    /// Pause `key` here until `until` (a pause only extends).
    pub fn set_here(&self, key: String, until: Millis) {
        let mut here = lock(&self.here);
        let at = here.entry(key).or_insert(until);
        *at = (*at).max(until);
    }

    /// How long `key` is still paused by this process.
    pub fn here_for(&self, key: &str, now: Millis) -> Option<Duration> {
        let until = *lock(&self.here).get(key)?;
        (until > now).then(|| Duration::from_millis((until - now) as u64))
    }

    /// When the store's pause on `key` ends (0: never paused), from this
    /// process's copy while it is younger than [`STORE_REFRESH`].
    pub async fn stored_until(&self, ports: &Ports, key: &str) -> Result<Millis, StoreError> {
        let now = ports.clock.now_ms();
        if let Some(&(until, read_at)) = lock(&self.stored).get(key)
            && now >= read_at
            && now < after(read_at, STORE_REFRESH)
        {
            return Ok(until);
        }
        let until = ports.limits.paused_until(key).await?;
        lock(&self.stored).insert(key.to_owned(), (until, now));
        Ok(until)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;

    use super::super::{Gate, Limit, Limiter};
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::keys;
    use crate::ports::{Acquire, Bucket, RateLimits, StoreResult};
    use crate::store::SqliteStore;

    /// The store's rate limits, counting the reads of a pause.
    struct Counted {
        inner: Arc<dyn RateLimits>,
        reads: AtomicUsize,
    }

    #[async_trait]
    impl RateLimits for Counted {
        async fn acquire_n(&self, key: &str, bucket: Bucket, cost: f64) -> StoreResult<Acquire> {
            self.inner.acquire_n(key, bucket, cost).await
        }
        async fn pause(&self, key: &str, until: Millis) -> StoreResult<()> {
            self.inner.pause(key, until).await
        }
        async fn paused_until(&self, key: &str) -> StoreResult<Millis> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.inner.paused_until(key).await
        }
    }

    /// A pause another instance stored holds this process's calls within
    /// [`STORE_REFRESH`]: a connection without a rate limit reads the
    /// store's pause at most that often, and not on every call.
    #[tokio::test]
    async fn a_stored_pause_holds_calls_within_the_refresh() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::at(crate::contract::T0);
        let store = SqliteStore::open_on(&dir.path().join("hub.db"), clock.clone(), 5);
        let mut ports = store.ports();
        let counted = Arc::new(Counted {
            inner: ports.limits.clone(),
            reads: AtomicUsize::new(0),
        });
        ports.limits = counted.clone();
        let (limiter, conn) = (Limiter::default(), Limit::default());
        let reads = || counted.reads.load(Ordering::SeqCst);
        assert!(matches!(
            limiter.pass(&ports, "crm", &conn, None, None).await,
            Gate::Go
        ));
        assert!(matches!(
            limiter.pass(&ports, "crm", &conn, None, None).await,
            Gate::Go
        ));
        assert_eq!(reads(), 1, "the second call read the store again");
        // Another instance pauses the connection for 10 s (after a 429).
        let until = clock.now_ms() + 10_000;
        ports
            .limits
            .pause(&keys::connection("crm"), until)
            .await
            .unwrap();
        // This process's copy is trusted until it is STORE_REFRESH old...
        let refresh = crate::clock::millis(STORE_REFRESH);
        clock.advance(refresh - 1);
        assert!(matches!(
            limiter.pass(&ports, "crm", &conn, None, None).await,
            Gate::Go
        ));
        assert_eq!(reads(), 1);
        // ...and no longer: the pause holds the next call.
        clock.advance(1);
        match limiter.pass(&ports, "crm", &conn, None, None).await {
            Gate::Later(wait) => {
                assert_eq!(wait, Duration::from_millis((10_000 - refresh) as u64));
            }
            other => panic!("the stored pause did not hold the call: {other:?}"),
        }
        assert_eq!(reads(), 2);
    }
}
