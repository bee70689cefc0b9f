//! `SendMessageBatch` in chunks, with its partial failures handled: SQS takes
//! at most 10 entries and 256 KiB per call, and may fail some entries of a
//! call that succeeded. Failed entries that were not the sender's fault are
//! sent again (a few times, with a short backoff); the batch is an error only
//! if some entry could not be sent in the end. Entries sent before that stay
//! sent (the port's "per item for SQS").

use std::future::Future;
use std::time::Duration;

use crate::ports::{StoreError, StoreResult};

/// Entries per `SendMessageBatch` call.
pub(super) const MAX_ENTRIES: usize = 10;
/// Bytes of bodies per call: SQS allows 256 KiB for the whole payload, and
/// the rest (attributes) gets 8 KiB of headroom.
pub(super) const MAX_BYTES: usize = 248 * 1024;
/// Extra rounds for entries that failed through no fault of ours.
const RETRIES: u32 = 3;
/// Pause before the first retry round; doubles each round.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);

/// The outcome of one entry of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Sent, with this message id.
    Sent(String),
    /// Not sent. `sender_fault`: retrying the same entry cannot help.
    Failed {
        /// Whether SQS blamed the request (bad attribute, too large, …).
        sender_fault: bool,
        /// `code: message`.
        reason: String,
    },
}

/// Split entry indexes into calls of at most [`MAX_ENTRIES`] and [`MAX_BYTES`].
pub(super) fn chunks(sizes: &[usize], indexes: &[usize]) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut bytes = 0;
    for &i in indexes {
        let size = sizes[i];
        let full = out
            .last()
            .is_none_or(|c| c.len() >= MAX_ENTRIES || bytes + size > MAX_BYTES);
        if full {
            out.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        if let Some(chunk) = out.last_mut() {
            chunk.push(i);
        }
    }
    out
}

/// Send entries `0..sizes.len()` with `call` (one `SendMessageBatch` over the
/// given indexes, answering an outcome per index) and return every message id,
/// in entry order.
pub(super) async fn send_all<F, Fut>(sizes: &[usize], mut call: F) -> StoreResult<Vec<String>>
where
    F: FnMut(Vec<usize>) -> Fut,
    Fut: Future<Output = StoreResult<Vec<(usize, Outcome)>>>,
{
    let mut ids: Vec<Option<String>> = vec![None; sizes.len()];
    let mut pending: Vec<usize> = (0..sizes.len()).collect();
    let mut given_up: Vec<(usize, String)> = Vec::new();
    let mut backoff = FIRST_BACKOFF;
    for round in 0..=RETRIES {
        if pending.is_empty() {
            break;
        }
        if round > 0 {
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
        let mut failed = Vec::new();
        for chunk in chunks(sizes, &pending) {
            let asked = chunk.clone();
            let mut answered = vec![false; asked.len()];
            for (i, outcome) in call(chunk).await? {
                if let Some(pos) = asked.iter().position(|&a| a == i) {
                    answered[pos] = true;
                }
                match outcome {
                    Outcome::Sent(id) => ids[i] = Some(id),
                    Outcome::Failed {
                        sender_fault: true,
                        reason,
                    } => given_up.push((i, reason)),
                    Outcome::Failed { reason, .. } => failed.push((i, reason)),
                }
            }
            // An entry SQS did not mention at all is retried too.
            for (pos, &i) in asked.iter().enumerate() {
                if !answered[pos] {
                    failed.push((i, "no answer for this entry".into()));
                }
            }
        }
        pending = failed.iter().map(|(i, _)| *i).collect();
        if round == RETRIES {
            given_up.extend(failed);
        }
    }
    if given_up.is_empty() {
        return Ok(ids.into_iter().map(Option::unwrap_or_default).collect());
    }
    given_up.sort_by_key(|(i, _)| *i);
    let detail: Vec<String> = given_up
        .iter()
        .map(|(i, reason)| format!("#{i}: {reason}"))
        .collect();
    Err(StoreError::Unavailable(format!(
        "{} of {} messages could not be sent ({} were): {}",
        given_up.len(),
        sizes.len(),
        sizes.len() - given_up.len(),
        detail.join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn chunks_by_count_and_bytes() {
        let sizes = vec![1; 25];
        let all: Vec<usize> = (0..25).collect();
        let lens: Vec<usize> = chunks(&sizes, &all).iter().map(Vec::len).collect();
        assert_eq!(lens, [10, 10, 5]);
        let big = vec![100 * 1024; 5];
        let got = chunks(&big, &[0, 1, 2, 3, 4]);
        assert_eq!(got, [vec![0, 1], vec![2, 3], vec![4]]);
    }

    #[tokio::test]
    async fn transient_failures_are_retried_until_sent() {
        let calls = Mutex::new(Vec::new());
        let sizes = vec![10; 12];
        let ids = send_all(&sizes, |chunk| {
            calls.lock().unwrap().push(chunk.clone());
            let first_try = calls.lock().unwrap().len() <= 2;
            async move {
                Ok(chunk
                    .into_iter()
                    .map(|i| {
                        // Odd entries fail on their first try (throttled, say).
                        if first_try && i % 2 == 1 {
                            let reason = "InternalError: try again".into();
                            (
                                i,
                                Outcome::Failed {
                                    sender_fault: false,
                                    reason,
                                },
                            )
                        } else {
                            (i, Outcome::Sent(format!("id-{i}")))
                        }
                    })
                    .collect())
            }
        })
        .await
        .unwrap();
        assert_eq!(ids, (0..12).map(|i| format!("id-{i}")).collect::<Vec<_>>());
        let calls = calls.into_inner().unwrap();
        assert_eq!(calls.len(), 3, "two chunks, then one retry: {calls:?}");
        assert_eq!(calls[2], [1, 3, 5, 7, 9, 11]);
    }

    #[tokio::test]
    async fn sender_faults_and_persistent_failures_are_an_error_naming_them() {
        let sizes = vec![10; 4];
        let err = send_all(&sizes, |chunk| async move {
            Ok(chunk
                .into_iter()
                .map(|i| match i {
                    1 => (
                        i,
                        Outcome::Failed {
                            sender_fault: true,
                            reason: "bad".into(),
                        },
                    ),
                    2 => (
                        i,
                        Outcome::Failed {
                            sender_fault: false,
                            reason: "down".into(),
                        },
                    ),
                    _ => (i, Outcome::Sent(format!("id-{i}"))),
                })
                .collect())
        })
        .await
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("2 of 4 messages could not be sent (2 were)"),
            "{text}"
        );
        assert!(
            text.contains("#1: bad") && text.contains("#2: down"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn an_entry_without_an_answer_is_retried() {
        let round = Mutex::new(0);
        let ids = send_all(&[5, 5], |chunk| {
            *round.lock().unwrap() += 1;
            let first = *round.lock().unwrap() == 1;
            async move {
                Ok(chunk
                    .into_iter()
                    .filter(|&i| !(first && i == 0))
                    .map(|i| (i, Outcome::Sent(format!("id-{i}"))))
                    .collect())
            }
        })
        .await
        .unwrap();
        assert_eq!(ids, ["id-0", "id-1"]);
    }
}
