//! When a rate limit resets, as APIs say it in a header: epoch seconds
//! (GitHub's `x-ratelimit-reset`), seconds from now (`Retry-After`,
//! HubSpot), or a duration (OpenAI's `x-ratelimit-reset-requests: 6m0s`,
//! `1.5s`, `20ms`).

use std::time::Duration;

use super::RETRY_AFTER_CAP;
pub use crate::config::ResetFormat;

/// Numbers at or above this are read as epoch seconds by [`ResetFormat::Auto`]
/// (2001-09-09; no API asks to wait 31 years).
const EPOCH_FLOOR: f64 = 1_000_000_000.0;

/// How long from `now_ms` until the reset `value` says, capped at
/// [`RETRY_AFTER_CAP`]; `None` when it does not read as `format`.
pub fn parse_reset(value: &str, format: ResetFormat, now_ms: i64) -> Option<Duration> {
    let v = value.trim();
    let number = v.parse::<f64>().ok().filter(|n| n.is_finite() && *n >= 0.0);
    let d = match (format, number) {
        (ResetFormat::EpochSeconds, Some(n)) => until_epoch(n, now_ms),
        (ResetFormat::Seconds, Some(n)) => secs(n),
        (ResetFormat::Duration, _) => go_duration(v)?,
        (ResetFormat::Auto, Some(n)) if n >= EPOCH_FLOOR => until_epoch(n, now_ms),
        (ResetFormat::Auto, Some(n)) => secs(n),
        (ResetFormat::Auto, None) => match go_duration(v) {
            Some(d) => d,
            None => super::parse_retry_after(v, now_ms)?,
        },
        (ResetFormat::EpochSeconds | ResetFormat::Seconds, None) => return None,
    };
    Some(d.min(RETRY_AFTER_CAP))
}

fn secs(n: f64) -> Duration {
    Duration::from_secs_f64(n.min(RETRY_AFTER_CAP.as_secs_f64()))
}

fn until_epoch(n: f64, now_ms: i64) -> Duration {
    let at_ms = (n * 1000.0) as i64;
    Duration::from_millis((at_ms - now_ms).max(0) as u64)
}

/// A Go-style duration (`1h2m3.5s`, `6m0s`, `250ms`, `1.5s`): numbers with
/// fractions, each followed by a unit. humantime takes no fractions, and
/// OpenAI sends them, so the few lines are here.
pub fn go_duration(v: &str) -> Option<Duration> {
    let mut rest = v.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0f64;
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..n_end].parse().ok()?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..u_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        rest = &rest[u_end..];
        total += n * unit;
    }
    total
        .is_finite()
        .then(|| Duration::from_secs_f64(total.min(RETRY_AFTER_CAP.as_secs_f64())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_headers_as_apis_write_them() {
        let now = 1_700_000_000_000;
        let s = Duration::from_secs;
        let auto = |v| parse_reset(v, ResetFormat::Auto, now);
        assert_eq!(auto("1700000060"), Some(s(60)), "epoch seconds (GitHub)");
        assert_eq!(auto("1699999990"), Some(s(0)), "a reset in the past is now");
        assert_eq!(auto("30"), Some(s(30)), "seconds (HubSpot, Retry-After)");
        assert_eq!(auto("6m0s"), Some(s(360)), "OpenAI requests");
        assert_eq!(auto("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(auto("20ms"), Some(Duration::from_millis(20)));
        assert_eq!(auto("1m2.5s"), Some(Duration::from_millis(62_500)));
        assert_eq!(auto("99999999h"), Some(RETRY_AFTER_CAP));
        assert_eq!(auto("soon"), None);
        assert_eq!(auto("5x"), None);
        assert_eq!(auto(""), None);
        assert_eq!(
            parse_reset("30", ResetFormat::EpochSeconds, now),
            Some(s(0)),
            "an explicit format is not guessed"
        );
        assert_eq!(parse_reset("6m0s", ResetFormat::Seconds, now), None);
        assert_eq!(
            parse_reset("1700000060", ResetFormat::Seconds, now),
            Some(RETRY_AFTER_CAP)
        );
        assert_eq!(parse_reset("2s", ResetFormat::Duration, now), Some(s(2)));
    }
}
