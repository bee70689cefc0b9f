//! The replay window: a signed timestamp is accepted only within the
//! source's tolerance of now, either side.

use std::time::Duration;

use super::VerifyError;

/// Unix seconds of `now_ms`, as written in timestamp headers.
pub(crate) fn unix_secs(now_ms: i64) -> i64 {
    now_ms.div_euclid(1000)
}

/// Rejects `ts_secs` when it is more than `tolerance` away from `now_ms`.
/// Exactly `tolerance` away is accepted. Computed in `i128`: never overflows.
pub(crate) fn check_window(
    ts_secs: i64,
    now_ms: i64,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    let tol_ms = i128::try_from(tolerance.as_millis()).unwrap_or(i128::MAX);
    let diff_ms = i128::from(now_ms) - i128::from(ts_secs) * 1000;
    let secs = |ms: i128| i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    if diff_ms > tol_ms {
        Err(VerifyError::TimestampTooOld {
            age_secs: secs(diff_ms),
            tolerance_secs: tolerance.as_secs(),
        })
    } else if -diff_ms > tol_ms {
        Err(VerifyError::TimestampInFuture {
            ahead_secs: secs(-diff_ms),
            tolerance_secs: tolerance.as_secs(),
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIVE_MIN: Duration = Duration::from_secs(300);

    #[test]
    fn window_accepts_the_edges_and_names_the_side_it_rejects() {
        let now = 1_000_000_000;
        assert!(check_window(now / 1000 - 300, now, FIVE_MIN).is_ok());
        assert!(check_window(now / 1000 + 300, now, FIVE_MIN).is_ok());
        assert_eq!(
            check_window(now / 1000 - 301, now, FIVE_MIN),
            Err(VerifyError::TimestampTooOld {
                age_secs: 301,
                tolerance_secs: 300
            })
        );
        assert_eq!(
            check_window(now / 1000 + 301, now, FIVE_MIN),
            Err(VerifyError::TimestampInFuture {
                ahead_secs: 301,
                tolerance_secs: 300
            })
        );
    }

    #[test]
    fn window_survives_extreme_values() {
        assert!(check_window(i64::MIN, i64::MAX, FIVE_MIN).is_err());
        assert!(check_window(i64::MAX, i64::MIN, FIVE_MIN).is_err());
        assert!(check_window(0, 0, Duration::MAX).is_ok());
    }
}
