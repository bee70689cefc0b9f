//! The sync scheduler of `ferry dev`: fires each sync at the times its
//! `rate(...)` or `cron(...)` expression names, as EventBridge would, on the
//! hub's [`Clock`] — so tests drive it with a [`crate::clock::ManualClock`].
//!
//! [`Scheduler`] is the pure part (what is due at a given time); [`run`] is
//! the loop that waits for the next due time and fires. A rate counts from
//! the scheduler's start; fire times missed while the process was busy or
//! asleep are not caught up one by one: a due sync fires once, then waits for
//! its next time after now.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::clock::{Clock, Millis};
use crate::schedule::Schedule;

/// The loop looks at the clock at least this often (so a jumping clock is noticed).
pub const TICK: Duration = Duration::from_secs(1);

/// One sync's schedule and its next fire time.
#[derive(Debug, Clone)]
struct Plan {
    name: String,
    schedule: Schedule,
    next: Option<Millis>,
}

/// Which syncs are due when.
#[derive(Debug, Clone, Default)]
pub struct Scheduler {
    plans: Vec<Plan>,
}

impl Scheduler {
    /// Plan `(name, expression)` pairs from `now`. A bad expression is an
    /// error naming its sync (the config loader rejects those first).
    pub fn new<'a>(
        syncs: impl IntoIterator<Item = (&'a str, &'a str)>,
        now: Millis,
    ) -> Result<Self, String> {
        let mut plans = Vec::new();
        for (name, expr) in syncs {
            let schedule = Schedule::parse(expr).map_err(|e| format!("sync {name}: {e}"))?;
            let next = schedule.next_after(now);
            plans.push(Plan {
                name: name.to_owned(),
                schedule,
                next,
            });
        }
        Ok(Self { plans })
    }

    /// The earliest next fire time.
    pub fn next_wake(&self) -> Option<Millis> {
        self.plans.iter().filter_map(|p| p.next).min()
    }

    /// The next fire time of sync `name`.
    pub fn next_of(&self, name: &str) -> Option<Millis> {
        self.plans.iter().find(|p| p.name == name)?.next
    }

    /// The syncs due at `now` (each once), moving each to its next time after `now`.
    pub fn due(&mut self, now: Millis) -> Vec<String> {
        let mut out = Vec::new();
        for p in &mut self.plans {
            let Some(at) = p.next.filter(|at| *at <= now) else {
                continue;
            };
            out.push(p.name.clone());
            p.next = match &p.schedule {
                // Keep a rate on its grid: start + k·rate, the first one after now.
                Schedule::Rate(d) => {
                    let step = crate::clock::millis(*d).max(1);
                    let k = (now.saturating_sub(at) / step).saturating_add(1);
                    Some(at.saturating_add(k.saturating_mul(step)))
                }
                Schedule::Cron(_) => p.schedule.next_after(now),
            };
        }
        out
    }
}

/// Fire `fire(name)` for each due sync (each on its own task, so a long sync
/// never delays another) until `stop` turns true. Looks at `clock` whenever
/// the next fire time comes, and at least every `tick`.
pub async fn run<F, Fut>(
    clock: Arc<dyn Clock>,
    mut scheduler: Scheduler,
    tick: Duration,
    mut stop: watch::Receiver<bool>,
    fire: F,
) where
    F: Fn(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        if *stop.borrow() {
            return;
        }
        let now = clock.now_ms();
        for name in scheduler.due(now) {
            tracing::debug!(sync = %name, at = now, "sync due");
            tokio::spawn(fire(name));
        }
        let Some(next) = scheduler.next_wake() else {
            return;
        };
        let wait = Duration::from_millis((next - now).max(0) as u64).min(tick);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn at(s: &str) -> Millis {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_millis()
    }

    const MIN: Millis = 60_000;

    #[test]
    fn rate_and_cron_are_due_at_their_times() {
        let start = at("2026-11-23T01:58:00Z");
        let mut s = Scheduler::new(
            [
                ("every5", "rate(5 minutes)"),
                ("nightly", "cron(0 2 * * ? *)"),
            ],
            start,
        )
        .unwrap();
        assert_eq!(s.next_of("every5"), Some(start + 5 * MIN));
        assert_eq!(s.next_of("nightly"), Some(at("2026-11-23T02:00:00Z")));
        assert!(s.due(start).is_empty());
        assert!(s.due(at("2026-11-23T01:59:59.999Z")).is_empty());
        assert_eq!(s.due(at("2026-11-23T02:00:00Z")), ["nightly"]);
        assert!(s.due(at("2026-11-23T02:00:00Z")).is_empty(), "fires once");
        assert_eq!(s.due(at("2026-11-23T02:03:00Z")), ["every5"]);
        assert_eq!(s.next_of("every5"), Some(at("2026-11-23T02:08:00Z")));
        // Late by 90 s: fires once, and stays on its grid.
        assert_eq!(s.due(at("2026-11-23T02:09:30Z")), ["every5"]);
        assert_eq!(s.next_of("every5"), Some(at("2026-11-23T02:13:00Z")));
        // Asleep for 20 minutes: one fire, not four.
        assert_eq!(s.due(at("2026-11-23T02:33:10Z")), ["every5"]);
        assert_eq!(s.next_of("every5"), Some(at("2026-11-23T02:38:00Z")));
        assert_eq!(s.next_of("nightly"), Some(at("2026-11-24T02:00:00Z")));
    }

    #[test]
    fn the_longest_rate_fires_once_a_year_and_never_in_a_loop() {
        let start = at("2026-11-23T00:00:00Z");
        let year = 365 * 24 * 60 * MIN;
        let mut s = Scheduler::new([("yearly", "rate(365 days)")], start).unwrap();
        // Polled every millisecond for 5 s: nothing is due.
        assert!((start..start + 5_000).all(|t| s.due(t).is_empty()));
        assert_eq!(s.due(start + year), ["yearly"]);
        assert_eq!(s.next_of("yearly"), Some(start + 2 * year));
        // rate(u64::MAX days) fired 2 344 times in 5 s; now it does not plan at all.
        let e = Scheduler::new([("never", "rate(18446744073709551615 days)")], start).unwrap_err();
        assert!(
            e.contains("sync never") && e.contains("at most 365 days"),
            "{e}"
        );
    }

    #[test]
    fn weekday_crons_skip_the_weekend() {
        // Friday 2026-11-27 17:45; fires every 15 minutes 08:00–17:59 on weekdays.
        let mut s = Scheduler::new(
            [("office", "cron(0/15 8-17 ? * MON-FRI *)")],
            at("2026-11-27T17:40:00Z"),
        )
        .unwrap();
        assert_eq!(s.due(at("2026-11-27T17:45:00Z")), ["office"]);
        assert_eq!(s.next_of("office"), Some(at("2026-11-30T08:00:00Z")));
    }

    #[test]
    fn a_bad_expression_names_its_sync() {
        let e = Scheduler::new([("x", "rate(5 weeks)")], 0).unwrap_err();
        assert!(e.starts_with("sync x: "), "{e}");
    }

    #[tokio::test]
    async fn the_loop_fires_on_the_injected_clock() {
        let start = at("2026-11-23T01:58:00Z");
        let clock = ManualClock::at(start);
        let s = Scheduler::new(
            [
                ("every5", "rate(5 minutes)"),
                ("nightly", "cron(0 2 * * ? *)"),
            ],
            start,
        )
        .unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = watch::channel(false);
        let c: Arc<dyn Clock> = clock.clone();
        let fired_clock = clock.clone();
        let task = tokio::spawn(run(c, s, Duration::from_millis(2), stop_rx, move |name| {
            let tx = tx.clone();
            let when = fired_clock.now_ms();
            async move {
                let _ = tx.send((name, when));
            }
        }));
        let settle = || tokio::time::sleep(Duration::from_millis(30));
        settle().await;
        assert!(rx.try_recv().is_err(), "nothing is due at the start");
        let mut fired = Vec::new();
        for minute in 1..=11 {
            clock.set(start + minute * MIN);
            settle().await;
            while let Ok(f) = rx.try_recv() {
                fired.push(f);
            }
        }
        assert_eq!(
            fired,
            vec![
                ("nightly".to_owned(), at("2026-11-23T02:00:00Z")),
                ("every5".to_owned(), at("2026-11-23T02:03:00Z")),
                ("every5".to_owned(), at("2026-11-23T02:08:00Z")),
            ]
        );
        stop_tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .expect("the loop stops")
            .unwrap();
    }
}
