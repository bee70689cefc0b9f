//! Building blocks every scheme shares: named headers, secret keys and the
//! HMAC over them, signature decoding, and the replay window.
//!
//! Nothing here hand-rolls crypto: MACs are `hmac::Hmac<Sha256>` compared with
//! `verify_slice`; plain secrets are compared by `subtle`.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, HeaderName};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::VerifyError;
use super::window::check_window;
use crate::config::TimestampUnit;

type HmacSha256 = Hmac<Sha256>;

/// Length of an HMAC-SHA256 tag in bytes.
pub(crate) const TAG_LEN: usize = 32;

/// Standard base64; padding optional on input, written on output.
pub(crate) const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A header name, kept with the spelling used in messages and when signing.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    name: HeaderName,
    display: String,
}

impl Header {
    /// A header from config; the error is a sentence naming the bad value's field.
    pub(crate) fn parse(field: &str, value: &str) -> Result<Self, String> {
        match HeaderName::from_bytes(value.as_bytes()) {
            Ok(name) => Ok(Self {
                name,
                display: value.to_string(),
            }),
            Err(_) => Err(format!(
                "{field}: {value:?} is not a valid HTTP header name"
            )),
        }
    }

    /// A header name known to be valid (scheme defaults).
    pub(crate) fn known(value: &'static str) -> Self {
        // `HeaderName::from_static` demands lower case; defaults are spelled the
        // way providers write them.
        let name =
            HeaderName::from_bytes(value.as_bytes()).expect("default header names are valid");
        Self {
            name,
            display: value.to_string(),
        }
    }

    /// The name as written by the provider, e.g. `X-Hub-Signature-256`.
    pub(crate) fn as_str(&self) -> &str {
        &self.display
    }

    /// The name in lower case, as `http` stores it.
    pub(crate) fn lower(&self) -> &str {
        self.name.as_str()
    }

    /// Whether the request carries this header at all.
    pub(crate) fn present(&self, headers: &HeaderMap) -> bool {
        headers.contains_key(&self.name)
    }

    /// The header's value as text: `Ok(None)` when absent or blank, `Err(())`
    /// when it is not visible ASCII.
    pub(crate) fn text<'h>(&self, headers: &'h HeaderMap) -> Result<Option<&'h str>, ()> {
        match headers.get(&self.name) {
            None => Ok(None),
            Some(v) => match v.to_str() {
                Ok(s) if s.trim().is_empty() => Ok(None),
                Ok(s) => Ok(Some(s)),
                Err(_) => Err(()),
            },
        }
    }

    /// The header's raw bytes, `None` when absent or blank.
    pub(crate) fn bytes<'h>(&self, headers: &'h HeaderMap) -> Option<&'h [u8]> {
        let value = headers.get(&self.name)?.as_bytes();
        (!value.iter().all(u8::is_ascii_whitespace)).then_some(value)
    }

    /// The header as text, or the scheme's signature errors.
    pub(crate) fn signature<'h>(&self, headers: &'h HeaderMap) -> Result<&'h str, VerifyError> {
        match self.text(headers) {
            Ok(Some(s)) => Ok(s),
            Ok(None) => Err(VerifyError::MissingSignature {
                header: self.display.clone(),
            }),
            Err(()) => Err(self.malformed_signature("not visible ASCII text")),
        }
    }

    /// The header as a Unix timestamp, or the timestamp errors.
    pub(crate) fn timestamp<'h>(&self, headers: &'h HeaderMap) -> Result<Stamp<'h>, VerifyError> {
        self.timestamp_in(headers, TimestampUnit::Seconds)
    }

    /// The header as a timestamp written in `unit`, or the timestamp errors.
    pub(crate) fn timestamp_in<'h>(
        &self,
        headers: &'h HeaderMap,
        unit: TimestampUnit,
    ) -> Result<Stamp<'h>, VerifyError> {
        match self.text(headers) {
            Ok(Some(s)) if unit == TimestampUnit::Milliseconds => {
                Stamp::parse_millis(s, self.as_str())
            }
            Ok(Some(s)) => Stamp::parse(s, self.as_str()),
            Ok(None) => Err(VerifyError::MissingTimestamp {
                header: self.display.clone(),
            }),
            Err(()) => Err(VerifyError::MalformedTimestamp {
                header: self.display.clone(),
            }),
        }
    }

    pub(crate) fn malformed_signature(&self, reason: &'static str) -> VerifyError {
        VerifyError::MalformedSignature {
            header: self.display.clone(),
            reason,
        }
    }

    pub(crate) fn invalid_signature(&self) -> VerifyError {
        VerifyError::InvalidSignature {
            header: self.display.clone(),
        }
    }
}

/// A timestamp as sent (the exact text is what gets signed) and its value.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stamp<'h> {
    pub(crate) text: &'h str,
    pub(crate) secs: i64,
}

impl<'h> Stamp<'h> {
    /// Parses Unix seconds (an optionally signed decimal integer) or an
    /// ISO-8601 (RFC 3339) date-time with its offset, as Zendesk sends
    /// (`2023-11-14T22:13:20Z`). The text as sent is what gets signed.
    pub(crate) fn parse(text: &'h str, header: &str) -> Result<Self, VerifyError> {
        let secs = text.parse::<i64>().ok().or_else(|| {
            chrono::DateTime::parse_from_rfc3339(text.trim())
                .ok()
                .map(|t| t.timestamp())
        });
        match secs {
            Some(secs) => Ok(Self { text, secs }),
            None => Err(VerifyError::MalformedTimestamp {
                header: header.to_string(),
            }),
        }
    }

    /// Parses Unix milliseconds (an optionally signed decimal integer), as
    /// HubSpot's `X-HubSpot-Request-Timestamp`; the text as sent is what gets signed.
    pub(crate) fn parse_millis(text: &'h str, header: &str) -> Result<Self, VerifyError> {
        match text.parse::<i64>() {
            Ok(ms) => Ok(Self {
                text,
                secs: ms.div_euclid(1000),
            }),
            Err(_) => Err(VerifyError::MalformedTimestamp {
                header: header.to_string(),
            }),
        }
    }

    /// Accepts the timestamp when it lies within `tolerance` of `now_ms`, either side.
    pub(crate) fn check(&self, now_ms: i64, tolerance: Duration) -> Result<(), VerifyError> {
        check_window(self.secs, now_ms, tolerance)
    }
}

/// A signing key. Its `Debug` never shows the bytes.
#[derive(Clone)]
pub(crate) struct Key(Vec<u8>);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

/// The configured keys, in order (the first one signs). Never empty.
#[derive(Debug, Clone)]
pub(crate) struct Keys(Vec<Key>);

impl Keys {
    /// Keys from their bytes; `None` when there are none.
    pub(crate) fn new(keys: Vec<Vec<u8>>) -> Option<Self> {
        (!keys.is_empty()).then(|| Self(keys.into_iter().map(Key).collect()))
    }

    /// HMAC-SHA256 with the first key over the concatenation of `parts`.
    pub(crate) fn sign(&self, parts: &[&[u8]]) -> Vec<u8> {
        mac(&self.0[0], parts).finalize().into_bytes().to_vec()
    }

    /// Whether any candidate tag is the HMAC of `parts` under any key. Every
    /// pair is checked (no early exit) with the MAC's constant-time compare.
    pub(crate) fn any_matches(&self, parts: &[&[u8]], candidates: &[Vec<u8>]) -> bool {
        let mut ok = false;
        for key in &self.0 {
            let m = mac(key, parts);
            for tag in candidates {
                ok |= m.clone().verify_slice(tag).is_ok();
            }
        }
        ok
    }
}

fn mac(key: &Key, parts: &[&[u8]]) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(&key.0).expect("HMAC takes keys of any length");
    for p in parts {
        m.update(p);
    }
    m
}

/// Plain credentials (API keys, `user:password`), compared through their
/// SHA-256 digests so neither content nor length leaks through timing.
#[derive(Clone)]
pub(crate) struct Credentials {
    first: Vec<u8>,
    digests: Vec<[u8; 32]>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials(<{} redacted>)", self.digests.len())
    }
}

impl Credentials {
    /// `None` when there are none.
    pub(crate) fn new(values: Vec<Vec<u8>>) -> Option<Self> {
        let first = values.first()?.clone();
        let digests = values.iter().map(|v| digest(v)).collect();
        Some(Self { first, digests })
    }

    /// The first credential (what `sign` sends).
    pub(crate) fn first(&self) -> &[u8] {
        &self.first
    }

    /// Whether `given` equals any credential; all are compared, in constant time.
    pub(crate) fn matches(&self, given: &[u8]) -> bool {
        let given = digest(given);
        let mut ok = subtle::Choice::from(0);
        for d in &self.digests {
            ok |= d.ct_eq(&given);
        }
        ok.into()
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Decodes a hex tag (either case) of exactly [`TAG_LEN`] bytes.
pub(crate) fn decode_hex(text: &str) -> Result<Vec<u8>, &'static str> {
    let bytes = hex::decode(text).map_err(|_| "not valid hexadecimal")?;
    tag_len(bytes)
}

/// Decodes a standard-base64 tag (padding optional) of exactly [`TAG_LEN`] bytes.
pub(crate) fn decode_base64(text: &str) -> Result<Vec<u8>, &'static str> {
    let bytes = BASE64.decode(text).map_err(|_| "not valid base64")?;
    tag_len(bytes)
}

fn tag_len(bytes: Vec<u8>) -> Result<Vec<u8>, &'static str> {
    if bytes.len() == TAG_LEN {
        Ok(bytes)
    } else {
        Err("not the length of an HMAC-SHA256 signature (32 bytes)")
    }
}

/// Strips `prefix` from the start of `value`, ignoring ASCII case.
pub(crate) fn strip_prefix_ci<'v>(value: &'v str, prefix: &str) -> Option<&'v str> {
    let head = value.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &value[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_strip_ignores_case_and_char_boundaries() {
        assert_eq!(strip_prefix_ci("SHA256=ab", "sha256="), Some("ab"));
        assert_eq!(strip_prefix_ci("sha1=ab", "sha256="), None);
        assert_eq!(strip_prefix_ci("é", "a"), None);
        assert_eq!(strip_prefix_ci("", "v0="), None);
    }

    #[test]
    fn tags_must_decode_to_32_bytes() {
        assert!(decode_hex(&"ab".repeat(32)).is_ok());
        assert!(decode_hex(&"AB".repeat(32)).is_ok());
        assert!(decode_hex(&"ab".repeat(31)).is_err());
        assert!(decode_hex(&"a".repeat(63)).is_err());
        assert!(decode_hex("zz").is_err());
        let b64 = BASE64.encode([7u8; 32]);
        assert!(decode_base64(&b64).is_ok());
        assert!(decode_base64(b64.trim_end_matches('=')).is_ok());
        assert!(decode_base64("!!!").is_err());
    }

    #[test]
    fn credentials_match_any_but_only_exactly() {
        let c = Credentials::new(vec![b"old".to_vec(), b"new".to_vec()]).unwrap();
        assert!(c.matches(b"old") && c.matches(b"new"));
        assert!(!c.matches(b"ne") && !c.matches(b"newer") && !c.matches(b""));
        assert_eq!(c.first(), b"old");
        assert!(!format!("{c:?}").contains("old"));
    }

    #[test]
    fn keys_debug_is_redacted() {
        let k = Keys::new(vec![b"topsecret".to_vec()]).unwrap();
        assert!(!format!("{k:?}").contains("topsecret"));
    }
}
