//! OAuth 2.0 refresh-token rotation that cannot strand a connection: the
//! token endpoint (the testkit's strict provider) kills the old refresh token
//! the moment it issues a new one, as QuickBooks and Salesforce do, and the
//! store under the hub (real SQLite) fails the token cache's writes on
//! demand.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use ferry::call::Called;
use ferry::ports::{Claim, Cursor, Cursors, Idempotency, Ports, StoreError, StoreResult};
use ferry::retry::Verdict;
use ferry_testkit::oauth::{ClientAuth, Provider, Setup};

use crate::support::{Env, last, post, post_on};

/// `TOKEN` (see [`Env::start`]) is both the client secret and the first
/// refresh token, the one the provider is seeded with.
const CONFIG: &str = r#"
version: 1
connections:
  books:
    base_url: "${env:API_URL}/api"
    auth:
      type: oauth2
      grant: refresh_token
      token_url: "${env:API_URL}/oauth/token"
      client_id: ferry
      client_secret: "${env:TOKEN}"
      refresh_token: "${env:TOKEN}"
      client_auth: basic
"#;
const FIRST_RT: &str = "xoxb-test-token";

/// Cursors and idempotency keys that pass through to the real store, except
/// that the next `fail_puts` writes of a token cache fail, and claims of a
/// refresh lease that found it taken are counted.
struct Flaky {
    cursors: Arc<dyn Cursors>,
    idempotency: Arc<dyn Idempotency>,
    fail_puts: AtomicUsize,
    failed_puts: AtomicUsize,
    waited: AtomicUsize,
}

#[async_trait]
impl Cursors for Flaky {
    async fn get(&self, name: &str) -> StoreResult<Option<Cursor>> {
        self.cursors.get(name).await
    }
    async fn put(
        &self,
        name: &str,
        value: &str,
        expected: Option<u64>,
    ) -> StoreResult<Option<u64>> {
        let fail = name.starts_with("oauth2:")
            && self
                .fail_puts
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        if fail {
            self.failed_puts.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::Unavailable("injected: the write failed".into()));
        }
        self.cursors.put(name, value, expected).await
    }
}

#[async_trait]
impl Idempotency for Flaky {
    async fn claim(
        &self,
        key: &str,
        hash: &str,
        data: &str,
        lease: Duration,
    ) -> StoreResult<Claim> {
        let claim = self.idempotency.claim(key, hash, data, lease).await?;
        if key.starts_with("oauth2:") && matches!(claim, Claim::InProgress { .. }) {
            self.waited.fetch_add(1, Ordering::SeqCst);
        }
        Ok(claim)
    }
    async fn complete(&self, key: &str, result: &str, ttl: Duration) -> StoreResult<()> {
        self.idempotency.complete(key, result, ttl).await
    }
    async fn release(&self, key: &str) -> StoreResult<()> {
        self.idempotency.release(key).await
    }
}

/// A hub on a flaky store, and the rotating provider behind it.
async fn start() -> (Env, Arc<Flaky>, Provider) {
    start_with(|_, _| {}).await
}

/// [`start`], with `before` scripting the target ahead of the provider.
async fn start_with(before: impl FnOnce(&Env, &Arc<Flaky>)) -> (Env, Arc<Flaky>, Provider) {
    let mut flaky = None;
    let env = Env::start_on(CONFIG, |ports: Ports| {
        let f = Arc::new(Flaky {
            cursors: ports.cursors.clone(),
            idempotency: ports.idempotency.clone(),
            fail_puts: AtomicUsize::new(0),
            failed_puts: AtomicUsize::new(0),
            waited: AtomicUsize::new(0),
        });
        flaky = Some(f.clone());
        Ports {
            cursors: f.clone(),
            idempotency: f,
            ..ports
        }
    })
    .await;
    let flaky = flaky.unwrap();
    before(&env, &flaky);
    let provider = Provider::install(
        &env.target,
        "/oauth",
        Setup {
            client_id: "ferry".into(),
            client_secret: "xoxb-test-token".into(),
            client_auth: ClientAuth::Basic,
            require_pkce: true,
            rotate: true,
            lifetime: 3600,
        },
    );
    provider.seed_refresh_token(FIRST_RT);
    provider.api(&env.target, "/api");
    (env, flaky, provider)
}

fn succeeded(called: &Called) -> bool {
    last(called).0 == Verdict::Success
}

/// Fails on a hub that only logs a failed save: the rotated refresh token
/// was lost, the next refresh sent the dead one, and the connection was
/// stranded (`auth_failed`) although the provider had issued a valid one.
#[tokio::test]
async fn a_save_that_fails_once_does_not_lose_the_rotated_refresh_token() {
    let (env, flaky, provider) = start().await;
    flaky.fail_puts.store(1, Ordering::SeqCst);
    assert!(succeeded(&post(&env, "books").await));
    assert_eq!(
        flaky.failed_puts.load(Ordering::SeqCst),
        1,
        "the save failed once"
    );

    // The access token runs out: the next call refreshes, on this instance
    // and on another one (a cold start reads the store).
    env.clock.advance(3_600_000);
    assert!(succeeded(&post(&env, "books").await));
    env.clock.advance(3_600_000);
    assert!(succeeded(&post_on(&env.second, "books").await));

    assert_eq!(provider.refusals(), Vec::<String>::new());
    assert_eq!(
        provider.presented(),
        vec![FIRST_RT.to_owned(), "rt-1".into(), "rt-2".into()],
        "each refresh token was sent once, the rotated one every time"
    );
    assert_eq!(provider.live_refresh_token().as_deref(), Some("rt-3"));
}

/// The store refuses every attempt of the save: the new access token is not
/// used, the call is retried later, and the next call saves the held pair
/// first (no second refresh); the superseded refresh token is never sent.
#[tokio::test]
async fn while_the_store_cannot_take_the_rotated_token_calls_wait_and_nothing_is_lost() {
    let (env, flaky, provider) = start().await;
    flaky.fail_puts.store(5, Ordering::SeqCst);
    let first = post(&env, "books").await;
    let (verdict, status) = last(&first);
    assert_eq!(verdict, Verdict::Retry { after: None }, "{first:?}");
    assert_eq!(status, None, "no call went out");
    let Called::Done(tries) = &first else {
        unreachable!()
    };
    let why = tries[0].attempt.error.clone().unwrap_or_default();
    assert!(why.contains("rotated the refresh token"), "{why}");
    assert!(!why.contains("rt-1") && !why.contains("at-1"), "{why}");
    assert!(env.hub.tokens.holds_unsaved("books"));
    assert_eq!(env.target.count("/api/call"), 0);

    // Another instance meanwhile: the refresh lease is held, so it waits
    // rather than spending the superseded refresh token.
    let mut other = Box::pin(post_on(&env.second, "books"));
    let saw_wait = async {
        while flaky.waited.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::select! {
        called = &mut other => panic!("the other instance did not wait: {called:?}"),
        waited = tokio::time::timeout(Duration::from_secs(10), saw_wait) => {
            waited.expect("the other instance finds the refresh lease taken");
        }
    }
    // Gone, as a worker whose attempt timed out.
    drop(other);
    assert_eq!(provider.presented(), vec![FIRST_RT.to_owned()]);

    // The store comes back (two more failures, then the write lands).
    assert!(succeeded(&post(&env, "books").await));
    assert!(!env.hub.tokens.holds_unsaved("books"));
    assert_eq!(
        provider.issued(),
        1,
        "the held pair was used, not a new one"
    );
    // The other instance reads it from the store.
    assert!(succeeded(&post_on(&env.second, "books").await));
    assert_eq!(provider.issued(), 1);

    env.clock.advance(3_600_000);
    assert!(succeeded(&post_on(&env.second, "books").await));
    assert_eq!(provider.refusals(), Vec::<String>::new());
    assert_eq!(
        provider.presented(),
        vec![FIRST_RT.to_owned(), "rt-1".into()]
    );
}

/// Two instances find the token expired at once: one refreshes, the other
/// waits for it through the store's lease and uses its token; the rotating
/// provider would refuse a second refresh with the same refresh token.
#[tokio::test]
async fn two_instances_refreshing_at_once_refresh_once() {
    // Hold the token request until the other instance has found the lease taken.
    let (env, flaky, provider) = start_with(|env, flaky| {
        let watch = flaky.clone();
        env.target.behave_async("/oauth/token", move |_| {
            let watch = watch.clone();
            async move {
                let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
                while watch.waited.load(Ordering::SeqCst) == 0
                    && tokio::time::Instant::now() < deadline
                {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                None
            }
        });
    })
    .await;
    let (a, b) = tokio::join!(post(&env, "books"), post_on(&env.second, "books"));
    assert!(succeeded(&a), "{a:?}");
    assert!(succeeded(&b), "{b:?}");
    assert!(
        flaky.waited.load(Ordering::SeqCst) > 0,
        "one instance waited"
    );
    assert_eq!(provider.presented(), vec![FIRST_RT.to_owned()]);
    assert_eq!(provider.issued(), 1);
    assert_eq!(provider.refusals(), Vec::<String>::new());
}
