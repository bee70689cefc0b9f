//! The [`Idempotency`](crate::ports::Idempotency) contract.

use std::sync::Arc;
use std::time::Duration;

use super::{Backend, Case, Env, T0, case_list, unique};
use crate::ports::{Claim, StoreError};

const LEASE: Duration = Duration::from_secs(30);
const TTL: Duration = Duration::from_secs(3600);
const MS: Duration = Duration::from_millis(1);

pub(super) fn cases() -> Vec<Case> {
    case_list!("idempotency":
        claim_once,
        concurrent_claims_one_winner,
        lease_expiry_allows_reclaim,
        completed_result_returned,
        ttl_expiry_allows_reclaim,
        payload_mismatch,
        release_frees_the_key,
        complete_requires_a_claim,
    )
}

fn in_progress(data: &str, lease_until: i64) -> Claim {
    Claim::InProgress {
        data: data.into(),
        lease_until,
    }
}

/// The first claim wins; the next sees the holder's data and lease end.
async fn claim_once(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let idem = &env.ports.idempotency;
    let key = unique("claim-once");
    assert_eq!(
        idem.claim(&key, "h1", "run-1", LEASE).await.unwrap(),
        Claim::Claimed
    );
    assert_eq!(
        idem.claim(&key, "h1", "run-2", LEASE).await.unwrap(),
        in_progress("run-1", T0 + 30_000)
    );
    let other = unique("claim-once-other");
    assert_eq!(
        idem.claim(&other, "h1", "run-3", LEASE).await.unwrap(),
        Claim::Claimed
    );
}

/// Twenty simultaneous claims of one key: exactly one is `Claimed`.
async fn concurrent_claims_one_winner(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let key = unique("concurrent");
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let idem = env.ports.idempotency.clone();
            let key = key.clone();
            tokio::spawn(
                async move { (i, idem.claim(&key, "h", &format!("run-{i}"), LEASE).await) },
            )
        })
        .collect();
    let mut winners = Vec::new();
    let mut holders = Vec::new();
    for task in tasks {
        let (i, claim) = task.await.unwrap();
        match claim.unwrap() {
            Claim::Claimed => winners.push(i),
            Claim::InProgress { data, .. } => holders.push(data),
            other => panic!("unexpected claim outcome {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let expected = format!("run-{}", winners[0]);
    assert_eq!(holders.len(), 19);
    assert!(
        holders.iter().all(|d| *d == expected),
        "holders saw {holders:?}, winner {expected}"
    );
}

/// A lease that ran out (the clock reached its end) can be claimed again.
async fn lease_expiry_allows_reclaim(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let idem = &env.ports.idempotency;
    let key = unique("lease");
    assert_eq!(
        idem.claim(&key, "h", "first", LEASE).await.unwrap(),
        Claim::Claimed
    );
    env.advance(LEASE - MS);
    assert_eq!(
        idem.claim(&key, "h", "second", LEASE).await.unwrap(),
        in_progress("first", T0 + 30_000)
    );
    env.advance(MS);
    assert_eq!(
        idem.claim(&key, "h", "second", LEASE).await.unwrap(),
        Claim::Claimed
    );
    assert_eq!(
        idem.claim(&key, "h", "third", LEASE).await.unwrap(),
        in_progress("second", T0 + 60_000)
    );
}

/// A completed key answers with its result, to every later claim.
async fn completed_result_returned(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let idem = &env.ports.idempotency;
    let key = unique("completed");
    assert_eq!(
        idem.claim(&key, "h", "run", LEASE).await.unwrap(),
        Claim::Claimed
    );
    idem.complete(&key, r#"{"status":202}"#, TTL).await.unwrap();
    let done = Claim::Completed {
        result: r#"{"status":202}"#.into(),
    };
    assert_eq!(idem.claim(&key, "h", "again", LEASE).await.unwrap(), done);
    // Completion outlives the lease it replaced.
    env.advance(LEASE * 2);
    assert_eq!(idem.claim(&key, "h", "again", LEASE).await.unwrap(), done);
}

/// A completed key can be claimed again once its TTL has run out.
async fn ttl_expiry_allows_reclaim(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let idem = &env.ports.idempotency;
    let key = unique("ttl");
    assert_eq!(
        idem.claim(&key, "h", "run", LEASE).await.unwrap(),
        Claim::Claimed
    );
    idem.complete(&key, "done", TTL).await.unwrap();
    env.advance(TTL - MS);
    assert_eq!(
        idem.claim(&key, "h", "x", LEASE).await.unwrap(),
        Claim::Completed {
            result: "done".into()
        }
    );
    env.advance(MS);
    assert_eq!(
        idem.claim(&key, "h", "x", LEASE).await.unwrap(),
        Claim::Claimed
    );
}

/// A live key claimed with another payload hash is a mismatch, whatever its
/// state; once expired, the new hash may claim it.
async fn payload_mismatch(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let idem = &env.ports.idempotency;
    let key = unique("mismatch");
    let mismatch = Claim::PayloadMismatch {
        stored_hash: "h1".into(),
    };
    assert_eq!(
        idem.claim(&key, "h1", "run", LEASE).await.unwrap(),
        Claim::Claimed
    );
    assert_eq!(
        idem.claim(&key, "h2", "run", LEASE).await.unwrap(),
        mismatch
    );
    idem.complete(&key, "done", TTL).await.unwrap();
    assert_eq!(
        idem.claim(&key, "h2", "run", LEASE).await.unwrap(),
        mismatch
    );
    env.advance(TTL);
    assert_eq!(
        idem.claim(&key, "h2", "run", LEASE).await.unwrap(),
        Claim::Claimed
    );
    assert_eq!(
        idem.claim(&key, "h1", "run", LEASE).await.unwrap(),
        Claim::PayloadMismatch {
            stored_hash: "h2".into()
        }
    );
}

/// Release lets the next caller claim at once; releasing an absent key is fine.
async fn release_frees_the_key(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let idem = &env.ports.idempotency;
    let key = unique("release");
    assert_eq!(
        idem.claim(&key, "h", "first", LEASE).await.unwrap(),
        Claim::Claimed
    );
    idem.release(&key).await.unwrap();
    assert_eq!(
        idem.claim(&key, "h", "second", LEASE).await.unwrap(),
        Claim::Claimed
    );
    assert_eq!(
        idem.claim(&key, "h", "third", LEASE).await.unwrap(),
        in_progress("second", T0 + 30_000)
    );
    idem.complete(&key, "done", TTL).await.unwrap();
    idem.release(&key).await.unwrap();
    assert_eq!(
        idem.claim(&key, "h", "fourth", LEASE).await.unwrap(),
        Claim::Claimed
    );
    idem.release(&unique("never-claimed")).await.unwrap();
}

/// Completing a key nobody holds is `NotFound`.
async fn complete_requires_a_claim(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let idem = &env.ports.idempotency;
    let key = unique("unclaimed");
    let err = idem.complete(&key, "done", TTL).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(
        idem.claim(&key, "h", "run", LEASE).await.unwrap(),
        Claim::Claimed
    );
    idem.release(&key).await.unwrap();
    let err = idem.complete(&key, "done", TTL).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
}
