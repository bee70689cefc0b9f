//! [`DataKeys`] on KMS: `GenerateDataKey` (AES-256 spec, 32 bytes) and
//! `Decrypt` under one symmetric key, with the caller's encryption context.
//!
//! The plaintext data keys are kept in this process for [`DATA_KEY_TTL`]
//! (by the clock the store shares): one data key seals every write of a
//! context meanwhile, and a wrapped key once unwrapped is not sent to KMS
//! again. At most [`MAX_CACHED`] keys of each kind are held.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_kms::operation::decrypt::DecryptError;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;

use super::{after, unavailable};
use crate::clock::{Clock, Millis};
use crate::ports::{DataKey, DataKeys, StoreError, StoreResult};

/// How long a plaintext data key is reused and remembered.
pub const DATA_KEY_TTL: Duration = Duration::from_secs(300);
/// Data keys held at most (of those generated, and of those unwrapped).
pub const MAX_CACHED: usize = 256;
/// Each KMS call attempt's timeout (when the SDK config sets none).
pub const KMS_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Cache {
    /// By encryption context: the key sealing its writes, until when.
    generated: HashMap<String, (DataKey, Millis)>,
    /// By encryption context and wrapped key: its plaintext, until when.
    unwrapped: HashMap<(String, Vec<u8>), ([u8; 32], Millis)>,
}

/// Data keys under one KMS key. Build with [`KmsDataKeys::new`].
pub struct KmsDataKeys {
    client: aws_sdk_kms::Client,
    key_id: String,
    clock: Arc<dyn Clock>,
    cache: Mutex<Cache>,
}

impl std::fmt::Debug for KmsDataKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmsDataKeys")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl KmsDataKeys {
    /// Data keys under `key_id` (a key id, key ARN, alias name or alias ARN),
    /// with a KMS client from `config` (each attempt timed out after
    /// [`KMS_ATTEMPT_TIMEOUT`] unless `config` says otherwise).
    pub fn new(config: &aws_config::SdkConfig, key_id: &str, clock: Arc<dyn Clock>) -> Self {
        let mut timeouts = config
            .timeout_config()
            .cloned()
            .unwrap_or_else(TimeoutConfig::disabled);
        if timeouts.operation_attempt_timeout().is_none() {
            timeouts = timeouts
                .to_builder()
                .operation_attempt_timeout(KMS_ATTEMPT_TIMEOUT)
                .build();
        }
        let conf = aws_sdk_kms::config::Builder::from(config)
            .timeout_config(timeouts)
            .build();
        Self {
            client: aws_sdk_kms::Client::from_conf(conf),
            key_id: key_id.to_owned(),
            clock,
            cache: Mutex::default(),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keep `key` of `context`; `generated`: also to seal that context's writes.
    fn remember(&self, context: String, key: &DataKey, generated: bool) {
        let now = self.clock.now_ms();
        let until = after(now, DATA_KEY_TTL);
        let mut cache = self.cache();
        prune(&mut cache.generated, now);
        prune(&mut cache.unwrapped, now);
        if generated {
            cache
                .generated
                .insert(context.clone(), (key.clone(), until));
        }
        cache
            .unwrapped
            .insert((context, key.wrapped.clone()), (key.plain, until));
    }
}

/// Drop what expired; when still full, everything (it is only a cache).
fn prune<K, V>(map: &mut HashMap<K, (V, Millis)>, now: Millis) {
    map.retain(|_, (_, until)| now < *until);
    if map.len() >= MAX_CACHED {
        map.clear();
    }
}

/// One string per context, whatever the pairs' order.
fn context_key(context: &[(&str, &str)]) -> String {
    let mut pairs: Vec<_> = context.iter().collect();
    pairs.sort();
    let mut key = String::new();
    for (k, v) in pairs {
        key.extend([k, "\u{0}", v, "\u{0}"]);
    }
    key
}

fn plain_key(bytes: &[u8], what: &str) -> StoreResult<[u8; 32]> {
    bytes.try_into().map_err(|_| {
        StoreError::Corrupt(format!(
            "KMS {what}: a data key of {} bytes, not 32",
            bytes.len()
        ))
    })
}

#[async_trait]
impl DataKeys for KmsDataKeys {
    async fn generate(&self, context: &[(&str, &str)]) -> StoreResult<DataKey> {
        let ck = context_key(context);
        let now = self.clock.now_ms();
        if let Some((key, until)) = self.cache().generated.get(&ck)
            && now < *until
        {
            return Ok(key.clone());
        }
        let mut req = self
            .client
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256);
        for (k, v) in context {
            req = req.encryption_context(*k, *v);
        }
        let out = req
            .send()
            .await
            .map_err(|e| unavailable("KMS GenerateDataKey", e))?;
        let (Some(plain), Some(wrapped)) = (out.plaintext(), out.ciphertext_blob()) else {
            return Err(StoreError::Corrupt(
                "KMS GenerateDataKey: no plaintext or no ciphertext in the answer".into(),
            ));
        };
        let key = DataKey {
            plain: plain_key(plain.as_ref(), "GenerateDataKey")?,
            wrapped: wrapped.as_ref().to_vec(),
        };
        self.remember(ck, &key, true);
        Ok(key)
    }

    async fn unwrap(
        &self,
        wrapped: &[u8],
        context: &[(&str, &str)],
    ) -> StoreResult<Option<[u8; 32]>> {
        let ck = context_key(context);
        let now = self.clock.now_ms();
        if let Some((plain, until)) = self.cache().unwrapped.get(&(ck.clone(), wrapped.to_vec()))
            && now < *until
        {
            return Ok(Some(*plain));
        }
        let mut req = self
            .client
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(wrapped));
        for (k, v) in context {
            req = req.encryption_context(*k, *v);
        }
        let out = match req.send().await {
            Ok(out) => out,
            Err(e) => {
                return match e.as_service_error() {
                    Some(
                        DecryptError::InvalidCiphertextException(_)
                        | DecryptError::IncorrectKeyException(_),
                    ) => Ok(None),
                    _ => Err(unavailable("KMS Decrypt", e)),
                };
            }
        };
        let Some(plain) = out.plaintext() else {
            return Err(StoreError::Corrupt("KMS Decrypt: no plaintext".into()));
        };
        let key = DataKey {
            plain: plain_key(plain.as_ref(), "Decrypt")?,
            wrapped: wrapped.to_vec(),
        };
        self.remember(ck, &key, false);
        Ok(Some(key.plain))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_context_is_one_key_whatever_the_order_and_pairs_are_told_apart() {
        let a = context_key(&[("c", "crm"), ("k", "oauth2:crm")]);
        assert_eq!(a, context_key(&[("k", "oauth2:crm"), ("c", "crm")]));
        assert_ne!(a, context_key(&[("c", "erp"), ("k", "oauth2:crm")]));
        assert_ne!(context_key(&[("a", "bc")]), context_key(&[("ab", "c")]));
    }

    #[test]
    fn the_cache_drops_what_expired_and_stays_bounded() {
        let mut map: HashMap<u32, ((), Millis)> = HashMap::new();
        map.insert(1, ((), 10));
        map.insert(2, ((), 20));
        prune(&mut map, 15);
        assert_eq!(map.keys().copied().collect::<Vec<_>>(), vec![2]);
        for i in 0..MAX_CACHED as u32 {
            map.insert(100 + i, ((), 1_000));
        }
        prune(&mut map, 15);
        assert!(map.is_empty());
    }
}
