//! The token cache's envelope when a key-management service holds the key
//! (KMS on AWS, `FERRY_TOKEN_KMS_KEY`; see [`ports::DataKeys`]).
//!
//! A value is `v2:<wrapped data key>:<nonce>:<ciphertext>` (unpadded
//! URL-safe base64): the token state sealed with ChaCha20-Poly1305 under the
//! 256-bit data key, a random 96-bit nonce per write, the associated data
//! `v2:<cursor>`. The data key is bound to the encryption context
//! `ferry:connection` = the connection, `ferry:cursor` = the store key, so a
//! value copied to another connection's key does not open: KMS refuses the
//! data key, and the AEAD the associated data. Values written before
//! (`v1:`, [`token_cache`](crate::token_cache)) are still read and are
//! written over in this form on the next save.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce};

use crate::ports::{DataKeys, StoreResult};

/// The format this module writes.
pub const VERSION: &str = "v2";
/// Encryption-context key naming the connection.
pub const CONTEXT_CONNECTION: &str = "ferry:connection";
/// Encryption-context key naming the store key (the cursor) of the value.
pub const CONTEXT_CURSOR: &str = "ferry:cursor";

/// Whether `value` is in this envelope (rather than a `v1` value).
pub fn is_enveloped(value: &str) -> bool {
    value
        .strip_prefix(VERSION)
        .is_some_and(|rest| rest.starts_with(':'))
}

fn aad(cursor: &str) -> Vec<u8> {
    format!("{VERSION}:{cursor}").into_bytes()
}

/// `plain`, the state of `connection` stored under `cursor`, sealed under a
/// data key from `keys` bound to both. An error when `keys` cannot give one.
pub async fn seal(
    keys: &dyn DataKeys,
    connection: &str,
    cursor: &str,
    plain: &[u8],
) -> StoreResult<String> {
    let context = [(CONTEXT_CONNECTION, connection), (CONTEXT_CURSOR, cursor)];
    let key = keys.generate(&context).await?;
    let nonce: [u8; 12] = rand::random();
    let sealed = ChaCha20Poly1305::new(&key.plain.into())
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: plain,
                aad: &aad(cursor),
            },
        )
        .expect("a token record is far below ChaCha20-Poly1305's message limit");
    Ok(format!(
        "{VERSION}:{}:{}:{}",
        B64.encode(&key.wrapped),
        B64.encode(nonce),
        B64.encode(sealed)
    ))
}

/// What [`seal`] sealed for `connection` and `cursor`; `Ok(None)` when
/// `value` is not such a value (another connection's, tampered, garbage);
/// an error only when `keys` could not be asked.
pub async fn open(
    keys: &dyn DataKeys,
    connection: &str,
    cursor: &str,
    value: &str,
) -> StoreResult<Option<Vec<u8>>> {
    let Some((wrapped, nonce, sealed)) = parse(value) else {
        return Ok(None);
    };
    let context = [(CONTEXT_CONNECTION, connection), (CONTEXT_CURSOR, cursor)];
    let Some(plain_key) = keys.unwrap(&wrapped, &context).await? else {
        return Ok(None);
    };
    Ok(ChaCha20Poly1305::new(&plain_key.into())
        .decrypt(
            &Nonce::from(nonce),
            Payload {
                msg: &sealed,
                aad: &aad(cursor),
            },
        )
        .ok())
}

/// The wrapped key, nonce and ciphertext of a `v2` value.
fn parse(value: &str) -> Option<(Vec<u8>, [u8; 12], Vec<u8>)> {
    let mut parts = value.splitn(4, ':');
    if parts.next()? != VERSION {
        return None;
    }
    let wrapped = B64.decode(parts.next()?).ok()?;
    let nonce = B64.decode(parts.next()?).ok()?.try_into().ok()?;
    let sealed = B64.decode(parts.next()?).ok()?;
    Some((wrapped, nonce, sealed))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::ports::{DataKey, StoreError};

    /// A stand-in key service: the "wrapped" key is the context and the key
    /// itself in the clear, and unwrapping checks the context.
    #[derive(Default)]
    struct Clear {
        down: Mutex<bool>,
    }

    fn ctx(context: &[(&str, &str)]) -> String {
        context.iter().map(|(k, v)| format!("{k}={v};")).collect()
    }

    #[async_trait]
    impl DataKeys for Clear {
        async fn generate(&self, context: &[(&str, &str)]) -> StoreResult<DataKey> {
            let plain: [u8; 32] = rand::random();
            let mut wrapped = ctx(context).into_bytes();
            wrapped.push(0);
            wrapped.extend_from_slice(&plain);
            Ok(DataKey { plain, wrapped })
        }
        async fn unwrap(
            &self,
            wrapped: &[u8],
            context: &[(&str, &str)],
        ) -> StoreResult<Option<[u8; 32]>> {
            if *self.down.lock().unwrap() {
                return Err(StoreError::Unavailable("KMS down".into()));
            }
            let Some(at) = wrapped.iter().position(|b| *b == 0) else {
                return Ok(None);
            };
            if wrapped[..at] != *ctx(context).as_bytes() {
                return Ok(None);
            }
            Ok(wrapped[at + 1..].try_into().ok())
        }
    }

    const RECORD: &[u8] = br#"{"fingerprint":"f","access_token":"tok-secret-1"}"#;

    #[tokio::test]
    async fn a_sealed_value_opens_under_its_own_binding_only() {
        let keys = Clear::default();
        let value = seal(&keys, "crm", "oauth2:crm", RECORD).await.unwrap();
        assert!(value.starts_with("v2:") && is_enveloped(&value), "{value}");
        assert!(!value.contains("tok-secret-1"), "{value}");
        let opened = open(&keys, "crm", "oauth2:crm", &value).await.unwrap();
        assert_eq!(opened.as_deref(), Some(RECORD));
        assert_eq!(
            open(&keys, "erp", "oauth2:erp", &value).await.unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn the_cursor_is_bound_by_the_aead_as_well() {
        // A key service that ignored the context still gives nothing: the
        // associated data names the cursor.
        struct Blind(Clear);
        #[async_trait]
        impl DataKeys for Blind {
            async fn generate(&self, c: &[(&str, &str)]) -> StoreResult<DataKey> {
                self.0.generate(c).await
            }
            async fn unwrap(&self, w: &[u8], _: &[(&str, &str)]) -> StoreResult<Option<[u8; 32]>> {
                let at = w.iter().position(|b| *b == 0).unwrap();
                Ok(w[at + 1..].try_into().ok())
            }
        }
        let keys = Blind(Clear::default());
        let value = seal(&keys, "crm", "oauth2:crm", RECORD).await.unwrap();
        assert!(
            open(&keys, "crm", "oauth2:crm", &value)
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(
            open(&keys, "erp", "oauth2:erp", &value).await.unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn garbage_does_not_open_and_an_unreachable_service_is_an_error() {
        let keys = Clear::default();
        let value = seal(&keys, "crm", "oauth2:crm", RECORD).await.unwrap();
        let (head, body) = value.rsplit_once(':').unwrap();
        let mut bytes = B64.decode(body).unwrap();
        bytes[0] ^= 1;
        let tampered = format!("{head}:{}", B64.encode(&bytes));
        for v in [tampered.as_str(), "v2:x", "v1:a:b", "", "v2:!:!:!"] {
            assert_eq!(
                open(&keys, "crm", "oauth2:crm", v).await.unwrap(),
                None,
                "{v}"
            );
        }
        assert!(!is_enveloped("v1:a:b") && !is_enveloped("v20:a"));
        *keys.down.lock().unwrap() = true;
        let err = open(&keys, "crm", "oauth2:crm", &value).await.unwrap_err();
        assert!(err.is_retryable(), "{err}");
    }
}
