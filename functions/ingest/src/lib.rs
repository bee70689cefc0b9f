//! Translate an API Gateway request (HTTP API payload v2, or REST API v1)
//! into [`ferry::ingest::Inbound`], and the answer ([`ferry::respond::Wire`]) back into
//! a response: the same status and JSON body `ferry dev` answers with.
//!
//! The body reaches the verifier as the exact bytes the provider signed:
//! `lambda_http` decodes a base64 body (`isBase64Encoded: true`, which API
//! Gateway uses for binary media types) and passes a text body through as its
//! UTF-8 bytes. Nothing here parses or re-encodes it.

use bytes::Bytes;
use ferry::hub::Hub;
use ferry::ingest::{Inbound, Reply};
use ferry::respond::{Wire, serve};
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::json;
use tracing::Instrument;

/// Handle one API Gateway request for `/hooks/{source}`.
pub async fn handle(hub: &Hub, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    let wire = match inbound(req) {
        Ok(inbound) => {
            let span = tracing::info_span!(
                "hook",
                source = %inbound.source,
                event_id = tracing::field::Empty,
            );
            serve(hub, inbound).instrument(span).await
        }
        Err(reply) => Wire::from(reply),
    };
    let resp = Response::builder().status(wire.status);
    Ok(match wire.body {
        Some(body) => resp
            .header("content-type", "application/json")
            .body(Body::Text(body.to_string()))?,
        None => resp.body(Body::Empty)?,
    })
}

/// The request as ingest sees it. The source is the `{source}` path
/// parameter or, when the route has none (a `$default` or proxy route), the
/// segment after a path's last `/hooks/`; any other path is answered `404
/// not_found`, in the same JSON as every other answer.
pub fn inbound(req: Request) -> Result<Inbound, Reply> {
    let source = match req
        .path_parameters_ref()
        .and_then(|p| p.first("source").map(str::to_owned))
    {
        Some(source) => source,
        None => {
            let path = req.raw_http_path();
            match path.trim_end_matches('/').rsplit_once("/hooks/") {
                Some((_, source)) if !source.is_empty() && !source.contains('/') => {
                    source.to_owned()
                }
                _ => {
                    let message = format!(
                        "no route for {} {path}; webhooks are POST /hooks/<source>",
                        req.method()
                    );
                    return Err(Reply {
                        status: 404,
                        body: json!({ "error": "not_found", "message": message }),
                    });
                }
            }
        }
    };
    let query = req.uri().query().map(str::to_owned);
    let (parts, body) = req.into_parts();
    let body = match body {
        Body::Empty => Bytes::new(),
        Body::Text(t) => Bytes::from(t),
        Body::Binary(b) => Bytes::from(b),
        other => Bytes::copy_from_slice(&other),
    };
    Ok(Inbound {
        method: parts.method,
        source,
        headers: parts.headers,
        query,
        body,
    })
}
