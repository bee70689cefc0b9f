//! Helpers shared by the verification tests.

use ferry::config::Verify;
use ferry::verify::{Verified, Verifier, VerifyError};
use http::{HeaderMap, HeaderName, HeaderValue};

/// A fixed "now": 2023-11-14T22:13:20Z, in milliseconds.
pub const NOW: i64 = 1_700_000_000_000;

/// `verify:` settings from YAML, exactly as a user writes them.
pub fn settings(yaml: &str) -> Verify {
    serde_yaml_ng::from_str(yaml).unwrap_or_else(|e| panic!("bad test YAML {yaml:?}: {e}"))
}

/// A verifier from YAML that must build.
pub fn verifier(yaml: &str) -> Verifier {
    Verifier::from_config(&settings(yaml)).unwrap_or_else(|e| panic!("{yaml:?}: {e}"))
}

/// The headers `sign` returns, as a request would carry them.
pub fn to_headers(pairs: &[(String, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("signed header name");
        map.append(
            name,
            HeaderValue::from_str(value).expect("signed header value"),
        );
    }
    map
}

/// `signer` signs `body` at `signed_at`; `checker` verifies it at `now`.
pub fn check(
    signer: &Verifier,
    checker: &Verifier,
    body: &[u8],
    signed_at: i64,
    now: i64,
) -> Result<Option<String>, VerifyError> {
    let headers = to_headers(&signer.sign(body, signed_at, Some("evt-1")));
    checker
        .verify(&headers, body, now)
        .map(|v: Verified<'_>| v.event_id().map(str::to_string))
}

/// The machine code of a failed verification (panics on success).
pub fn code<T: std::fmt::Debug>(r: Result<T, VerifyError>) -> &'static str {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.code(),
    }
}

/// Sets `name` to `value` (replacing any value) and returns the map.
pub fn with(mut headers: HeaderMap, name: &str, value: &str) -> HeaderMap {
    let name = HeaderName::from_bytes(name.as_bytes()).unwrap();
    headers.insert(name, HeaderValue::from_str(value).unwrap());
    headers
}

/// Removes `name` and returns the map.
pub fn without(mut headers: HeaderMap, name: &str) -> HeaderMap {
    headers.remove(name);
    headers
}
