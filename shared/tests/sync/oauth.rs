//! A sync whose source needs an OAuth 2.0 token: the poll carries the
//! connection's bearer token, fetched once and reused.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use ferry::sync::{Outcome, run_sync};
use serde_json::json;

use crate::support::hub;

#[tokio::test]
async fn a_source_behind_oauth2_is_polled_with_the_cached_token() {
    let tokens = Arc::new(AtomicUsize::new(0));
    let issued = tokens.clone();
    let app = Router::new()
        .route(
            "/token",
            post(move || {
                let issued = issued.clone();
                async move {
                    let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
                    axum::Json(json!({ "access_token": format!("tok-{n}"), "token_type": "Bearer", "expires_in": 3600 }))
                }
            }),
        )
        .route(
            "/contacts",
            get(|headers: HeaderMap| async move {
                if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer tok-1") {
                    return (StatusCode::UNAUTHORIZED, axum::Json(json!({ "error": "no token" }))).into_response();
                }
                axum::Json(json!({ "results": [{ "id": "c-1", "updated_at": "2024-01-02T00:00:00Z" }] })).into_response()
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let yaml = r#"version: 1
connections:
  api:
    base_url: "${env:API_URL}"
    auth: { type: oauth2, token_url: "${env:API_URL}/token", client_id: ferry, client_secret: "${env:CS}" }
syncs:
  contacts:
    schedule: rate(5 minutes)
    source:
      connection: api
      request: { method: GET, path: /contacts, query: { updated_since: "{{ watermark }}" } }
      records: response.body.results
      id: record.id
      version: record.updated_at
      watermark: record.updated_at
      start: "2024-01-01T00:00:00Z"
    steps:
      - id: note
        connection: api
        when: "false"
        request: { path: /unused }
"#;
    let env = hub(yaml, &[("API_URL", &url), ("CS", "client-secret")], None);
    for _ in 0..2 {
        let report = run_sync(&env.hub, "contacts").await.unwrap();
        assert_eq!(report.outcome, Outcome::Completed, "{report:?}");
        assert_eq!(report.counts.seen, 1, "{report:?}");
    }
    assert_eq!(tokens.load(Ordering::SeqCst), 1, "one token for both polls");
}
