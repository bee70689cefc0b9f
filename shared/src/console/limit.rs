//! The login attempt limit: a few wrong console tokens per client address
//! per minute, then `429 Too Many Requests` with `Retry-After` until the
//! minute that began with the first failure is over.
//!
//! It lives in the process's memory: each `ferry dev`, and each warm
//! instance of the console Lambda, counts on its own (so a deployed console
//! allows up to this many per instance), and a restart forgets. The client
//! address is the TCP peer in `ferry dev` and API Gateway's `sourceIp` in
//! the Lambda; a request without one counts under the unspecified address,
//! shared by all such requests. The token itself is at least 16 characters,
//! so the limit slows guessing; it is not what makes it hard.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;

use crate::clock::Millis;

/// Wrong tokens allowed per client address within [`LOGIN_WINDOW_MS`].
pub const LOGIN_FAILURES: u32 = 5;
/// The window the failures are counted in, from the first one.
pub const LOGIN_WINDOW_MS: Millis = 60_000;
/// Addresses remembered before the ones whose window is over are dropped.
const PRUNE_AT: usize = 4_096;

/// The address a request without a client address counts under.
pub const UNKNOWN_CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// Failed logins per client address, counted in a fixed window.
#[derive(Debug)]
pub struct LoginLimit {
    max: u32,
    window: Millis,
    seen: Mutex<HashMap<IpAddr, (Millis, u32)>>,
}

impl Default for LoginLimit {
    fn default() -> Self {
        LoginLimit::new(LOGIN_FAILURES, LOGIN_WINDOW_MS)
    }
}

impl LoginLimit {
    /// At most `max` failures per address within `window` ms of the first.
    pub fn new(max: u32, window: Millis) -> LoginLimit {
        LoginLimit {
            max,
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, (Millis, u32)>> {
        // A panic while holding it leaves only counts behind: keep them.
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `Err(ms)` when `who` has used up its failures at `now`: how long
    /// until it may try again; `Ok` otherwise.
    pub fn check(&self, who: IpAddr, now: Millis) -> Result<(), Millis> {
        match self.seen().get(&who) {
            Some(&(start, n)) if n >= self.max && now < start + self.window => {
                Err(start + self.window - now)
            }
            _ => Ok(()),
        }
    }

    /// Count a wrong token from `who` at `now`.
    pub fn failed(&self, who: IpAddr, now: Millis) {
        let mut seen = self.seen();
        if seen.len() >= PRUNE_AT {
            let window = self.window;
            seen.retain(|_, (start, _)| now < *start + window);
        }
        let entry = seen.entry(who).or_insert((now, 0));
        if now >= entry.0 + self.window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }

    /// Forget `who`'s failures (it logged in).
    pub fn succeeded(&self, who: IpAddr) {
        self.seen().remove(&who);
    }
}

/// `Retry-After` seconds for a wait of `ms` (rounded up, at least 1).
pub fn retry_after_secs(ms: Millis) -> Millis {
    ((ms + 999) / 1000).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 8));

    #[test]
    fn a_few_failures_per_window_then_a_wait() {
        let limit = LoginLimit::new(3, 60_000);
        for t in 0..3 {
            assert_eq!(limit.check(A, 1_000 + t), Ok(()));
            limit.failed(A, 1_000 + t);
        }
        assert_eq!(limit.check(A, 2_000), Err(59_000));
        assert_eq!(limit.check(B, 2_000), Ok(()), "per address");
        assert_eq!(limit.check(A, 61_000), Ok(()), "the window is over");
        limit.failed(A, 61_000);
        assert_eq!(limit.check(A, 61_001), Ok(()), "a new window counts anew");
        limit.failed(A, 61_001);
        limit.succeeded(A);
        limit.failed(A, 61_002);
        limit.failed(A, 61_003);
        assert_eq!(limit.check(A, 61_004), Ok(()), "a login forgets failures");
        assert_eq!(retry_after_secs(59_000), 59);
        assert_eq!(retry_after_secs(1), 1);
        assert_eq!(retry_after_secs(0), 1);
    }
}
