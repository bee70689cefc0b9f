//! Buying a token ([`Tokens::refresh`]) and saving a rotated refresh token
//! that could not be saved at once ([`Tokens::flush`]).

use super::*;

impl Tokens {
    /// Buy a token with the connection's grant, and keep it: a rotated
    /// refresh token is in the store before the new access token is handed
    /// out (see [`token_state::persist`]); when the store cannot take it, the
    /// new pair waits in [`Tokens::pending`] and the call is retried later.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn refresh(
        &self,
        ports: &Ports,
        http: &Client,
        name: &str,
        conn: &Conn,
        slot: &Slot,
        mut stored: Stored,
        version: Option<u64>,
    ) -> Result<(String, Millis), AuthError> {
        let Some(Auth::OAuth2 {
            grant,
            refresh_token,
            scope,
            params,
            ..
        }) = &conn.auth
        else {
            return Err(AuthError::Refused(format!(
                "connection {name} is not an oauth2 connection"
            )));
        };
        let mut form: Vec<(&str, String)> = Vec::new();
        let sent = match grant {
            Grant::ClientCredentials => {
                form.push(("grant_type", "client_credentials".into()));
                None
            }
            Grant::RefreshToken | Grant::AuthorizationCode => {
                let Some(rt) = stored
                    .refresh_token
                    .clone()
                    .or_else(|| refresh_token.clone())
                else {
                    return Err(AuthError::Refused(format!(
                        "connection {name} is not authorized yet: run `ferry connections authorize {name}` (with the same --store as the hub)"
                    )));
                };
                form.push(("grant_type", "refresh_token".into()));
                form.push(("refresh_token", rt.clone()));
                Some(rt)
            }
        };
        if let Some(scope) = scope {
            form.push(("scope", scope.clone()));
        }
        for (k, v) in params {
            form.push((k.as_str(), v.clone()));
        }
        let label = match sent {
            None => "client_credentials",
            Some(_) => "refresh_token",
        };
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let issued = match token_endpoint::request(http, name, conn, label, form).await {
            Ok(issued) => issued,
            Err(Failure::Redirected(why)) => return Err(AuthError::Refused(why)),
            Err(Failure::Unavailable(why)) => return Err(AuthError::Unavailable(why)),
            Err(Failure::Refused(what)) => {
                let again = match grant {
                    Grant::AuthorizationCode => {
                        format!("; run `ferry connections authorize {name}` to authorize again")
                    }
                    _ => String::new(),
                };
                stored.failed = Some(format!("{what}: the credentials were refused{again}"));
                stored.failed_at = ports.clock.now_ms();
                stored.access_token = None;
                slot.save(ports, &stored, version).await;
                return Err(AuthError::Refused(stored.failed.unwrap_or_default()));
            }
        };
        let now = ports.clock.now_ms();
        let refresh_at =
            crate::clock::after(now, issued.lifetime - refresh_margin(issued.lifetime));
        let rotated =
            sent.is_some() && issued.refresh_token.is_some() && issued.refresh_token != sent;
        let fresh = Stored {
            fingerprint: stored.fingerprint.clone(),
            access_token: Some(issued.access_token.clone()),
            refresh_at,
            refresh_token: issued.refresh_token.or(stored.refresh_token),
            failed: None,
            failed_at: 0,
        };
        if let Some(rt) = &fresh.refresh_token {
            self.note_secret(rt);
        }
        if !rotated {
            // Losing this write costs one more token request, nothing more.
            slot.save(ports, &fresh, version).await;
            return Ok((issued.access_token, refresh_at));
        }
        // The old refresh token is dead at the provider: the new one must be
        // in the store before anything uses the new access token.
        match token_state::persist(ports, slot, &fresh, version, sent.as_deref()).await {
            Ok(Persisted::Saved(_)) => Ok((issued.access_token, refresh_at)),
            Ok(Persisted::Superseded) => Err(AuthError::Unavailable(format!(
                "connection {name}: another instance rotated the refresh token at the same time; the call is retried with its token"
            ))),
            Err(e) => {
                tracing::error!(connection = name, error = %e, "the rotated refresh token could not be saved; holding it in memory");
                self.pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(
                        name.to_owned(),
                        Pending {
                            stored: fresh,
                            version,
                            replaced: sent,
                        },
                    );
                Err(AuthError::Unavailable(held(name, &e)))
            }
        }
    }

    /// Save a rotated refresh token this process holds but could not save
    /// yet, before anything else happens on the connection. `Ok(Some)`: the
    /// saved pair's access token, fresh; `Ok(None)`: nothing (more) held, go
    /// on; `Err`: still not saved (the refresh lease is renewed, so no
    /// instance spends the superseded refresh token meanwhile).
    pub(super) async fn flush(
        &self,
        ports: &Ports,
        name: &str,
        slot: &Slot,
        lock: &str,
        refused: Option<&str>,
    ) -> Result<Option<String>, AuthError> {
        let Some(p) = self.pending_of(name) else {
            return Ok(None);
        };
        let done =
            token_state::persist(ports, slot, &p.stored, p.version, p.replaced.as_deref()).await;
        let saved = match done {
            Ok(persisted) => matches!(persisted, Persisted::Saved(_)),
            Err(e) => {
                let _ = ports.idempotency.claim(lock, "", "", REFRESH_LEASE).await;
                return Err(AuthError::Unavailable(held(name, &e)));
            }
        };
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        if let Err(e) = ports.idempotency.release(lock).await {
            tracing::warn!(connection = name, error = %e, "could not release the token refresh lease");
        }
        tracing::info!(
            connection = name,
            "the rotated refresh token held in memory is saved"
        );
        let now = ports.clock.now_ms();
        match &p.stored.access_token {
            Some(t) if saved && now < p.stored.refresh_at && Some(t.as_str()) != refused => {
                self.remember(name, t, p.stored.refresh_at, now, false);
                Ok(Some(t.clone()))
            }
            _ => Ok(None),
        }
    }
}
