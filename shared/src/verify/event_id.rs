//! Each scheme's default event id (the dedupe key when a source sets no
//! `event_id` template), and Slack's `url_verification` handshake.

use http::HeaderMap;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::common::Header;
use super::standard;
use crate::config::Scheme;

/// GitHub's delivery id header (a GUID, kept on redelivery).
pub(crate) const GITHUB_DELIVERY: &str = "X-GitHub-Delivery";
/// Shopify's webhook id header.
pub(crate) const SHOPIFY_WEBHOOK_ID: &str = "X-Shopify-Webhook-Id";

/// The event id a scheme's provider supplies, if any:
///
/// | scheme | id |
/// |---|---|
/// | `github` | header `X-GitHub-Delivery` |
/// | `shopify` | header `X-Shopify-Webhook-Id` |
/// | `stripe` | body JSON `id` |
/// | `standard-webhooks` | header `webhook-id` (or `svix-id`) |
/// | `slack` | see [`slack_event_id`] |
/// | `hmac-sha256`, `api-key`, `basic`, `none` | none: configure `event_id` |
///
/// Blank values count as absent. The GitHub and Shopify headers are not covered
/// by their signatures; the others are.
pub fn default_event_id(scheme: Scheme, headers: &HeaderMap, body: &[u8]) -> Option<String> {
    match scheme {
        Scheme::Github => header_text(headers, GITHUB_DELIVERY),
        Scheme::Shopify => header_text(headers, SHOPIFY_WEBHOOK_ID),
        Scheme::Stripe => json_string(body, "id"),
        Scheme::StandardWebhooks => standard::family(headers)
            .id
            .text(headers)
            .ok()
            .flatten()
            .map(str::to_string),
        Scheme::Slack => Some(slack_event_id(body)),
        Scheme::HmacSha256 | Scheme::ApiKey | Scheme::Basic | Scheme::None => None,
    }
}

/// Slack's event id, always present:
///
/// 1. a JSON body (Events API): its `event_id`;
/// 2. a form body (slash commands, interactivity): the `trigger_id` of the
///    `payload` JSON field, else the form's own `trigger_id`;
/// 3. otherwise (e.g. `url_verification`, `view_closed`): `sha256:` and the
///    hex SHA-256 of the body, so an identical redelivery still dedupes.
pub fn slack_event_id(body: &[u8]) -> String {
    let id = if looks_like_json(body) {
        json_string(body, "event_id")
    } else {
        form_trigger_id(body)
    };
    id.unwrap_or_else(|| format!("sha256:{}", hex::encode(Sha256::digest(body))))
}

/// The challenge to echo when `body` is Slack's
/// `{"type":"url_verification","challenge":"…"}` handshake. Answer it only
/// after the request verified (see [`super::Verified::slack_challenge`]).
pub fn slack_url_verification(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    if v.get("type")?.as_str()? != "url_verification" {
        return None;
    }
    v.get("challenge")?.as_str().map(str::to_string)
}

fn header_text(headers: &HeaderMap, name: &'static str) -> Option<String> {
    Header::known(name)
        .text(headers)
        .ok()
        .flatten()
        .map(|s| s.trim().to_string())
}

fn looks_like_json(body: &[u8]) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// A non-blank top-level string field of a JSON object body.
fn json_string(body: &[u8], field: &str) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    non_blank(v.get(field)?.as_str()?)
}

fn form_trigger_id(body: &[u8]) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let from_payload = field("payload").and_then(|p| json_string(p.as_bytes(), "trigger_id"));
    from_payload.or_else(|| non_blank(field("trigger_id")?))
}

fn non_blank(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (http::HeaderName::from_static(k), v.parse().unwrap()))
            .collect()
    }

    #[test]
    fn header_schemes_read_their_header() {
        let h = headers(&[
            ("x-github-delivery", "gh-1"),
            ("x-shopify-webhook-id", "sh-1"),
        ]);
        assert_eq!(
            default_event_id(Scheme::Github, &h, b"{}").as_deref(),
            Some("gh-1")
        );
        assert_eq!(
            default_event_id(Scheme::Shopify, &h, b"{}").as_deref(),
            Some("sh-1")
        );
        let blank = headers(&[("x-github-delivery", " ")]);
        assert_eq!(default_event_id(Scheme::Github, &blank, b""), None);
    }

    #[test]
    fn standard_webhooks_reads_webhook_id_then_svix_id() {
        let h = headers(&[("webhook-id", "msg_1"), ("webhook-signature", "v1,x")]);
        assert_eq!(
            default_event_id(Scheme::StandardWebhooks, &h, b"").as_deref(),
            Some("msg_1")
        );
        let h = headers(&[("svix-id", "msg_2"), ("svix-signature", "v1,x")]);
        assert_eq!(
            default_event_id(Scheme::StandardWebhooks, &h, b"").as_deref(),
            Some("msg_2")
        );
    }

    #[test]
    fn stripe_reads_the_body_id() {
        let h = HeaderMap::new();
        let id = default_event_id(Scheme::Stripe, &h, br#"{"id":"evt_1","object":"event"}"#);
        assert_eq!(id.as_deref(), Some("evt_1"));
        assert_eq!(default_event_id(Scheme::Stripe, &h, br#"{"id":42}"#), None);
        assert_eq!(default_event_id(Scheme::Stripe, &h, b"not json"), None);
    }

    #[test]
    fn schemes_without_a_provider_id_have_none() {
        let h = headers(&[("x-github-delivery", "gh-1"), ("webhook-id", "msg_1")]);
        for s in [
            Scheme::HmacSha256,
            Scheme::ApiKey,
            Scheme::Basic,
            Scheme::None,
        ] {
            assert_eq!(
                default_event_id(s, &h, br#"{"id":"x","event_id":"y"}"#),
                None
            );
        }
    }

    #[test]
    fn slack_json_uses_event_id() {
        let body = br#"{"type":"event_callback","event_id":"Ev123","event":{}}"#;
        assert_eq!(slack_event_id(body), "Ev123");
    }

    #[test]
    fn slack_forms_use_trigger_id_from_payload_or_form() {
        assert_eq!(
            slack_event_id(b"command=%2Fx&trigger_id=13.45.ab"),
            "13.45.ab"
        );
        let payload =
            "payload=%7B%22type%22%3A%22block_actions%22%2C%22trigger_id%22%3A%22t.1%22%7D";
        assert_eq!(slack_event_id(payload.as_bytes()), "t.1");
    }

    #[test]
    fn slack_falls_back_to_a_body_hash() {
        let body = br#"{"type":"url_verification","challenge":"abc"}"#;
        let id = slack_event_id(body);
        assert_eq!(id, format!("sha256:{}", hex::encode(Sha256::digest(body))));
        assert_ne!(
            slack_event_id(b"payload=%7B%7D"),
            slack_event_id(b"payload=%7B%20%7D")
        );
        assert!(slack_event_id(&[0xff, 0xfe, b'{']).starts_with("sha256:"));
    }

    #[test]
    fn url_verification_returns_the_challenge_only_for_the_handshake() {
        let hs = br#"{"token":"t","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
        assert_eq!(
            slack_url_verification(hs).as_deref(),
            Some("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P")
        );
        assert_eq!(
            slack_url_verification(br#"{"type":"event_callback","challenge":"x"}"#),
            None
        );
        assert_eq!(
            slack_url_verification(br#"{"type":"url_verification"}"#),
            None
        );
        assert_eq!(
            slack_url_verification(b"type=url_verification&challenge=x"),
            None
        );
    }
}
