//! Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]` over `<t>.<body>`.
//!
//! Stripe sends one `v1` per active endpoint secret while a secret is being
//! rolled; any one may match. Other schemes (`v0`, test-mode leftovers) are ignored.

use std::time::Duration;

use http::HeaderMap;

use super::common::{Header, Keys, Stamp, decode_hex};
use super::header_hmac::DEFAULT_TOLERANCE;
use super::window::unix_secs;
use super::{Checked, SchemeVerifier, VerifyError};

/// Verifier for Stripe webhooks.
#[derive(Debug, Clone)]
pub(crate) struct Stripe {
    header: Header,
    tolerance: Duration,
    keys: Keys,
}

/// The parts of a `Stripe-Signature` value ferry uses.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Parsed<'v> {
    /// The `t=` value, if exactly one was sent.
    pub(crate) t: Option<&'v str>,
    /// Whether `t=` appeared more than once (ambiguous: rejected).
    pub(crate) repeated_t: bool,
    /// Every `v1=` value, in order.
    pub(crate) v1: Vec<&'v str>,
}

/// Splits `t=..,v1=..,v0=..` into its parts; items without `=` are ignored.
pub(crate) fn parse(value: &str) -> Parsed<'_> {
    let mut parsed = Parsed::default();
    for item in value.split(',') {
        let Some((key, val)) = item.split_once('=') else {
            continue;
        };
        match key.trim() {
            "t" if parsed.t.is_some() => parsed.repeated_t = true,
            "t" => parsed.t = Some(val.trim()),
            "v1" => parsed.v1.push(val.trim()),
            _ => {}
        }
    }
    parsed
}

impl Stripe {
    pub(crate) fn new(header: Option<Header>, tolerance: Option<Duration>, keys: Keys) -> Self {
        Self {
            header: header.unwrap_or_else(|| Header::known("Stripe-Signature")),
            tolerance: tolerance.unwrap_or(DEFAULT_TOLERANCE),
            keys,
        }
    }
}

impl SchemeVerifier for Stripe {
    fn check(&self, headers: &HeaderMap, body: &[u8], now_ms: i64) -> Result<Checked, VerifyError> {
        let value = self.header.signature(headers)?;
        let parsed = parse(value);
        if parsed.v1.is_empty() {
            return Err(self.header.malformed_signature("no v1= signature"));
        }
        let tags: Vec<Vec<u8>> = parsed
            .v1
            .iter()
            .filter_map(|v| decode_hex(v).ok())
            .collect();
        if tags.is_empty() {
            return Err(self
                .header
                .malformed_signature("no v1= value is a hex HMAC-SHA256"));
        }
        if parsed.repeated_t {
            return Err(VerifyError::MalformedTimestamp {
                header: self.header.as_str().into(),
            });
        }
        let Some(t) = parsed.t.filter(|t| !t.is_empty()) else {
            return Err(VerifyError::MissingTimestamp {
                header: self.header.as_str().into(),
            });
        };
        let stamp = Stamp::parse(t, self.header.as_str())?;
        if !self.keys.any_matches(&[t.as_bytes(), b".", body], &tags) {
            return Err(self.header.invalid_signature());
        }
        stamp.check(now_ms, self.tolerance)?;
        Ok(Checked {
            timestamp: Some(stamp.secs),
        })
    }

    fn sign(&self, body: &[u8], now_ms: i64, _event_id: Option<&str>) -> Vec<(String, String)> {
        // The event id lives in the body (`id`), which the caller provides.
        let t = unix_secs(now_ms).to_string();
        let mac = self.keys.sign(&[t.as_bytes(), b".", body]);
        vec![(
            self.header.as_str().to_string(),
            format!("t={t},v1={}", hex::encode(mac)),
        )]
    }

    fn secret_headers(&self) -> Vec<&str> {
        vec![self.header.lower()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_v1_and_ignores_other_schemes() {
        let p = parse("t=12,v1=aa,v0=bb,v1=cc");
        assert_eq!(
            p,
            Parsed {
                t: Some("12"),
                repeated_t: false,
                v1: vec!["aa", "cc"]
            }
        );
    }

    #[test]
    fn tolerates_spaces_and_junk_items() {
        let p = parse(" t=12 , junk, v1 = aa ,=,,v1=");
        assert_eq!(p.t, Some("12"));
        assert_eq!(p.v1, vec!["aa", ""]);
    }

    #[test]
    fn flags_a_repeated_timestamp() {
        assert!(parse("t=1,t=2,v1=aa").repeated_t);
        assert!(!parse("t=1,v1=aa").repeated_t);
    }

    #[test]
    fn empty_and_garbage_parse_to_nothing() {
        assert_eq!(parse(""), Parsed::default());
        assert_eq!(parse("garbage"), Parsed::default());
        assert_eq!(parse("v1"), Parsed::default());
    }
}
