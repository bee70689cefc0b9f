//! DynamoDB item helpers: the key scheme, attribute builders and readers.
//!
//! Every item has `pk` (`<kind>#<name>`) and `sk` (`<kind>`); see
//! [`super::provision::create_table`] for the indexes and TTL.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::clock::Millis;
use crate::ports::{StoreError, StoreResult};

/// An item as the SDK hands it over.
pub(super) type Item = HashMap<String, AttributeValue>;

/// Partition key attribute.
pub(super) const PK: &str = "pk";
/// Sort key attribute.
pub(super) const SK: &str = "sk";
/// DynamoDB's TTL attribute: epoch *seconds*, after which DynamoDB may delete
/// the item (within days; reads never rely on it, they compare clock times).
pub(super) const EXPIRES_AT: &str = "expires_at";

/// The key of item `name` of `kind`.
pub(super) fn key(kind: &str, name: &str) -> Item {
    HashMap::from([
        (PK.to_owned(), s(format!("{kind}#{name}"))),
        (SK.to_owned(), s(kind)),
    ])
}

/// A string attribute.
pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A number attribute.
pub(super) fn n(v: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The TTL attribute's value for a clock time: whole seconds, rounded up.
pub(super) fn ttl_seconds(at: Millis) -> AttributeValue {
    n((at.max(0) + 999) / 1000)
}

/// String attribute `name` of `item`.
pub(super) fn get_s<'a>(item: &'a Item, name: &str) -> StoreResult<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        other => Err(corrupt(name, other)),
    }
}

/// Optional string attribute `name` of `item`.
pub(super) fn opt_s<'a>(item: &'a Item, name: &str) -> StoreResult<Option<&'a str>> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::S(v)) => Ok(Some(v)),
        other => Err(corrupt(name, other)),
    }
}

/// Number attribute `name` of `item`.
pub(super) fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> StoreResult<T> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().map_err(|_| corrupt(name, item.get(name))),
        other => Err(corrupt(name, other)),
    }
}

/// Optional number attribute `name` of `item`.
pub(super) fn opt_n<T: std::str::FromStr>(item: &Item, name: &str) -> StoreResult<Option<T>> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(_) => get_n(item, name).map(Some),
    }
}

fn corrupt(name: &str, found: Option<&AttributeValue>) -> StoreError {
    StoreError::Corrupt(format!("attribute {name:?}: unexpected {found:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_rounds_up_to_whole_seconds() {
        assert_eq!(ttl_seconds(1_000), n(1));
        assert_eq!(ttl_seconds(1_001), n(2));
        assert_eq!(ttl_seconds(-5), n(0));
    }

    #[test]
    fn readers_report_the_attribute() {
        let item: Item = HashMap::from([("a".into(), s("x")), ("b".into(), n(7))]);
        assert_eq!(get_s(&item, "a").unwrap(), "x");
        assert_eq!(get_n::<u64>(&item, "b").unwrap(), 7);
        assert_eq!(opt_n::<u64>(&item, "c").unwrap(), None);
        let err = get_n::<u64>(&item, "a").unwrap_err();
        assert!(err.to_string().contains("\"a\""), "{err}");
    }
}
