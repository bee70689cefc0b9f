//! Time as a port, so leases, delays, replay windows and schedules are testable
//! with a fixed or hand-advanced clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// `d` in milliseconds, saturating at [`Millis::MAX`] (a huge duration never wraps
/// around to the past).
pub fn millis(d: std::time::Duration) -> Millis {
    Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX)
}

/// `at + d`, saturating: the far future, never an overflow.
pub fn after(at: Millis, d: std::time::Duration) -> Millis {
    at.saturating_add(millis(d))
}

/// `ms` as RFC 3339 UTC with seconds, e.g. `2024-05-01T12:00:00Z`.
pub fn rfc3339(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now, in milliseconds since the Unix epoch.
    fn now_ms(&self) -> Millis;

    /// Wait `d` on this clock: a real sleep, except on a [`VirtualClock`],
    /// where waiting moves the clock instead (`ferry test`). Code that waits
    /// for something the clock measures (a rate-limit token, a pause) waits
    /// here, so a virtual run never stands still.
    fn sleep(&self, d: std::time::Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(d))
    }

    /// A draw in `[0, 1]` that spreads retries over time (the backoff's
    /// full jitter): random, except on a [`VirtualClock`], where it is
    /// always 1 (the longest wait), so a test's timeline is the same every run.
    fn jitter(&self) -> f64 {
        rand::random()
    }
}

/// A boxed future, as [`Clock::sleep`] returns it.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> Millis {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as Millis)
            .unwrap_or(0)
    }
}

/// A clock that only moves when told to (tests).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock standing at `ms`.
    pub fn at(ms: Millis) -> Arc<Self> {
        Arc::new(Self(AtomicI64::new(ms)))
    }
    /// Move forward by `ms`.
    pub fn advance(&self, ms: Millis) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
    /// Set to `ms`.
    pub fn set(&self, ms: Millis) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> Millis {
        self.0.load(Ordering::SeqCst)
    }
}

/// A clock that only moves when told to, and on which every wait
/// ([`Clock::sleep`]) moves it at once by the time waited: retries, backoffs
/// and rate limits take no real time (`ferry test`, [`crate::testing`]).
/// Its [`Clock::jitter`] is fixed, so the timeline is deterministic.
#[derive(Debug, Default)]
pub struct VirtualClock(ManualClock);

impl VirtualClock {
    /// A virtual clock standing at `ms`.
    pub fn at(ms: Millis) -> Arc<Self> {
        Arc::new(Self(ManualClock(AtomicI64::new(ms))))
    }
    /// Move forward by `ms`.
    pub fn advance(&self, ms: Millis) {
        self.0.advance(ms);
    }
    /// Move forward to `ms` (never back).
    pub fn advance_to(&self, ms: Millis) {
        self.0.0.fetch_max(ms, Ordering::SeqCst);
    }
}

impl Clock for VirtualClock {
    fn now_ms(&self) -> Millis {
        self.0.now_ms()
    }
    fn sleep(&self, d: std::time::Duration) -> BoxFuture<'static, ()> {
        self.0.advance(millis(d));
        Box::pin(tokio::task::yield_now())
    }
    fn jitter(&self) -> f64 {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn huge_durations_saturate_instead_of_wrapping() {
        assert_eq!(super::millis(Duration::from_millis(1_500)), 1_500);
        assert_eq!(super::millis(Duration::MAX), super::Millis::MAX);
        let ten_e19_secs = Duration::from_secs(10_000_000_000_000_000_000);
        assert_eq!(super::after(1_000, ten_e19_secs), super::Millis::MAX);
        assert_eq!(super::after(1_000, Duration::from_secs(2)), 3_000);
    }

    #[tokio::test]
    async fn a_wait_on_a_virtual_clock_moves_it_instead_of_sleeping() {
        use super::Clock;
        let clock = super::VirtualClock::at(1_000);
        clock.sleep(Duration::from_secs(3600)).await;
        assert_eq!(clock.now_ms(), 1_000 + 3_600_000);
        clock.advance_to(5);
        assert_eq!(clock.now_ms(), 1_000 + 3_600_000, "never back");
        assert_eq!(clock.jitter(), 1.0, "the same timeline every run");
    }
}
