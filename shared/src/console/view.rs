//! Rendering: the minijinja environment (templates compiled into the binary,
//! HTML autoescaped), the page frame, the assets, and the login.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use minijinja::{Environment, Value, context};
use serde::Deserialize;

use super::Console;
use super::access::{self, Session};
use super::limit;
use crate::clock::{Millis, rfc3339};

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("assets/base.html")),
    ("overview.html", include_str!("assets/overview.html")),
    ("runs.html", include_str!("assets/runs.html")),
    ("run.html", include_str!("assets/run.html")),
    ("dlq.html", include_str!("assets/dlq.html")),
    ("confirm.html", include_str!("assets/confirm.html")),
    ("done.html", include_str!("assets/done.html")),
    ("sources.html", include_str!("assets/sources.html")),
    ("connections.html", include_str!("assets/connections.html")),
    ("syncs.html", include_str!("assets/syncs.html")),
    ("alerts.html", include_str!("assets/alerts.html")),
    ("login.html", include_str!("assets/login.html")),
    ("error.html", include_str!("assets/error.html")),
];
const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

/// The template environment, built once.
fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        // `.html` templates are HTML-escaped (minijinja's default callback).
        for (name, src) in TEMPLATES {
            env.add_template(name, src)
                .unwrap_or_else(|e| panic!("console template {name}: {e}"));
        }
        env.add_filter("time", time);
        env.add_filter("pretty", pretty);
        env.add_filter("dur", dur);
        env
    })
}

/// `<time>` for a store time (UTC, ISO 8601); the script shows it in the viewer's zone.
fn time(ms: Option<Millis>) -> Value {
    match ms {
        Some(ms) if ms > 0 => {
            let iso = rfc3339(ms);
            Value::from_safe_string(format!(
                "<time datetime=\"{iso}\" title=\"{iso}\">{iso}</time>"
            ))
        }
        _ => Value::from("—"),
    }
}

/// A value as indented JSON (escaped like any text when output).
fn pretty(v: Value) -> String {
    serde_json::to_string_pretty(&v).unwrap_or_else(|_| v.to_string())
}

/// Milliseconds for people.
fn dur(ms: u64) -> String {
    if ms < 1_000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

/// Any serializable value, for a template.
pub(super) fn v<T: serde::Serialize>(x: T) -> Value {
    Value::from(minijinja::value::Serde(x))
}

/// Render page `name` in the frame, with `ctx` and what every page gets.
pub(super) fn render(c: &Console, s: &Session, name: &str, nav: &str, ctx: Value) -> Response {
    let ctx = context! {
        base => c.opts.base.clone(),
        csrf => s.csrf.clone(),
        login => c.keys.needs_login(),
        nav => nav,
        cli_store => c.opts.cli_store.clone(),
        cli_config => c.opts.cli_config.clone(),
        ..ctx
    };
    match env().get_template(name).and_then(|t| t.render(ctx)) {
        Ok(html) => page_response(StatusCode::OK, html),
        Err(e) => {
            tracing::error!(template = name, error = %e, "console page did not render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("500: the page {name} did not render: {e}"),
            )
                .into_response()
        }
    }
}

fn page_response(status: StatusCode, html: String) -> Response {
    let mut resp = (status, Html(html)).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// An error page with `status` and a precise `message`.
pub(super) fn fail(c: &Console, s: &Session, status: StatusCode, message: &str) -> Response {
    let mut resp = render(
        c,
        s,
        "error.html",
        "",
        context! { status => status.as_u16(), message },
    );
    *resp.status_mut() = status;
    resp
}

/// `GET /assets/console.css`.
pub(super) async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response()
}

/// `GET /assets/console.js`.
pub(super) async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        JS,
    )
        .into_response()
}

/// Where to go after the login.
#[derive(Debug, Deserialize)]
pub(super) struct Next {
    #[serde(default)]
    next: Option<String>,
}

/// `next`, when it is a path of this console (never another site).
fn local_next(c: &Console, next: Option<&str>) -> String {
    let home = c.at("/");
    match next {
        Some(n) if n.starts_with(&c.at("/")) && !n.starts_with("//") && !n.contains('\\') => {
            n.to_owned()
        }
        _ => home,
    }
}

fn login_form(c: &Console, status: StatusCode, next: &str, error: Option<&str>) -> Response {
    let ctx = context! { base => c.opts.base.clone(), next, error, login => true };
    match env().get_template("login.html").and_then(|t| t.render(ctx)) {
        Ok(html) => page_response(status, html),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// `GET /login`: the form (the overview when the console is open).
pub(super) async fn login_page(State(c): State<Arc<Console>>, Query(q): Query<Next>) -> Response {
    let next = local_next(&c, q.next.as_deref());
    if !c.keys.needs_login() {
        return Redirect::to(&next).into_response();
    }
    login_form(&c, StatusCode::OK, &next, None)
}

/// The login form.
#[derive(Debug, Deserialize)]
pub(super) struct Login {
    #[serde(default)]
    token: String,
    #[serde(default)]
    next: Option<String>,
}

/// `POST /login`: a session for the right token; the form again (401) for a wrong one.
/// After [`LOGIN_FAILURES`](super::limit::LOGIN_FAILURES) wrong tokens from
/// one client address within a minute: 429 with `Retry-After`.
pub(super) async fn login(
    State(c): State<Arc<Console>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Form(f): Form<Login>,
) -> Response {
    let next = local_next(&c, f.next.as_deref());
    if !c.keys.needs_login() {
        return Redirect::to(&next).into_response();
    }
    let who = peer.map_or(limit::UNKNOWN_CLIENT, |Extension(ConnectInfo(a))| a.ip());
    let now = c.hub.ports.clock.now_ms();
    if let Err(wait) = c.logins.check(who, now) {
        let secs = limit::retry_after_secs(wait);
        tracing::warn!(client = %who, "console login refused: too many wrong tokens");
        let mut resp = login_form(
            &c,
            StatusCode::TOO_MANY_REQUESTS,
            &next,
            Some(&format!(
                "Too many wrong tokens from your address; try again in {secs} s."
            )),
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return resp;
    }
    if !c.keys.token_matches(&f.token) {
        c.logins.failed(who, now);
        tracing::warn!(client = %who, "console login refused: wrong token");
        return login_form(
            &c,
            StatusCode::UNAUTHORIZED,
            &next,
            Some("That is not the console token."),
        );
    }
    c.logins.succeeded(who);
    let (value, _) = c.keys.issue(now);
    let cookie = access::set_cookie(&value, c.cookie_path(), c.opts.secure_cookie);
    let mut resp = Redirect::to(&next).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// `POST /logout`: end the session.
pub(super) async fn logout(State(c): State<Arc<Console>>) -> Response {
    let cookie = access::clear_cookie(c.cookie_path(), c.opts.secure_cookie);
    let mut resp = Redirect::to(&c.at("/login")).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}
