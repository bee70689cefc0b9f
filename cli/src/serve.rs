//! The HTTP server of `ferry dev`: HTTP/1.1 on hyper with explicit time and
//! size bounds, and a JSON answer (`{"error": code, "message": ...}`) for
//! everything refused before a handler runs — unknown routes, bad paths, heads
//! and bodies over a limit, bodies that do not arrive in time.
//!
//! hyper answers a few things itself, before any of this code sees the
//! request, with an empty body and a closed connection: a request head over
//! [`HARD_MAX_HEAD_BYTES`] or with more than [`HARD_MAX_HEADERS`] headers
//! (431), and a head that does not parse (400). The JSON limits below are
//! smaller, so a realistic oversized request gets JSON; only an absurd one
//! meets hyper's wall. A head that does not arrive within the header timeout
//! gets no answer: the connection is closed.

use std::future::Future;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Json, Response};
use axum::{Extension, Router};
use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Limited};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use tokio::net::TcpListener;
use tower::Layer;

/// Longest wait for a request head (request line and headers) — counted from
/// when the server starts waiting for one, so it is also how long an idle
/// keep-alive connection stays open (hyper uses one timer for both). Past it
/// the connection is closed without an answer.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for a whole request body, once the head has arrived. Past it
/// the answer is `408 request_timeout` and the connection is closed.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest body read at all (each source's `max_body_bytes` is lower):
/// `413 payload_too_large` above.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
/// How much of an oversized body is read (and dropped) before the 413, so
/// that a sender still sending can read the answer; past it the connection is
/// closed at once.
pub const DRAIN_BYTES: usize = 8 * 1024 * 1024;
/// Longest request target (path and query): `414 uri_too_long` above.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Largest header section (names, values, separators): `431 headers_too_large` above.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// Most header lines: `431 headers_too_large` above.
pub const MAX_HEADERS: usize = 100;
/// hyper's own limit on a request head: above it hyper answers an empty 431 and closes.
pub const HARD_MAX_HEAD_BYTES: usize = 64 * 1024;
/// hyper's own limit on header lines: above it hyper answers an empty 431 and closes.
pub const HARD_MAX_HEADERS: usize = 200;

/// The time bounds of the server (the size bounds are constants).
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// See [`HEADER_TIMEOUT`].
    pub header_timeout: Duration,
    /// See [`BODY_TIMEOUT`].
    pub body_timeout: Duration,
}

impl Default for Bounds {
    fn default() -> Self {
        Self {
            header_timeout: HEADER_TIMEOUT,
            body_timeout: BODY_TIMEOUT,
        }
    }
}

/// Wrap `app` in the bounds and the JSON answers, and give it a JSON 404 for
/// every route it does not have.
pub fn bounded(app: Router, bounds: Bounds) -> Router {
    app.fallback(not_found)
        .layer(middleware::from_fn_with_state(bounds, guard))
        .layer(middleware::map_response(json_errors))
}

/// Serve `app` on `listener` until `stop` resolves, then let open requests finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    bounds: Bounds,
    stop: impl Future<Output = ()>,
) {
    let app = bounded(app, bounds);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(bounds.header_timeout)
        .max_header_size(HARD_MAX_HEAD_BYTES)
        .max_headers(HARD_MAX_HEADERS);
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait a little rather than spin.
                    tracing::warn!(error = %e, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let (stream, peer) = stream;
        // Answers are small and sent whole: no Nagle delay waiting for more.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        // The peer's address, for the console's login limit.
        let app = Extension(ConnectInfo(peer)).layer(app.clone());
        let conn = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// A JSON error answer, the shape ingest uses.
fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({ "error": code, "message": message.into() });
    (status, Json(body)).into_response()
}

async fn not_found(req: Request) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        format!(
            "no route for {} {}; webhooks are POST /hooks/<source>",
            req.method(),
            req.uri().path()
        ),
    )
}

/// Check the head against the JSON limits, then read the whole body within
/// the body timeout and hand the request on with it.
async fn guard(State(bounds): State<Bounds>, req: Request, next: Next) -> Response {
    let uri = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri > MAX_URI_BYTES {
        return error(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("the request target is {uri} bytes; the limit is {MAX_URI_BYTES}"),
        );
    }
    let headers = req.headers();
    let size: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if headers.len() > MAX_HEADERS || size > MAX_HEADER_BYTES {
        return error(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!(
                "{} headers of {size} bytes; the limits are {MAX_HEADERS} headers and {MAX_HEADER_BYTES} bytes",
                headers.len()
            ),
        );
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let waits_for_continue = headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if waits_for_continue && declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        // The sender has not sent the body yet and will not now.
        return refused(Refused::TooLarge);
    }
    let (parts, body) = req.into_parts();
    match tokio::time::timeout(bounds.body_timeout, read_body(body)).await {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Err(why)) => refused(why),
        Err(_) => refused(Refused::Late(bounds.body_timeout)),
    }
}

/// Why a body was not taken.
enum Refused {
    TooLarge,
    Unreadable(String),
    Late(Duration),
}

/// The answer to a refused body; the connection is closed after it.
fn refused(why: Refused) -> Response {
    let mut resp = match why {
        Refused::TooLarge => error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is over {MAX_BODY_BYTES} bytes, the most the server reads"),
        ),
        Refused::Unreadable(e) => error(
            StatusCode::BAD_REQUEST,
            "unreadable_body",
            format!("the body could not be read: {e}"),
        ),
        Refused::Late(d) => error(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "the body did not arrive within {}",
                humantime::format_duration(d)
            ),
        ),
    };
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// The whole body, up to [`MAX_BODY_BYTES`]. A larger one is read on and
/// dropped up to [`DRAIN_BYTES`] before the answer, so the sender, still
/// sending, is not cut off by a reset before it can read the 413.
async fn read_body(mut body: Body) -> Result<Bytes, Refused> {
    let mut buf = BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Refused::Unreadable(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        if seen > DRAIN_BYTES {
            return Err(Refused::TooLarge);
        }
        if seen <= MAX_BODY_BYTES {
            buf.extend_from_slice(&data);
        }
    }
    if seen > MAX_BODY_BYTES {
        return Err(Refused::TooLarge);
    }
    Ok(buf.freeze())
}

/// Turn any error answer that is not JSON (axum's extractor rejections, its
/// 405) into the JSON shape, keeping the status and the text as the message.
async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    // JSON answers, and the console's HTML pages (which explain themselves), pass as they are.
    let answered = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    if answered || !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = match Limited::new(body, 4096).collect().await {
        Ok(c) => String::from_utf8_lossy(&c.to_bytes()).trim().to_owned(),
        Err(_) => String::new(),
    };
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    let mut out = error(status, code(status), message);
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

/// The `error` code for a status the router answers by itself.
fn code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        413 => "payload_too_large",
        414 => "uri_too_long",
        415 => "unsupported_media_type",
        422 => "unprocessable",
        431 => "headers_too_large",
        s if s >= 500 => "internal_error",
        _ => "bad_request",
    }
}
