//! Delivering the outbox: each message to each of its channels, with
//! backoff when a channel fails, recorded in the book's log. Runs after an
//! evaluation, on the evaluator's task: never on a run's or ingest's path.
//!
//! Several evaluators share one outbox: a message is leased (in the book,
//! by its optimistic version) before it is sent, so only one sends it. A
//! crash between sending and recording sends it again when the lease ends
//! (at least once; the webhook channel's `webhook-id` lets receivers
//! drop the copy).

use std::time::Duration;

use async_trait::async_trait;

use crate::clock::{after, millis};
use crate::config::Channel;
use crate::hub::Hub;
use crate::ports::StoreError;

use super::book::{self, Delivery, Pending};
use super::channel::{SendError, Senders};
use super::notice::Notice;

/// How long a sender holds a message.
pub const LEASE: Duration = Duration::from_secs(60);
/// Messages sent per evaluation at most.
pub const MAX_PER_ROUND: usize = 20;
/// The first retry's wait; it doubles up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(30);
/// The longest wait between attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30 * 60);
/// A message not delivered within this is dropped (and logged).
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Something that sends a message on a channel: the real channels
/// ([`Senders`]), or a test's recorder.
#[async_trait]
pub trait Sender: Send + Sync {
    /// Make one attempt to send `notice` on channel `name`.
    async fn send(&self, name: &str, channel: &Channel, notice: &Notice) -> Result<(), SendError>;
}

#[async_trait]
impl Sender for Senders {
    async fn send(&self, name: &str, channel: &Channel, notice: &Notice) -> Result<(), SendError> {
        Senders::send(self, name, channel, notice).await
    }
}

/// Deliveries made and failed in one round.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Delivered {
    /// Messages a channel took.
    pub sent: usize,
    /// Attempts that failed (to be retried, or given up).
    pub failed: usize,
}

/// Send what is due.
pub async fn deliver(hub: &Hub, sender: &dyn Sender) -> Result<Delivered, StoreError> {
    let Some(alerts) = &hub.config.alerts else {
        return Ok(Delivered::default());
    };
    let leased = lease(hub).await?;
    let mut results = Vec::new();
    for p in leased {
        let r = match alerts.channels.get(&p.channel) {
            Some(ch) => sender.send(&p.channel, ch, &p.notice).await,
            None => Err(SendError {
                retryable: false,
                retry_after: None,
                message: format!("channel {:?} is no longer in the config", p.channel),
            }),
        };
        results.push((p, r));
    }
    record(hub, results).await
}

/// Lease the due messages (up to [`MAX_PER_ROUND`]) in the book.
async fn lease(hub: &Hub) -> Result<Vec<Pending>, StoreError> {
    for _ in 0..3 {
        let (mut b, version) = book::load(hub).await?;
        let now = hub.ports.clock.now_ms();
        let mut picked = Vec::new();
        for p in b.outbox.iter_mut() {
            if picked.len() < MAX_PER_ROUND && p.due <= now && p.lease_until <= now {
                p.lease_until = after(now, LEASE);
                picked.push(p.clone());
            }
        }
        if picked.is_empty() || book::save(hub, &b, version).await? {
            return Ok(picked);
        }
    }
    Ok(Vec::new())
}

async fn record(
    hub: &Hub,
    results: Vec<(Pending, Result<(), SendError>)>,
) -> Result<Delivered, StoreError> {
    if results.is_empty() {
        return Ok(Delivered::default());
    }
    for _ in 0..5 {
        let (mut b, version) = book::load(hub).await?;
        let now = hub.ports.clock.now_ms();
        let mut done = Delivered::default();
        for (p, r) in &results {
            let Some(i) = b
                .outbox
                .iter()
                .position(|q| q.notice.id == p.notice.id && q.channel == p.channel)
            else {
                continue;
            };
            let attempt = b.outbox[i].attempts + 1;
            match r {
                Ok(()) => {
                    done.sent += 1;
                    b.outbox.remove(i);
                    b.log(Delivery {
                        notice: p.notice.id.clone(),
                        channel: p.channel.clone(),
                        at: now,
                        attempt,
                        error: None,
                    });
                }
                Err(e) => {
                    done.failed += 1;
                    let give_up =
                        !e.retryable || now - p.notice.last_at.min(now) > millis(GIVE_UP_AFTER);
                    tracing::warn!(notice = %p.notice.id, channel = %p.channel, attempt, error = %e.message, give_up, "alert not delivered");
                    b.log(Delivery {
                        notice: p.notice.id.clone(),
                        channel: p.channel.clone(),
                        at: now,
                        attempt,
                        error: Some(if give_up {
                            format!("{} (gave up)", e.message)
                        } else {
                            e.message.clone()
                        }),
                    });
                    if give_up {
                        b.outbox.remove(i);
                    } else {
                        let q = &mut b.outbox[i];
                        q.attempts = attempt;
                        q.lease_until = 0;
                        q.due = after(now, e.retry_after.unwrap_or_else(|| backoff(attempt)));
                        q.last_error = Some(e.message.clone());
                    }
                }
            }
        }
        if book::save(hub, &b, version).await? {
            return Ok(done);
        }
    }
    Err(StoreError::Unavailable(
        "alert book: too many concurrent writers".into(),
    ))
}

/// The wait after the `attempt`-th failure.
pub fn backoff(attempt: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let got: Vec<u64> = (1..=8).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(got, [30, 60, 120, 240, 480, 960, 1800, 1800]);
    }
}
