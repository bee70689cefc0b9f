//! What ferry's SQS messages carry beyond their body, SQS's limits, and the
//! bridge from a Lambda event source's records to the port's messages.

use std::time::Duration;

use aws_sdk_sqs::types::{
    Message as SqsMessage, MessageAttributeValue, MessageSystemAttributeName,
};

use super::after;
use super::receipt::Receipt;
use crate::clock::Millis;
use crate::ports::Message;

/// SQS's longest `DelaySeconds`.
pub const MAX_DELAY: Duration = Duration::from_secs(900);
/// Message attribute (Number, clock ms): not to be processed before then.
pub const NOT_BEFORE_ATTRIBUTE: &str = "ferry-not-before";
/// Message attribute (String): the ferry message id of a re-sent copy.
pub const ID_ATTRIBUTE: &str = "ferry-id";
/// Longest visibility timeout SQS accepts.
pub(super) const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60);

/// Whole seconds, rounded up (SQS never fires early), at most `cap`.
pub(super) fn secs(d: Duration, cap: Duration) -> i32 {
    let s = d.min(cap).as_millis().div_ceil(1000);
    i32::try_from(s).unwrap_or(i32::MAX)
}

/// `DelaySeconds` and, for delays beyond [`MAX_DELAY`], the "not before" time.
pub(super) fn plan_delay(now: Millis, delay: Duration) -> (i32, Option<Millis>) {
    if delay <= MAX_DELAY {
        (secs(delay, MAX_DELAY), None)
    } else {
        (secs(MAX_DELAY, MAX_DELAY), Some(after(now, delay)))
    }
}

/// How long a message with this [`NOT_BEFORE_ATTRIBUTE`] value still has to
/// wait at `now`; `None` when it is due (or has no such attribute).
pub fn due_in(not_before: Option<&str>, now: Millis) -> Option<Duration> {
    let at: Millis = not_before?.trim().parse().ok()?;
    (at > now).then(|| Duration::from_millis((at - now).unsigned_abs()))
}

/// An SQS record as the Lambda event source delivers it.
#[derive(Debug, Clone, Copy)]
pub struct SqsRecord<'a> {
    /// `messageId`.
    pub message_id: &'a str,
    /// `receiptHandle`.
    pub receipt_handle: &'a str,
    /// `body`.
    pub body: &'a str,
    /// `attributes.ApproximateReceiveCount`.
    pub receive_count: u32,
    /// `messageAttributes["ferry-id"].stringValue`, when present.
    pub ferry_id: Option<&'a str>,
    /// Whether it carries ferry's dead-letter reason
    /// (`messageAttributes["ferry-reason"]`): only a message moved back from
    /// the dead-letter queue by SQS's own redrive does.
    pub redriven: bool,
}

/// The port's [`Message`] for a record the Lambda event source received, with
/// a receipt this adapter's `delete`, `change_visibility` and `dead_letter` take.
pub fn message_from_sqs(r: SqsRecord<'_>) -> Message {
    let id = r.ferry_id.unwrap_or(r.message_id).to_owned();
    let receipt = Receipt {
        handle: r.receipt_handle.to_owned(),
        sqs_id: r.message_id.to_owned(),
        id: id.clone(),
        count: r.receive_count,
        body: r.body.to_owned(),
    };
    Message {
        id,
        receipt: receipt.encode(),
        body: r.body.to_owned(),
        receive_count: r.receive_count,
        redrive: r.redriven.then(|| r.message_id.to_owned()),
    }
}

pub(super) fn string_attr(v: impl Into<String>) -> MessageAttributeValue {
    typed_attr("String", v.into())
}

pub(super) fn number_attr(v: impl std::fmt::Display) -> MessageAttributeValue {
    typed_attr("Number", v.to_string())
}

fn typed_attr(kind: &str, v: String) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type(kind)
        .string_value(v)
        .build()
        .expect("data_type is set")
}

/// Message attribute `name` of `m`, as text.
pub(super) fn attr<'a>(m: &'a SqsMessage, name: &str) -> Option<&'a str> {
    m.message_attributes()?.get(name)?.string_value()
}

/// System attribute `name` of `m`.
pub(super) fn system_attr(m: &SqsMessage, name: MessageSystemAttributeName) -> Option<&str> {
    m.attributes()?.get(&name).map(String::as_str)
}

/// The ferry id of an SQS message.
pub(super) fn ferry_id(m: &SqsMessage) -> String {
    attr(m, ID_ATTRIBUTE)
        .or(m.message_id())
        .unwrap_or_default()
        .to_owned()
}

/// Whether an SQS error means the receipt handle is not (or no longer) valid.
pub(super) fn is_bad_receipt(code: Option<&str>, message: &str) -> bool {
    matches!(
        code,
        Some("ReceiptHandleIsInvalid" | "InvalidIdFormat" | "MessageNotInflight")
    ) || (code == Some("InvalidParameterValue") && message.contains("receipt handle"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_round_up_and_long_ones_get_a_not_before() {
        assert_eq!(plan_delay(0, Duration::ZERO), (0, None));
        assert_eq!(plan_delay(0, Duration::from_millis(100)), (1, None));
        assert_eq!(plan_delay(0, MAX_DELAY), (900, None));
        let long = Duration::from_secs(16 * 60);
        assert_eq!(plan_delay(5_000, long), (900, Some(5_000 + 960_000)));
        assert_eq!(secs(Duration::from_secs(13 * 3600), MAX_VISIBILITY), 43_200);
    }

    #[test]
    fn due_in_reads_the_attribute() {
        assert_eq!(due_in(None, 10), None);
        assert_eq!(due_in(Some("10"), 10), None);
        assert_eq!(due_in(Some("1010"), 10), Some(Duration::from_secs(1)));
        assert_eq!(due_in(Some("garbage"), 10), None);
    }

    #[test]
    fn lambda_records_get_receipts_that_carry_the_body() {
        let m = message_from_sqs(SqsRecord {
            message_id: "sqs-1",
            receipt_handle: "AQEB",
            body: "{}",
            receive_count: 2,
            ferry_id: Some("ferry-1"),
            redriven: false,
        });
        assert_eq!((m.id.as_str(), m.receive_count), ("ferry-1", 2));
        let r = Receipt::decode(&m.receipt).unwrap().unwrap();
        assert_eq!(
            (r.handle.as_str(), r.sqs_id.as_str(), r.body.as_str()),
            ("AQEB", "sqs-1", "{}")
        );
    }

    #[test]
    fn bad_receipt_codes() {
        assert!(is_bad_receipt(Some("ReceiptHandleIsInvalid"), ""));
        assert!(is_bad_receipt(
            Some("InvalidParameterValue"),
            "Value x for parameter ReceiptHandle is invalid. Reason: The receipt handle has expired."
        ));
        assert!(!is_bad_receipt(
            Some("InvalidParameterValue"),
            "VisibilityTimeout"
        ));
        assert!(!is_bad_receipt(Some("ThrottlingException"), ""));
    }
}
