//! Schedules in EventBridge syntax — `rate(5 minutes)`, `cron(0 2 * * ? *)` —
//! so `ferry dev`'s scheduler fires a sync when EventBridge would.
//! All times are UTC, as in EventBridge.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use crate::clock::Millis;

/// The longest `rate(...)`.
pub const MAX_RATE: Duration = Duration::from_secs(365 * 86_400);

/// A parsed schedule expression.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// Every `Duration`, from the moment the scheduler starts.
    Rate(Duration),
    /// At the times a six-field EventBridge cron expression matches.
    Cron(Box<Cron>),
}

impl Schedule {
    /// Parse `rate(N unit)` or `cron(min hour day-of-month month day-of-week year)`.
    pub fn parse(expr: &str) -> Result<Self, String> {
        let expr = expr.trim();
        if let Some(inner) = expr.strip_prefix("rate(").and_then(|s| s.strip_suffix(')')) {
            return parse_rate(inner.trim()).map(Schedule::Rate);
        }
        if let Some(inner) = expr.strip_prefix("cron(").and_then(|s| s.strip_suffix(')')) {
            let fields: Vec<&str> = inner.split_whitespace().collect();
            if fields.len() != 6 {
                return Err(format!(
                    "cron(...) takes 6 fields (minutes hours day-of-month month day-of-week year), found {}",
                    fields.len()
                ));
            }
            if fields[2] != "?" && fields[4] != "?" {
                return Err(
                    "cron(...): one of day-of-month and day-of-week must be '?', as in EventBridge"
                        .into(),
                );
            }
            let parser = CronParser::builder()
                .seconds(Seconds::Required)
                .year(Year::Required)
                .alternative_weekdays(true)
                .sloppy_ranges(true)
                .build();
            return // Croner wants seconds whenever it gets a year: fire at second 0.
            parser.parse(&format!("0 {}", fields.join(" "))).map(|c| Schedule::Cron(Box::new(c))).map_err(|e| format!("cron(...): {e}"));
        }
        Err(format!(
            "{expr:?} is not a schedule; expected rate(5 minutes) or cron(0 2 * * ? *)"
        ))
    }

    /// The first fire time strictly after `after` (for a rate: `after` + the rate).
    pub fn next_after(&self, after: Millis) -> Option<Millis> {
        match self {
            Schedule::Rate(d) => Some(crate::clock::after(after, *d)),
            Schedule::Cron(c) => {
                let t: DateTime<Utc> = Utc.timestamp_millis_opt(after).single()?;
                c.find_next_occurrence(&t, false)
                    .ok()
                    .map(|n| n.timestamp_millis())
            }
        }
    }
}

fn parse_rate(inner: &str) -> Result<Duration, String> {
    let mut parts = inner.split_whitespace();
    let (Some(n), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!(
            "rate({inner}): expected a number and a unit, e.g. rate(5 minutes)"
        ));
    };
    let n: u64 = n
        .parse()
        .map_err(|_| format!("rate({inner}): {n:?} is not a positive whole number"))?;
    if n == 0 {
        return Err(format!("rate({inner}): the value must be at least 1"));
    }
    let secs = match (unit, n == 1) {
        ("minute", true) | ("minutes", false) => 60,
        ("hour", true) | ("hours", false) => 3600,
        ("day", true) | ("days", false) => 86_400,
        ("minute" | "hour" | "day", false) => {
            return Err(format!(
                "rate({inner}): use the plural unit when the value is not 1"
            ));
        }
        ("minutes" | "hours" | "days", true) => {
            return Err(format!(
                "rate({inner}): use the singular unit when the value is 1"
            ));
        }
        _ => {
            return Err(format!(
                "rate({inner}): unit must be minute(s), hour(s) or day(s)"
            ));
        }
    };
    match n.checked_mul(secs).map(Duration::from_secs) {
        Some(d) if d <= MAX_RATE => Ok(d),
        _ => Err(format!(
            "rate({inner}): a rate may be at most 365 days (525600 minutes, 8760 hours); use cron(...) for rarer runs"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Millis {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    #[test]
    fn rates() {
        assert!(
            matches!(Schedule::parse("rate(5 minutes)"), Ok(Schedule::Rate(d)) if d == Duration::from_secs(300))
        );
        assert!(
            matches!(Schedule::parse("rate(1 hour)"), Ok(Schedule::Rate(d)) if d == Duration::from_secs(3600))
        );
        assert!(
            Schedule::parse("rate(1 minutes)")
                .unwrap_err()
                .contains("singular")
        );
        assert!(
            Schedule::parse("rate(5 minute)")
                .unwrap_err()
                .contains("plural")
        );
        assert!(Schedule::parse("rate(0 minutes)").is_err());
        assert!(Schedule::parse("rate(5 seconds)").is_err());
        let s = Schedule::parse("rate(5 minutes)").unwrap();
        assert_eq!(s.next_after(1_000), Some(301_000));
    }

    #[test]
    fn rates_are_at_most_a_year_and_never_overflow() {
        // Fired 2 344 times in 5 s: n · 86 400 wrapped around.
        let e = Schedule::parse("rate(18446744073709551615 days)").unwrap_err();
        assert!(e.contains("at most 365 days"), "{e}");
        for ok in ["rate(365 days)", "rate(8760 hours)", "rate(525600 minutes)"] {
            assert!(
                matches!(Schedule::parse(ok), Ok(Schedule::Rate(d)) if d == MAX_RATE),
                "{ok}"
            );
        }
        for too_long in ["rate(366 days)", "rate(8761 hours)", "rate(525601 minutes)"] {
            assert!(Schedule::parse(too_long).is_err(), "{too_long}");
        }
        // Whatever a rate is, the next time saturates rather than wrapping.
        let huge = Schedule::Rate(Duration::MAX);
        assert_eq!(huge.next_after(1_000), Some(Millis::MAX));
    }

    #[test]
    fn cron_daily_at_two() {
        let s = Schedule::parse("cron(0 2 * * ? *)").unwrap();
        assert_eq!(
            s.next_after(at("2026-11-23T19:00:00Z")),
            Some(at("2026-11-24T02:00:00Z"))
        );
        assert_eq!(
            s.next_after(at("2026-11-24T02:00:00Z")),
            Some(at("2026-11-25T02:00:00Z"))
        );
    }

    #[test]
    fn cron_weekdays_use_eventbridge_numbering() {
        // 2026-11-23 is a Monday. EventBridge: 1 = Sunday, 2 = Monday.
        let mon = Schedule::parse("cron(30 9 ? * 2 *)").unwrap();
        assert_eq!(
            mon.next_after(at("2026-11-23T10:00:00Z")),
            Some(at("2026-11-30T09:30:00Z"))
        );
        let weekdays = Schedule::parse("cron(0/15 8 ? * MON-FRI *)").unwrap();
        assert_eq!(
            weekdays.next_after(at("2026-11-28T12:00:00Z")),
            Some(at("2026-11-30T08:00:00Z"))
        );
        assert_eq!(
            weekdays.next_after(at("2026-11-30T08:00:00Z")),
            Some(at("2026-11-30T08:15:00Z"))
        );
    }

    #[test]
    fn cron_errors_are_clear() {
        assert!(
            Schedule::parse("cron(0 2 * * *)")
                .unwrap_err()
                .contains("6 fields")
        );
        assert!(
            Schedule::parse("cron(0 2 * * * *)")
                .unwrap_err()
                .contains("'?'")
        );
        assert!(
            Schedule::parse("every day")
                .unwrap_err()
                .contains("rate(5 minutes)")
        );
    }
}
