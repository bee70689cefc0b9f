//! A connection's OAuth 2.0 token state as the store keeps it (the
//! [`Cursors`](crate::ports::Cursors) port, cursor `oauth2:<connection>`,
//! sealed by [`token_cache`](crate::token_cache)), and the careful write of a
//! rotated refresh token.
//!
//! A provider that rotates refresh tokens (QuickBooks, Salesforce with
//! rotation on) invalidates the old one as soon as it issues the new one: the
//! new one then exists only in the answer ferry holds in memory. [`persist`]
//! writes it with a few attempts and, when the optimistic version no longer
//! matches (a write that landed although it reported an error, or another
//! instance that recorded a refusal of the now-superseded token), decides by
//! looking at what the store holds instead of giving up.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::auth::AuthError;
use crate::clock::Millis;
use crate::config::{Auth, Connection};
use crate::ports::Ports;
use crate::token_cache::CacheKey;

/// How many times [`persist`] tries the write before it reports the store down.
const ATTEMPTS: usize = 3;

/// The cached state of one connection's token (in-process and in the store).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Stored {
    /// Hash of the configured credentials this state belongs to.
    pub fingerprint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    /// When to refresh (before expiry).
    #[serde(default)]
    pub refresh_at: Millis,
    /// The refresh token to use next (rotated by the endpoint, or obtained by
    /// `ferry connections authorize`); the configured one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Why the endpoint refused, and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
    #[serde(default)]
    pub failed_at: Millis,
}

impl Stored {
    /// A fresh state for the credentials `fingerprint` names.
    pub fn empty(fingerprint: &str) -> Self {
        Stored {
            fingerprint: fingerprint.to_owned(),
            ..Stored::default()
        }
    }
}

/// Where a connection's token state lives in the store, and the key sealing it.
#[derive(Debug)]
pub(crate) struct Slot {
    pub cursor: String,
    pub key: CacheKey,
}

impl Slot {
    /// The slot of connection `name`.
    pub fn of(name: &str, conn: &Connection) -> Self {
        Self {
            cursor: crate::keys::oauth2_token(name),
            key: CacheKey::of(name, conn),
        }
    }

    /// The state in the store and its version. Absent, unreadable (a rotated
    /// secret, a legacy plain-text record, tampering) or for other
    /// credentials: an empty state (keeping the version to write over).
    pub async fn load(
        &self,
        ports: &Ports,
        fingerprint: &str,
    ) -> Result<(Stored, Option<u64>), AuthError> {
        let c = ports
            .cursors
            .get(&self.cursor)
            .await
            .map_err(|e| AuthError::Unavailable(format!("token cache: {e}")))?;
        let Some(c) = c else {
            return Ok((Stored::empty(fingerprint), None));
        };
        let stored: Stored = self
            .key
            .open(&c.value)
            .and_then(|plain| serde_json::from_slice(&plain).ok())
            .unwrap_or_default();
        if stored.fingerprint != fingerprint {
            return Ok((Stored::empty(fingerprint), Some(c.version)));
        }
        Ok((stored, Some(c.version)))
    }

    /// Write `stored` over `version`, once; a failure is only logged (for
    /// state whose loss costs one more token request, nothing more).
    pub async fn save(&self, ports: &Ports, stored: &Stored, version: Option<u64>) {
        let cursor = self.cursor.as_str();
        match ports
            .cursors
            .put(cursor, &self.sealed(stored), version)
            .await
        {
            Ok(Some(_)) => {}
            Ok(None) => tracing::warn!(
                cursor,
                "token cache changed under us; keeping ours in-process"
            ),
            Err(e) => tracing::warn!(cursor, error = %e, "could not cache the token in the store"),
        }
    }

    /// Write `stored` whatever the store holds (a new authorization replaces
    /// any state, a recorded refusal included); a few attempts.
    pub async fn replace(&self, ports: &Ports, stored: &Stored) -> Result<u64, String> {
        let value = self.sealed(stored);
        let mut last = String::new();
        for _ in 0..ATTEMPTS {
            let version = match ports.cursors.get(&self.cursor).await {
                Ok(c) => c.map(|c| c.version),
                Err(e) => {
                    last = e.to_string();
                    continue;
                }
            };
            match ports.cursors.put(&self.cursor, &value, version).await {
                Ok(Some(v)) => return Ok(v),
                Ok(None) => last = "the token cache changed while it was written".into(),
                Err(e) => last = e.to_string(),
            }
        }
        Err(last)
    }

    fn sealed(&self, stored: &Stored) -> String {
        self.key
            .seal(&serde_json::to_vec(stored).unwrap_or_default())
    }
}

/// What [`persist`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Persisted {
    /// `ours` is in the store, at this version.
    Saved(u64),
    /// The store holds another live refresh token that is not the one ours
    /// replaced: someone else rotated after us; theirs is the current one.
    Superseded,
}

/// Durably write `ours`, a state whose refresh token the endpoint just
/// rotated to, where `replaced` was the refresh token it superseded.
///
/// Tries [`ATTEMPTS`] times. On a version mismatch it reads the store: its
/// own write already there (a write that landed but answered an error) is
/// success; a state holding `replaced`, no refresh token, a recorded refusal
/// or other credentials is stale and is written over; anything else is
/// [`Persisted::Superseded`]. `Err` only when the store kept failing: the
/// caller must then keep `ours` and try again before anything else.
pub(crate) async fn persist(
    ports: &Ports,
    slot: &Slot,
    ours: &Stored,
    mut version: Option<u64>,
    replaced: Option<&str>,
) -> Result<Persisted, String> {
    let value = slot.sealed(ours);
    let mut last = String::new();
    for _ in 0..ATTEMPTS {
        match ports.cursors.put(&slot.cursor, &value, version).await {
            Ok(Some(v)) => return Ok(Persisted::Saved(v)),
            Ok(None) => {}
            Err(e) => {
                last = e.to_string();
                continue;
            }
        }
        let (theirs, v) = match slot.load(ports, &ours.fingerprint).await {
            Ok(found) => found,
            Err(e) => {
                last = e.to_string();
                continue;
            }
        };
        if theirs.refresh_token == ours.refresh_token && theirs.access_token == ours.access_token {
            // Our write landed; it was only its answer that was lost.
            return Ok(Persisted::Saved(v.unwrap_or_default()));
        }
        let stale = theirs.refresh_token.is_none()
            || theirs.refresh_token.as_deref() == replaced
            || theirs.failed.is_some();
        if !stale {
            return Ok(Persisted::Superseded);
        }
        version = v;
        last = "the token cache changed while it was written".into();
    }
    Err(last)
}

/// A hash of the configured credentials: cached state for other credentials is ignored.
pub(crate) fn fingerprint(conn: &Connection) -> String {
    let Some(Auth::OAuth2 {
        token_url,
        grant,
        client_id,
        client_secret,
        refresh_token,
        scope,
        params,
        // How the client authenticates, and how a person authorizes, do not
        // change whose tokens they are.
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
