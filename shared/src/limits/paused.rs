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
