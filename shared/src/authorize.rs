//! The OAuth 2.0 authorization-code bootstrap behind `ferry connections
//! authorize NAME` (RFC 6749 §4.1, with the loopback redirect of RFC 8252
//! §7.3 and PKCE S256 of RFC 7636):
//!
//! 1. [`begin`] listens on `127.0.0.1:<redirect_port>` and builds the
//!    authorization URL: `response_type=code`, `client_id`, `redirect_uri`
//!    (`http://127.0.0.1:<port>/callback`), `scope`, a random `state` and,
//!    unless `pkce: false`, an S256 `code_challenge`;
//! 2. a person opens it and allows access; the provider redirects the
//!    browser to the loopback address with a `code` and the `state`;
//! 3. [`Started::finish`] checks the `state` (constant-time), exchanges the
//!    code at the token endpoint (client auth as configured, the PKCE
//!    verifier), and writes the tokens to the store, sealed, in the same
//!    token cache every instance reads ([`token_state`](crate::token_state)).
//!
//! Nothing here prints or returns a token.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use sha2::{Digest, Sha256};

use crate::config::{Auth, Grant};
use crate::hub::Hub;
use crate::token_endpoint::{self, Failure};
use crate::token_state::{Slot, Stored, fingerprint};

/// The path of the redirect URI on the loopback listener.
pub const CALLBACK: &str = "/callback";

/// Why a connection could not be authorized.
#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    /// The connection cannot be authorized this way (not found, not `oauth2`,
    /// not `grant: authorization_code`).
    #[error("{0}")]
    Config(String),
    /// The loopback port could not be listened on.
    #[error("{0}")]
    Listen(String),
    /// The provider redirected with an `error` (the person declined, …).
    #[error("{0}")]
    Denied(String),
    /// The redirect's `state` is not the one sent: possibly a forged request.
    #[error("{0}")]
    State(String),
    /// No redirect came in time.
    #[error("{0}")]
    Timeout(String),
    /// The token endpoint did not exchange the code.
    #[error("{0}")]
    Exchange(String),
    /// The store did not take the tokens.
    #[error("{0}")]
    Store(String),
}

/// An authorization in progress: the URL to open, and the listener waiting
/// for the redirect.
pub struct Started {
    name: String,
    listener: tokio::net::TcpListener,
    url: String,
    redirect_uri: String,
    state: String,
    verifier: Option<String>,
}

impl std::fmt::Debug for Started {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Started")
            .field("name", &self.name)
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

/// What [`Started::finish`] stored (no token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorized {
    /// How long the access token lives.
    pub lifetime: Duration,
    /// Whether the provider sent a refresh token (without one, runs fail as
    /// `auth_failed` once the access token expires).
    pub refresh_token: bool,
    /// The scope the provider granted, when it says.
    pub scope: Option<String>,
}

/// Start authorizing connection `name` of `hub`: listen on the loopback port
/// (`port` overrides the config's `redirect_port`; 0 is any free port) and
/// build the URL to open.
pub async fn begin(hub: &Hub, name: &str, port: Option<u16>) -> Result<Started, AuthorizeError> {
    let Some(conn) = hub.connection(name) else {
        let mut names: Vec<&str> = hub.config.connections.keys().map(String::as_str).collect();
        names.sort_unstable();
        return Err(AuthorizeError::Config(format!(
            "no connection {name:?} in the config (connections: {})",
            names.join(", ")
        )));
    };
    let Some(Auth::OAuth2 {
        grant,
        authorize_url,
        redirect_port,
        pkce,
        client_id,
        scope,
        ..
    }) = &conn.auth
    else {
        return Err(AuthorizeError::Config(format!(
            "connection {name} does not use `auth.type: oauth2`; only OAuth 2.0 connections are authorized in a browser"
        )));
    };
    let (Grant::AuthorizationCode, Some(authorize_url)) = (grant, authorize_url) else {
        return Err(AuthorizeError::Config(format!(
            "connection {name} uses `grant: {}`; `ferry connections authorize` needs `grant: authorization_code` and an `authorize_url`",
            match grant {
                Grant::ClientCredentials => "client_credentials",
                Grant::RefreshToken => "refresh_token",
                Grant::AuthorizationCode => "authorization_code",
            }
        )));
    };
    let port = port.or(*redirect_port).unwrap_or(0);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| {
            AuthorizeError::Listen(format!(
                "cannot listen on 127.0.0.1:{port} for the redirect: {e} (another program on the port? pick one with --port)"
            ))
        })?;
    let port = listener
        .local_addr()
        .map_err(|e| AuthorizeError::Listen(format!("the loopback listener has no address: {e}")))?
        .port();
    let redirect_uri = format!("http://127.0.0.1:{port}{CALLBACK}");
    let state = random_text();
    let verifier = pkce.then(random_text);
    let mut url = reqwest::Url::parse(authorize_url)
        .map_err(|e| AuthorizeError::Config(format!("connection {name}: authorize_url: {e}")))?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", &redirect_uri);
        if let Some(scope) = scope {
            q.append_pair("scope", scope);
        }
        q.append_pair("state", &state);
        if let Some(v) = &verifier {
            q.append_pair("code_challenge", &B64.encode(Sha256::digest(v.as_bytes())))
                .append_pair("code_challenge_method", "S256");
        }
    }
    Ok(Started {
        name: name.to_owned(),
        listener,
        url: url.into(),
        redirect_uri,
        state,
        verifier,
    })
}

/// 32 random bytes, URL-safe base64 (43 characters: a valid PKCE verifier).
fn random_text() -> String {
    B64.encode(rand::random::<[u8; 32]>())
}

impl Started {
    /// The URL a person opens to allow access.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Where the provider sends the browser back.
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Wait up to `timeout` for the redirect, exchange the code and store
    /// the tokens. The browser's request is answered with the outcome.
    pub async fn finish(self, hub: &Hub, timeout: Duration) -> Result<Authorized, AuthorizeError> {
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let server = serve(self.listener, tx);
        tokio::pin!(server);
        let waited = tokio::time::timeout(timeout, async {
            tokio::select! {
                e = &mut server => Err(e),
                got = rx.recv() => Ok(got),
            }
        })
        .await;
        let callback = match waited {
            Ok(Ok(Some(c))) => c,
            Ok(Ok(None)) => {
                return Err(AuthorizeError::Listen(
                    "the loopback listener stopped before the redirect came".into(),
                ));
            }
            Ok(Err(e)) => {
                return Err(AuthorizeError::Listen(format!(
                    "the loopback listener failed before the redirect came: {e}"
                )));
            }
            Err(_) => {
                return Err(AuthorizeError::Timeout(format!(
                    "no redirect to {} within {}: nobody allowed access (run the command again, or give it a longer --timeout)",
                    self.redirect_uri,
                    humantime::format_duration(timeout)
                )));
            }
        };
        let done = complete(
            hub,
            &self.name,
            &self.state,
            &self.redirect_uri,
            self.verifier,
            &callback.params,
        )
        .await;
        let page = match &done {
            Ok(_) => format!(
                "ferry: connection {} is authorized. You can close this window.",
                self.name
            ),
            Err(e) => format!("ferry: {e}"),
        };
        let _ = callback.reply.send(page);
        // Let the answer reach the browser before the caller exits.
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut server).await;
        done
    }
}

/// Check the redirect's parameters, exchange the code, store the tokens.
async fn complete(
    hub: &Hub,
    name: &str,
    state: &str,
    redirect_uri: &str,
    verifier: Option<String>,
    params: &HashMap<String, String>,
) -> Result<Authorized, AuthorizeError> {
    {
        let param = |k: &str| params.get(k).map(String::as_str);
        if let Some(error) = param("error") {
            let what = param("error_description").map_or(String::new(), |d| format!(": {d}"));
            return Err(AuthorizeError::Denied(format!(
                "the provider refused to authorize connection {name}: {error}{what}"
            )));
        }
        let state_ok = param("state")
            .is_some_and(|s| subtle::ConstantTimeEq::ct_eq(s.as_bytes(), state.as_bytes()).into());
        if !state_ok {
            return Err(AuthorizeError::State(format!(
                "the redirect's `state` is not the one ferry sent: refused (a stale browser tab, or a forged request); run `ferry connections authorize {name}` again"
            )));
        }
        let Some(code) = param("code").filter(|c| !c.is_empty()) else {
            return Err(AuthorizeError::Denied(format!(
                "the provider redirected without a `code` for connection {name}"
            )));
        };
        let conn = hub
            .connection(name)
            .ok_or_else(|| AuthorizeError::Config(format!("no connection {name:?}")))?;
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("redirect_uri", redirect_uri.to_owned()),
        ];
        if let Some(v) = verifier {
            form.push(("code_verifier", v));
        }
        let http = hub.http.client();
        let issued = token_endpoint::request(http, name, conn, "authorization_code", form)
            .await
            .map_err(|f| match f {
                Failure::Refused(m) | Failure::Redirected(m) | Failure::Unavailable(m) => {
                    AuthorizeError::Exchange(m)
                }
            })?;
        let ports = &hub.ports;
        let now = ports.clock.now_ms();
        let stored = Stored {
            fingerprint: fingerprint(conn),
            access_token: Some(issued.access_token.clone()),
            refresh_at: crate::clock::after(
                now,
                issued.lifetime - crate::auth::refresh_margin(issued.lifetime),
            ),
            refresh_token: issued.refresh_token.clone(),
            failed: None,
            failed_at: 0,
        };
        Slot::of(name, conn)
            .replace(ports, &stored)
            .await
            .map_err(|e| {
                AuthorizeError::Store(format!(
                    "connection {name}: the tokens could not be stored ({e}); nothing was kept, run the command again once the store is back"
                ))
            })?;
        Ok(Authorized {
            lifetime: issued.lifetime,
            refresh_token: issued.refresh_token.is_some(),
            scope: issued.scope,
        })
    }
}

/// The redirect's query parameters, and where to send the page the browser
/// is shown.
struct Callback {
    params: HashMap<String, String>,
    reply: tokio::sync::oneshot::Sender<String>,
}

/// Serve the loopback listener, one connection at a time without
/// keep-alive, until the request that reached [`CALLBACK`] has had its
/// answer (the page [`Started::finish`] sends back); other paths (a
/// browser's `/favicon.ico`) get a 404. Returns only on an accept error.
async fn serve(
    listener: tokio::net::TcpListener,
    tx: tokio::sync::mpsc::Sender<Callback>,
) -> std::io::Error {
    use hyper::{Request, Response, body::Incoming};
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => return e,
        };
        let tx = tx.clone();
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let tx = tx.clone();
            async move {
                let (status, text) = if req.uri().path() == CALLBACK {
                    let params: HashMap<String, String> =
                        serde_urlencoded::from_str(req.uri().query().unwrap_or_default())
                            .unwrap_or_default();
                    let (reply, page) = tokio::sync::oneshot::channel();
                    let _ = tx.send(Callback { params, reply }).await;
                    let text = page.await.unwrap_or_else(|_| {
                        "ferry: this authorization is over; see the terminal.".to_owned()
                    });
                    (200, text)
                } else {
                    (404, "not found".to_owned())
                };
                let resp = Response::builder()
                    .status(status)
                    .header("content-type", "text/plain; charset=utf-8")
                    .body(http_body_util::Full::new(bytes::Bytes::from(text)))
                    .expect("a valid response");
                Ok::<_, Infallible>(resp)
            }
        });
        let io = hyper_util::rt::TokioIo::new(stream);
        let _ = hyper::server::conn::http1::Builder::new()
            .keep_alive(false)
            .serve_connection(io, service)
            .await;
    }
}
