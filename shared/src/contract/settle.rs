//! The [`RunLog`](crate::ports::RunLog)'s combined writes:
//! [`put_claiming`](crate::ports::RunLog::put_claiming) and
//! [`put_settling`](crate::ports::RunLog::put_settling) do what their parts
//! do, whether the adapter makes them one write or several.

use std::sync::Arc;
use std::time::Duration;

use super::{Backend, Case, Env, T0, case_list, unique};
use crate::model::{RunRecord, RunStatus};
use crate::ports::{Claim, ClaimArgs, Completion, Fresh, StoreError};

pub(super) fn cases() -> Vec<Case> {
    case_list!("runs":
        put_claiming_writes_the_run_and_claims,
        put_claiming_if_writes_only_over_the_expected_run,
        put_settling_completes_writes_and_acks,
        put_settling_writes_nothing_without_the_claim,
        put_settling_with_a_stale_receipt_still_records,
    )
}

const LEASE: Duration = Duration::from_secs(60);
const TTL: Duration = Duration::from_secs(3600);
const VIS: Duration = Duration::from_secs(60);

fn run(status: RunStatus) -> RunRecord {
    RunRecord {
        id: crate::model::new_run_id(),
        workflow: unique("wf"),
        source: "github".into(),
        event_id: unique("evt"),
        status,
        attempts: 1,
        created_at: T0,
        updated_at: T0,
        error: None,
        failure: None,
        steps: Vec::new(),
        event: None,
        expires_at: None,
        rerun_of: None,
        reruns: Vec::new(),
    }
}

fn claim_of<'a>(key: &'a str, run: &'a RunRecord) -> ClaimArgs<'a> {
    ClaimArgs {
        key,
        payload_hash: "",
        data: &run.id,
        lease: LEASE,
    }
}

/// The run is written and the key claimed; a second call for a held key
/// still writes the run and answers as `claim` would.
async fn put_claiming_writes_the_run_and_claims(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let p = &env.ports;
    let key = unique("step");
    let mut r = run(RunStatus::Running);
    let got = p.runs.put_claiming(&r, &*p.idempotency, claim_of(&key, &r));
    assert_eq!(got.await.unwrap(), Claim::Claimed);
    assert_eq!(p.runs.get(&r.id).await.unwrap().as_ref(), Some(&r));

    r.attempts = 2;
    let again = p.runs.put_claiming(&r, &*p.idempotency, claim_of(&key, &r));
    assert_eq!(
        again.await.unwrap(),
        Claim::InProgress {
            data: r.id.clone(),
            lease_until: T0 + 60_000
        }
    );
    assert_eq!(p.runs.get(&r.id).await.unwrap(), Some(r));
}

/// `put_claiming_if` writes the run and claims only while the stored run
/// is the expected one. Over another run, or none, it writes and claims
/// nothing and answers what `get` does.
async fn put_claiming_if_writes_only_over_the_expected_run(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let p = &env.ports;
    let idem = &*p.idempotency;
    let (key, untouched) = (unique("step"), unique("step"));
    let mut queued = run(RunStatus::Queued);
    queued.attempts = 0;
    assert!(p.runs.create(&queued).await.unwrap());
    let mut running = queued.clone();
    running.status = RunStatus::Running;
    running.attempts = 1;
    running.updated_at = T0 + 1_000;

    // Another run is stored than the one expected: nothing happens.
    let mut other = queued.clone();
    other.status = RunStatus::Succeeded;
    let got = p
        .runs
        .put_claiming_if(&other, &running, idem, claim_of(&untouched, &running));
    assert_eq!(
        got.await.unwrap(),
        Fresh::Stored(Some(Box::new(queued.clone())))
    );
    assert_eq!(
        p.runs.get(&queued.id).await.unwrap().as_ref(),
        Some(&queued)
    );

    // The expected one: written and claimed.
    let got = p
        .runs
        .put_claiming_if(&queued, &running, idem, claim_of(&key, &running));
    assert_eq!(got.await.unwrap(), Fresh::Claimed(Claim::Claimed));
    assert_eq!(
        p.runs.get(&queued.id).await.unwrap().as_ref(),
        Some(&running)
    );

    // It is no longer stored: the running run is handed back as it is.
    let mut again = running.clone();
    again.attempts = 2;
    let got = p
        .runs
        .put_claiming_if(&queued, &again, idem, claim_of(&untouched, &again));
    assert_eq!(
        got.await.unwrap(),
        Fresh::Stored(Some(Box::new(running.clone())))
    );
    assert_eq!(p.runs.get(&queued.id).await.unwrap(), Some(running));

    // No run stored at all: nothing is written.
    let absent = run(RunStatus::Queued);
    let got = p
        .runs
        .put_claiming_if(&absent, &absent, idem, claim_of(&untouched, &absent));
    assert_eq!(got.await.unwrap(), Fresh::Stored(None));
    assert_eq!(p.runs.get(&absent.id).await.unwrap(), None);

    // None of the refused calls claimed its key.
    assert_eq!(
        idem.claim(&untouched, "", "x", LEASE).await.unwrap(),
        Claim::Claimed
    );
}

/// The key is completed, the run written and the message deleted.
async fn put_settling_completes_writes_and_acks(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let p = &env.ports;
    let (key, r) = (unique("step"), run(RunStatus::Succeeded));
    p.idempotency.claim(&key, "", &r.id, LEASE).await.unwrap();
    p.queue.send("job", Duration::ZERO).await.unwrap();
    let msg = p
        .queue
        .receive(1, VIS, Duration::ZERO)
        .await
        .unwrap()
        .remove(0);
    let done = Completion {
        key: &key,
        result: r#"{"ok":true}"#,
        ttl: TTL,
    };
    let acked = p
        .runs
        .put_settling(
            &r,
            &*p.idempotency,
            Some(done),
            &*p.queue,
            Some(&msg.receipt),
        )
        .await
        .unwrap();
    assert!(acked, "the message is deleted");
    assert_eq!(p.runs.get(&r.id).await.unwrap().as_ref(), Some(&r));
    assert_eq!(
        p.idempotency.claim(&key, "", "x", LEASE).await.unwrap(),
        Claim::Completed {
            result: r#"{"ok":true}"#.into()
        }
    );
    let deleted = p.queue.delete(&msg.receipt).await;
    assert!(
        matches!(deleted, Err(StoreError::NotFound(_))),
        "{deleted:?}"
    );
    // Without a completion or an ack, it is a put.
    let mut later = r.clone();
    later.attempts = 2;
    let acked = p
        .runs
        .put_settling(&later, &*p.idempotency, None, &*p.queue, None);
    assert!(!acked.await.unwrap());
    assert_eq!(p.runs.get(&r.id).await.unwrap(), Some(later));
}

/// A completion of a key nobody holds is `NotFound`, and nothing is written.
async fn put_settling_writes_nothing_without_the_claim(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let p = &env.ports;
    let (key, r) = (unique("step"), run(RunStatus::Succeeded));
    p.queue.send("job", Duration::ZERO).await.unwrap();
    let msg = p
        .queue
        .receive(1, VIS, Duration::ZERO)
        .await
        .unwrap()
        .remove(0);
    let done = Completion {
        key: &key,
        result: "{}",
        ttl: TTL,
    };
    let got = p
        .runs
        .put_settling(
            &r,
            &*p.idempotency,
            Some(done),
            &*p.queue,
            Some(&msg.receipt),
        )
        .await;
    assert!(matches!(got, Err(StoreError::NotFound(_))), "{got:?}");
    assert_eq!(p.runs.get(&r.id).await.unwrap(), None);
    p.queue.delete(&msg.receipt).await.unwrap();
}

/// An ack that cannot be made (an unknown receipt) leaves the rest written.
async fn put_settling_with_a_stale_receipt_still_records(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let p = &env.ports;
    let (key, r) = (unique("step"), run(RunStatus::Succeeded));
    p.idempotency.claim(&key, "", &r.id, LEASE).await.unwrap();
    let done = Completion {
        key: &key,
        result: "{}",
        ttl: TTL,
    };
    let acked = p
        .runs
        .put_settling(
            &r,
            &*p.idempotency,
            Some(done),
            &*p.queue,
            Some("no-such-receipt"),
        )
        .await
        .unwrap();
    assert!(!acked, "nothing to delete");
    assert_eq!(p.runs.get(&r.id).await.unwrap(), Some(r));
    assert_eq!(
        p.idempotency.claim(&key, "", "x", LEASE).await.unwrap(),
        Claim::Completed {
            result: "{}".into()
        }
    );
}
