//! How a connection's OAuth 2.0 token state is written to the store: sealed
//! with ChaCha20-Poly1305, so a dump of the store shows no token.
//!
//! Every instance derives the same key from the connection's configured
//! secrets, so every instance can read what another cached; nothing else has
//! to be shared. The key is HMAC-SHA256 keyed with those secrets over
//! `"ferry oauth2 token cache v1" ‖ connection`. A value is
//! `v1:<nonce>:<ciphertext>` (unpadded URL-safe base64, a random 96-bit nonce
//! per write). A value that does not open (the secret was rotated, a legacy
//! plain-text record, tampering) is no cached value: the caller fetches a
//! fresh token.
//!
//! With a KMS key (`FERRY_TOKEN_KMS_KEY`), writes use the `v2` envelope of
//! [`token_envelope`](crate::token_envelope) instead; `v1` values are still
//! read.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::{Auth, Connection};

/// The format this module writes; also the ciphertext's associated data.
const VERSION: &str = "v1";
/// Domain separation of the key derivation.
const CONTEXT: &[u8] = b"ferry oauth2 token cache v1";

/// The key sealing one connection's token state.
pub struct CacheKey(ChaCha20Poly1305);

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CacheKey(..)")
    }
}

impl CacheKey {
    /// The key of `connection`, from its configured secrets (the client
    /// secret, and whatever else only the config holds). A change of any of
    /// them gives another key: what was cached under the old one is unreadable.
    pub fn derive(connection: &str, secrets: &[&str]) -> Self {
        let mut ikm = Vec::new();
        for s in secrets {
            // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
            ikm.extend_from_slice(&(s.len() as u64).to_be_bytes());
            ikm.extend_from_slice(s.as_bytes());
        }
        let mut mac = Hmac::<Sha256>::new_from_slice(&ikm).expect("HMAC takes keys of any length");
        mac.update(CONTEXT);
        mac.update(connection.as_bytes());
        let key = mac.finalize().into_bytes();
        Self(ChaCha20Poly1305::new_from_slice(&key).expect("HMAC-SHA256 gives 32 bytes"))
    }

    /// The key sealing `name`'s token state in the store: derived from what only
    /// the config holds (the client secret, the configured refresh token, the
    /// extra `params`), so every instance has it and a rotated secret makes the
    /// old state unreadable.
    pub fn of(name: &str, conn: &Connection) -> Self {
        let Some(Auth::OAuth2 {
            client_secret,
            refresh_token,
            params,
            ..
        }) = &conn.auth
        else {
            return Self::derive(name, &[]);
        };
        let params = serde_json::to_string(params).unwrap_or_default();
        Self::derive(
            name,
            &[
                client_secret,
                refresh_token.as_deref().unwrap_or(""),
                &params,
            ],
        )
    }

    /// `plain` sealed under a fresh random nonce: `v1:<nonce>:<ciphertext>`.
    pub fn seal(&self, plain: &[u8]) -> String {
        let nonce: [u8; 12] = rand::random();
        let sealed = self
            .0
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plain,
                    aad: VERSION.as_bytes(),
                },
            )
            .expect("a token record is far below ChaCha20-Poly1305's message limit");
        format!("{VERSION}:{}:{}", B64.encode(nonce), B64.encode(sealed))
    }

    /// What [`seal`](Self::seal) sealed, or `None` when `value` is not a
    /// sealed value this key opens.
    pub fn open(&self, value: &str) -> Option<Vec<u8>> {
        let mut parts = value.splitn(3, ':');
        if parts.next()? != VERSION {
            return None;
        }
        let nonce: [u8; 12] = B64.decode(parts.next()?).ok()?.try_into().ok()?;
        let sealed = B64.decode(parts.next()?).ok()?;
        self.0
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &sealed,
                    aad: VERSION.as_bytes(),
                },
            )
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORD: &str = r#"{"fingerprint":"f","access_token":"tok-secret-1","refresh_at":5}"#;

    #[test]
    fn a_sealed_value_opens_with_the_same_key_and_hides_the_token() {
        let key = CacheKey::derive("crm", &["client-secret"]);
        let sealed = key.seal(RECORD.as_bytes());
        assert!(sealed.starts_with("v1:"), "{sealed}");
        assert!(!sealed.contains("tok-secret-1"), "{sealed}");
        assert!(!sealed.contains("client-secret"), "{sealed}");
        // Another instance derives the same key from the same config.
        let other = CacheKey::derive("crm", &["client-secret"]);
        assert_eq!(other.open(&sealed).unwrap(), RECORD.as_bytes());
        // A fresh nonce per write.
        assert_ne!(key.seal(RECORD.as_bytes()), sealed);
    }

    #[test]
    fn another_secret_or_connection_does_not_open_it() {
        let sealed = CacheKey::derive("crm", &["client-secret"]).seal(RECORD.as_bytes());
        assert_eq!(
            CacheKey::derive("crm", &["rotated-secret"]).open(&sealed),
            None
        );
        assert_eq!(
            CacheKey::derive("erp", &["client-secret"]).open(&sealed),
            None
        );
        // The secrets are told apart, not just concatenated.
        let split = CacheKey::derive("crm", &["client-", "secret"]);
        assert_eq!(split.open(&sealed), None);
    }

    #[test]
    fn a_tampered_value_does_not_open() {
        let key = CacheKey::derive("crm", &["client-secret"]);
        let sealed = key.seal(RECORD.as_bytes());
        let (head, body) = sealed.rsplit_once(':').unwrap();
        let mut bytes = B64.decode(body).unwrap();
        bytes[0] ^= 1;
        assert_eq!(key.open(&format!("{head}:{}", B64.encode(&bytes))), None);
        // Another nonce, a cut ciphertext, another version: not opened either.
        let mut parts = sealed.splitn(3, ':').skip(1);
        let (nonce, body) = (parts.next().unwrap(), parts.next().unwrap());
        let other_nonce = B64.encode([0u8; 12]);
        assert_eq!(key.open(&format!("v1:{other_nonce}:{body}")), None);
        assert_eq!(
            key.open(&format!("v1:{nonce}:{}", &body[..body.len() - 4])),
            None
        );
        assert_eq!(key.open(&format!("v2:{nonce}:{body}")), None);
        assert_eq!(key.open("v1:not base64!:x"), None);
    }

    #[test]
    fn a_legacy_plain_text_record_does_not_open() {
        let key = CacheKey::derive("crm", &["client-secret"]);
        assert_eq!(key.open(RECORD), None);
        assert_eq!(key.open(""), None);
    }
}
