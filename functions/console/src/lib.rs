//! The console Lambda: [`ferry::console`]'s router nested under `/console`,
//! always behind a login with the token read from Secrets Manager.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::response::Redirect;
use axum::routing::get;
use ferry::console::{Access, Console, Options};
use ferry::hub::Hub;
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;

/// Where the console lives on the HTTP API.
pub const BASE: &str = "/console";
/// The variable naming the Secrets Manager secret with the console token.
pub const SECRET_VAR: &str = "FERRY_CONSOLE_SECRET_ARN";

/// The console token: the string value of the secret `FERRY_CONSOLE_SECRET_ARN`
/// names (at least 16 characters).
pub async fn token_from_env(
    client: &aws_sdk_secretsmanager::Client,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let arn = env(SECRET_VAR).ok_or_else(|| format!("{SECRET_VAR} is not set"))?;
    let got = client
        .get_secret_value()
        .secret_id(&arn)
        .send()
        .await
        .map_err(|e| {
            format!(
                "reading the console token from {arn}: {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(e)
            )
        })?;
    let token = got
        .secret_string()
        .ok_or_else(|| format!("the secret {arn} has no string value"))?
        .trim()
        .to_owned();
    if token.len() < 16 {
        return Err(format!(
            "the console token in {arn} is {} characters; use at least 16",
            token.len()
        ));
    }
    Ok(token)
}

/// The console's routes under [`BASE`], with `token` required.
pub fn app(hub: Arc<Hub>, token: String) -> Router {
    let stack = std::env::var("FERRY_STACK").ok();
    let console = Console::new(
        hub,
        Options {
            base: BASE.into(),
            access: Access::Token(token),
            secure_cookie: true,
            cli_store: stack.map_or_else(|| "--store aws".to_owned(), |s| format!("--stack {s}")),
            cli_config: "--config deploy/config/ferry.yaml".into(),
        },
    );
    Router::new()
        .route("/console/", get(|| async { Redirect::permanent(BASE) }))
        .nest(BASE, ferry::console::router(console))
        .layer(axum::middleware::map_request(client_addr))
}

/// API Gateway's `sourceIp` as the request's client address (what the
/// console's login limit counts by); absent or unparsable: none.
async fn client_addr(mut req: Request) -> Request {
    let ip = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.http.source_ip.as_deref(),
        Some(RequestContext::ApiGatewayV1(ctx)) => ctx.identity.source_ip.as_deref(),
        _ => None,
    }
    .and_then(|ip| ip.parse::<IpAddr>().ok());
    if let Some(ip) = ip {
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(ip, 0)));
    }
    req
}
