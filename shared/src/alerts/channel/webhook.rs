//! The webhook channel: the [`Notice`] as JSON, with `"type": "ferry.alert"`
//! and `"version": 1`, POSTed to any URL and signed with the Standard Webhooks
//! scheme (`webhook-id` = the notice id, stable across retries, so a receiver
//! can drop duplicates). The signing is [`crate::verify::sign_standard_webhooks`],
//! next to the verifier of the same scheme. 2xx is delivered; 408, 429, 5xx
//! and timeouts retry; any other status does not. Redirects are not followed.

use serde_json::Value;

use super::{SendError, http_failure, transport_failure};
use crate::alerts::Notice;

/// The payload's `type`.
pub const WEBHOOK_TYPE: &str = "ferry.alert";
/// The payload's `version`; fields are only added within a version.
pub const WEBHOOK_VERSION: u32 = 1;

/// The JSON body: `type`, `version`, then every field of the notice.
pub fn webhook_payload(n: &Notice) -> Value {
    let mut body = serde_json::Map::new();
    body.insert("type".into(), WEBHOOK_TYPE.into());
    body.insert("version".into(), WEBHOOK_VERSION.into());
    if let Ok(Value::Object(fields)) = serde_json::to_value(n) {
        body.extend(fields);
    }
    Value::Object(body)
}

/// `scheme://host[:port]` of `url`: enough to say where, without a path or
/// query that might carry a token.
fn origin(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("?");
            match u.port() {
                Some(p) => format!("the webhook at {}://{host}:{p}", u.scheme()),
                None => format!("the webhook at {}://{host}", u.scheme()),
            }
        }
        Err(_) => "the webhook".into(),
    }
}

/// Posts `notice`, signed with `secret` at `now_ms`.
pub(crate) async fn send(
    http: &reqwest::Client,
    url: &str,
    secret: &str,
    n: &Notice,
    now_ms: i64,
) -> Result<(), SendError> {
    let what = origin(url);
    let body = serde_json::to_vec(&webhook_payload(n))
        .map_err(|e| SendError::fatal(format!("the payload does not serialize: {e}")))?;
    let headers = crate::verify::sign_standard_webhooks(secret, &n.id, &body, now_ms)
        .map_err(|why| SendError::fatal(format!("secret: {why}")))?;
    let mut request = http
        .post(url)
        .header(http::header::CONTENT_TYPE, "application/json");
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let answer = request
        .body(body)
        .send()
        .await
        .map_err(|e| transport_failure(&what, &e))?;
    let status = answer.status().as_u16();
    if answer.status().is_success() {
        return Ok(());
    }
    let retry_after = answer
        .headers()
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = answer.text().await.unwrap_or_default();
    let mut e = http_failure(&what, status, retry_after.as_deref(), &text, now_ms);
    if answer_is_redirect(status) {
        e.message
            .push_str(" (a redirect; ferry does not follow redirects: configure the final URL)");
    }
    Err(e)
}

fn answer_is_redirect(status: u16) -> bool {
    (300..400).contains(&status)
}
