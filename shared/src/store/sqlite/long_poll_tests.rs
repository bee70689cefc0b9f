//! A long-polling receive on the embedded store wakes for a send, for a
//! delay's end and for a jump of a manual clock, not only at its recheck.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::tests::{MAX_RECEIVES, open};
use super::{SqliteOptions, SqliteStore};
use crate::clock::{ManualClock, SystemClock};
use crate::contract;

#[tokio::test]
async fn long_poll_is_woken_by_send_not_by_its_recheck() {
    let dir = tempfile::tempdir().unwrap();
    let opts = SqliteOptions {
        max_receives: MAX_RECEIVES,
        clock: Arc::new(SystemClock),
    };
    let ports = SqliteStore::open_with_recheck(dir.path(), opts, Duration::from_secs(3600))
        .unwrap()
        .ports();
    let queue = ports.queue.clone();
    let start = Instant::now();
    let poller = tokio::spawn(async move {
        queue
            .receive(1, Duration::from_secs(30), Duration::from_secs(60))
            .await
    });
    // Give the poller a moment to park; the assertion holds either way.
    tokio::time::sleep(Duration::from_millis(200)).await;
    ports.queue.send("ping", Duration::ZERO).await.unwrap();
    let got = poller.await.unwrap().unwrap();
    assert_eq!(got.len(), 1);
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "took {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn long_poll_wakes_when_a_delay_ends() {
    let dir = tempfile::tempdir().unwrap();
    let ports = open(dir.path(), Arc::new(SystemClock)).ports();
    let start = Instant::now();
    ports
        .queue
        .send("soon", Duration::from_millis(300))
        .await
        .unwrap();
    let got = ports
        .queue
        .receive(1, Duration::from_secs(30), Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(300),
        "delivered early: {took:?}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[tokio::test]
async fn long_poll_notices_a_manual_clock_jump() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(contract::T0);
    let ports = open(dir.path(), clock.clone()).ports();
    ports
        .queue
        .send("delayed", Duration::from_secs(3600))
        .await
        .unwrap();
    let queue = ports.queue.clone();
    let poller = tokio::spawn(async move {
        queue
            .receive(1, Duration::from_secs(30), Duration::from_secs(20))
            .await
    });
    // Give the poller a moment to park; the assertion holds either way.
    tokio::time::sleep(Duration::from_millis(200)).await;
    clock.advance(3_600_000);
    let got = poller.await.unwrap().unwrap();
    assert_eq!(got.len(), 1, "re-checked within the recheck interval");
}
