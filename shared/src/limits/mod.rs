//! Spending a connection's rate limit before a call, through the
//! [`RateLimits`](crate::ports::RateLimits) port (so every worker and every
//! instance shares one bucket), without burning attempts and without busy-looping.
//!
//! - Every call first passes its connection's key, `conn:<name>`: that is where
//!   a `429` pauses the whole connection. Without a `rate_limit` (or with a
//!   per-key one) there is no bucket there, so only a pause can hold a call:
//!   its end is read, nothing written, and at most every [`STORE_REFRESH`]
//!   per process (a pause this process set holds its calls at once).
//! - A `rate_limit` without `key` is a token bucket on `conn:<name>` at the
//!   headroom ([`bucket`]); with `key` the bucket is per rendered
//!   value, `conn:<name>:key:<value>`.
//! - The store answers `Wait(d)`: the exact time to the next token or the end
//!   of a pause. Waits up to [`MAX_INLINE_WAIT`] are slept in-process; longer
//!   ones send the message back to the queue with that delay (not an attempt).
//! - A `rate_limit.tokens` budget is a second bucket, `conn:<name>:tokens`:
//!   once the request bucket lets a call go, it takes the call's cost (an
//!   expression over the rendered request, [`cost`]) there too, waiting the
//!   same way; a request token spent on a call the token budget then holds
//!   is not given back (ferry errs below the limit, never above it).
//! - In a process, at most `burst` callers per bucket ask the store at once;
//!   the others queue in-process (fairly, oldest first) instead of all waking
//!   for the same token. One who has queued for [`MAX_QUEUE_WAIT`] gives its
//!   message back with a delay of its place in line over the rate.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::clock::Millis;
use crate::config::RateLimit;
use crate::keys;
use crate::ports::{Acquire, Bucket, Ports, StoreError};

mod paused;
pub use paused::STORE_REFRESH;

/// Fraction of a documented rate limit ferry spends by default.
pub const DEFAULT_HEADROOM: f64 = 0.8;
/// Waits up to this long for a token (or the end of a pause) happen in-process.
pub const MAX_INLINE_WAIT: Duration = Duration::from_secs(2);
/// Longest a caller queues in-process behind others for the same bucket.
pub const MAX_QUEUE_WAIT: Duration = Duration::from_secs(2);
/// Most callers per bucket asking the store at once, whatever the burst.
const MAX_POLLERS: usize = 64;
/// A bucket so large only a pause can hold a caller.
pub const UNLIMITED: Bucket = Bucket {
    rate_per_sec: 1e12,
    burst: 1e12,
};

/// A connection's `rate_limit`, resolved once (see [`crate::hub::Conn`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limit {
    /// The token bucket, when the connection has a `rate_limit`.
    pub bucket: Option<Bucket>,
    /// The bucket is per rendered `rate_limit.key`, not the connection's.
    pub per_key: bool,
    /// The `rate_limit.tokens` budget's bucket, when there is one.
    pub tokens: Option<Bucket>,
}

impl Limit {
    /// The limit of a connection with `rate_limit`.
    pub fn of(rl: Option<&RateLimit>) -> Limit {
        Limit {
            bucket: rl.map(bucket),
            per_key: rl.is_some_and(|rl| rl.key.is_some()),
            tokens: rl.and_then(|rl| {
                let t = rl.tokens.as_ref()?;
                let headroom = t.headroom.or(rl.headroom);
                Some(shape(f64::from(t.limit.get()), t.per.get(), headroom))
            }),
        }
    }
}

/// What a call costs of connection `conn`'s token budget: its `cost`
/// expression over the rendered request (`request.method`, `request.url`,
/// `request.headers` with lower-case names, `request.json`, `request.body`
/// as text); `Ok(None)` without a budget. A result that is not a
/// non-negative number is an error naming it.
pub fn cost(
    templates: &crate::template::Templates,
    conn: &crate::hub::Conn,
    req: &crate::outbound::Prepared,
) -> Result<Option<f64>, String> {
    let Some(t) = conn.rate_limit.as_ref().and_then(|rl| rl.tokens.as_ref()) else {
        return Ok(None);
    };
    let ctx = crate::template::context(&serde_json::json!({ "request": req.to_context() }));
    let why = |e: String| format!("rate_limit.tokens.cost `{}`: {e}", t.cost);
    let v = templates
        .eval_json(&t.cost, &ctx)
        .map_err(|e| why(e.to_string()))?;
    match v.as_f64() {
        Some(n) if n.is_finite() && n >= 0.0 => Ok(Some(n)),
        _ => Err(why(format!("gave {v}, not a number of tokens (0 or more)"))),
    }
}

/// What the gate says.
#[derive(Debug)]
pub enum Gate {
    /// A token was spent: call now.
    Go,
    /// Not now: put the message back for this long (not an attempt).
    Later(Duration),
    /// The store could not be asked.
    Unavailable(StoreError),
}

/// Per-process fairness for the buckets (the buckets themselves live in the
/// store), this process's copy of the pauses it set (a `429` holds every
/// worker here at once, before the store write that tells other instances
/// has even committed), and its copy of the store's pauses (read again at
/// most every [`STORE_REFRESH`]).
#[derive(Debug, Default)]
pub struct Limiter {
    lines: Mutex<HashMap<String, Arc<Line>>>,
    pauses: paused::Pauses,
}

#[derive(Debug)]
struct Line {
    pollers: Semaphore,
    queued: AtomicUsize,
}

impl Limiter {
    /// Pause connection `name` until `until` for every caller in this process
    /// (the store's pause, which other instances read, is set separately).
    pub fn pause_here(&self, name: &str, until: Millis) {
        self.pauses.set_here(keys::connection(name), until);
    }

    /// How long connection key `key` is still paused in this process.
    fn paused_for(&self, key: &str, now: Millis) -> Option<Duration> {
        self.pauses.here_for(key, now)
    }

    /// Spend what a call on connection `name` needs; `key` is the rendered
    /// `rate_limit.key`, when the connection has one, and `cost` what the
    /// call costs of its token budget (see [`cost`]), when it has one.
    pub async fn pass(
        &self,
        ports: &Ports,
        name: &str,
        limit: &Limit,
        key: Option<&str>,
        cost: Option<f64>,
    ) -> Gate {
        let conn_key = keys::connection(name);
        loop {
            // A pause this process set: no need to ask the store.
            while let Some(wait) = self.paused_for(&conn_key, ports.clock.now_ms()) {
                if wait > MAX_INLINE_WAIT {
                    return Gate::Later(wait);
                }
                ports.clock.sleep(wait).await;
            }
            let mut gate = self.spend(ports, name, limit, key).await;
            if let (Gate::Go, Some(b), Some(cost)) = (&gate, limit.tokens, cost) {
                gate = take(ports, &keys::connection_tokens(name), b, cost).await;
            }
            // Asking the store takes time; a 429 read meanwhile paused the
            // connection here: the token is spent, but the call waits for
            // the pause like any other (checked last, with no await between
            // this check and the call going out).
            if matches!(gate, Gate::Go)
                && self.paused_for(&conn_key, ports.clock.now_ms()).is_some()
            {
                continue;
            }
            return gate;
        }
    }

    /// The tokens a call needs from the store: the connection's key, then its per-key bucket.
    async fn spend(&self, ports: &Ports, name: &str, limit: &Limit, key: Option<&str>) -> Gate {
        let conn_key = &keys::connection(name);
        match (limit.bucket, limit.per_key, key) {
            // The connection's own bucket.
            (Some(b), false, _) => self.in_line(ports, conn_key, b).await,
            // A pause on the connection's key, then the rendered key's bucket.
            (Some(b), true, Some(k)) => match self.unpaused(ports, conn_key).await {
                Gate::Go => {
                    self.in_line(ports, &keys::connection_value(name, k), b)
                        .await
                }
                other => other,
            },
            // No rate limit: only a pause can hold the call.
            _ => self.unpaused(ports, conn_key).await,
        }
    }

    /// Queue in-process for bucket `key`, then take a token from the store.
    async fn in_line(&self, ports: &Ports, key: &str, b: Bucket) -> Gate {
        let line = self.line(key, b);
        let ahead = line.queued.fetch_add(1, Ordering::SeqCst);
        let permit = tokio::time::timeout(MAX_QUEUE_WAIT, line.pollers.acquire()).await;
        line.queued.fetch_sub(1, Ordering::SeqCst);
        let Ok(Ok(_permit)) = permit else {
            // Too long a line: come back when this caller's turn is likely.
            let turn = (ahead + 1) as f64 / b.rate_per_sec.max(1e-6);
            return Gate::Later(Duration::from_secs_f64(turn.clamp(0.1, 3600.0)));
        };
        take(ports, key, b, 1.0).await
    }

    fn line(&self, key: &str, b: Bucket) -> Arc<Line> {
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        lines
            .entry(key.to_owned())
            .or_insert_with(|| {
                Arc::new(Line {
                    pollers: Semaphore::new((b.burst as usize).clamp(1, MAX_POLLERS)),
                    queued: AtomicUsize::new(0),
                })
            })
            .clone()
    }

    /// Wait out the store's pause on `key`, sleeping through short ones:
    /// only a read (there is no token to take), where taking from an
    /// [`UNLIMITED`] bucket would be a write per call; and the read is
    /// this process's copy while it is younger than [`STORE_REFRESH`].
    async fn unpaused(&self, ports: &Ports, key: &str) -> Gate {
        loop {
            let until = match self.pauses.stored_until(ports, key).await {
                Ok(until) => until,
                Err(e) => return Gate::Unavailable(e),
            };
            let left = until.saturating_sub(ports.clock.now_ms());
            if left <= 0 {
                return Gate::Go;
            }
            let d = Duration::from_millis(left.unsigned_abs());
            if d > MAX_INLINE_WAIT {
                return Gate::Later(d);
            }
            ports.clock.sleep(d).await;
        }
    }
}

/// Take `cost` tokens from bucket `key`, sleeping through short waits.
async fn take(ports: &Ports, key: &str, b: Bucket, cost: f64) -> Gate {
    loop {
        match ports.limits.acquire_n(key, b, cost).await {
            Ok(Acquire::Granted) => return Gate::Go,
            Ok(Acquire::Wait(d)) if d <= MAX_INLINE_WAIT => ports.clock.sleep(d).await,
            Ok(Acquire::Wait(d)) => return Gate::Later(d),
            Err(e) => return Gate::Unavailable(e),
        }
    }
}

/// The token bucket ferry spends for a documented limit of `requests` per `per`:
/// `headroom` of the rate, with a burst small enough that no window of `per`
/// ever holds more than `requests` calls. A bucket of burst `b` and rate `r`
/// allows at most `b + floor(r·per)` calls in any window of `per`, so `b` is
/// `floor(requests·(1-headroom))` (at least 1) and `r·per` stays below
/// `requests - b + 1`.
pub fn bucket(rl: &RateLimit) -> Bucket {
    shape(f64::from(rl.requests.get()), rl.per.get(), rl.headroom)
}

/// The bucket for `requests` (or tokens) per `per` at `headroom` (see [`bucket`]).
fn shape(requests: f64, per: Duration, headroom: Option<f64>) -> Bucket {
    let headroom = headroom.unwrap_or(DEFAULT_HEADROOM).clamp(0.01, 1.0);
    let per = per.as_secs_f64().max(0.001);
    let burst = (requests * (1.0 - headroom) + 1e-9).floor().max(1.0);
    let per_window = (requests * headroom).min(requests - burst + 0.999);
    Bucket {
        rate_per_sec: per_window / per,
        burst,
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;
    use std::sync::Arc;

    use async_trait::async_trait;
    use tokio::sync::Notify;

    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::config::Dur;
    use crate::ports::{RateLimits, StoreResult};
    use crate::store::SqliteStore;

    /// The store's rate limits, with `acquire` and `paused_until` held until released.
    struct Held {
        inner: Arc<dyn RateLimits>,
        entered: Notify,
        release: Notify,
    }

    #[async_trait]
    impl RateLimits for Held {
        async fn acquire_n(&self, key: &str, bucket: Bucket, cost: f64) -> StoreResult<Acquire> {
            self.entered.notify_one();
            self.release.notified().await;
            self.inner.acquire_n(key, bucket, cost).await
        }
        async fn pause(&self, key: &str, until: Millis) -> StoreResult<()> {
            self.inner.pause(key, until).await
        }
        async fn paused_until(&self, key: &str) -> StoreResult<Millis> {
            // A connection without a rate limit asks only for its pause.
            self.entered.notify_one();
            self.release.notified().await;
            self.inner.paused_until(key).await
        }
    }

    /// A call that was asking the store for its token when a `429` paused the
    /// connection in this process does not go out during the pause: the gate
    /// looks at the pause again after the store answers.
    #[tokio::test]
    async fn a_pause_set_while_the_store_answers_holds_the_call() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::at(crate::contract::T0);
        let store = SqliteStore::open_on(&dir.path().join("hub.db"), clock.clone(), 5);
        let mut ports = store.ports();
        let held = Arc::new(Held {
            inner: ports.limits.clone(),
            entered: Notify::new(),
            release: Notify::new(),
        });
        ports.limits = held.clone();
        let conn = Limit::default();
        let limiter = Arc::new(Limiter::default());

        let gate = {
            let (limiter, ports, conn) = (limiter.clone(), ports.clone(), conn);
            tokio::spawn(async move { limiter.pass(&ports, "crm", &conn, None, None).await })
        };
        held.entered.notified().await;
        // A 429 on another call pauses the connection for 10 s meanwhile.
        limiter.pause_here("crm", clock.now_ms() + 10_000);
        held.release.notify_one();
        match gate.await.unwrap() {
            Gate::Later(wait) => assert_eq!(wait, Duration::from_secs(10)),
            other => panic!("the call went out during the pause: {other:?}"),
        }
    }

    #[test]
    fn bucket_never_allows_more_than_the_documented_limit_per_window() {
        for requests in [1u32, 2, 3, 10, 100, 1000] {
            for headroom in [0.5, 0.8, 0.9, 1.0] {
                for per in [1u64, 10, 60] {
                    let rl = RateLimit {
                        requests: NonZeroU32::new(requests).unwrap(),
                        per: Dur(Duration::from_secs(per)),
                        headroom: Some(headroom),
                        key: None,
                        from_headers: None,
                        tokens: None,
                    };
                    let b = bucket(&rl);
                    let max_in_window = b.burst + (b.rate_per_sec * per as f64).floor();
                    assert!(
                        max_in_window <= f64::from(requests),
                        "{requests}/{per}s h={headroom}: {b:?}"
                    );
                    assert!(b.burst >= 1.0);
                }
            }
        }
        let ten = RateLimit {
            requests: NonZeroU32::new(10).unwrap(),
            per: Dur(Duration::from_secs(1)),
            headroom: None,
            key: None,
            from_headers: None,
            tokens: None,
        };
        assert_eq!(
            bucket(&ten),
            Bucket {
                rate_per_sec: 8.0,
                burst: 2.0
            }
        );
    }
}
