//! [`Idempotency`] on DynamoDB, with the semantics of Powertools for AWS
//! Lambda's idempotency utility: one item per key (`idem#<key>`),
//!
//! - `status`: `IN_PROGRESS` while a caller holds the lease, `COMPLETED` with
//!   the stored `result` once done;
//! - `valid_until` (clock ms): the lease end while in progress, the TTL end
//!   once completed. A key whose `valid_until` the clock has reached is as good
//!   as absent; the claim's condition says so, so exactly one of many
//!   concurrent callers wins;
//! - `payload_hash`: a claim with another hash on a live key is reported;
//! - `expires_at`: DynamoDB's TTL (seconds), ten minutes after `valid_until`,
//!   so a caller finishing just after its lease ended can still `complete`.
//!
//! The caller picks the lease: in Lambda, shorter than the time left before the
//! invocation's deadline, so a timed-out invocation never leaves a key stuck
//! longer than its lease.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;

use super::gather::{Gathered, Pending};
use super::held::Held;
use super::item::{EXPIRES_AT, Item, PK, get_n, get_s, key, n, opt_s, s, ttl_seconds};
use super::{AwsStore, after, unavailable};
use crate::clock::Millis;
use crate::ports::{Claim, Idempotency, StoreError, StoreResult};

pub(super) const KIND: &str = "idem";
const IN_PROGRESS: &str = "IN_PROGRESS";
pub(super) const COMPLETED: &str = "COMPLETED";
/// How long DynamoDB keeps an expired key before its TTL may delete it.
pub(super) const GRACE_MS: Millis = 10 * 60 * 1000;
/// Claims retried when a key changed between a failed claim and the read of
/// its holder (it expired or was released in between).
const CLAIM_ATTEMPTS: usize = 5;

#[async_trait]
impl Idempotency for AwsStore {
    async fn claim(
        &self,
        key_name: &str,
        payload_hash: &str,
        data: &str,
        lease: Duration,
    ) -> StoreResult<Claim> {
        let held = Held::current();
        if let Some(item) = held
            .as_ref()
            .and_then(|h| h.get(&self.names.table, &key(KIND, key_name)))
        {
            // Completed in this scope, not written yet.
            return holder(&item, payload_hash);
        }
        if let Some(held) = &held {
            // With the other tasks of the scope, in one request.
            let now = self.now();
            let item = claim_item(key_name, payload_hash, data, after(now, lease));
            let pending = Pending {
                client: self.dynamo.clone(),
                table: self.names.table.clone(),
                item: item.clone(),
                payload_hash: payload_hash.to_owned(),
                now,
                transactions: self.transactions.clone(),
            };
            match held.gather.claim(pending).await {
                Gathered::Done(Ok(Claim::Claimed)) => {
                    held.claimed(key_name, item);
                    return Ok(Claim::Claimed);
                }
                Gathered::Done(other) => return other,
                Gathered::Alone => {}
            }
        }
        for _ in 0..CLAIM_ATTEMPTS {
            let now = self.now();
            let item = claim_item(key_name, payload_hash, data, after(now, lease));
            let put = self
                .dynamo
                .put_item()
                .table_name(&self.names.table)
                .set_item(Some(item.clone()))
                .condition_expression("attribute_not_exists(#pk) OR valid_until <= :now")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_values(":now", n(now))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            let held_by = match put {
                Ok(_) => {
                    if let Some(held) = &held {
                        held.claimed(key_name, item);
                    }
                    return Ok(Claim::Claimed);
                }
                Err(e) => match e.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(c)) => c.item().cloned(),
                    _ => return Err(unavailable("idempotency claim", e)),
                },
            };
            // The condition failed on a live key; older servers do not return it.
            let held_by = match held_by {
                Some(item) => Some(item),
                None => self.read_item(KIND, key_name, "idempotency read").await?,
            };
            if let Some(held_by) = held_by
                && get_n::<Millis>(&held_by, "valid_until")? > now
            {
                return holder(&held_by, payload_hash);
            }
        }
        Err(StoreError::Unavailable(format!(
            "idempotency claim of {key_name:?}: the key kept changing"
        )))
    }

    async fn complete(&self, key_name: &str, result: &str, ttl: Duration) -> StoreResult<()> {
        let valid_until = after(self.now(), ttl);
        if let Some(held) = Held::current()
            && let Some(mut item) = held.claim_of(key_name)
        {
            // Claimed in this scope: the condition (the key is held) is met.
            item.extend([
                ("status".to_owned(), s(COMPLETED)),
                ("result".to_owned(), s(result)),
                ("valid_until".to_owned(), n(valid_until)),
                (
                    EXPIRES_AT.to_owned(),
                    ttl_seconds(valid_until.saturating_add(GRACE_MS)),
                ),
            ]);
            // Not held (the scope holds another table's items): written below.
            if held.put(&self.dynamo, &self.names.table, item).is_ok() {
                return Ok(());
            }
        }
        let update = self
            .dynamo
            .update_item()
            .table_name(&self.names.table)
            .set_key(Some(key(KIND, key_name)))
            .update_expression(
                "SET #status = :done, #result = :result, valid_until = :until, #exp = :exp",
            )
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#result", "result")
            .expression_attribute_names("#exp", EXPIRES_AT)
            .expression_attribute_values(":done", s(COMPLETED))
            .expression_attribute_values(":result", s(result))
            .expression_attribute_values(":until", n(valid_until))
            .expression_attribute_values(":exp", ttl_seconds(valid_until.saturating_add(GRACE_MS)))
            .send()
            .await;
        match update {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => Err(
                    StoreError::NotFound(format!("idempotency key {key_name:?} is not claimed")),
                ),
                _ => Err(unavailable("idempotency complete", e)),
            },
        }
    }

    async fn release(&self, key_name: &str) -> StoreResult<()> {
        if let Some(held) = Held::current() {
            held.forget(key_name, &key(KIND, key_name));
        }
        self.dynamo
            .delete_item()
            .table_name(&self.names.table)
            .set_key(Some(key(KIND, key_name)))
            .send()
            .await
            .map_err(|e| unavailable("idempotency release", e))?;
        Ok(())
    }
}

/// The item a claim of `key_name` puts: in progress until `lease_until`.
fn claim_item(key_name: &str, payload_hash: &str, data: &str, lease_until: Millis) -> Item {
    let mut item = key(KIND, key_name);
    item.extend([
        ("status".to_owned(), s(IN_PROGRESS)),
        ("payload_hash".to_owned(), s(payload_hash)),
        ("data".to_owned(), s(data)),
        ("valid_until".to_owned(), n(lease_until)),
        (
            EXPIRES_AT.to_owned(),
            ttl_seconds(lease_until.saturating_add(GRACE_MS)),
        ),
    ]);
    item
}

/// What a claim with `hash` sees on the live key `held`.
pub(super) fn holder(held: &Item, hash: &str) -> StoreResult<Claim> {
    let stored_hash = get_s(held, "payload_hash")?;
    if stored_hash != hash {
        return Ok(Claim::PayloadMismatch {
            stored_hash: stored_hash.to_owned(),
        });
    }
    Ok(match get_s(held, "status")? {
        COMPLETED => Claim::Completed {
            result: opt_s(held, "result")?.unwrap_or_default().to_owned(),
        },
        _ => Claim::InProgress {
            data: get_s(held, "data")?.to_owned(),
            lease_until: get_n(held, "valid_until")?,
        },
    })
}
