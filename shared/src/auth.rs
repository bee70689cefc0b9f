//! Connection auth: what each call carries, and OAuth 2.0 access tokens.
//!
//! `bearer`, `basic` and `api_key` are static. `oauth2` buys an access token
//! from the token endpoint (client-credentials grant, or refresh-token grant
//! with the configured refresh token or the one `ferry connections authorize`
//! stored, see [`authorize`](crate::authorize)) and:
//!
//! - caches it in-process and in the store (the [`Cursors`](crate::ports::Cursors)
//!   port, cursor `oauth2:<connection>`, see [`token_state`](crate::token_state)),
//!   so a token is fetched once for many calls and survives cold starts.
//!   The store's copy is sealed with a key derived from the connection's
//!   secrets ([`token_cache`](crate::token_cache)), or with a KMS data key
//!   when the ports carry one ([`token_envelope`](crate::token_envelope)):
//!   it shows no token;
//! - when the endpoint rotates the refresh token, saves the new one before
//!   the new access token is used; if the store cannot take it, the pair is
//!   held in memory, the call retried later, and the save tried again before
//!   anything else on the connection, the refresh lease kept meanwhile so no
//!   instance spends the superseded refresh token;
//! - refreshes it before it expires ([`refresh_margin`]), one refresher at a
//!   time across every instance (an [`Idempotency`](crate::ports::Idempotency)
//!   lease on `oauth2:<connection>:refresh`), the others wait for its result;
//! - refreshes once after a `401` (see [`Tokens::invalidate`]);
//! - when the token endpoint refuses the client or the refresh token (4xx,
//!   e.g. `invalid_grant`), records that in the cursor: every run on the
//!   connection then fails at once as `auth_failed`, without calling the token
//!   endpoint again, for [`FAILURE_HOLD`] or until the credentials in the
//!   config change. No retry storm.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crate::clock::Millis;
use crate::config::{Auth, Connection, Grant};
use crate::hub::Conn;
pub use crate::outbound::Credential;
use crate::ports::{Claim, Ports};
use crate::token_endpoint::{self, Failure};
use crate::token_state::{self, Persisted, Slot, Stored, fingerprint};

mod refresh;

/// How long a refused credential fails runs at once before the token
/// endpoint is asked again (unless the config changes first).
pub const FAILURE_HOLD: Duration = Duration::from_secs(300);
/// Lease of the one instance refreshing a connection's token.
const REFRESH_LEASE: Duration = Duration::from_secs(30);
/// A forced refresh after a `401` happens at most this often per connection.
const MIN_FORCED_INTERVAL_MS: Millis = 10_000;

/// How long before expiry a token is refreshed: 60 s, or half its lifetime
/// when that is shorter.
pub fn refresh_margin(lifetime: Duration) -> Duration {
    (lifetime / 2).min(Duration::from_secs(60))
}

/// The credential of a connection with static auth (none for `oauth2`).
pub fn static_credential(conn: &Connection) -> Credential {
    use base64::Engine;
    match &conn.auth {
        None | Some(Auth::OAuth2 { .. }) => Credential::None,
        Some(Auth::Bearer { token }) => {
            Credential::Header("Authorization".into(), format!("Bearer {token}"))
        }
        Some(Auth::Basic { username, password }) => {
            let cred =
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
            Credential::Header("Authorization".into(), format!("Basic {cred}"))
        }
        Some(Auth::ApiKey { header, query, key }) => match query {
            Some(q) => Credential::Query(q.clone(), key.clone()),
            None => Credential::Header(
                header.clone().unwrap_or_else(|| "X-API-Key".into()),
                key.clone(),
            ),
        },
    }
}

/// Why no credential could be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The credentials were refused: the run fails as `auth_failed`.
    #[error("{0}")]
    Refused(String),
    /// The token endpoint or the store could not be reached: retry later.
    #[error("{0}")]
    Unavailable(String),
}

/// A rotated refresh token (with its access token) the store could not take
/// yet: held in memory and saved before anything else on the connection.
#[derive(Debug, Clone)]
struct Pending {
    stored: Stored,
    /// The version the refresh read.
    version: Option<u64>,
    /// The refresh token it superseded (dead at the provider).
    replaced: Option<String>,
}

/// The message of a call held back while a rotated refresh token waits to be saved.
fn held(name: &str, error: &str) -> String {
    format!(
        "connection {name}: the token endpoint rotated the refresh token and the store could not save the new one ({error}); it is held in this process and saved before any call uses it"
    )
}

#[derive(Debug, Clone)]
struct Cached {
    token: String,
    refresh_at: Millis,
    fetched_at: Millis,
    forced: bool,
}

/// OAuth 2.0 tokens of every connection, for one process.
#[derive(Debug, Default)]
pub struct Tokens {
    cache: Mutex<HashMap<String, Cached>>,
    refreshing: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Rotated refresh tokens the store could not take yet, by connection.
    pending: Mutex<HashMap<String, Pending>>,
    /// Every token seen, for redaction.
    seen: RwLock<Vec<String>>,
    /// How many times this process called a token endpoint (for tests and `ferry bench`).
    fetches: std::sync::atomic::AtomicU64,
}

/// The outbound HTTP client used for token requests.
pub type Client = reqwest::Client;

impl Tokens {
    /// Tokens obtained so far (for redaction).
    pub fn secrets(&self) -> Vec<String> {
        self.seen.read().map(|s| s.clone()).unwrap_or_default()
    }

    /// Token endpoint calls made by this process.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The credential for a call on connection `name`.
    pub async fn credential(
        &self,
        ports: &Ports,
        http: &Client,
        name: &str,
        conn: &Conn,
    ) -> Result<Credential, AuthError> {
        if matches!(conn.auth, Some(Auth::OAuth2 { .. })) {
            let token = self.token(ports, http, name, conn, None).await?;
            return Ok(Credential::Header(
                "Authorization".into(),
                format!("Bearer {token}"),
            ));
        }
        Ok(static_credential(conn))
    }

    /// After a `401` with `used`: a fresh credential to try once more, or
    /// `None` when the connection's auth cannot be refreshed (static auth, or a
    /// token that was itself just forced).
    pub async fn invalidate(
        &self,
        ports: &Ports,
        http: &Client,
        name: &str,
        conn: &Conn,
        used: &Credential,
    ) -> Result<Option<Credential>, AuthError> {
        if !matches!(conn.auth, Some(Auth::OAuth2 { .. })) {
            return Ok(None);
        }
        let Credential::Header(_, value) = used else {
            return Ok(None);
        };
        let used_token = value.strip_prefix("Bearer ").unwrap_or(value);
        let now = ports.clock.now_ms();
        {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(c) = cache.get(name)
                && c.token == used_token
                && c.forced
                && now - c.fetched_at < MIN_FORCED_INTERVAL_MS
            {
                return Ok(None);
            }
        }
        let token = self
            .token(ports, http, name, conn, Some(used_token))
            .await?;
        Ok(Some(Credential::Header(
            "Authorization".into(),
            format!("Bearer {token}"),
        )))
    }

    /// A valid access token; `refused` is one the target just refused.
    async fn token(
        &self,
        ports: &Ports,
        http: &Client,
        name: &str,
        conn: &Conn,
        refused: Option<&str>,
    ) -> Result<String, AuthError> {
        let fresh =
            |c: &Cached, now: Millis| now < c.refresh_at && Some(c.token.as_str()) != refused;
        if let Some(c) = self.cached(name)
            && fresh(&c, ports.clock.now_ms())
        {
            return Ok(c.token);
        }
        // One refresher per connection in this process…
        let gate = {
            let mut m = self.refreshing.lock().unwrap_or_else(|p| p.into_inner());
            m.entry(name.to_owned()).or_default().clone()
        };
        let _one = gate.lock().await;
        if let Some(c) = self.cached(name)
            && fresh(&c, ports.clock.now_ms())
        {
            return Ok(c.token);
        }
        let fingerprint = fingerprint(conn);
        let slot = Slot::of(name, conn);
        let lock = crate::keys::oauth2_refresh(name);
        // A rotated refresh token not saved yet goes to the store first.
        if let Some(token) = self.flush(ports, name, &slot, &lock, refused).await? {
            return Ok(token);
        }
        let deadline = ports.clock.now_ms() + REFRESH_LEASE.as_millis() as Millis;
        loop {
            let now = ports.clock.now_ms();
            let (stored, _) = slot.load(ports, &fingerprint).await?;
            if let Some(t) = &stored.access_token
                && now < stored.refresh_at
                && Some(t.as_str()) != refused
            {
                self.remember(name, t, stored.refresh_at, now, false);
                return Ok(t.clone());
            }
            if let Some(why) = &stored.failed
                && now - stored.failed_at < FAILURE_HOLD.as_millis() as Millis
            {
                return Err(AuthError::Refused(why.clone()));
            }
            // …and one across every instance.
            match ports.idempotency.claim(&lock, "", "", REFRESH_LEASE).await {
                Ok(Claim::Claimed | Claim::PayloadMismatch { .. }) => {}
                Ok(Claim::Completed { .. }) => {
                    let _ = ports.idempotency.release(&lock).await;
                    continue;
                }
                Ok(Claim::InProgress { .. }) if now < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                Ok(Claim::InProgress { .. }) => {
                    return Err(AuthError::Unavailable(format!(
                        "connection {name}: another instance is still refreshing the token"
                    )));
                }
                Err(e) => return Err(AuthError::Unavailable(format!("token cache: {e}"))),
            }
            // Another instance may have refreshed between our look and our claim.
            let (stored, version) = match slot.load(ports, &fingerprint).await {
                Ok(s) => s,
                Err(e) => {
                    let _ = ports.idempotency.release(&lock).await;
                    return Err(e);
                }
            };
            if let Some(t) = &stored.access_token
                && now < stored.refresh_at
                && Some(t.as_str()) != refused
            {
                let _ = ports.idempotency.release(&lock).await;
                self.remember(name, t, stored.refresh_at, now, false);
                return Ok(t.clone());
            }
            let result = self
                .refresh(ports, http, name, conn, &slot, stored, version)
                .await;
            // While a rotated refresh token waits to be saved, the lease stays
            // held: no instance may spend the one it superseded.
            if !self.holds_unsaved(name)
                && let Err(e) = ports.idempotency.release(&lock).await
            {
                tracing::warn!(connection = name, error = %e, "could not release the token refresh lease");
            }
            return result.map(|(token, refresh_at)| {
                self.remember(
                    name,
                    &token,
                    refresh_at,
                    ports.clock.now_ms(),
                    refused.is_some(),
                );
                token
            });
        }
    }

    fn pending_of(&self, name: &str) -> Option<Pending> {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    /// Whether this process holds a rotated refresh token of `name` that the
    /// store does not have yet.
    pub fn holds_unsaved(&self, name: &str) -> bool {
        self.pending_of(name).is_some()
    }

    fn cached(&self, name: &str) -> Option<Cached> {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    fn remember(&self, name: &str, token: &str, refresh_at: Millis, now: Millis, forced: bool) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.insert(
            name.to_owned(),
            Cached {
                token: token.to_owned(),
                refresh_at,
                fetched_at: now,
                forced,
            },
        );
        drop(cache);
        self.note_secret(token);
    }

    /// Keep `secret` (a token) for redaction.
    fn note_secret(&self, secret: &str) {
        let mut seen = self.seen.write().unwrap_or_else(|p| p.into_inner());
        if secret.len() >= 4 && !seen.iter().any(|s| s == secret) {
            seen.push(secret.to_owned());
        }
    }
}
