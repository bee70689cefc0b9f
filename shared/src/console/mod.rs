//! The web console: server-rendered HTML over the hub's ports, for the
//! people who run ferry. Every number and every action goes through the
//! same shared functions as the CLI ([`crate::status`], [`crate::run_filter`],
//! [`crate::dlq`], [`crate::rerun`], [`crate::pause`], [`crate::breaker`],
//! [`crate::alerts`], [`crate::sync`]), so the two never disagree.
//!
//! [`router`] is an axum [`Router`]: `ferry dev` merges it at `/`; the
//! `console` Lambda nests it under `/console` (set [`Options::base`]).
//! Templates (minijinja, autoescaped), CSS and a small script are compiled
//! into the binary. Who may enter is [`access`]: a login with the console
//! token unless [`Access::Open`], a few wrong tokens a minute per client
//! address ([`limit`]); every POST carries the session's CSRF token.

pub mod access;
pub mod limit;
mod ops;
mod pages;
mod view;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt;

pub use access::{Access, Session};

use crate::hub::Hub;
use access::Keys;
use limit::LoginLimit;

/// Largest form body a console POST reads.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// How the console is served.
#[derive(Debug, Clone)]
pub struct Options {
    /// Path prefix it is served under (`""` at `/`, `"/console"` on the HTTP API).
    pub base: String,
    /// Who may enter.
    pub access: Access,
    /// Mark the session cookie `Secure` (off only for plain-http loopback `ferry dev`).
    pub secure_cookie: bool,
    /// The hint shown after CLI commands on the pages (`--data .ferry`, `--stack NAME`).
    pub cli_store: String,
    /// The config flag shown in CLI commands (`--config examples/new-lead.yaml`).
    pub cli_config: String,
}

/// The console's state, shared by every request.
pub struct Console {
    hub: Arc<Hub>,
    opts: Options,
    keys: Keys,
    logins: LoginLimit,
}

impl Console {
    /// The console over `hub`.
    pub fn new(hub: Arc<Hub>, opts: Options) -> Arc<Console> {
        let keys = Keys::new(&opts.access);
        Arc::new(Console {
            hub,
            opts,
            keys,
            logins: LoginLimit::default(),
        })
    }

    /// A path under the console (`/runs` → `/console/runs`).
    fn at(&self, path: &str) -> String {
        format!("{}{path}", self.opts.base)
    }

    fn cookie_path(&self) -> &str {
        if self.opts.base.is_empty() {
            "/"
        } else {
            &self.opts.base
        }
    }
}

/// The console's routes (relative to [`Options::base`], which the caller
/// nests them under), gated by [`access`].
pub fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/", get(pages::overview))
        .route("/runs", get(pages::runs))
        .route("/runs/{id}", get(pages::run))
        .route("/runs/{id}/rerun", post(ops::rerun))
        .route("/dlq", get(ops::dlq))
        .route(
            "/dlq/replay",
            get(ops::replay_confirm).post(ops::replay_many),
        )
        .route("/dlq/{id}/replay", post(ops::replay_one))
        .route("/pause", post(ops::pause))
        .route("/sources", get(ops::sources))
        .route("/connections", get(ops::connections))
        .route("/syncs", get(ops::syncs))
        .route("/alerts", get(ops::alerts))
        .route("/login", get(view::login_page).post(view::login))
        .route("/logout", post(view::logout))
        .route("/assets/console.css", get(view::css))
        .route("/assets/console.js", get(view::js))
        .layer(middleware::from_fn_with_state(console.clone(), gate))
        .with_state(console)
}

/// Paths open without a session.
fn is_public(path: &str) -> bool {
    path == "/login" || path.starts_with("/assets/")
}

/// Check the session (or issue one when the console is open), and the CSRF
/// token of every POST; hand the session to the handler.
async fn gate(State(c): State<Arc<Console>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if is_public(&path) {
        return next.run(req).await;
    }
    let now = c.hub.ports.clock.now_ms();
    let cookie = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(access::cookie_value)
        .map(str::to_owned);
    let session = match cookie.and_then(|v| c.keys.check(&v, now)) {
        Some(s) => s,
        None if !c.keys.needs_login() => c.keys.issue(now).1,
        None if req.method() == Method::GET || req.method() == Method::HEAD => {
            let next = req.uri().path_and_query().map_or("/", |p| p.as_str());
            let to = format!(
                "{}?next={}",
                c.at("/login"),
                percent_encoding::utf8_percent_encode(
                    &c.at(next),
                    percent_encoding::NON_ALPHANUMERIC
                )
            );
            return Redirect::to(&to).into_response();
        }
        None => {
            return (
                StatusCode::UNAUTHORIZED,
                "401: the console needs a session; log in at the login page with the console token",
            )
                .into_response();
        }
    };
    let req = if req.method() == Method::POST {
        match check_csrf(req, &session).await {
            Ok(req) => req,
            Err(resp) => return resp,
        }
    } else {
        req
    };
    let issued = session.issued.clone();
    let mut req = req;
    req.extensions_mut().insert(session);
    let mut resp = next.run(req).await;
    if let Some(value) = issued {
        let cookie = access::set_cookie(&value, c.cookie_path(), c.opts.secure_cookie);
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

/// Read the form body, find `csrf` (or the `x-csrf-token` header) and check
/// it against the session's; hand the request on with its body.
async fn check_csrf(req: Request, session: &Session) -> Result<Request, Response> {
    let (parts, body) = req.into_parts();
    let bytes = http_body_util::Limited::new(body, MAX_FORM_BYTES)
        .collect()
        .await
        .map_err(|_| {
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the form is over {MAX_FORM_BYTES} bytes"),
            )
                .into_response()
        })?
        .to_bytes();
    let header = parts
        .headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let field = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
        .ok()
        .and_then(|kv| kv.into_iter().find(|(k, _)| k == access::CSRF_FIELD))
        .map(|(_, v)| v);
    let given = field.or(header).unwrap_or_default();
    if !Keys::csrf_matches(&session.csrf, &given) {
        return Err((
            StatusCode::FORBIDDEN,
            "403: the form's CSRF token is missing or not this session's; reload the page and try again",
        )
            .into_response());
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}
