//! [`RateLimits`] on DynamoDB: one item per key (`limit#<key>`) holding the
//! token bucket (`tokens`, NULL while full, below zero in debt; `updated_at`),
//! the shared `paused_until`, and a
//! version `ver`. Every change is read-modify-write with a condition on `ver`
//! (optimistic concurrency), retried on conflict, so concurrent callers across
//! every instance share one bucket exactly. The arithmetic is the embedded
//! adapter's (`store::bucket`). An item expires (DynamoDB TTL) an hour after
//! its bucket would be full again and its pause over: forgetting it then
//! changes nothing. A connection without a rate limit is never asked for
//! a token, only for its pause (`paused_until`: one read; `crate::limits`).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use rand::Rng;

use super::item::{EXPIRES_AT, Item, PK, get_n, key, n, opt_n, ttl_seconds};
use super::{AwsStore, unavailable};
use crate::clock::Millis;
use crate::ports::{Acquire, Bucket, RateLimits, StoreError, StoreResult};
use crate::store::bucket::{self, State};

const KIND: &str = "limit";
/// Kept this long after the bucket is idle (full and unpaused).
const IDLE_MARGIN_MS: Millis = 60 * 60 * 1000;
/// Read-modify-write rounds before giving up on a very contended key.
const ATTEMPTS: usize = 100;

/// A bucket item as read: its state, version and TTL.
struct Stored {
    state: State,
    ver: u64,
    expires_at: Millis,
}

#[async_trait]
impl RateLimits for AwsStore {
    async fn acquire_n(&self, key_name: &str, bucket: Bucket, cost: f64) -> StoreResult<Acquire> {
        for attempt in 0..ATTEMPTS {
            let now = self.now();
            let stored = self.read_bucket(key_name).await?;
            let state = stored.as_ref().map_or(State::new(now), |s| s.state);
            let (answer, next) = bucket::take(state, now, bucket, cost);
            if answer != Acquire::Granted {
                // Nothing to write: a wait changes no state.
                return Ok(answer);
            }
            let expires = bucket::idle_from(next, bucket).saturating_add(IDLE_MARGIN_MS);
            if self
                .write_bucket(key_name, stored.as_ref(), next, expires)
                .await?
            {
                return Ok(answer);
            }
            backoff(attempt).await;
        }
        Err(contended(key_name))
    }

    async fn pause(&self, key_name: &str, until: Millis) -> StoreResult<()> {
        for attempt in 0..ATTEMPTS {
            let now = self.now();
            let stored = self.read_bucket(key_name).await?;
            let mut state = stored.as_ref().map_or(State::new(now), |s| s.state);
            if state.paused_until >= until {
                // A pause only extends.
                return Ok(());
            }
            state.paused_until = until;
            let expires = stored
                .as_ref()
                .map_or(0, |s| s.expires_at)
                .max(until.saturating_add(IDLE_MARGIN_MS));
            if self
                .write_bucket(key_name, stored.as_ref(), state, expires)
                .await?
            {
                return Ok(());
            }
            backoff(attempt).await;
        }
        Err(contended(key_name))
    }

    async fn paused_until(&self, key_name: &str) -> StoreResult<Millis> {
        Ok(self
            .read_bucket(key_name)
            .await?
            .map_or(0, |s| s.state.paused_until))
    }
}

impl AwsStore {
    async fn read_bucket(&self, key_name: &str) -> StoreResult<Option<Stored>> {
        let Some(item) = self.read_item(KIND, key_name, "rate limit read").await? else {
            return Ok(None);
        };
        Ok(Some(decode(&item)?))
    }

    /// Write `next` if the item is still as `stored` saw it; `false` on a conflict.
    async fn write_bucket(
        &self,
        key_name: &str,
        stored: Option<&Stored>,
        next: State,
        expires_at: Millis,
    ) -> StoreResult<bool> {
        let tokens = next.tokens.map_or(AttributeValue::Null(true), n);
        let result = match stored {
            None => {
                let mut item = key(KIND, key_name);
                item.extend([
                    ("tokens".to_owned(), tokens),
                    ("updated_at".to_owned(), n(next.updated_at)),
                    ("paused_until".to_owned(), n(next.paused_until)),
                    ("ver".to_owned(), n(1)),
                    (EXPIRES_AT.to_owned(), ttl_seconds(expires_at)),
                ]);
                self.dynamo
                    .put_item()
                    .table_name(&self.names.table)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(#pk)")
                    .expression_attribute_names("#pk", PK)
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| match e.as_service_error() {
                        Some(PutItemError::ConditionalCheckFailedException(_)) => None,
                        _ => Some(unavailable("rate limit write", e)),
                    })
            }
            Some(old) => self
                .dynamo
                .update_item()
                .table_name(&self.names.table)
                .set_key(Some(key(KIND, key_name)))
                .update_expression(
                    "SET tokens = :tokens, updated_at = :updated, paused_until = :paused, \
                     ver = :next, #exp = :exp",
                )
                .condition_expression("ver = :ver")
                .expression_attribute_names("#exp", EXPIRES_AT)
                .expression_attribute_values(":tokens", tokens)
                .expression_attribute_values(":updated", n(next.updated_at))
                .expression_attribute_values(":paused", n(next.paused_until))
                .expression_attribute_values(":next", n(old.ver + 1))
                .expression_attribute_values(":ver", n(old.ver))
                .expression_attribute_values(":exp", ttl_seconds(expires_at))
                .send()
                .await
                .map(drop)
                .map_err(|e| match e.as_service_error() {
                    Some(UpdateItemError::ConditionalCheckFailedException(_)) => None,
                    _ => Some(unavailable("rate limit write", e)),
                }),
        };
        match result {
            Ok(()) => Ok(true),
            Err(None) => Ok(false),
            Err(Some(e)) => Err(e),
        }
    }
}

fn decode(item: &Item) -> StoreResult<Stored> {
    // `tokens` is NULL while the bucket is full (never acquired from); a
    // number below zero is a debt. (Items written before debts existed
    // marked a full bucket with -1: read now as one token owed, which
    // refills within one token's time.)
    Ok(Stored {
        state: State {
            tokens: opt_n(item, "tokens")?,
            updated_at: get_n(item, "updated_at")?,
            paused_until: get_n(item, "paused_until")?,
        },
        ver: get_n(item, "ver")?,
        expires_at: opt_n::<Millis>(item, EXPIRES_AT)?.map_or(0, |s| s.saturating_mul(1000)),
    })
}

/// A short, jittered pause before trying a contended key again.
async fn backoff(attempt: usize) {
    let cap = 2u64 << attempt.min(5);
    let ms = rand::rng().random_range(0..=cap);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

fn contended(key_name: &str) -> StoreError {
    StoreError::Unavailable(format!(
        "rate limit {key_name:?}: too many concurrent writers"
    ))
}
