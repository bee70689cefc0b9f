//! Receipts this adapter hands out, and the ledger that makes a stale one
//! `NotFound` as the port promises.
//!
//! SQS alone cannot tell a stale receipt handle from the current one: a
//! `DeleteMessage` with the handle of an earlier receive succeeds (and deletes
//! the message another worker is running), and deleting twice succeeds too.
//! So a [`Receipt`] carries what SQS does not: the SQS message id, the receive
//! count it was issued for, the ferry message id, and the body (dead-lettering
//! must re-send it, and SQS has no "get message by receipt"). It is encoded as
//! `ferry1.<base64url(JSON)>`; anything else is taken as a raw SQS handle.
//!
//! The ledger is one DynamoDB item per in-flight SQS message
//! (`receipt#<sqs message id>`: `n`, the newest receive count seen, and
//! `state`, `held` or `settled`):
//!
//! - `receive` records `n` for each message it hands out;
//! - `delete` / `dead_letter` settle, `change_visibility` re-checks, each with
//!   the condition "no entry (a receive this adapter did not see, e.g. the
//!   Lambda event source), or an older `n`, or this `n` still held"; when it
//!   fails the receipt is stale (a newer receive exists) or already settled:
//!   `NotFound`, and SQS is not called.
//!
//! Entries expire (TTL) after SQS's longest retention plus its longest
//! visibility timeout. Limit: a stale receipt whose newer receive this adapter
//! never saw (two Lambda invocations of one message, its visibility timeout
//! shorter than the function's run) settles first-come; the template keeps
//! the visibility timeout above the function timeout for that reason.

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::item::{EXPIRES_AT, PK, key, n, s, ttl_seconds};
use super::{AwsStore, unavailable};
use crate::clock::Millis;
use crate::ports::{StoreError, StoreResult};

const KIND: &str = "receipt";
const PREFIX: &str = "ferry1.";
const HELD: &str = "held";
const SETTLED: &str = "settled";
/// SQS keeps a message at most 14 days, in flight at most 12 hours more.
const KEEP_MS: Millis = (14 * 24 + 12) * 60 * 60 * 1000;

/// What a receipt of this adapter carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Receipt {
    /// The SQS receipt handle.
    #[serde(rename = "h")]
    pub handle: String,
    /// The SQS message id (the ledger's key).
    #[serde(rename = "m")]
    pub sqs_id: String,
    /// The ferry message id (survives re-delays and redrives).
    #[serde(rename = "i")]
    pub id: String,
    /// The receive count this receipt was issued for.
    #[serde(rename = "n")]
    pub count: u32,
    /// The body, for dead-lettering.
    #[serde(rename = "b")]
    pub body: String,
}

impl Receipt {
    /// The opaque string callers see.
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(json))
    }

    /// `None` for anything that is not one of ours (a raw SQS handle).
    pub fn decode(receipt: &str) -> StoreResult<Option<Self>> {
        let Some(b64) = receipt.strip_prefix(PREFIX) else {
            return Ok(None);
        };
        let malformed = || StoreError::NotFound(format!("malformed receipt {receipt:.40}…"));
        let json = URL_SAFE_NO_PAD.decode(b64).map_err(|_| malformed())?;
        serde_json::from_slice(&json)
            .map(Some)
            .map_err(|_| malformed())
    }
}

/// What a ledger check does to the entry once it passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Settle {
    /// The receipt stays valid (change of visibility).
    Keep,
    /// The receipt is used up (delete, dead-letter).
    Finish,
}

impl AwsStore {
    /// Record that `r` is the newest receive of its message. Best effort: a
    /// missing entry only makes the later checks lenient.
    pub(super) async fn ledger_receive(&self, r: &Receipt) {
        let mut item = key(KIND, &r.sqs_id);
        item.extend([
            ("n".to_owned(), n(r.count)),
            ("state".to_owned(), s(HELD)),
            (
                EXPIRES_AT.to_owned(),
                ttl_seconds(self.now().saturating_add(KEEP_MS)),
            ),
        ]);
        let put = self
            .dynamo
            .put_item()
            .table_name(&self.names.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk) OR n < :n")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":n", n(r.count))
            .send()
            .await;
        if let Err(e) = put
            && !e
                .as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception())
        {
            tracing::warn!(message_id = %r.id, error = %unavailable("receipt ledger", e), "receipt not recorded; stale receipts of this message are not detected");
        }
    }

    /// Check that `r` is current and unsettled, and apply `how`; `NotFound` if not.
    pub(super) async fn ledger_settle(&self, r: &Receipt, how: Settle) -> StoreResult<()> {
        let state = match how {
            Settle::Keep => HELD,
            Settle::Finish => SETTLED,
        };
        let update = self
            .dynamo
            .update_item()
            .table_name(&self.names.table)
            .set_key(Some(key(KIND, &r.sqs_id)))
            .update_expression("SET n = :n, #state = :state, #exp = :exp")
            .condition_expression(
                "attribute_not_exists(#pk) OR n < :n OR (n = :n AND #state = :held)",
            )
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#exp", EXPIRES_AT)
            .expression_attribute_values(":n", n(r.count))
            .expression_attribute_values(":state", s(state))
            .expression_attribute_values(":held", s(HELD))
            .expression_attribute_values(":exp", ttl_seconds(self.now().saturating_add(KEEP_MS)))
            .send()
            .await;
        match update {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => Err(stale(&r.id)),
                _ => Err(unavailable("receipt ledger", e)),
            },
        }
    }

    /// Undo a `Finish` whose SQS call then failed, so the caller can retry.
    pub(super) async fn ledger_unsettle(&self, r: &Receipt) {
        let update = self
            .dynamo
            .update_item()
            .table_name(&self.names.table)
            .set_key(Some(key(KIND, &r.sqs_id)))
            .update_expression("SET #state = :held")
            .condition_expression("n = :n")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":n", n(r.count))
            .expression_attribute_values(":held", s(HELD))
            .send()
            .await;
        if let Err(e) = update {
            tracing::warn!(message_id = %r.id, error = %unavailable("receipt ledger", e), "receipt left settled");
        }
    }
}

/// The error for a receipt that is no longer valid.
pub(super) fn stale(what: &str) -> StoreError {
    StoreError::NotFound(format!(
        "receipt of message {what:?} is stale or already used"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_and_decodes() {
        let r = Receipt {
            handle: "AQEB+/=x".into(),
            sqs_id: "sqs-1".into(),
            id: "ferry-1".into(),
            count: 3,
            body: "{\"a\":\"ü\"}".into(),
        };
        let s = r.encode();
        assert!(s.starts_with(PREFIX));
        assert_eq!(Receipt::decode(&s).unwrap(), Some(r));
    }

    #[test]
    fn raw_handles_pass_through_and_garbage_is_not_found() {
        assert_eq!(Receipt::decode("AQEBraw-sqs-handle").unwrap(), None);
        assert!(matches!(
            Receipt::decode("ferry1.!!!"),
            Err(StoreError::NotFound(_))
        ));
    }
}
