//! Standard Webhooks (<https://www.standardwebhooks.com>, used by Svix and others):
//! `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64> [v1,<base64> …]`
//! over `<id>.<timestamp>.<body>`, keyed by the base64 after `whsec_` in the secret.
//!
//! Svix's own `svix-id` / `svix-timestamp` / `svix-signature` headers carry the
//! same thing and are read when `webhook-signature` is absent.

use std::sync::LazyLock;
use std::time::Duration;

use base64::Engine as _;
use http::HeaderMap;
use sha2::{Digest, Sha256};

use super::common::{BASE64, Header, Keys, decode_base64};
use super::header_hmac::DEFAULT_TOLERANCE;
use super::window::unix_secs;
use super::{Checked, SchemeVerifier, VerifyError};

/// The three headers of one naming family.
#[derive(Debug)]
pub(crate) struct Family {
    pub(crate) id: Header,
    pub(crate) timestamp: Header,
    pub(crate) signature: Header,
}

static WEBHOOK: LazyLock<Family> = LazyLock::new(|| Family {
    id: Header::known("webhook-id"),
    timestamp: Header::known("webhook-timestamp"),
    signature: Header::known("webhook-signature"),
});

static SVIX: LazyLock<Family> = LazyLock::new(|| Family {
    id: Header::known("svix-id"),
    timestamp: Header::known("svix-timestamp"),
    signature: Header::known("svix-signature"),
});

/// The family a request uses: `svix-*` only when it has `svix-signature` and
/// no `webhook-signature`; `webhook-*` otherwise (also for error messages).
pub(crate) fn family(headers: &HeaderMap) -> &'static Family {
    if !WEBHOOK.signature.present(headers) && SVIX.signature.present(headers) {
        &SVIX
    } else {
        &WEBHOOK
    }
}

/// The key bytes of a `whsec_<base64>` secret (the prefix is optional, as in
/// the reference libraries).
pub(crate) fn key_from_secret(secret: &str) -> Result<Vec<u8>, &'static str> {
    let b64 = secret.strip_prefix("whsec_").unwrap_or(secret);
    match BASE64.decode(b64) {
        Ok(key) if !key.is_empty() => Ok(key),
        Ok(_) => Err("is empty after `whsec_`"),
        Err(_) => Err("must be `whsec_` followed by base64"),
    }
}

/// The `v1` signatures of a `webhook-signature` value: space-separated
/// `<version>,<signature>` entries; other versions are ignored.
pub(crate) fn v1_signatures(value: &str) -> Vec<&str> {
    value
        .split_ascii_whitespace()
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == "v1")
        .map(|(_, sig)| sig)
        .collect()
}

/// The `webhook-id`, `webhook-timestamp` and `webhook-signature` headers for
/// an outgoing message `body` with id `id` at `now_ms`, signed with the
/// `whsec_<base64>` `secret` (ferry as a sender: the alerts' webhook channel).
/// The error says what is wrong with the secret, never what it is.
pub(crate) fn sign_outgoing(
    secret: &str,
    id: &str,
    body: &[u8],
    now_ms: i64,
) -> Result<Vec<(String, String)>, &'static str> {
    let key = key_from_secret(secret)?;
    let keys = Keys::new(vec![key]).ok_or("is empty after `whsec_`")?;
    Ok(StandardWebhooks::new(None, keys).sign(body, now_ms, Some(id)))
}

/// Verifier for Standard Webhooks.
#[derive(Debug, Clone)]
pub(crate) struct StandardWebhooks {
    tolerance: Duration,
    keys: Keys,
}

impl StandardWebhooks {
    pub(crate) fn new(tolerance: Option<Duration>, keys: Keys) -> Self {
        Self {
            tolerance: tolerance.unwrap_or(DEFAULT_TOLERANCE),
            keys,
        }
    }
}

impl SchemeVerifier for StandardWebhooks {
    fn check(&self, headers: &HeaderMap, body: &[u8], now_ms: i64) -> Result<Checked, VerifyError> {
        let fam = family(headers);
        let value = fam.signature.signature(headers)?;
        let v1 = v1_signatures(value);
        if v1.is_empty() {
            return Err(fam.signature.malformed_signature("no v1 signature"));
        }
        let tags: Vec<Vec<u8>> = v1.iter().filter_map(|s| decode_base64(s).ok()).collect();
        if tags.is_empty() {
            return Err(fam
                .signature
                .malformed_signature("no v1 signature is a base64 HMAC-SHA256"));
        }
        let id = match fam.id.text(headers) {
            Ok(Some(id)) => id,
            _ => {
                return Err(VerifyError::MissingHeader {
                    header: fam.id.as_str().into(),
                });
            }
        };
        let stamp = fam.timestamp.timestamp(headers)?;
        let parts: [&[u8]; 5] = [id.as_bytes(), b".", stamp.text.as_bytes(), b".", body];
        if !self.keys.any_matches(&parts, &tags) {
            return Err(fam.signature.invalid_signature());
        }
        stamp.check(now_ms, self.tolerance)?;
        Ok(Checked {
            timestamp: Some(stamp.secs),
        })
    }

    /// Without an event id, the id is `msg_` and 32 hex digits of
    /// SHA-256(`<timestamp>.<body>`): stable for the same body and second.
    fn sign(&self, body: &[u8], now_ms: i64, event_id: Option<&str>) -> Vec<(String, String)> {
        let ts = unix_secs(now_ms).to_string();
        let id = match event_id {
            Some(id) => id.to_string(),
            None => {
                let digest = Sha256::new()
                    .chain_update(&ts)
                    .chain_update(".")
                    .chain_update(body);
                format!("msg_{}", hex::encode(&digest.finalize()[..16]))
            }
        };
        let mac = self
            .keys
            .sign(&[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
        vec![
            (WEBHOOK.id.as_str().to_string(), id),
            (WEBHOOK.timestamp.as_str().to_string(), ts),
            (
                WEBHOOK.signature.as_str().to_string(),
                format!("v1,{}", BASE64.encode(mac)),
            ),
        ]
    }

    fn secret_headers(&self) -> Vec<&str> {
        vec![WEBHOOK.signature.lower(), SVIX.signature.lower()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_v1_entries() {
        assert_eq!(
            v1_signatures("v1,abc v1a,xyz  v2,q v1,def"),
            vec!["abc", "def"]
        );
        assert_eq!(v1_signatures("v1,a,b"), vec!["a,b"]);
        assert!(v1_signatures("").is_empty());
        assert!(v1_signatures("v1").is_empty());
        assert!(v1_signatures("v1=abc").is_empty());
    }

    #[test]
    fn secrets_decode_with_or_without_prefix() {
        let key = key_from_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(key.len(), 24);
        assert_eq!(
            key_from_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap(),
            key
        );
        assert!(key_from_secret("whsec_not base64!").is_err());
        assert!(key_from_secret("whsec_").is_err());
    }

    #[test]
    fn outgoing_signatures_verify_with_the_same_secret_only() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let now = 1_700_000_000_000;
        let body = br#"{"type":"ferry.alert"}"#;
        let signed = sign_outgoing(secret, "alert-1", body, now).unwrap();
        let mut headers = HeaderMap::new();
        for (name, value) in &signed {
            headers.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        assert_eq!(headers["webhook-id"], "alert-1");
        assert_eq!(headers["webhook-timestamp"], "1700000000");
        assert!(
            headers["webhook-signature"]
                .to_str()
                .unwrap()
                .starts_with("v1,")
        );
        let verifier = |s: &str| {
            StandardWebhooks::new(None, Keys::new(vec![key_from_secret(s).unwrap()]).unwrap())
        };
        assert!(verifier(secret).check(&headers, body, now).is_ok());
        assert!(verifier(secret).check(&headers, b"{}", now).is_err());
        let other = "whsec_c2VjcmV0LXRoYXQtaXMtbm90LXRoZS1vbmU=";
        assert!(verifier(other).check(&headers, body, now).is_err());
        assert_eq!(
            sign_outgoing("whsec_not base64!", "a", body, now).unwrap_err(),
            "must be `whsec_` followed by base64"
        );
    }

    #[test]
    fn picks_svix_headers_only_without_webhook_signature() {
        let mut h = HeaderMap::new();
        assert_eq!(family(&h).id.as_str(), "webhook-id");
        h.insert("svix-signature", "v1,x".parse().unwrap());
        assert_eq!(family(&h).id.as_str(), "svix-id");
        h.insert("webhook-signature", "v1,x".parse().unwrap());
        assert_eq!(family(&h).id.as_str(), "webhook-id");
    }
}
