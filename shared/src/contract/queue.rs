//! The [`WorkQueue`](crate::ports::WorkQueue) contract.
//!
//! Durations are whole seconds so a real-time queue (SQS) can honour them.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{Backend, Case, Env, case_list};
use crate::ports::{Message, StoreError, StoreResult, WorkQueue};

const NOW: Duration = Duration::ZERO;
const VIS: Duration = Duration::from_secs(2);
const LONG_VIS: Duration = Duration::from_secs(60);

pub(super) fn cases() -> Vec<Case> {
    case_list!("queue":
        send_receive_delete,
        oldest_visible_first,
        receive_respects_max,
        delay_is_honoured,
        visibility_timeout_redelivers,
        stale_receipt_rejected,
        change_visibility_reschedules,
        max_receives_dead_letters,
        dead_letter_with_reason,
        dead_letters_newest_first,
        redrive_replays,
        long_poll_wakes_on_send,
        long_poll_returns_empty_after_wait,
        send_batch_sends_all,
    )
}

async fn receive_now(q: &dyn WorkQueue, max: usize, visibility: Duration) -> Vec<Message> {
    q.receive(max, visibility, NOW).await.unwrap()
}

fn bodies(messages: &[Message]) -> Vec<&str> {
    messages.iter().map(|m| m.body.as_str()).collect()
}

fn assert_not_found<T: std::fmt::Debug>(what: &str, r: StoreResult<T>) {
    assert!(
        matches!(r, Err(StoreError::NotFound(_))),
        "{what}: expected NotFound, got {r:?}"
    );
}

/// A sent message is received once with count 1, and gone once deleted.
async fn send_receive_delete(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let q = &*env.ports.queue;
    let id = q.send("hello", NOW).await.unwrap();
    let got = receive_now(q, 10, LONG_VIS).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        (
            got[0].id.as_str(),
            got[0].body.as_str(),
            got[0].receive_count
        ),
        (id.as_str(), "hello", 1)
    );
    assert!(
        receive_now(q, 10, LONG_VIS).await.is_empty(),
        "in flight: hidden"
    );
    q.delete(&got[0].receipt).await.unwrap();
    assert_not_found("delete twice", q.delete(&got[0].receipt).await);
    env.advance_queue(LONG_VIS).await;
    assert!(
        receive_now(q, 10, LONG_VIS).await.is_empty(),
        "deleted: gone for good"
    );
}

/// Messages come out in the order they became visible.
async fn oldest_visible_first(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let q = &*env.ports.queue;
    for body in ["a", "b", "c", "d"] {
        q.send(body, NOW).await.unwrap();
    }
    let mut got = Vec::new();
    for _ in 0..4 {
        got.extend(receive_now(q, 1, LONG_VIS).await);
    }
    let mut seen = bodies(&got);
    if !env.queue_is_ordered {
        seen.sort_unstable();
    }
    assert_eq!(seen, ["a", "b", "c", "d"]);
}

/// Never more than `max` per receive.
async fn receive_respects_max(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let q = &*env.ports.queue;
    for i in 0..5 {
        q.send(&format!("m{i}"), NOW).await.unwrap();
    }
    let first = receive_now(q, 2, LONG_VIS).await;
    assert_eq!(first.len(), 2, "{first:?}");
    let mut rest = Vec::new();
    for _ in 0..3 {
        rest.extend(receive_now(q, 10, LONG_VIS).await);
        if first.len() + rest.len() == 5 {
            break;
        }
    }
    assert_eq!(first.len() + rest.len(), 5);
}

/// A delayed message is invisible until its delay has passed.
async fn delay_is_honoured(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let q = &*env.ports.queue;
    let id = q.send("later", Duration::from_secs(3)).await.unwrap();
    assert!(
        receive_now(q, 10, LONG_VIS).await.is_empty(),
        "still delayed"
    );
    env.advance_queue(Duration::from_secs(3)).await;
    let got = receive_now(q, 10, LONG_VIS).await;
    assert_eq!(got.iter().map(|m| &m.id).collect::<Vec<_>>(), [&id]);
}

/// Not deleted within the visibility timeout: delivered again, count 2, new receipt.
async fn visibility_timeout_redelivers(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let q = &*env.ports.queue;
    let id = q.send("retry me", NOW).await.unwrap();
    let first = receive_now(q, 1, VIS).await;
    assert_eq!(first.len(), 1);
    assert!(
        receive_now(q, 1, VIS).await.is_empty(),
        "hidden during the timeout"
    );
    env.advance_queue(VIS).await;
    let second = receive_now(q, 1, VIS).await;
    assert_eq!(second.len(), 1, "visible again after the timeout");
    assert_eq!(
        (second[0].id.as_str(), second[0].receive_count),
        (id.as_str(), 2)
    );
    assert_ne!(
        second[0].receipt, first[0].receipt,
        "each receive has a new receipt"
    );
}

/// A receipt from an earlier receive no longer works; the latest does.
async fn stale_receipt_rejected(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let q = &*env.ports.queue;
    q.send("m", NOW).await.unwrap();
    let old = receive_now(q, 1, VIS).await.remove(0);
    env.advance_queue(VIS).await;
    let new = receive_now(q, 1, VIS).await.remove(0);
    assert_not_found("delete", q.delete(&old.receipt).await);
    assert_not_found(
        "change_visibility",
        q.change_visibility(&old.receipt, NOW).await,
    );
    assert_not_found("dead_letter", q.dead_letter(&old.receipt, "x").await);
    assert_not_found("unknown receipt", q.delete("no-such-receipt").await);
    q.delete(&new.receipt).await.unwrap();
}

/// `change_visibility(0)` releases at once; a longer timeout hides until then.
async fn change_visibility_reschedules(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let q = &*env.ports.queue;
    let id = q.send("m", NOW).await.unwrap();
    let first = receive_now(q, 1, LONG_VIS).await.remove(0);
    q.change_visibility(&first.receipt, NOW).await.unwrap();
    let second = receive_now(q, 1, LONG_VIS).await;
    assert_eq!(second.len(), 1, "released at once");
    assert_eq!(
        (second[0].id.as_str(), second[0].receive_count),
        (id.as_str(), 2)
    );
    q.change_visibility(&second[0].receipt, Duration::from_secs(3))
        .await
        .unwrap();
    assert!(
        receive_now(q, 1, LONG_VIS).await.is_empty(),
        "hidden for 3s"
    );
    env.advance_queue(Duration::from_secs(3)).await;
    assert_eq!(
        receive_now(q, 1, LONG_VIS).await.len(),
        1,
        "visible after 3s"
    );
}

/// After `max_receives` receives the next receive dead-letters it instead.
async fn max_receives_dead_letters(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let q = &*env.ports.queue;
    let n = env.max_receives;
    let id = q.send("poison", NOW).await.unwrap();
    for i in 1..=n {
        let got = receive_now(q, 1, VIS).await;
        assert_eq!(got.iter().map(|m| m.receive_count).collect::<Vec<_>>(), [i]);
        env.advance_queue(VIS).await;
    }
    assert!(
        receive_now(q, 1, VIS).await.is_empty(),
        "not delivered an extra time"
    );
    let dead = q.dead_letters(10).await.unwrap();
    let d = dead.iter().find(|d| d.id == id).expect("dead-lettered");
    assert_eq!(d.body, "poison");
    assert_eq!(d.reason, format!("exceeded max receives ({n})"));
    assert_eq!(d.receive_count, n);
}

/// `dead_letter` moves a received message with the given reason.
async fn dead_letter_with_reason(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let q = &*env.ports.queue;
    let id = q.send(r#"{"bad":true}"#, NOW).await.unwrap();
    let m = receive_now(q, 1, VIS).await.remove(0);
    q.dead_letter(&m.receipt, "mapping error: missing field email")
        .await
        .unwrap();
    assert_not_found("receipt after dead_letter", q.delete(&m.receipt).await);
    env.advance_queue(VIS).await;
    assert!(
        receive_now(q, 1, VIS).await.is_empty(),
        "no longer in the queue"
    );
    let dead = q.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(
        (
            dead[0].id.as_str(),
            dead[0].body.as_str(),
            dead[0].reason.as_str(),
            dead[0].receive_count
        ),
        (
            id.as_str(),
            r#"{"bad":true}"#,
            "mapping error: missing field email",
            1
        )
    );
}

/// The newest dead letters come first, up to the limit.
async fn dead_letters_newest_first(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let q = &*env.ports.queue;
    for body in ["first", "second", "third"] {
        q.send(body, NOW).await.unwrap();
        let m = receive_now(q, 1, LONG_VIS).await.remove(0);
        q.dead_letter(&m.receipt, body).await.unwrap();
        env.advance_queue(Duration::from_millis(10)).await;
    }
    let dead = q.dead_letters(2).await.unwrap();
    assert_eq!(
        dead.iter().map(|d| d.body.as_str()).collect::<Vec<_>>(),
        ["third", "second"]
    );
    assert!(dead[0].dead_at >= dead[1].dead_at);
    // The depth counts them all (at least up to `at_most`).
    assert_eq!(q.dead_letter_depth(100).await.unwrap(), 3);
    assert!(q.dead_letter_depth(2).await.unwrap() >= 2);
}

/// Redrive puts a dead letter back, receive count reset.
async fn redrive_replays(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let q = &*env.ports.queue;
    let id = q.send("again", NOW).await.unwrap();
    let m = receive_now(q, 1, VIS).await.remove(0);
    q.dead_letter(&m.receipt, "boom").await.unwrap();
    let new_id = q.redrive(&id).await.unwrap();
    assert!(
        q.dead_letters(10).await.unwrap().iter().all(|d| d.id != id),
        "left the DLQ"
    );
    let got = receive_now(q, 1, VIS).await;
    assert_eq!(got.len(), 1, "visible at once");
    assert_eq!(
        (
            got[0].id.as_str(),
            got[0].body.as_str(),
            got[0].receive_count
        ),
        (new_id.as_str(), "again", 1)
    );
    assert_not_found("redrive twice", q.redrive(&id).await);
    assert_not_found("redrive unknown", q.redrive("no-such-id").await);
}

/// A long poll returns as soon as a message is sent, well before its wait.
async fn long_poll_wakes_on_send(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let q = env.ports.queue.clone();
    let start = Instant::now();
    let poller = tokio::spawn(async move { q.receive(1, LONG_VIS, Duration::from_secs(20)).await });
    // Give the poller a moment to park; the assertions hold either way.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let id = env.ports.queue.send("wake up", NOW).await.unwrap();
    let got = poller.await.unwrap().unwrap();
    assert_eq!(got.iter().map(|m| &m.id).collect::<Vec<_>>(), [&id]);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "took {:?}",
        start.elapsed()
    );
}

/// A long poll on an empty queue returns empty once its wait is over.
async fn long_poll_returns_empty_after_wait(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let q = &*env.ports.queue;
    let start = Instant::now();
    let got = q
        .receive(1, LONG_VIS, Duration::from_secs(1))
        .await
        .unwrap();
    let took = start.elapsed();
    assert!(got.is_empty(), "{got:?}");
    assert!(
        took >= Duration::from_millis(900),
        "returned early: {took:?}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

/// A batch sends every item, each with its own delay and id.
async fn send_batch_sends_all(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let q = &*env.ports.queue;
    assert!(q.send_batch(&[]).await.unwrap().is_empty());
    let items =
        [("a", NOW), ("b", NOW), ("c", Duration::from_secs(3))].map(|(b, d)| (b.to_string(), d));
    let ids = q.send_batch(&items).await.unwrap();
    assert_eq!(ids.len(), 3);
    assert!(
        ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2],
        "{ids:?}"
    );
    let mut now: Vec<(String, String)> = receive_now(q, 10, LONG_VIS)
        .await
        .into_iter()
        .map(|m| (m.body, m.id))
        .collect();
    now.sort();
    assert_eq!(
        now,
        [
            ("a".to_string(), ids[0].clone()),
            ("b".to_string(), ids[1].clone())
        ]
    );
    env.advance_queue(Duration::from_secs(3)).await;
    let later = receive_now(q, 10, LONG_VIS).await;
    assert_eq!(
        later.iter().map(|m| (&*m.body, &m.id)).collect::<Vec<_>>(),
        [("c", &ids[2])]
    );
}
