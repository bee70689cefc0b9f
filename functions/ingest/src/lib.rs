//! Translate an API Gateway request into [`ferry::ingest::Inbound`] and the
//! [`ferry::ingest::Reply`] back into a response. Nothing else happens here.

use ferry::hub::Hub;
use ferry::ingest::{Inbound, ingest};
use lambda_http::{Body, Request, RequestExt, Response};

/// Handle one API Gateway request for `/hooks/{source}`.
pub async fn handle(hub: &Hub, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    let source = req
        .path_parameters_ref()
        .and_then(|p| p.first("source").map(str::to_owned))
        .or_else(|| req.uri().path().rsplit('/').next().map(str::to_owned))
        .unwrap_or_default();
    let query = req.uri().query().map(str::to_owned);
    let (parts, body) = req.into_parts();
    let body = match body {
        Body::Empty => bytes::Bytes::new(),
        Body::Text(t) => bytes::Bytes::from(t),
        Body::Binary(b) => bytes::Bytes::from(b),
        _ => bytes::Bytes::new(),
    };
    let reply = ingest(
        hub,
        Inbound {
            method: parts.method,
            source,
            headers: parts.headers,
            query,
            body,
        },
    )
    .await;
    Ok(Response::builder()
        .status(reply.status)
        .header("content-type", "application/json")
        .body(Body::Text(reply.body.to_string()))?)
}
