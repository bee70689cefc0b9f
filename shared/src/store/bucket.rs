//! The token bucket both adapters keep per rate-limit key: the arithmetic in
//! one place, the storage (a SQLite row, a DynamoDB item) in each adapter.
//!
//! A bucket starts full, refills continuously at `rate_per_sec` up to `burst`,
//! and each acquire takes its cost (one token for a call; a call's tokens for
//! a token budget). A cost above the burst is granted once the bucket is full
//! and leaves it in debt (below zero), so the rate over time still holds.
//! Waits are rounded up to whole clock milliseconds, so sleeping for the
//! returned duration is always enough.

use std::time::Duration;

use crate::clock::Millis;
use crate::ports::{Acquire, Bucket};

/// Longest wait ever returned (a bucket with a zero rate never refills;
/// callers look again after this).
const MAX_WAIT_MS: f64 = 3_600_000.0;
/// Float slack when comparing token counts.
const EPSILON: f64 = 1e-9;

/// A bucket's stored state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct State {
    /// Tokens left at `updated_at` (below zero: in debt); `None`: full.
    pub tokens: Option<f64>,
    /// When `tokens` was computed.
    pub updated_at: Millis,
    /// Nobody acquires before this.
    pub paused_until: Millis,
}

impl State {
    /// A bucket nobody has touched: full, not paused.
    pub fn new(now: Millis) -> Self {
        Self {
            tokens: None,
            updated_at: now,
            paused_until: 0,
        }
    }
}

/// Try to take `cost` tokens at `now`: the answer and the state to store.
/// The call may go once the bucket holds `cost` (or is full, for a cost
/// above the burst); a cost that is not a positive number counts as one.
pub(crate) fn take(state: State, now: Millis, bucket: Bucket, cost: f64) -> (Acquire, State) {
    let burst = if bucket.burst.is_finite() {
        bucket.burst.max(1.0)
    } else {
        1.0
    };
    let rate = if bucket.rate_per_sec.is_finite() {
        bucket.rate_per_sec.max(0.0)
    } else {
        0.0
    };
    // Refill for the time since the last acquire (never backwards).
    let since = state.updated_at.min(now);
    let elapsed_ms = (now - since) as f64;
    let mut tokens = state
        .tokens
        .map_or(burst, |t| (t + elapsed_ms * rate / 1000.0).min(burst));

    let cost = if cost.is_finite() && cost > 0.0 {
        cost
    } else {
        1.0
    };
    let needed = cost.min(burst);
    let token_wait_ms = if tokens + EPSILON >= needed {
        0.0
    } else if rate > 0.0 {
        (((needed - tokens) * 1000.0 / rate) - 1e-6)
            .ceil()
            .clamp(1.0, MAX_WAIT_MS)
    } else {
        MAX_WAIT_MS
    };
    let pause_wait_ms = (state.paused_until - now).max(0) as f64;
    let answer = if token_wait_ms == 0.0 && pause_wait_ms == 0.0 {
        tokens = if cost > needed {
            tokens - cost
        } else {
            (tokens - cost).max(0.0)
        };
        Acquire::Granted
    } else {
        Acquire::Wait(Duration::from_millis(
            token_wait_ms.max(pause_wait_ms) as u64
        ))
    };
    let next = State {
        tokens: Some(tokens),
        updated_at: now.max(state.updated_at),
        paused_until: state.paused_until,
    };
    (answer, next)
}

/// When a bucket left in `state` is full again and its pause is over: from
/// then on, forgetting it changes nothing (the AWS adapter's TTL).
pub(crate) fn idle_from(state: State, bucket: Bucket) -> Millis {
    let missing = (bucket.burst.max(1.0) - state.tokens.unwrap_or(f64::MAX)).max(0.0);
    let refill_ms = if bucket.rate_per_sec > 0.0 && bucket.rate_per_sec.is_finite() {
        (missing * 1000.0 / bucket.rate_per_sec).ceil().min(1e15) as Millis
    } else if missing > 0.0 {
        Millis::MAX / 4
    } else {
        0
    };
    state
        .updated_at
        .saturating_add(refill_ms)
        .max(state.paused_until)
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Bucket = Bucket {
        rate_per_sec: 10.0,
        burst: 3.0,
    };

    #[test]
    fn full_then_exact_wait() {
        let mut s = State::new(0);
        for _ in 0..3 {
            let (a, next) = take(s, 0, B, 1.0);
            assert_eq!(a, Acquire::Granted);
            s = next;
        }
        assert_eq!(
            take(s, 0, B, 1.0).0,
            Acquire::Wait(Duration::from_millis(100))
        );
        assert_eq!(
            take(s, 40, B, 1.0).0,
            Acquire::Wait(Duration::from_millis(60))
        );
    }

    #[test]
    fn a_cost_waits_for_its_tokens_and_one_above_the_burst_leaves_a_debt() {
        // Two tokens of three, then the third one is not enough for two.
        let (a, s) = take(State::new(0), 0, B, 2.0);
        assert_eq!(a, Acquire::Granted);
        assert_eq!(
            take(s, 0, B, 2.0).0,
            Acquire::Wait(Duration::from_millis(100))
        );
        // Five from a full bucket of three: granted, two in debt; the next
        // single token comes after three tokens' refill.
        let (a, s) = take(State::new(0), 0, B, 5.0);
        assert_eq!(a, Acquire::Granted);
        assert_eq!(s.tokens, Some(-2.0));
        assert_eq!(
            take(s, 0, B, 1.0).0,
            Acquire::Wait(Duration::from_millis(300))
        );
        // Nonsense costs count as one.
        assert_eq!(take(State::new(0), 0, B, f64::NAN).1.tokens, Some(2.0));
        assert_eq!(take(State::new(0), 0, B, -4.0).1.tokens, Some(2.0));
    }

    #[test]
    fn idle_once_refilled_and_unpaused() {
        let s = State {
            tokens: Some(1.0),
            updated_at: 1_000,
            paused_until: 0,
        };
        assert_eq!(idle_from(s, B), 1_200);
        let paused = State {
            paused_until: 9_000,
            ..s
        };
        assert_eq!(idle_from(paused, B), 9_000);
        assert_eq!(idle_from(State::new(5), B), 5);
    }
}
