//! Slots on the embedded store with a hand-moved clock: taken, given back,
//! taken over from a holder that crashed, re-taken by the same run.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::clock::ManualClock;
use crate::contract::T0;
use crate::ports::Ports;
use crate::store::{SqliteOptions, SqliteStore};

const LEASE: Duration = Duration::from_secs(60);

fn store(dir: &std::path::Path) -> (Arc<SqliteStore>, Ports, Arc<ManualClock>) {
    let clock = ManualClock::at(T0);
    let opts = SqliteOptions {
        max_receives: 5,
        clock: clock.clone(),
    };
    let store = SqliteStore::open(&dir.join("hub.db"), opts).unwrap();
    let ports = store.ports();
    (store, ports, clock)
}

fn limit(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

async fn take(p: &Ports, group: &str, n: u32, run: &str) -> Option<Slot> {
    let (idem, clock) = (p.idempotency.as_ref(), p.clock.as_ref());
    acquire(idem, clock, group, limit(n), run, LEASE)
        .await
        .unwrap()
}

#[tokio::test]
async fn limit_slots_are_taken_then_given_back() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, p, _clock) = store(dir.path());
    let g = group_key("sync-accounts", Some("acct-1"));

    let a = take(&p, &g, 2, "run-a").await.expect("a first slot");
    let b = take(&p, &g, 2, "run-b").await.expect("a second slot");
    assert_ne!(a, b, "two runs, two slots");
    assert_eq!(take(&p, &g, 2, "run-c").await, None, "both slots are taken");
    // Another key of the same workflow, and the same key of another workflow,
    // have slots of their own.
    let other_key = group_key("sync-accounts", Some("acct-2"));
    assert!(take(&p, &other_key, 2, "run-d").await.is_some());
    let other_wf = group_key("other", Some("acct-1"));
    assert!(take(&p, &other_wf, 2, "run-e").await.is_some());

    release(p.idempotency.as_ref(), &a).await;
    let c = take(&p, &g, 2, "run-c")
        .await
        .expect("the slot a gave back");
    assert_eq!(c, a);
    assert_eq!(take(&p, &g, 2, "run-f").await, None);
}

#[tokio::test]
async fn a_crashed_holder_is_taken_over_once_its_lease_ends() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, p, clock) = store(dir.path());
    let g = group_key("w", Some("k"));
    // run-a takes the only slot and never gives it back.
    assert!(take(&p, &g, 1, "run-a").await.is_some());
    clock.advance(59_999);
    assert_eq!(take(&p, &g, 1, "run-b").await, None, "the lease still runs");
    clock.advance(1);
    let b = take(&p, &g, 1, "run-b").await.expect("the lease has ended");
    // run-b holds it now, with a lease of its own.
    clock.advance(30_000);
    assert_eq!(take(&p, &g, 1, "run-a").await, None);
    release(p.idempotency.as_ref(), &b).await;
    assert!(take(&p, &g, 1, "run-a").await.is_some());
}

#[tokio::test]
async fn a_redelivered_run_takes_its_own_slot_back_with_a_fresh_lease() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, p, clock) = store(dir.path());
    let g = group_key("w", Some("k"));
    let first = take(&p, &g, 1, "run-a").await.unwrap();
    // The delivery holding it died; the message comes back 40 s later.
    clock.advance(40_000);
    let again = take(&p, &g, 1, "run-a").await.expect("its own slot");
    assert_eq!(again, first);
    // With a fresh lease: 59 s on, another run still finds the slot taken.
    clock.advance(59_000);
    assert_eq!(take(&p, &g, 1, "run-b").await, None);
    // Within a second of the old lease's end the slot is left to expire
    // (releasing it then could drop a claim another run just made).
    let g2 = group_key("w", Some("k2"));
    take(&p, &g2, 1, "run-c").await.unwrap();
    clock.advance(59_500);
    assert_eq!(take(&p, &g2, 1, "run-c").await, None);
    clock.advance(500);
    assert!(take(&p, &g2, 1, "run-c").await.is_some());
}

#[tokio::test]
async fn ferry_dev_frees_the_slots_of_a_dead_process_when_it_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let (store, p, _clock) = store(dir.path());
    let g = group_key("w", None);
    take(&p, &g, 1, "run-a").await.unwrap();
    assert_eq!(take(&p, &g, 1, "run-b").await, None);
    let r = store.recover_after_crash().await.unwrap();
    assert_eq!(r.claims, 1);
    assert!(take(&p, &g, 1, "run-b").await.is_some());
}

#[test]
fn group_keys_are_short_and_tell_keys_and_workflows_apart() {
    let huge = "x".repeat(1 << 20);
    let hostile = ["", ":", "\u{0}", "a\u{1f}b", huge.as_str(), "conc:w:0"];
    let mut seen = std::collections::HashSet::new();
    for k in hostile {
        let g = group_key("w", Some(k));
        assert_eq!(g.len(), PREFIX.len() + 64, "{g}");
        assert!(g[PREFIX.len()..].bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(seen.insert(g));
    }
    // No key at all is its own group, apart from an empty key.
    assert!(seen.insert(group_key("w", None)));
    // The workflow's length keeps ("a", "bc") apart from ("ab", "c").
    assert_ne!(group_key("a", Some("bc")), group_key("ab", Some("c")));
}

#[test]
fn waits_are_spread_between_the_bounds() {
    let waits: Vec<Duration> = (0..200).map(|_| wait()).collect();
    assert!(waits.iter().all(|w| (WAIT_MIN..=WAIT_MAX).contains(w)));
    let distinct: std::collections::HashSet<_> = waits.iter().collect();
    assert!(distinct.len() > 20, "jittered: {distinct:?}");
}
