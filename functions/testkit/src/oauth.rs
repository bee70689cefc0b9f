//! A fake OAuth 2.0 authorization server on a [`Target`], written from the
//! RFCs ferry follows, and behaving like the providers that are strict about
//! them (Intuit QuickBooks, Salesforce with refresh-token rotation):
//!
//! - `GET <prefix>/authorize` (RFC 6749 §4.1.1, RFC 7636 §4.3): checks
//!   `response_type=code` and the `client_id`, remembers the `redirect_uri`,
//!   `scope` and S256 `code_challenge`, and redirects (`302`) to the
//!   `redirect_uri` with a one-time `code` and the `state` it was given —
//!   what a browser does after the person clicks "allow";
//! - `POST <prefix>/token` (RFC 6749 §4.1.3, §6; RFC 7636 §4.6): checks the
//!   client (HTTP Basic or in the body, as configured: `401
//!   invalid_client` otherwise); `authorization_code`: the code once only,
//!   the same `redirect_uri`, the PKCE verifier against the challenge;
//!   `refresh_token`: only the one live refresh token. With rotation on,
//!   every refresh issues a new refresh token and the old one is dead at
//!   once (`400 invalid_grant` if it comes back);
//! - [`Provider::api`]: an API under a prefix that answers `200` to a live
//!   access token and `401` to anything else.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::target::{Answer, Seen, Target};

/// How the provider expects the client to authenticate at its token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_id` and `client_secret` form fields.
    Body,
    /// HTTP Basic with the form-encoded id and secret (RFC 6749 §2.3.1).
    Basic,
}

/// What the provider is set up with.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The registered client.
    pub client_id: String,
    /// Its secret.
    pub client_secret: String,
    /// Where the token endpoint expects the client's credentials.
    pub client_auth: ClientAuth,
    /// Whether the authorization request must carry a PKCE S256 challenge.
    pub require_pkce: bool,
    /// Whether every refresh rotates the refresh token (the old one dies).
    pub rotate: bool,
    /// `expires_in` of the access tokens, in seconds.
    pub lifetime: u64,
}

#[derive(Debug)]
struct Code {
    redirect_uri: String,
    challenge: Option<String>,
    scope: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    codes: HashMap<String, Code>,
    refresh: Option<String>,
    access: HashSet<String>,
    issued: u32,
    presented: Vec<String>,
    refused: Vec<String>,
}

/// The fake authorization server; cheap to clone.
#[derive(Clone)]
pub struct Provider {
    setup: Setup,
    state: Arc<Mutex<State>>,
    prefix: String,
}

impl Provider {
    /// Serve `<prefix>/authorize` and `<prefix>/token` on `target`.
    pub fn install(target: &Target, prefix: &str, setup: Setup) -> Provider {
        let p = Provider {
            setup,
            state: Arc::default(),
            prefix: prefix.to_owned(),
        };
        let me = p.clone();
        target.behave(&format!("{prefix}/authorize"), move |s| {
            Some(me.authorize(s))
        });
        let me = p.clone();
        target.behave(&format!("{prefix}/token"), move |s| Some(me.token(s)));
        p
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Make `token` the one live refresh token (as if a person had authorized before).
    pub fn seed_refresh_token(&self, token: &str) {
        self.state().refresh = Some(token.to_owned());
    }

    /// The live refresh token, if any.
    pub fn live_refresh_token(&self) -> Option<String> {
        self.state().refresh.clone()
    }

    /// Whether `token` is an access token this provider issued.
    pub fn is_live(&self, token: &str) -> bool {
        self.state().access.contains(token)
    }

    /// How many token pairs the token endpoint issued.
    pub fn issued(&self) -> u32 {
        self.state().issued
    }

    /// Every refresh token presented to the token endpoint, in order.
    pub fn presented(&self) -> Vec<String> {
        self.state().presented.clone()
    }

    /// Why the token endpoint refused requests, in order.
    pub fn refusals(&self) -> Vec<String> {
        self.state().refused.clone()
    }

    /// Answer requests under `prefix` on `target`: `200 {"ok": true}` with a
    /// live bearer token, `401 invalid_token` otherwise.
    pub fn api(&self, target: &Target, prefix: &str) {
        let me = self.clone();
        target.behave(prefix, move |s| {
            let token = s.header("authorization").strip_prefix("Bearer ");
            Some(if token.is_some_and(|t| me.is_live(t)) {
                Answer::ok(json!({"ok": true}))
            } else {
                Answer::status(401, json!({"error": "invalid_token"}))
            })
        });
    }

    fn authorize(&self, s: &Seen) -> Answer {
        let param = |k: &str| s.param(k).unwrap_or_default();
        if s.method != "GET" || param("response_type") != "code" {
            return Answer::status(400, json!({"error": "unsupported_response_type"}));
        }
        if param("client_id") != self.setup.client_id {
            return Answer::status(400, json!({"error": "invalid_client"}));
        }
        let redirect_uri = param("redirect_uri");
        if !redirect_uri.starts_with("http://127.0.0.1:") {
            return Answer::status(
                400,
                json!({"error": "invalid_request", "error_description": "redirect_uri"}),
            );
        }
        let challenge = s.param("code_challenge");
        let s256 = s.param("code_challenge_method").as_deref() == Some("S256");
        if (self.setup.require_pkce || challenge.is_some()) && !(challenge.is_some() && s256) {
            return Answer::status(
                400,
                json!({"error": "invalid_request", "error_description": "PKCE S256 required"}),
            );
        }
        let mut st = self.state();
        let code = format!("code-{}", st.codes.len() + 1);
        st.codes.insert(
            code.clone(),
            Code {
                redirect_uri: redirect_uri.clone(),
                challenge,
                scope: s.param("scope"),
            },
        );
        let query = serde_urlencoded::to_string([("code", code), ("state", param("state"))])
            .expect("form-encodable");
        Answer::status(302, json!(null)).header("location", &format!("{redirect_uri}?{query}"))
    }

    fn client_ok(&self, s: &Seen) -> bool {
        let (id, secret) = match self.setup.client_auth {
            ClientAuth::Body => {
                if !s.header("authorization").is_empty() {
                    return false;
                }
                (s.form("client_id"), s.form("client_secret"))
            }
            ClientAuth::Basic => {
                if s.form("client_secret").is_some() {
                    return false;
                }
                let Some(pair) = s
                    .header("authorization")
                    .strip_prefix("Basic ")
                    .and_then(|b| STANDARD.decode(b).ok())
                    .and_then(|b| String::from_utf8(b).ok())
                else {
                    return false;
                };
                let Some((id, secret)) = pair.split_once(':') else {
                    return false;
                };
                let dec = |v: &str| {
                    serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={v}"))
                        .ok()
                        .and_then(|p| p.into_iter().next())
                        .map(|(_, v)| v)
                };
                (dec(id), dec(secret))
            }
        };
        id.as_deref() == Some(self.setup.client_id.as_str())
            && secret.as_deref() == Some(self.setup.client_secret.as_str())
    }

    fn refuse(&self, st: &mut State, status: u16, error: &str, why: &str) -> Answer {
        st.refused.push(format!("{error}: {why}"));
        Answer::status(status, json!({"error": error, "error_description": why}))
    }

    fn token(&self, s: &Seen) -> Answer {
        let mut st = self.state();
        if !self.client_ok(s) {
            return self.refuse(
                &mut st,
                401,
                "invalid_client",
                "client authentication failed",
            );
        }
        let form = |k: &str| s.form(k).unwrap_or_default();
        let scope = match form("grant_type").as_str() {
            "authorization_code" => {
                let Some(code) = st.codes.remove(&form("code")) else {
                    return self.refuse(&mut st, 400, "invalid_grant", "unknown or used code");
                };
                if code.redirect_uri != form("redirect_uri") {
                    return self.refuse(&mut st, 400, "invalid_grant", "redirect_uri differs");
                }
                if let Some(challenge) = &code.challenge {
                    let verifier = form("code_verifier");
                    let digest = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
                    if verifier.len() < 43 || &digest != challenge {
                        return self.refuse(&mut st, 400, "invalid_grant", "PKCE verifier");
                    }
                }
                code.scope
            }
            "refresh_token" => {
                let presented = form("refresh_token");
                st.presented.push(presented.clone());
                if st.refresh.as_deref() != Some(presented.as_str()) {
                    return self.refuse(&mut st, 400, "invalid_grant", "refresh token invalid");
                }
                None
            }
            other => {
                let why = format!("grant_type {other:?}");
                return self.refuse(&mut st, 400, "unsupported_grant_type", &why);
            }
        };
        st.issued += 1;
        let n = st.issued;
        let access = format!("at-{n}");
        st.access.insert(access.clone());
        let fresh_pair = form("grant_type") == "authorization_code" || self.setup.rotate;
        if fresh_pair {
            st.refresh = Some(format!("rt-{n}"));
        }
        let mut body = json!({
            "access_token": access,
            "token_type": "bearer",
            "expires_in": self.setup.lifetime,
            "refresh_token": st.refresh,
        });
        if let Some(scope) = scope {
            body["scope"] = json!(scope);
        }
        Answer::ok(body)
    }

    /// The prefix the endpoints are served under.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}
