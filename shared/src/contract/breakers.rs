//! The [`Breakers`](crate::ports::Breakers) contract: opening only extends,
//! one probe at a time after `until`, and closing forgets; and reading a
//! rate-limit pause back (`RateLimits::paused_until`), which `ferry connections` shows.

use std::sync::Arc;
use std::time::Duration;

use super::{Backend, Case, Env, T0, case_list, unique};

pub(super) fn cases() -> Vec<Case> {
    let mut all = case_list!("limits": a_pause_can_be_read);
    all.extend(case_list!("breakers":
        closed_until_opened,
        reopening_keeps_since_and_only_extends,
        one_probe_once_due,
        a_released_probe_is_free_at_once,
        closing_forgets,
        concurrent_probes_one_wins,
    ));
    all
}

/// `paused_until` reads what `pause` set (0 for a key never paused), so
/// `ferry connections` can show a 429's pause.
async fn a_pause_can_be_read(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let limits = &env.ports.limits;
    let key = unique("conn");
    assert_eq!(limits.paused_until(&key).await.unwrap(), 0);
    limits.pause(&key, T0 + 10_000).await.unwrap();
    limits.pause(&key, T0 + 2_000).await.unwrap();
    assert_eq!(limits.paused_until(&key).await.unwrap(), T0 + 10_000);
}

const LEASE: Duration = Duration::from_secs(30);

/// A breaker is absent until opened; `open` returns what `get` then reads.
async fn closed_until_opened(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let breakers = &env.ports.breakers;
    let name = unique("conn");
    assert_eq!(breakers.get(&name).await.unwrap(), None);
    let opened = breakers
        .open(&name, T0 + 30_000, "HTTP 503 from POST http://crm/x")
        .await
        .unwrap();
    assert_eq!(
        (
            opened.name.as_str(),
            opened.since,
            opened.until,
            opened.why.as_str(),
            opened.probe_until
        ),
        (
            name.as_str(),
            T0,
            T0 + 30_000,
            "HTTP 503 from POST http://crm/x",
            0
        )
    );
    assert_eq!(breakers.get(&name).await.unwrap(), Some(opened));
    assert_eq!(breakers.get(&unique("other")).await.unwrap(), None);
}

/// Opening an open breaker keeps its `since`, takes the new reason, and never
/// brings `until` closer.
async fn reopening_keeps_since_and_only_extends(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let breakers = &env.ports.breakers;
    let name = unique("conn");
    breakers.open(&name, T0 + 30_000, "first").await.unwrap();
    env.advance(Duration::from_secs(10));
    let b2 = breakers.open(&name, T0 + 20_000, "second").await.unwrap();
    assert_eq!(
        (b2.since, b2.until, b2.why.as_str()),
        (T0, T0 + 30_000, "second")
    );
    let b3 = breakers.open(&name, T0 + 60_000, "third").await.unwrap();
    assert_eq!(
        (b3.since, b3.until, b3.why.as_str()),
        (T0, T0 + 60_000, "third")
    );
    assert_eq!(breakers.get(&name).await.unwrap(), Some(b3));
}

/// No probe before `until`; then one, until its lease ends or the breaker re-opens.
async fn one_probe_once_due(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let breakers = &env.ports.breakers;
    let name = unique("conn");
    assert!(!breakers.probe(&name, LEASE).await.unwrap(), "closed");
    breakers.open(&name, T0 + 30_000, "down").await.unwrap();
    assert!(!breakers.probe(&name, LEASE).await.unwrap(), "not yet due");
    env.advance(Duration::from_millis(29_999));
    assert!(!breakers.probe(&name, LEASE).await.unwrap(), "1 ms early");
    env.advance(Duration::from_millis(1));
    assert!(breakers.probe(&name, LEASE).await.unwrap(), "due");
    let probing = breakers.get(&name).await.unwrap().unwrap();
    assert_eq!(probing.probe_until, T0 + 30_000 + 30_000);
    assert!(!breakers.probe(&name, LEASE).await.unwrap(), "taken");
    env.advance(Duration::from_secs(29));
    assert!(
        !breakers.probe(&name, LEASE).await.unwrap(),
        "lease still live"
    );
    env.advance(Duration::from_secs(1));
    assert!(
        breakers.probe(&name, LEASE).await.unwrap(),
        "the lease ended"
    );
    // The probe failed: re-opened for another 30 s, the probe is over.
    let now = T0 + 60_000;
    let reopened = breakers
        .open(&name, now + 30_000, "still down")
        .await
        .unwrap();
    assert_eq!(
        (reopened.since, reopened.until, reopened.probe_until),
        (T0, now + 30_000, 0)
    );
    assert!(!breakers.probe(&name, LEASE).await.unwrap(), "re-opened");
    env.advance(Duration::from_secs(30));
    assert!(breakers.probe(&name, LEASE).await.unwrap());
}

/// A released probe may be claimed again at once.
async fn a_released_probe_is_free_at_once(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let breakers = &env.ports.breakers;
    let name = unique("conn");
    breakers.open(&name, T0, "down").await.unwrap();
    assert!(breakers.probe(&name, LEASE).await.unwrap());
    assert!(!breakers.probe(&name, LEASE).await.unwrap());
    breakers.release(&name).await.unwrap();
    assert_eq!(breakers.get(&name).await.unwrap().unwrap().probe_until, 0);
    assert!(breakers.probe(&name, LEASE).await.unwrap());
    breakers.release(&unique("closed")).await.unwrap();
}

/// Closing forgets the breaker (twice is fine); opening again starts a new `since`.
async fn closing_forgets(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let breakers = &env.ports.breakers;
    let name = unique("conn");
    breakers.open(&name, T0 + 1_000, "down").await.unwrap();
    breakers.close(&name).await.unwrap();
    assert_eq!(breakers.get(&name).await.unwrap(), None);
    breakers.close(&name).await.unwrap();
    env.advance(Duration::from_secs(5));
    assert!(!breakers.probe(&name, LEASE).await.unwrap(), "closed");
    let again = breakers
        .open(&name, T0 + 35_000, "down again")
        .await
        .unwrap();
    assert_eq!((again.since, again.until), (T0 + 5_000, T0 + 35_000));
}

/// Of many callers probing at once, exactly one wins.
async fn concurrent_probes_one_wins(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let name = unique("conn");
    env.ports.breakers.open(&name, T0, "down").await.unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (breakers, name) = (env.ports.breakers.clone(), name.clone());
            tokio::spawn(async move { breakers.probe(&name, LEASE).await.unwrap() })
        })
        .collect();
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.unwrap());
    }
    assert_eq!(winners, 1);
}
