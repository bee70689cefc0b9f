//! Why a request was refused.
//!
//! Every variant has a stable machine code ([`VerifyError::code`]) for the
//! JSON reason ingest answers with and for the run log, and a human sentence
//! (`Display`). The sentence may name a header and give ages in seconds; it
//! never contains a secret, an expected signature or any byte the caller sent,
//! so it is safe to log and to return to the sender.

use http::StatusCode;

/// A request failed verification. Every variant maps to `401 Unauthorized`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The signature header is absent or empty.
    #[error("no signature: header {header} is missing or empty")]
    MissingSignature {
        /// Header that should carry the signature.
        header: String,
    },
    /// The signature header is present but cannot be read as a signature.
    #[error("malformed signature in header {header}: {reason}")]
    MalformedSignature {
        /// Header carrying the signature.
        header: String,
        /// What is wrong with it (a fixed phrase, never the value).
        reason: &'static str,
    },
    /// The signature is well formed but matches no configured secret.
    #[error("invalid signature in header {header}: it matches no configured secret")]
    InvalidSignature {
        /// Header carrying the signature.
        header: String,
    },
    /// The scheme needs a timestamp and there is none.
    #[error("no timestamp: header {header} is missing, empty or has none")]
    MissingTimestamp {
        /// Header that should carry the timestamp.
        header: String,
    },
    /// The timestamp is not a whole number of seconds since the Unix epoch.
    #[error(
        "malformed timestamp in header {header}: expected Unix seconds or an ISO-8601 date-time such as 2024-01-31T12:00:00Z"
    )]
    MalformedTimestamp {
        /// Header carrying the timestamp.
        header: String,
    },
    /// The timestamp is older than the tolerance allows (a replay, or a very late delivery).
    #[error("timestamp is {age_secs}s old, beyond the tolerance of {tolerance_secs}s")]
    TimestampTooOld {
        /// How far the timestamp lies behind the clock, in seconds.
        age_secs: i64,
        /// The configured tolerance, in seconds.
        tolerance_secs: u64,
    },
    /// The timestamp is further ahead than the tolerance allows (clock skew or forgery).
    #[error("timestamp is {ahead_secs}s in the future, beyond the tolerance of {tolerance_secs}s")]
    TimestampInFuture {
        /// How far the timestamp lies ahead of the clock, in seconds.
        ahead_secs: i64,
        /// The configured tolerance, in seconds.
        tolerance_secs: u64,
    },
    /// A signed header other than the signature and timestamp is absent (`webhook-id`).
    #[error("header {header} is missing or empty")]
    MissingHeader {
        /// The missing header.
        header: String,
    },
    /// The credential header (`api-key`, `basic`) is absent or empty.
    #[error("no credentials: header {header} is missing or empty")]
    MissingCredentials {
        /// Header that should carry the credentials.
        header: String,
    },
    /// The credential header cannot be parsed (`basic`: not `Basic <base64>`).
    #[error("malformed credentials in header {header}: {reason}")]
    MalformedCredentials {
        /// Header carrying the credentials.
        header: String,
        /// What is wrong with it (a fixed phrase, never the value).
        reason: &'static str,
    },
    /// The credentials match no configured secret.
    #[error("invalid credentials in header {header}")]
    InvalidCredentials {
        /// Header carrying the credentials.
        header: String,
    },
}

impl VerifyError {
    /// Every machine code, in declaration order (documentation and tests).
    pub const CODES: [&'static str; 11] = [
        "missing_signature",
        "malformed_signature",
        "invalid_signature",
        "missing_timestamp",
        "malformed_timestamp",
        "timestamp_too_old",
        "timestamp_in_future",
        "missing_header",
        "missing_credentials",
        "malformed_credentials",
        "invalid_credentials",
    ];

    /// The stable machine code of this error, e.g. `invalid_signature`.
    pub fn code(&self) -> &'static str {
        let i = match self {
            VerifyError::MissingSignature { .. } => 0,
            VerifyError::MalformedSignature { .. } => 1,
            VerifyError::InvalidSignature { .. } => 2,
            VerifyError::MissingTimestamp { .. } => 3,
            VerifyError::MalformedTimestamp { .. } => 4,
            VerifyError::TimestampTooOld { .. } => 5,
            VerifyError::TimestampInFuture { .. } => 6,
            VerifyError::MissingHeader { .. } => 7,
            VerifyError::MissingCredentials { .. } => 8,
            VerifyError::MalformedCredentials { .. } => 9,
            VerifyError::InvalidCredentials { .. } => 10,
        };
        Self::CODES[i]
    }

    /// The HTTP status ingest answers with: always `401 Unauthorized`.
    pub fn http_status(&self) -> StatusCode {
        StatusCode::UNAUTHORIZED
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_snake_case() {
        let mut seen = std::collections::BTreeSet::new();
        for code in VerifyError::CODES {
            assert!(seen.insert(code), "duplicate code {code}");
            assert!(
                code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{code}"
            );
        }
    }

    #[test]
    fn each_variant_has_its_own_code_and_sentence() {
        let h = || "X-Sig".to_string();
        let all = [
            VerifyError::MissingSignature { header: h() },
            VerifyError::MalformedSignature {
                header: h(),
                reason: "not hex",
            },
            VerifyError::InvalidSignature { header: h() },
            VerifyError::MissingTimestamp { header: h() },
            VerifyError::MalformedTimestamp { header: h() },
            VerifyError::TimestampTooOld {
                age_secs: 400,
                tolerance_secs: 300,
            },
            VerifyError::TimestampInFuture {
                ahead_secs: 400,
                tolerance_secs: 300,
            },
            VerifyError::MissingHeader { header: h() },
            VerifyError::MissingCredentials { header: h() },
            VerifyError::MalformedCredentials {
                header: h(),
                reason: "not basic",
            },
            VerifyError::InvalidCredentials { header: h() },
        ];
        let codes: Vec<_> = all.iter().map(VerifyError::code).collect();
        assert_eq!(codes, VerifyError::CODES);
        for e in &all {
            assert_eq!(e.http_status(), StatusCode::UNAUTHORIZED);
            let text = e.to_string();
            assert!(text.contains("X-Sig") || text.contains("300s"), "{text}");
        }
    }
}
