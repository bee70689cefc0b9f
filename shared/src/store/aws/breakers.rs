//! [`Breakers`] on DynamoDB: one item per open breaker (`breaker#<name>`),
//! deleted when it closes, holding `opened_at`, `open_until`, `reason` and
//! `probe_until` (clock ms). Each change is one conditional UpdateItem, so
//! "only extend" and "one probe" hold across every instance without a read
//! first. No TTL: an open breaker stays until a probe closes it.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::ReturnValue;

use super::item::{Item, PK, get_n, get_s, key, n, s};
use super::{AwsStore, after, unavailable};
use crate::clock::Millis;
use crate::ports::{Breaker, Breakers, StoreError, StoreResult};

const KIND: &str = "breaker";

#[async_trait]
impl Breakers for AwsStore {
    async fn get(&self, name: &str) -> StoreResult<Option<Breaker>> {
        let item = self.read_item(KIND, name, "breaker read").await?;
        item.map(|i| decode(name, &i)).transpose()
    }

    async fn open(&self, name: &str, until: Millis, why: &str) -> StoreResult<Breaker> {
        let now = self.now();
        // With the new `open_until` unless the stored one is later; then (it
        // was later) everything but `open_until`, unless it closed meanwhile.
        for round in 0..6 {
            let set_until = round % 2 == 0;
            let mut update = self
                .dynamo
                .update_item()
                .table_name(&self.names.table)
                .set_key(Some(key(KIND, name)))
                .expression_attribute_names("#since", "opened_at")
                .expression_attribute_names("#why", "reason")
                .expression_attribute_names("#probe", "probe_until")
                .expression_attribute_values(":now", n(now))
                .expression_attribute_values(":why", s(why))
                .expression_attribute_values(":zero", n(0))
                .return_values(ReturnValue::AllNew);
            update = if set_until {
                update
                    .update_expression(
                        "SET #since = if_not_exists(#since, :now), #why = :why, \
                         #probe = :zero, #until = :until",
                    )
                    .condition_expression("attribute_not_exists(#pk) OR #until <= :until")
                    .expression_attribute_names("#pk", PK)
                    .expression_attribute_names("#until", "open_until")
                    .expression_attribute_values(":until", n(until))
            } else {
                update
                    .update_expression(
                        "SET #since = if_not_exists(#since, :now), #why = :why, #probe = :zero",
                    )
                    .condition_expression("attribute_exists(#pk)")
                    .expression_attribute_names("#pk", PK)
            };
            match update.send().await {
                Ok(out) => {
                    let item = out.attributes.unwrap_or_default();
                    return decode(name, &item);
                }
                Err(e)
                    if matches!(
                        e.as_service_error(),
                        Some(UpdateItemError::ConditionalCheckFailedException(_))
                    ) => {}
                Err(e) => return Err(unavailable("breaker open", e)),
            }
        }
        Err(StoreError::Unavailable(format!(
            "breaker {name:?}: too many concurrent writers"
        )))
    }

    async fn probe(&self, name: &str, lease: Duration) -> StoreResult<bool> {
        let now = self.now();
        let result = self
            .dynamo
            .update_item()
            .table_name(&self.names.table)
            .set_key(Some(key(KIND, name)))
            .update_expression("SET #probe = :lease")
            .condition_expression("attribute_exists(#pk) AND #until <= :now AND #probe <= :now")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#until", "open_until")
            .expression_attribute_names("#probe", "probe_until")
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":lease", n(after(now, lease)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(unavailable("breaker probe", e)),
        }
    }

    async fn release(&self, name: &str) -> StoreResult<()> {
        let result = self
            .dynamo
            .update_item()
            .table_name(&self.names.table)
            .set_key(Some(key(KIND, name)))
            .update_expression("SET #probe = :zero")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#probe", "probe_until")
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(unavailable("breaker release", e)),
        }
    }

    async fn close(&self, name: &str) -> StoreResult<()> {
        self.dynamo
            .delete_item()
            .table_name(&self.names.table)
            .set_key(Some(key(KIND, name)))
            .send()
            .await
            .map_err(|e| unavailable("breaker close", e))?;
        Ok(())
    }
}

fn decode(name: &str, item: &Item) -> StoreResult<Breaker> {
    Ok(Breaker {
        name: name.to_owned(),
        since: get_n(item, "opened_at")?,
        until: get_n(item, "open_until")?,
        why: get_s(item, "reason")?.to_owned(),
        probe_until: get_n(item, "probe_until")?,
    })
}
