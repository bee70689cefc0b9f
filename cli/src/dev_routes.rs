//! The routes of `ferry dev`: webhook URLs, health, metrics, the sandbox's
//! bins and the console.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{any, get};
use ferry::hub::Hub;
use ferry::ingest::Inbound;

use crate::sandbox::Sandbox;

/// The routes of `ferry dev` (see `serve` for the bounds and the JSON answers
/// around them); the sandbox's bins only when `sandbox` is on; the web
/// console at `/` when given.
pub fn router(
    hub: Arc<Hub>,
    sandbox: bool,
    console: Option<Arc<ferry::console::Console>>,
) -> Router {
    let sandbox = if sandbox {
        Router::new()
            .route("/_sandbox/{bin}/{*rest}", any(Sandbox::handle))
            .with_state(Sandbox::for_hub(hub.clone()))
    } else {
        Router::new().route("/_sandbox/{*rest}", any(sandbox_off))
    };
    let app = Router::new()
        .route("/hooks/{source}", any(hook))
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({ "ok": true })) }),
        )
        .route("/metrics", get(metrics))
        .with_state(hub)
        .merge(sandbox);
    match console {
        Some(console) => app.merge(ferry::console::router(console)),
        None => app,
    }
}

/// `GET /metrics`: what this process counted, in the Prometheus text format
/// (see `ferry::metrics` and docs/metrics.md).
async fn metrics(State(hub): State<Arc<Hub>>) -> Response {
    let content_type = [(
        axum::http::header::CONTENT_TYPE,
        ferry::metrics::PROMETHEUS_CONTENT_TYPE,
    )];
    (content_type, hub.metrics.prometheus()).into_response()
}

async fn sandbox_off() -> Response {
    let body = serde_json::json!({
        "error": "sandbox_off",
        "message": "the sandbox is off; start `ferry dev --sandbox` to serve /_sandbox/<bin>/...",
    });
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

async fn hook(
    State(hub): State<Arc<Hub>>,
    method: Method,
    source: Result<UrlPath<String>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let source = match source {
        Ok(UrlPath(source)) => source,
        Err(e) => {
            let body = serde_json::json!({
                "error": "bad_path",
                "message": format!("the source in /hooks/<source> cannot be read: {}", e.body_text()),
            });
            return (StatusCode::BAD_REQUEST, Json(body)).into_response();
        }
    };
    let reply = ferry::respond::serve(
        &hub,
        Inbound {
            method,
            source,
            headers,
            query,
            body,
        },
    )
    .await;
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match reply.body {
        Some(body) => (status, Json(body)).into_response(),
        None => status.into_response(),
    }
}
