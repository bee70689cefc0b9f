//! Where a retry is decided: what is worth trying again, and when.
//!
//! Connection errors, timeouts, 5xx, 408 and 429 are retried with exponential
//! backoff and full jitter; `Retry-After` on 429/503 is honoured (capped).
//! Any other 4xx and every mapping error fail at once: trying again cannot help.

use std::time::Duration;

use rand::Rng;

use crate::config::RetryPolicy;

/// Attempts in all, the first included, when the config says nothing.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 8;
/// First backoff when the config says nothing.
pub const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// Largest backoff when the config says nothing.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// The longest `Retry-After` ferry will wait for.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(3600);

/// The effective retry policy of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Attempts in all.
    pub max_attempts: u32,
    /// First backoff.
    pub initial: Duration,
    /// Largest backoff.
    pub max: Duration,
}

impl Policy {
    /// The step's policy, else the workflow's, else the defaults (field by field).
    pub fn resolve(step: Option<&RetryPolicy>, workflow: Option<&RetryPolicy>) -> Self {
        let pick = |f: &dyn Fn(&RetryPolicy) -> Option<Duration>| {
            step.and_then(f).or_else(|| workflow.and_then(f))
        };
        Policy {
            max_attempts: step
                .and_then(|p| p.max_attempts)
                .or_else(|| workflow.and_then(|p| p.max_attempts))
                .map_or(DEFAULT_MAX_ATTEMPTS, |n| n.get()),
            initial: pick(&|p| p.initial_backoff.map(|d| d.get()))
                .unwrap_or(DEFAULT_INITIAL_BACKOFF),
            max: pick(&|p| p.max_backoff.map(|d| d.get())).unwrap_or(DEFAULT_MAX_BACKOFF),
        }
    }

    /// Backoff before attempt `failed + 1`, after `failed` failed attempts (≥ 1):
    /// uniformly random in `[0, min(max, initial · 2^(failed-1))]` (full jitter).
    pub fn backoff(&self, failed: u32) -> Duration {
        let exp = self
            .initial
            .saturating_mul(1u32 << failed.saturating_sub(1).min(30));
        let ceiling = exp.min(self.max);
        let ms = ceiling.as_millis() as u64;
        Duration::from_millis(if ms == 0 {
            0
        } else {
            rand::rng().random_range(0..=ms)
        })
    }
}

/// What to do after an outbound call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The call did what it should.
    Success,
    /// Worth trying again; `after` is the server's `Retry-After`, if it sent one.
    Retry {
        /// Server-requested wait.
        after: Option<Duration>,
    },
    /// Trying again cannot help.
    Fail,
}

/// Judge an HTTP status (and `Retry-After`, when present).
pub fn judge_status(status: u16, retry_after: Option<&str>, now_ms: i64) -> Verdict {
    match status {
        200..=299 => Verdict::Success,
        408 | 500..=599 | 429 => Verdict::Retry {
            after: if status == 429 || status == 503 {
                retry_after.and_then(|v| parse_retry_after(v, now_ms))
            } else {
                None
            },
        },
        _ => Verdict::Fail,
    }
}

/// `Retry-After` as seconds or an HTTP date, capped at [`RETRY_AFTER_CAP`].
pub fn parse_retry_after(value: &str, now_ms: i64) -> Option<Duration> {
    let value = value.trim();
    let d = if let Ok(secs) = value.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        let at_ms = at.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as i64;
        Duration::from_millis((at_ms - now_ms).max(0) as u64)
    };
    Some(d.min(RETRY_AFTER_CAP))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert_eq!(judge_status(200, None, 0), Verdict::Success);
        assert_eq!(judge_status(204, None, 0), Verdict::Success);
        assert_eq!(
            judge_status(500, Some("5"), 0),
            Verdict::Retry { after: None }
        );
        assert_eq!(
            judge_status(503, Some("5"), 0),
            Verdict::Retry {
                after: Some(Duration::from_secs(5))
            }
        );
        assert_eq!(
            judge_status(429, Some("2"), 0),
            Verdict::Retry {
                after: Some(Duration::from_secs(2))
            }
        );
        assert_eq!(judge_status(408, None, 0), Verdict::Retry { after: None });
        for s in [400, 401, 403, 404, 409, 422, 302] {
            assert_eq!(judge_status(s, None, 0), Verdict::Fail, "{s}");
        }
    }

    #[test]
    fn retry_after_http_date_and_cap() {
        let now = 1_700_000_000_000;
        let date = httpdate::fmt_http_date(
            std::time::UNIX_EPOCH + Duration::from_millis(now as u64 + 30_000),
        );
        assert_eq!(parse_retry_after(&date, now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("999999", now), Some(RETRY_AFTER_CAP));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn backoff_is_jittered_below_an_exponential_ceiling() {
        let p = Policy {
            max_attempts: 5,
            initial: Duration::from_millis(100),
            max: Duration::from_millis(500),
        };
        for failed in 1..=6 {
            let ceiling = (100u64 << (failed - 1)).min(500);
            for _ in 0..50 {
                assert!(p.backoff(failed) <= Duration::from_millis(ceiling));
            }
        }
        // Full jitter spreads retries: 50 draws are not all equal.
        let draws: std::collections::HashSet<_> = (0..50).map(|_| p.backoff(3)).collect();
        assert!(draws.len() > 5);
    }
}
