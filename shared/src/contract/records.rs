//! The [`Cursors`](crate::ports::Cursors) and
//! [`RateLimits`](crate::ports::RateLimits) contracts (the
//! [`RunLog`](crate::ports::RunLog)'s is in `runs.rs`).

use std::sync::Arc;
use std::time::Duration;

use super::{Backend, Case, Env, T0, case_list, unique};
use crate::ports::{Acquire, Bucket};

pub(super) fn cases() -> Vec<Case> {
    let mut all = super::runs::cases();
    all.extend(super::run_lists::cases());
    all.extend(super::run_search::cases());
    all.extend(super::run_merge::cases());
    all.extend(case_list!("cursors":
        cursor_optimistic_versions,
        cursor_concurrent_puts_one_wins,
    ));
    all.extend(case_list!("limits":
        burst_then_exact_wait,
        refill_over_time,
        pause_holds_every_caller,
        pause_only_extends,
        bucket_shared_by_concurrent_callers,
        a_cost_spends_that_many_tokens,
        an_unlimited_bucket_is_held_only_by_a_pause,
    ));
    all
}

// ---------------------------------------------------------------- cursors

/// Versions start at 1 and go up by one; a stale expectation writes nothing.
async fn cursor_optimistic_versions(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let cursors = &env.ports.cursors;
    let name = unique("sync");
    assert_eq!(cursors.get(&name).await.unwrap(), None);
    assert_eq!(
        cursors.put(&name, "p1", Some(1)).await.unwrap(),
        None,
        "must exist"
    );
    assert_eq!(cursors.put(&name, "p1", None).await.unwrap(), Some(1));
    assert_eq!(
        cursors.put(&name, "again", None).await.unwrap(),
        None,
        "already exists"
    );
    env.advance(Duration::from_secs(5));
    assert_eq!(cursors.put(&name, "p2", Some(1)).await.unwrap(), Some(2));
    assert_eq!(cursors.put(&name, "stale", Some(1)).await.unwrap(), None);
    assert_eq!(cursors.put(&name, "future", Some(3)).await.unwrap(), None);
    let c = cursors.get(&name).await.unwrap().unwrap();
    assert_eq!(
        (c.value.as_str(), c.version, c.updated_at),
        ("p2", 2, T0 + 5_000)
    );
    assert_eq!(cursors.get(&unique("other")).await.unwrap(), None);
}

/// Of many writers expecting the same version, exactly one wins.
async fn cursor_concurrent_puts_one_wins(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let name = unique("race");
    assert_eq!(
        env.ports.cursors.put(&name, "start", None).await.unwrap(),
        Some(1)
    );
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let (cursors, name) = (env.ports.cursors.clone(), name.clone());
            tokio::spawn(
                async move { cursors.put(&name, &format!("w{i}"), Some(1)).await.unwrap() },
            )
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        if let Some(v) = t.await.unwrap() {
            assert_eq!(v, 2);
            won += 1;
        }
    }
    assert_eq!(won, 1);
    assert_eq!(
        env.ports.cursors.get(&name).await.unwrap().unwrap().version,
        2
    );
}

// ---------------------------------------------------------------- rate limits

const TEN_PER_SEC: Bucket = Bucket {
    rate_per_sec: 10.0,
    burst: 3.0,
};

fn wait_ms(ms: u64) -> Acquire {
    Acquire::Wait(Duration::from_millis(ms))
}

/// A full bucket grants `burst` tokens, then says exactly how long to wait.
async fn burst_then_exact_wait(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let limits = &env.ports.limits;
    let key = unique("conn");
    for _ in 0..3 {
        assert_eq!(
            limits.acquire(&key, TEN_PER_SEC).await.unwrap(),
            Acquire::Granted
        );
    }
    assert_eq!(
        limits.acquire(&key, TEN_PER_SEC).await.unwrap(),
        wait_ms(100)
    );
    // Another key has its own bucket.
    assert_eq!(
        limits.acquire(&unique("conn"), TEN_PER_SEC).await.unwrap(),
        Acquire::Granted
    );
    // Slow buckets: one token every two seconds.
    let slow = Bucket {
        rate_per_sec: 0.5,
        burst: 1.0,
    };
    let key = unique("slow");
    assert_eq!(limits.acquire(&key, slow).await.unwrap(), Acquire::Granted);
    assert_eq!(limits.acquire(&key, slow).await.unwrap(), wait_ms(2_000));
}

/// A token budget: a call's cost is taken at once, waits say when that
/// many are back, and a cost above the burst leaves the bucket in debt
/// (stored below zero and read back so).
async fn a_cost_spends_that_many_tokens(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let limits = &env.ports.limits;
    let tokens = Bucket {
        rate_per_sec: 100.0,
        burst: 1_000.0,
    };
    let key = unique("tokens");
    assert_eq!(
        limits.acquire_n(&key, tokens, 700.0).await.unwrap(),
        Acquire::Granted
    );
    // 300 left: 500 more are 2 s away.
    assert_eq!(
        limits.acquire_n(&key, tokens, 500.0).await.unwrap(),
        wait_ms(2_000)
    );
    env.advance(Duration::from_secs(2));
    assert_eq!(
        limits.acquire_n(&key, tokens, 500.0).await.unwrap(),
        Acquire::Granted
    );
    // Full again after 10 s; 1,500 goes, leaving 500 owed: one token is 5.01 s away.
    env.advance(Duration::from_secs(10));
    assert_eq!(
        limits.acquire_n(&key, tokens, 1_500.0).await.unwrap(),
        Acquire::Granted
    );
    assert_eq!(
        limits.acquire_n(&key, tokens, 1.0).await.unwrap(),
        wait_ms(5_010)
    );
    env.advance(Duration::from_millis(5_010));
    assert_eq!(
        limits.acquire(&key, tokens).await.unwrap(),
        Acquire::Granted
    );
}

/// Tokens come back at the rate, never beyond the burst.
async fn refill_over_time(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let limits = &env.ports.limits;
    let key = unique("conn");
    for _ in 0..3 {
        assert_eq!(
            limits.acquire(&key, TEN_PER_SEC).await.unwrap(),
            Acquire::Granted
        );
    }
    env.advance(Duration::from_millis(40));
    assert_eq!(
        limits.acquire(&key, TEN_PER_SEC).await.unwrap(),
        wait_ms(60)
    );
    env.advance(Duration::from_millis(60));
    assert_eq!(
        limits.acquire(&key, TEN_PER_SEC).await.unwrap(),
        Acquire::Granted
    );
    assert_eq!(
        limits.acquire(&key, TEN_PER_SEC).await.unwrap(),
        wait_ms(100)
    );
    env.advance(Duration::from_secs(3600));
    for _ in 0..3 {
        assert_eq!(
            limits.acquire(&key, TEN_PER_SEC).await.unwrap(),
            Acquire::Granted
        );
    }
    assert_eq!(
        limits.acquire(&key, TEN_PER_SEC).await.unwrap(),
        wait_ms(100)
    );
}

/// A pause makes every caller wait until it ends, tokens or not.
async fn pause_holds_every_caller(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let key = unique("conn");
    let limits = env.ports.limits.clone();
    assert_eq!(
        limits.acquire(&key, TEN_PER_SEC).await.unwrap(),
        Acquire::Granted
    );
    limits.pause(&key, T0 + 5_000).await.unwrap();
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let (limits, key) = (limits.clone(), key.clone());
            tokio::spawn(async move { limits.acquire(&key, TEN_PER_SEC).await.unwrap() })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), wait_ms(5_000));
    }
    env.advance(Duration::from_millis(4_999));
    assert_eq!(limits.acquire(&key, TEN_PER_SEC).await.unwrap(), wait_ms(1));
    env.advance(Duration::from_millis(1));
    assert_eq!(
        limits.acquire(&key, TEN_PER_SEC).await.unwrap(),
        Acquire::Granted
    );
    // Pausing a key nobody acquired yet works too, and leaves its bucket full.
    let fresh = unique("conn");
    limits.pause(&fresh, T0 + 6_000).await.unwrap();
    assert_eq!(
        limits.acquire(&fresh, TEN_PER_SEC).await.unwrap(),
        wait_ms(1_000)
    );
    env.advance(Duration::from_secs(1));
    for _ in 0..3 {
        assert_eq!(
            limits.acquire(&fresh, TEN_PER_SEC).await.unwrap(),
            Acquire::Granted
        );
    }
}

/// A shorter pause does not cut a longer one; a wait is the later of the
/// pause end and the next token.
async fn pause_only_extends(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let limits = &env.ports.limits;
    let key = unique("conn");
    limits.pause(&key, T0 + 10_000).await.unwrap();
    limits.pause(&key, T0 + 2_000).await.unwrap();
    assert_eq!(
        limits.acquire(&key, TEN_PER_SEC).await.unwrap(),
        wait_ms(10_000)
    );
    // A slow bucket, drained; a pause shorter than its refill.
    let slow = Bucket {
        rate_per_sec: 0.25,
        burst: 1.0,
    };
    let key = unique("slow");
    assert_eq!(limits.acquire(&key, slow).await.unwrap(), Acquire::Granted);
    limits.pause(&key, T0 + 1_000).await.unwrap();
    assert_eq!(limits.acquire(&key, slow).await.unwrap(), wait_ms(4_000));
}

/// Concurrent callers share one bucket: exactly `burst` of them get a token.
async fn bucket_shared_by_concurrent_callers(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let key = unique("conn");
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let (limits, key) = (env.ports.limits.clone(), key.clone());
            tokio::spawn(async move { limits.acquire(&key, TEN_PER_SEC).await.unwrap() })
        })
        .collect();
    let mut granted = 0;
    for t in tasks {
        if t.await.unwrap() == Acquire::Granted {
            granted += 1;
        }
    }
    assert_eq!(granted, 3);
}

/// The bucket of a connection without a rate limit
/// ([`crate::limits::UNLIMITED`]) grants every call, and a pause still
/// holds it; grants before the pause do not shorten it, nor do they leave
/// a debt after it.
async fn an_unlimited_bucket_is_held_only_by_a_pause(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let limits = &env.ports.limits;
    let open = crate::limits::UNLIMITED;
    let key = unique("conn");
    for _ in 0..20 {
        assert_eq!(limits.acquire(&key, open).await.unwrap(), Acquire::Granted);
    }
    limits.pause(&key, T0 + 3_000).await.unwrap();
    assert_eq!(limits.acquire(&key, open).await.unwrap(), wait_ms(3_000));
    assert_eq!(limits.paused_until(&key).await.unwrap(), T0 + 3_000);
    env.advance(Duration::from_secs(3));
    for _ in 0..3 {
        assert_eq!(limits.acquire(&key, open).await.unwrap(), Acquire::Granted);
    }
}
