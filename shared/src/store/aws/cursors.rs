//! [`Cursors`] on DynamoDB: one item per sync (`cursor#<name>`) with `value`,
//! `version` and `updated_at`; every write is conditional on the version, so
//! of many writers expecting the same version exactly one wins.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;

use super::item::{PK, get_n, get_s, key, n, s};
use super::{AwsStore, unavailable};
use crate::ports::{Cursor, Cursors, StoreError, StoreResult};

const KIND: &str = "cursor";

#[async_trait]
impl Cursors for AwsStore {
    async fn get(&self, name: &str) -> StoreResult<Option<Cursor>> {
        let Some(item) = self.read_item(KIND, name, "cursor get").await? else {
            return Ok(None);
        };
        Ok(Some(Cursor {
            value: get_s(&item, "value")?.to_owned(),
            version: get_n(&item, "version")?,
            updated_at: get_n(&item, "updated_at")?,
        }))
    }

    async fn put(
        &self,
        name: &str,
        value: &str,
        expected: Option<u64>,
    ) -> StoreResult<Option<u64>> {
        let now = self.now();
        let Some(expected) = expected else {
            let mut item = key(KIND, name);
            item.extend([
                ("value".to_owned(), s(value)),
                ("version".to_owned(), n(1)),
                ("updated_at".to_owned(), n(now)),
            ]);
            let put = self
                .dynamo
                .put_item()
                .table_name(&self.names.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK)
                .send()
                .await;
            return match put {
                Ok(_) => Ok(Some(1)),
                Err(e) => match e.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(_)) => Ok(None),
                    _ => Err(unavailable("cursor put", e)),
                },
            };
        };
        let version = expected.checked_add(1).ok_or_else(|| {
            StoreError::Corrupt(format!("cursor {name:?}: version {expected} too large"))
        })?;
        let update = self
            .dynamo
            .update_item()
            .table_name(&self.names.table)
            .set_key(Some(key(KIND, name)))
            .update_expression("SET #value = :value, version = :version, updated_at = :now")
            .condition_expression("version = :expected")
            .expression_attribute_names("#value", "value")
            .expression_attribute_values(":value", s(value))
            .expression_attribute_values(":version", n(version))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":expected", n(expected))
            .send()
            .await;
        match update {
            Ok(_) => Ok(Some(version)),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => Ok(None),
                _ => Err(unavailable("cursor put", e)),
            },
        }
    }
}
