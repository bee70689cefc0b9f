//! Connection auth: what each call carries, and OAuth 2.0 access tokens.
//!
//! `bearer`, `basic` and `api_key` are static. `oauth2` buys an access token
//! from the token endpoint (client-credentials or refresh-token grant) and:
//!
//! - caches it in-process and in the store (the [`Cursors`](crate::ports::Cursors)
//!   port, cursor `oauth2:<connection>`), so a token is fetched once for many
//!   calls and survives cold starts; a rotated refresh token is kept there too.
//!   The store's copy is sealed with a key derived from the connection's
//!   secrets ([`token_cache`](crate::token_cache)): it shows no token;
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

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::Millis;
use crate::config::{Auth, ClientAuth, Connection, Grant};
use crate::hub::Conn;
pub use crate::outbound::Credential;
use crate::ports::{Claim, Ports};
use crate::token_cache::CacheKey;

/// How long a refused credential fails runs at once before the token
/// endpoint is asked again (unless the config changes first).
pub const FAILURE_HOLD: Duration = Duration::from_secs(300);
/// Lease of the one instance refreshing a connection's token.
const REFRESH_LEASE: Duration = Duration::from_secs(30);
/// A token whose endpoint gives no `expires_in` is used this long.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);
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

/// The cached state of one connection's token (in-process and in the store).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Stored {
    /// Hash of the configured credentials this state belongs to.
    fingerprint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    access_token: Option<String>,
    /// When to refresh (before expiry).
    #[serde(default)]
    refresh_at: Millis,
    /// A refresh token the endpoint rotated to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    /// Why the endpoint refused, and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failed: Option<String>,
    #[serde(default)]
    failed_at: Millis,
}

/// Where a connection's token state lives in the store, and the key sealing it.
#[derive(Debug)]
struct Slot {
    cursor: String,
    key: CacheKey,
}

impl Slot {
    fn of(name: &str, conn: &Connection) -> Self {
        Self {
            cursor: crate::keys::oauth2_token(name),
            key: CacheKey::of(name, conn),
        }
    }
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
        let deadline = ports.clock.now_ms() + REFRESH_LEASE.as_millis() as Millis;
        loop {
            let now = ports.clock.now_ms();
            let (stored, _) = self.load(ports, &slot, &fingerprint).await?;
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
            let (stored, version) = match self.load(ports, &slot, &fingerprint).await {
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
                .refresh(
                    ports,
                    http,
                    name,
                    conn,
                    &slot,
                    stored,
                    version,
                    &fingerprint,
                )
                .await;
            if let Err(e) = ports.idempotency.release(&lock).await {
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

    #[allow(clippy::too_many_arguments)]
    async fn refresh(
        &self,
        ports: &Ports,
        http: &Client,
        name: &str,
        conn: &Conn,
        slot: &Slot,
        mut stored: Stored,
        version: Option<u64>,
        fingerprint: &str,
    ) -> Result<(String, Millis), AuthError> {
        let Some(Auth::OAuth2 {
            token_url,
            grant,
            client_id,
            client_secret,
            refresh_token,
            scope,
            params,
            client_auth,
        }) = &conn.auth
        else {
            return Err(AuthError::Refused("not an oauth2 connection".into()));
        };
        let mut form: Vec<(&str, String)> = match client_auth {
            ClientAuth::Body => vec![
                ("client_id", client_id.clone()),
                ("client_secret", client_secret.clone()),
            ],
            ClientAuth::Basic => Vec::new(),
        };
        match grant {
            Grant::ClientCredentials => form.push(("grant_type", "client_credentials".into())),
            Grant::RefreshToken => {
                form.push(("grant_type", "refresh_token".into()));
                let rt = stored
                    .refresh_token
                    .clone()
                    .or_else(|| refresh_token.clone())
                    .unwrap_or_default();
                form.push(("refresh_token", rt));
            }
        }
        if let Some(scope) = scope {
            form.push(("scope", scope.clone()));
        }
        for (k, v) in params {
            form.push((k.as_str(), v.clone()));
        }
        let timeout = conn.call_timeout;
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut request = http
            .post(token_url)
            .timeout(timeout)
            .header(http::header::ACCEPT, "application/json");
        if *client_auth == ClientAuth::Basic {
            request = request.header(
                http::header::AUTHORIZATION,
                basic_client_auth(client_id, client_secret),
            );
        }
        let sent = request.form(&form).send().await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => {
                if let Some(r) = crate::destination::RedirectRefused::find(&e) {
                    // Not held in the store: a fixed `token_url` takes effect at once.
                    return Err(AuthError::Refused(format!(
                        "connection {name}: token endpoint {token_url}: {r}"
                    )));
                }
                return Err(AuthError::Unavailable(format!(
                    "connection {name}: token endpoint {token_url}: {}",
                    crate::outbound::describe_error(&e)
                )));
            }
        };
        let status = resp.status().as_u16();
        let body = resp.bytes().await.unwrap_or_default();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let now = ports.clock.now_ms();
        if !(200..300).contains(&status) || json.get("access_token").is_none() {
            let code = json
                .get("error")
                .and_then(|e| e.as_str())
                .map_or(String::new(), |e| format!(" {e}"));
            let what = format!(
                "connection {name}: the token endpoint answered HTTP {status}{code} to the {} grant",
                match grant {
                    Grant::ClientCredentials => "client_credentials",
                    Grant::RefreshToken => "refresh_token",
                }
            );
            if (400..500).contains(&status) && status != 408 && status != 429 {
                stored.failed = Some(format!("{what}: the credentials were refused"));
                stored.failed_at = now;
                stored.access_token = None;
                self.save(ports, slot, &stored, version).await;
                return Err(AuthError::Refused(stored.failed.unwrap_or_default()));
            }
            return Err(AuthError::Unavailable(what));
        }
        let token = json["access_token"].as_str().unwrap_or_default().to_owned();
        let lifetime = json
            .get("expires_in")
            .and_then(|v| v.as_f64().or_else(|| v.as_str()?.parse().ok()))
            .filter(|s| *s > 0.0)
            .map_or(DEFAULT_LIFETIME, |s| {
                Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX)
            });
        let refresh_at = crate::clock::after(now, lifetime - refresh_margin(lifetime));
        stored = Stored {
            fingerprint: fingerprint.to_owned(),
            access_token: Some(token.clone()),
            refresh_at,
            refresh_token: json
                .get("refresh_token")
                .and_then(|v| v.as_str())
                .map(str::to_owned)
                .or(stored.refresh_token),
            failed: None,
            failed_at: 0,
        };
        self.save(ports, slot, &stored, version).await;
        Ok((token, refresh_at))
    }

    async fn load(
        &self,
        ports: &Ports,
        slot: &Slot,
        fingerprint: &str,
    ) -> Result<(Stored, Option<u64>), AuthError> {
        let c = ports
            .cursors
            .get(&slot.cursor)
            .await
            .map_err(|e| AuthError::Unavailable(format!("token cache: {e}")))?;
        let Some(c) = c else {
            let fresh = Stored {
                fingerprint: fingerprint.to_owned(),
                ..Stored::default()
            };
            return Ok((fresh, None));
        };
        // A value that does not open (a rotated secret, a legacy plain-text
        // record, tampering) is no state: fetch afresh.
        let stored: Stored = slot
            .key
            .open(&c.value)
            .and_then(|plain| serde_json::from_slice(&plain).ok())
            .unwrap_or_default();
        if stored.fingerprint != fingerprint {
            // Other credentials (the config changed) or unreadable: start
            // afresh, keep the version.
            return Ok((
                Stored {
                    fingerprint: fingerprint.to_owned(),
                    ..Stored::default()
                },
                Some(c.version),
            ));
        }
        Ok((stored, Some(c.version)))
    }

    async fn save(&self, ports: &Ports, slot: &Slot, stored: &Stored, version: Option<u64>) {
        let plain = serde_json::to_vec(stored).unwrap_or_default();
        let value = slot.key.seal(&plain);
        let cursor = slot.cursor.as_str();
        match ports.cursors.put(cursor, &value, version).await {
            Ok(Some(_)) => {}
            Ok(None) => tracing::warn!(
                cursor,
                "token cache changed under us; keeping ours in-process"
            ),
            Err(e) => tracing::warn!(cursor, error = %e, "could not cache the token in the store"),
        }
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
        let mut seen = self.seen.write().unwrap_or_else(|p| p.into_inner());
        if token.len() >= 4 && !seen.iter().any(|s| s == token) {
            seen.push(token.to_owned());
        }
    }
}

/// A hash of the configured credentials: cached state for other credentials is ignored.
fn fingerprint(conn: &Connection) -> String {
    let Some(Auth::OAuth2 {
        token_url,
        grant,
        client_id,
        client_secret,
        refresh_token,
        scope,
        params,
        // How the client authenticates does not change whose tokens they are.
        ..
    }) = &conn.auth
    else {
        return String::new();
    };
    let mut h = Sha256::new();
    for part in [
        token_url.as_str(),
        &format!("{grant:?}"),
        client_id,
        client_secret,
        refresh_token.as_deref().unwrap_or(""),
        scope.as_deref().unwrap_or(""),
        &serde_json::to_string(params).unwrap_or_default(),
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..16])
}

/// `Basic base64(urlencode(id):urlencode(secret))`: RFC 6749 §2.3.1 has the
/// client id and secret form-encoded before they are joined.
fn basic_client_auth(id: &str, secret: &str) -> String {
    use base64::Engine as _;
    let enc = |s: &str| serde_urlencoded::to_string([("", s)]).unwrap_or_default()[1..].to_owned();
    let pair = format!("{}:{}", enc(id), enc(secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}
