//! The pure part of a circuit breaker: the settings resolved from config,
//! what a call's outcome counts as, and the sliding window of outcomes that
//! says when to open. No I/O and no clock of its own: time is passed in.

use std::collections::VecDeque;
use std::time::Duration;

use crate::clock::{Millis, millis};
use crate::config::Connection;
use crate::retry::Verdict;

/// Default `failure_ratio`: an outage fails (nearly) every call; a flaky
/// target failing a third of its calls, which retries ride out, never gets
/// there by chance over `min_calls`.
pub const DEFAULT_FAILURE_RATIO: f64 = 0.8;
/// Default `min_calls`: twice Convoy's smallest allowed minimum request count.
pub const DEFAULT_MIN_CALLS: u32 = 20;
/// Default `window`.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(60);
/// Default `open_for`.
pub const DEFAULT_OPEN_FOR: Duration = Duration::from_secs(30);
/// Buckets per window: outcomes are counted per `window / BUCKETS`, so the
/// window slides in steps of a twentieth of its length.
const BUCKETS: Millis = 20;

/// A connection's breaker settings, resolved once from its config.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Fraction of calls that must fail, in (0, 1].
    pub failure_ratio: f64,
    /// Fewest calls in the window before the ratio is judged.
    pub min_calls: u32,
    /// How far back calls count.
    pub window: Duration,
    /// How long it stays open before a probe.
    pub open_for: Duration,
}

impl Settings {
    /// The settings of `conn`, `None` when its breaker is turned off.
    pub fn of(conn: &Connection) -> Option<Settings> {
        let cb = conn.circuit_breaker.clone().unwrap_or_default();
        if cb.enabled == Some(false) {
            return None;
        }
        Some(Settings {
            failure_ratio: cb.failure_ratio.unwrap_or(DEFAULT_FAILURE_RATIO),
            min_calls: cb.min_calls.map_or(DEFAULT_MIN_CALLS, |n| n.get()),
            window: cb.window.map_or(DEFAULT_WINDOW, |d| d.get()),
            open_for: cb.open_for.map_or(DEFAULT_OPEN_FOR, |d| d.get()),
        })
    }
}

/// What a call tells the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The target answered: it is up (a success, a `4xx` rejection, a `401`…).
    Up,
    /// The target looks down: a connection error, a timeout, a `5xx`, a `408`,
    /// judged retryable.
    Down,
    /// A `429`: the rate limiter's business; not counted (as a probe it closes,
    /// since the target answered).
    RateLimited,
    /// Nothing went out (an unbuildable request, a refused redirect): not counted.
    NotSent,
}

/// What the last call of `verdict` with `status` (`None`: no answer) counts as.
pub fn outcome(status: Option<u16>, verdict: &Verdict) -> Outcome {
    match (verdict, status) {
        (_, Some(429)) | (Verdict::RateLimited { .. }, _) => Outcome::RateLimited,
        (Verdict::Retry { .. }, None | Some(408)) => Outcome::Down,
        (Verdict::Retry { .. }, Some(s)) if s >= 500 => Outcome::Down,
        (Verdict::Fail | Verdict::Final(_), None) => Outcome::NotSent,
        _ => Outcome::Up,
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    start: Millis,
    calls: u32,
    failures: u32,
}

/// Outcomes of the recent calls of one connection in this process.
#[derive(Debug, Clone)]
pub struct Window {
    buckets: VecDeque<Bucket>,
    /// Calls that started before this are ignored (they began before the
    /// breaker last opened or closed).
    since: Millis,
}

impl Window {
    /// An empty window counting calls started from `now` on.
    pub fn new(now: Millis) -> Self {
        Self {
            buckets: VecDeque::new(),
            since: now,
        }
    }

    /// Forget every outcome; count only calls started after `now` (one that
    /// started in the same millisecond may have passed the gate before).
    pub fn reset(&mut self, now: Millis) {
        self.buckets.clear();
        self.since = now.saturating_add(1);
    }

    /// Count a call that started at `started_at` and ended `now` as failed or
    /// not. Returns whether the breaker should open.
    pub fn record(&mut self, s: &Settings, started_at: Millis, now: Millis, failed: bool) -> bool {
        if started_at < self.since {
            return false;
        }
        let width = (millis(s.window) / BUCKETS).max(1);
        let start = now - now.rem_euclid(width);
        match self.buckets.back_mut() {
            Some(b) if b.start == start => {
                b.calls += 1;
                b.failures += u32::from(failed);
            }
            _ => self.buckets.push_back(Bucket {
                start,
                calls: 1,
                failures: u32::from(failed),
            }),
        }
        self.trips(s, now)
    }

    /// Calls and failures within the window ending `now`.
    pub fn counts(&mut self, s: &Settings, now: Millis) -> (u32, u32) {
        let from = now.saturating_sub(millis(s.window));
        let width = (millis(s.window) / BUCKETS).max(1);
        while self
            .buckets
            .front()
            .is_some_and(|b| b.start + width <= from)
        {
            self.buckets.pop_front();
        }
        self.buckets
            .iter()
            .fold((0, 0), |(c, f), b| (c + b.calls, f + b.failures))
    }

    /// Whether the calls in the window ending `now` open the breaker.
    pub fn trips(&mut self, s: &Settings, now: Millis) -> bool {
        let (calls, failures) = self.counts(s, now);
        calls >= s.min_calls
            && failures > 0
            && f64::from(failures) >= s.failure_ratio * f64::from(calls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Millis = 1_700_000_000_000;

    fn settings(ratio: f64, min_calls: u32) -> Settings {
        Settings {
            failure_ratio: ratio,
            min_calls,
            window: Duration::from_secs(60),
            open_for: Duration::from_secs(30),
        }
    }

    #[test]
    fn it_opens_at_the_ratio_once_there_are_enough_calls() {
        let s = settings(0.5, 10);
        let mut w = Window::new(T);
        // Nine failures: not enough calls yet.
        for i in 0..9 {
            assert!(!w.record(&s, T, T + i, true), "call {i}");
        }
        // The tenth call, a success: 9 of 10 failed.
        assert!(w.record(&s, T, T + 9, false));
        let mut w = Window::new(T);
        for i in 0..6 {
            assert!(!w.record(&s, T, T + i, false));
        }
        for i in 0..4 {
            assert!(!w.record(&s, T, T + 10 + i, true), "4 of 10 is below 0.5");
        }
        assert!(!w.record(&s, T, T + 20, true), "5 of 11 is below 0.5");
        assert!(w.record(&s, T, T + 21, true), "6 of 12 is 0.5");
    }

    #[test]
    fn old_outcomes_slide_out_of_the_window() {
        let s = settings(0.5, 4);
        let mut w = Window::new(T);
        for i in 0..3 {
            assert!(!w.record(&s, T, T + i, true));
        }
        // A minute and a bucket later the three failures no longer count.
        let later = T + 63_000;
        assert_eq!(w.counts(&s, later), (0, 0));
        assert!(!w.record(&s, later, later, true));
        assert_eq!(w.counts(&s, later), (1, 1));
        // Within the window they do.
        let mut w = Window::new(T);
        for i in 0..3 {
            w.record(&s, T, T + i, true);
        }
        assert!(w.record(&s, T, T + 50_000, true));
    }

    #[test]
    fn calls_started_before_a_reset_are_not_counted() {
        let s = settings(0.5, 2);
        let mut w = Window::new(T);
        w.record(&s, T, T + 1, true);
        w.reset(T + 10);
        assert_eq!(w.counts(&s, T + 10), (0, 0));
        // A call in flight when the breaker closed lands afterwards: ignored.
        assert!(!w.record(&s, T + 5, T + 20, true));
        assert!(!w.record(&s, T + 5, T + 21, true));
        assert_eq!(w.counts(&s, T + 21), (0, 0));
        assert!(!w.record(&s, T + 30, T + 30, true));
        assert!(w.record(&s, T + 31, T + 31, true));
    }

    #[test]
    fn a_ratio_of_one_needs_every_call_to_fail() {
        let s = settings(1.0, 3);
        let mut w = Window::new(T);
        w.record(&s, T, T, true);
        w.record(&s, T, T, false);
        assert!(!w.record(&s, T, T, true));
        assert!(!w.record(&s, T, T, true), "3 of 4");
        let mut w = Window::new(T);
        w.record(&s, T, T, true);
        w.record(&s, T, T, true);
        assert!(w.record(&s, T, T, true));
    }

    #[test]
    fn only_a_down_target_counts_as_a_failure() {
        let retry = Verdict::Retry { after: None };
        assert_eq!(
            outcome(None, &retry),
            Outcome::Down,
            "connection error, timeout"
        );
        assert_eq!(outcome(Some(503), &retry), Outcome::Down);
        assert_eq!(outcome(Some(500), &retry), Outcome::Down);
        assert_eq!(outcome(Some(408), &retry), Outcome::Down);
        assert_eq!(outcome(Some(429), &retry), Outcome::RateLimited);
        assert_eq!(
            outcome(Some(423), &retry),
            Outcome::Up,
            "classify says retry, but it answered"
        );
        assert_eq!(outcome(Some(400), &Verdict::Fail), Outcome::Up);
        assert_eq!(
            outcome(Some(503), &Verdict::Fail),
            Outcome::Up,
            "classify says fail"
        );
        assert_eq!(outcome(Some(401), &Verdict::Unauthorized), Outcome::Up);
        assert_eq!(outcome(Some(200), &Verdict::Success), Outcome::Up);
        assert_eq!(outcome(None, &Verdict::Fail), Outcome::NotSent);
    }

    #[test]
    fn defaults_and_off() {
        let conn: Connection =
            serde_json::from_value(serde_json::json!({ "base_url": "http://x" })).unwrap();
        let s = Settings::of(&conn).unwrap();
        assert_eq!(
            (s.failure_ratio, s.min_calls, s.window, s.open_for),
            (0.8, 20, DEFAULT_WINDOW, DEFAULT_OPEN_FOR)
        );
        let off: Connection = serde_json::from_value(serde_json::json!({
            "base_url": "http://x", "circuit_breaker": { "enabled": false }
        }))
        .unwrap();
        assert_eq!(Settings::of(&off), None);
    }
}
