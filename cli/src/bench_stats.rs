//! The pure arithmetic of `ferry bench ingest`: latency percentiles and the
//! open-loop schedule. No clock is read here, so all of it is tested exactly.

use std::time::Duration;

/// Latency figures of one load, from every accepted request's latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Latency {
    /// Requests the figures are taken over.
    pub count: usize,
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// 99.9th percentile.
    pub p999: Duration,
    /// Slowest.
    pub max: Duration,
}

impl Latency {
    /// The figures of `samples` (sorted here; order does not matter).
    pub fn of(samples: &mut [Duration]) -> Self {
        samples.sort_unstable();
        Self {
            count: samples.len(),
            p50: percentile(samples, 50.0),
            p99: percentile(samples, 99.0),
            p999: percentile(samples, 99.9),
            max: samples.last().copied().unwrap_or_default(),
        }
    }
}

/// The `p`th percentile (0 < p ≤ 100) of `sorted` by the nearest-rank
/// method: the smallest sample that at least `p` % of the samples are less
/// than or equal to. Zero when there are no samples.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let n = sorted.len();
    // Rank in 1..=n; computed in parts per million so 99.9 % of 1,000 is
    // exactly 999, not 999.0000000000001 rounded up to 1,000.
    let ppm = (p.clamp(0.0, 100.0) * 10_000.0).round() as u128;
    let rank = (ppm * n as u128).div_ceil(1_000_000).max(1) as usize;
    sorted[rank.min(n) - 1]
}

/// When request `i` (from 0) is due, after the start of an open-loop load
/// offering `rate` requests per second: `i / rate`, to the nanosecond.
pub fn due(i: u64, rate: u32) -> Duration {
    let rate = u128::from(rate.max(1));
    let nanos = u128::from(i) * 1_000_000_000 / rate;
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// How many requests an open-loop load sends: `rate × duration` when a
/// duration is given, else `requests`.
pub fn planned(rate: u32, duration: Option<Duration>, requests: usize) -> usize {
    match duration {
        Some(d) => (u128::from(rate) * d.as_millis() / 1000) as usize,
        None => requests,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&n| Duration::from_millis(n)).collect()
    }

    #[test]
    fn nearest_rank_percentiles() {
        let sorted = ms(&(1..=1000).collect::<Vec<_>>());
        assert_eq!(percentile(&sorted, 50.0), Duration::from_millis(500));
        assert_eq!(percentile(&sorted, 99.0), Duration::from_millis(990));
        assert_eq!(percentile(&sorted, 99.9), Duration::from_millis(999));
        assert_eq!(percentile(&sorted, 100.0), Duration::from_millis(1000));
        // Small samples: the p99 of ten is the slowest one, not an interpolation.
        let ten = ms(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(percentile(&ten, 50.0), Duration::from_millis(5));
        assert_eq!(percentile(&ten, 99.0), Duration::from_millis(10));
        assert_eq!(percentile(&[], 99.0), Duration::ZERO);
    }

    #[test]
    fn latency_sorts_its_samples() {
        let mut samples = ms(&[40, 10, 30, 20]);
        let l = Latency::of(&mut samples);
        assert_eq!(l.count, 4);
        assert_eq!(l.p50, Duration::from_millis(20));
        assert_eq!(l.p99, Duration::from_millis(40));
        assert_eq!(l.max, Duration::from_millis(40));
        assert_eq!(Latency::of(&mut []), Latency::default());
    }

    #[test]
    fn schedule_is_a_constant_rate() {
        assert_eq!(due(0, 2000), Duration::ZERO);
        assert_eq!(due(1, 2000), Duration::from_micros(500));
        assert_eq!(due(2000, 2000), Duration::from_secs(1));
        assert_eq!(due(1, 3), Duration::from_nanos(333_333_333));
        assert_eq!(due(3, 3), Duration::from_secs(1));
        // A rate of 0 is taken as 1 rather than dividing by zero.
        assert_eq!(due(2, 0), Duration::from_secs(2));
    }

    #[test]
    fn planned_requests() {
        assert_eq!(planned(2000, Some(Duration::from_secs(30)), 7), 60_000);
        assert_eq!(planned(2000, Some(Duration::from_millis(1500)), 7), 3_000);
        assert_eq!(planned(2000, None, 7), 7);
    }
}
