//! Schemes without a signature: a shared key in a header (`api-key`), HTTP
//! basic authentication (`basic`), and `none`.
//!
//! Credentials are compared whole, in constant time, through their SHA-256
//! digests (see [`Credentials`]); nothing about a partial match leaks.

use base64::Engine as _;
use http::HeaderMap;

use super::common::{BASE64, Credentials, Header};
use super::{Checked, SchemeVerifier, VerifyError};

/// Default header of `api-key`, the same as outbound `api_key` auth.
pub(crate) const DEFAULT_API_KEY_HEADER: &str = "X-API-Key";

/// `api-key`: the header must equal one of the secrets.
#[derive(Debug, Clone)]
pub(crate) struct ApiKey {
    header: Header,
    keys: Credentials,
}

impl ApiKey {
    pub(crate) fn new(header: Option<Header>, keys: Credentials) -> Self {
        Self {
            header: header.unwrap_or_else(|| Header::known(DEFAULT_API_KEY_HEADER)),
            keys,
        }
    }
}

impl SchemeVerifier for ApiKey {
    fn check(
        &self,
        headers: &HeaderMap,
        _body: &[u8],
        _now_ms: i64,
    ) -> Result<Checked, VerifyError> {
        let header = || self.header.as_str().to_string();
        let given = self
            .header
            .bytes(headers)
            .ok_or_else(|| VerifyError::MissingCredentials { header: header() })?;
        match self.keys.matches(given) {
            true => Ok(Checked { timestamp: None }),
            false => Err(VerifyError::InvalidCredentials { header: header() }),
        }
    }

    fn sign(&self, _body: &[u8], _now_ms: i64, _event_id: Option<&str>) -> Vec<(String, String)> {
        let key = String::from_utf8_lossy(self.keys.first()).into_owned();
        vec![(self.header.as_str().to_string(), key)]
    }

    fn secret_headers(&self) -> Vec<&str> {
        vec![self.header.lower()]
    }
}

/// `basic`: `Authorization: Basic base64(username:secret)`.
#[derive(Debug, Clone)]
pub(crate) struct Basic {
    header: Header,
    /// Every accepted `username:secret`, as bytes.
    pairs: Credentials,
}

impl Basic {
    /// `pairs` are the accepted `username:secret` byte strings.
    pub(crate) fn new(pairs: Credentials) -> Self {
        Self {
            header: Header::known("Authorization"),
            pairs,
        }
    }
}

/// The decoded `user:password` of an `Authorization: Basic …` value.
pub(crate) fn basic_credentials(value: &[u8]) -> Result<Vec<u8>, &'static str> {
    let text = std::str::from_utf8(value).map_err(|_| "not text")?;
    let (scheme, token) = text
        .trim()
        .split_once(' ')
        .ok_or("expected `Basic <base64>`")?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err("not the Basic scheme");
    }
    BASE64
        .decode(token.trim())
        .map_err(|_| "the credentials are not valid base64")
}

impl SchemeVerifier for Basic {
    fn check(
        &self,
        headers: &HeaderMap,
        _body: &[u8],
        _now_ms: i64,
    ) -> Result<Checked, VerifyError> {
        let header = || self.header.as_str().to_string();
        let value = self
            .header
            .bytes(headers)
            .ok_or_else(|| VerifyError::MissingCredentials { header: header() })?;
        let given =
            basic_credentials(value).map_err(|reason| VerifyError::MalformedCredentials {
                header: header(),
                reason,
            })?;
        match self.pairs.matches(&given) {
            true => Ok(Checked { timestamp: None }),
            false => Err(VerifyError::InvalidCredentials { header: header() }),
        }
    }

    fn sign(&self, _body: &[u8], _now_ms: i64, _event_id: Option<&str>) -> Vec<(String, String)> {
        let token = BASE64.encode(self.pairs.first());
        vec![(self.header.as_str().to_string(), format!("Basic {token}"))]
    }

    fn secret_headers(&self) -> Vec<&str> {
        vec![self.header.lower()]
    }
}

/// `none`: every request passes.
#[derive(Debug, Clone)]
pub(crate) struct NoVerification;

impl SchemeVerifier for NoVerification {
    fn check(
        &self,
        _headers: &HeaderMap,
        _body: &[u8],
        _now_ms: i64,
    ) -> Result<Checked, VerifyError> {
        Ok(Checked { timestamp: None })
    }

    fn sign(&self, _body: &[u8], _now_ms: i64, _event_id: Option<&str>) -> Vec<(String, String)> {
        Vec::new()
    }

    fn secret_headers(&self) -> Vec<&str> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_parsing() {
        assert_eq!(basic_credentials(b"Basic dTpw").unwrap(), b"u:p");
        assert_eq!(basic_credentials(b"basic   dTpw ").unwrap(), b"u:p");
        assert_eq!(
            basic_credentials(b"Bearer dTpw"),
            Err("not the Basic scheme")
        );
        assert_eq!(
            basic_credentials(b"Basic"),
            Err("expected `Basic <base64>`")
        );
        assert_eq!(
            basic_credentials(b"Basic !!"),
            Err("the credentials are not valid base64")
        );
        assert_eq!(basic_credentials(&[0xff, 0x20]), Err("not text"));
    }
}
