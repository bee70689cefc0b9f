//! Where a retry is decided: what is worth trying again, and when. The one
//! decision is [`decide`] (with [`may_attempt`], its check before a call):
//! pure functions of the verdict, the attempts so far, the policy and the
//! time, used by steps, batched steps and sync polls alike.
//!
//! Defaults: connection errors, timeouts, 5xx, 408 and 429 are retried with
//! exponential backoff and full jitter; `Retry-After` on 429/503 is honoured
//! (capped at [`RETRY_AFTER_CAP`]). `401` is an authentication failure (see
//! [`crate::auth`]); any other 4xx and every mapping error fail at once:
//! trying again cannot help. A step's `classify`, then its connection's,
//! can say otherwise per status or class (`{"409": success}`), or by
//! expressions over the whole response (a Slack `200 {"ok": false}`).

use std::time::Duration;

use rand::Rng;

use crate::clock::Millis;
use crate::config::RetryPolicy;
use crate::model::Failure;

mod classify;
mod reset;
pub use crate::config::StatusRule;
pub use classify::{Rules, Verdict, judge, judge_response, judge_status, parse_retry_after};
pub use reset::{ResetFormat, go_duration, parse_reset};

/// Attempts in all, the first included, when the config says nothing.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 12;
/// First backoff when the config says nothing.
pub const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// Largest backoff when the config says nothing.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// How long after its first attempt a step is given up, when the config says nothing.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
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
    /// Give up this long after the first attempt.
    pub max_age: Duration,
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
            max_age: pick(&|p| p.max_age.map(|d| d.get())).unwrap_or(DEFAULT_MAX_AGE),
        }
    }

    /// The largest backoff before attempt `failed + 1`, after `failed` failed
    /// attempts (≥ 1): `min(max, initial · 2^(failed-1))`.
    pub fn ceiling(&self, failed: u32) -> Duration {
        self.initial
            .saturating_mul(1u32 << failed.saturating_sub(1).min(30))
            .min(self.max)
    }

    /// Backoff before attempt `failed + 1`: uniformly random in
    /// `[0, ceiling(failed)]` (full jitter).
    pub fn backoff(&self, failed: u32) -> Duration {
        jittered(self.ceiling(failed), rand::rng().random())
    }
}

/// `ceiling · u`, to the millisecond, for `u` in `[0, 1]`.
fn jittered(ceiling: Duration, u: f64) -> Duration {
    let ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis((ms as f64 * u.clamp(0.0, 1.0)).round() as u64)
}

/// A step's (or a page's) attempts so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct History {
    /// Attempts made, the last one included.
    pub attempts: u32,
    /// When the first one started.
    pub first_at: Millis,
}

/// What to do after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// It worked.
    Done,
    /// Try again after this long.
    RetryIn(Duration),
    /// Stop: the run fails for good.
    GiveUp(GiveUp),
}

/// Why a step (or a page) is given up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GiveUp {
    /// The kind of failure, for the run record and alerts.
    pub failure: Failure,
    /// `gave up after 3 attempts` / `… (max_age)` when retries ran out; empty
    /// when trying again could not help (the last error says why).
    pub why: String,
}

impl GiveUp {
    /// The reason a person reads: `why; last error: …`, or the last error alone.
    pub fn reason(&self, last_error: &str) -> String {
        if self.why.is_empty() {
            last_error.to_owned()
        } else {
            format!("{}; last error: {last_error}", self.why)
        }
    }
}

/// Before a call: may this step still be attempted? Not once `max_age` has
/// passed since its first attempt (a message that waited out the age in the
/// queue gives up without calling).
pub fn may_attempt(history: Option<History>, policy: &Policy, now: Millis) -> Result<(), GiveUp> {
    match history {
        Some(h) if now >= crate::clock::after(h.first_at, policy.max_age) => Err(max_age(policy)),
        _ => Ok(()),
    }
}

/// The one retry decision: after an attempt judged `verdict` (with `status`,
/// the last response's, if any), given the history so far (this attempt
/// counted), retry in how long, or give up and why. `jitter` in `[0, 1]`
/// picks the backoff within its ceiling (the caller draws it at random);
/// a server's `Retry-After` is used as is. No wait runs past `max_age`.
pub fn decide(
    verdict: &Verdict,
    status: Option<u16>,
    history: History,
    policy: &Policy,
    now: Millis,
    jitter: f64,
) -> Decision {
    let give_up = |failure| {
        Decision::GiveUp(GiveUp {
            failure,
            why: String::new(),
        })
    };
    let after = match verdict {
        Verdict::Success => return Decision::Done,
        Verdict::Unauthorized => return give_up(Failure::AuthFailed),
        Verdict::Fail => {
            return give_up(match status {
                Some(403) => Failure::PermissionDenied,
                Some(_) => Failure::Rejected,
                None => Failure::Mapping,
            });
        }
        Verdict::Final(failure) => return give_up(*failure),
        Verdict::Retry { after } | Verdict::RateLimited { after } => after,
    };
    let n = history.attempts;
    if n >= policy.max_attempts {
        return Decision::GiveUp(GiveUp {
            failure: Failure::Exhausted,
            why: format!("gave up after {n} attempts"),
        });
    }
    let deadline = crate::clock::after(history.first_at, policy.max_age);
    if now >= deadline {
        return Decision::GiveUp(max_age(policy));
    }
    let left = Duration::from_millis((deadline - now).max(0) as u64);
    let delay = after.unwrap_or_else(|| jittered(policy.ceiling(n), jitter));
    Decision::RetryIn(delay.min(left))
}

fn max_age(policy: &Policy) -> GiveUp {
    GiveUp {
        failure: Failure::Exhausted,
        why: format!(
            "gave up after {} (max_age)",
            humantime::format_duration(policy.max_age)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The retry decision, as a table: verdict, status, attempts, age, → decision.
    #[test]
    fn the_retry_decision_table() {
        let p = Policy {
            max_attempts: 4,
            initial: Duration::from_secs(1),
            max: Duration::from_secs(10),
            max_age: Duration::from_secs(60),
        };
        let retry = |after| Verdict::Retry { after };
        let s = Duration::from_secs;
        let ms = |n: u64| Duration::from_millis(n);
        let exhausted = |why: &str| {
            Decision::GiveUp(GiveUp {
                failure: Failure::Exhausted,
                why: why.to_owned(),
            })
        };
        let failed = |failure| {
            Decision::GiveUp(GiveUp {
                failure,
                why: String::new(),
            })
        };
        // (verdict, status, attempts, seconds since the first, jitter) → decision
        let table: Vec<(Verdict, Option<u16>, u32, i64, f64, Decision)> = vec![
            (Verdict::Success, Some(200), 1, 0, 0.5, Decision::Done),
            (Verdict::Success, Some(200), 9, 999, 0.5, Decision::Done),
            // Backoff: full jitter below initial · 2^(n-1), capped at max.
            (retry(None), Some(500), 1, 0, 1.0, Decision::RetryIn(s(1))),
            (retry(None), Some(500), 1, 0, 0.0, Decision::RetryIn(s(0))),
            (retry(None), None, 2, 1, 0.5, Decision::RetryIn(s(1))),
            (retry(None), Some(503), 3, 3, 1.0, Decision::RetryIn(s(4))),
            (retry(None), Some(502), 3, 3, 0.25, Decision::RetryIn(s(1))),
            // Retry-After is used as given, jitter or not.
            (
                retry(Some(s(7))),
                Some(429),
                1,
                0,
                0.0,
                Decision::RetryIn(s(7)),
            ),
            // No wait past max_age: 55 s in, 5 s are left.
            (
                retry(Some(s(30))),
                Some(429),
                2,
                55,
                0.0,
                Decision::RetryIn(s(5)),
            ),
            (
                retry(None),
                Some(500),
                2,
                59,
                1.0,
                Decision::RetryIn(ms(1000)),
            ),
            // Out of attempts, or of time.
            (
                retry(None),
                Some(500),
                4,
                5,
                0.5,
                exhausted("gave up after 4 attempts"),
            ),
            (
                retry(Some(s(1))),
                Some(429),
                9,
                5,
                0.5,
                exhausted("gave up after 9 attempts"),
            ),
            (
                retry(None),
                Some(500),
                2,
                60,
                0.5,
                exhausted("gave up after 1m (max_age)"),
            ),
            // Trying again cannot help.
            (
                Verdict::Unauthorized,
                Some(401),
                1,
                0,
                0.5,
                failed(Failure::AuthFailed),
            ),
            (
                Verdict::Fail,
                Some(403),
                1,
                0,
                0.5,
                failed(Failure::PermissionDenied),
            ),
            (
                Verdict::Fail,
                Some(422),
                1,
                0,
                0.5,
                failed(Failure::Rejected),
            ),
            (
                Verdict::Fail,
                Some(302),
                1,
                0,
                0.5,
                failed(Failure::Rejected),
            ),
            (Verdict::Fail, None, 1, 0, 0.5, failed(Failure::Mapping)),
        ];
        let first_at = 1_700_000_000_000;
        for (verdict, status, attempts, age, jitter, want) in table {
            let history = History { attempts, first_at };
            let now = first_at + age * 1000;
            let got = decide(&verdict, status, history, &p, now, jitter);
            assert_eq!(
                got, want,
                "{verdict:?} {status:?} after {attempts} attempts, {age} s in"
            );
        }
    }

    #[test]
    fn a_step_past_its_max_age_is_not_attempted_again() {
        let p = Policy {
            max_attempts: 4,
            initial: Duration::from_secs(1),
            max: Duration::from_secs(10),
            max_age: Duration::from_secs(60),
        };
        let h = |first_at| {
            Some(History {
                attempts: 1,
                first_at,
            })
        };
        assert_eq!(may_attempt(None, &p, 0), Ok(()));
        assert_eq!(may_attempt(h(0), &p, 59_999), Ok(()));
        let late = may_attempt(h(0), &p, 60_000).unwrap_err();
        assert_eq!(late.failure, Failure::Exhausted);
        assert_eq!(
            late.reason("HTTP 503"),
            "gave up after 1m (max_age); last error: HTTP 503"
        );
    }

    #[test]
    fn backoff_is_jittered_below_an_exponential_ceiling() {
        let p = Policy {
            max_attempts: 5,
            initial: Duration::from_millis(100),
            max: Duration::from_millis(500),
            max_age: DEFAULT_MAX_AGE,
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
