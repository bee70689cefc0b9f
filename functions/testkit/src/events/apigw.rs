//! Webhooks as API Gateway delivers them (HTTP API v2 and REST API v1),
//! signed by the source's own verifier.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ferry::verify::Verifier;
use serde_json::{Map, Value, json};

use super::{clf_time, shape};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Api {
    HttpV2,
    RestV1,
}

pub(super) struct Hook {
    /// File stem.
    pub(super) name: &'static str,
    pub(super) source: &'static str,
    body: &'static str,
    content_type: &'static str,
    user_agent: &'static str,
    /// Provider headers that are not part of the signature.
    headers: &'static [(&'static str, &'static str)],
    /// The delivery id, for schemes that carry one in a header.
    event_id: Option<&'static str>,
    /// Send the body base64-encoded (binary media type).
    base64: bool,
    /// Alter the body after signing.
    tamper: bool,
    /// Only through this API.
    pub(super) only: Option<Api>,
}

const HOOK: Hook = Hook {
    name: "",
    source: "",
    body: "",
    content_type: "application/json",
    user_agent: "",
    headers: &[],
    event_id: None,
    base64: false,
    tamper: false,
    only: None,
};

pub(super) fn hooks() -> Vec<Hook> {
    let form = r#"{"submission_id":"sub_0001","email":"  Ada.Lovelace@Example.COM ","first_name":"Ada","last_name":"Lovelace","interest":"the analytical engine"}"#;
    let github = r#"{"ref":"refs/heads/main","before":"6113728f27ae82c7b1a177c8d03f9e96e0adf246","after":"59b20b8d5c6ff8d09518454d4dd8b7b30f095ab5","repository":{"id":186853002,"full_name":"acme/website","private":false},"pusher":{"name":"ada","email":"ada@example.com"},"head_commit":{"id":"59b20b8d5c6ff8d09518454d4dd8b7b30f095ab5","message":"Update pricing page"}}"#;
    vec![
        Hook {
            name: "hmac-sha256",
            source: "website-form",
            body: form,
            user_agent: "FormsApp-Hookshot/2.1",
            ..HOOK
        },
        Hook {
            name: "hmac-sha256-bad-signature",
            source: "website-form",
            body: form,
            user_agent: "FormsApp-Hookshot/2.1",
            tamper: true,
            only: Some(Api::HttpV2),
            ..HOOK
        },
        Hook {
            name: "hmac-sha256-timestamp",
            source: "billing",
            body: r#"{"invoice":"inv_1001","customer":"cus_42","amount_due":12900,"currency":"eur","status":"paid"}"#,
            user_agent: "Billing-Webhooks/1.0",
            ..HOOK
        },
        Hook {
            name: "github",
            source: "github",
            body: github,
            user_agent: "GitHub-Hookshot/a1b2c3d",
            headers: &[
                ("X-GitHub-Event", "push"),
                ("X-GitHub-Hook-ID", "292430182"),
            ],
            event_id: Some("72d3162e-cc78-11e3-81ab-4c9367dc0958"),
            ..HOOK
        },
        Hook {
            name: "github-base64",
            source: "github",
            body: github,
            user_agent: "GitHub-Hookshot/a1b2c3d",
            headers: &[
                ("X-GitHub-Event", "push"),
                ("X-GitHub-Hook-ID", "292430182"),
            ],
            event_id: Some("8e1ac2a0-cc78-11e3-8d0e-71b2bd32ac4b"),
            base64: true,
            only: Some(Api::RestV1),
            ..HOOK
        },
        Hook {
            name: "stripe",
            source: "stripe",
            body: r#"{"id":"evt_1OD4wX2eZvKYlo2C0mDhkR3b","object":"event","api_version":"2023-10-16","created":1700000000,"type":"customer.created","livemode":false,"data":{"object":{"id":"cus_P1Gz4JvCqbjqKe","object":"customer","email":"ada@example.com","name":"Ada Lovelace"}}}"#,
            user_agent: "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            content_type: "application/json; charset=utf-8",
            ..HOOK
        },
        Hook {
            name: "shopify",
            source: "shopify",
            body: r#"{"id":820982911946154508,"email":"ada@example.com","created_at":"2023-11-14T17:13:20-05:00","total_price":"129.00","currency":"EUR","line_items":[{"id":866550311766439020,"title":"Analytical Engine","quantity":1}]}"#,
            user_agent: "Shopify-Captain-Hook",
            headers: &[
                ("X-Shopify-Topic", "orders/create"),
                ("X-Shopify-Shop-Domain", "acme.myshopify.com"),
                ("X-Shopify-API-Version", "2023-10"),
            ],
            event_id: Some("b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"),
            ..HOOK
        },
        Hook {
            name: "slack",
            source: "slack",
            body: r#"{"token":"XXYYZZ","team_id":"T061EG9R6","api_app_id":"A0PNCHHK2","event":{"type":"message","channel":"C024BE91L","user":"U2147483697","text":"New lead: Ada Lovelace","ts":"1700000000.000200"},"type":"event_callback","event_id":"Ev0PV52K21","event_time":1700000000}"#,
            user_agent: "Slackbot 1.0 (+https://api.slack.com/robots)",
            ..HOOK
        },
        Hook {
            name: "slack-form-base64",
            source: "slack",
            body: "token=XXYYZZ&team_id=T061EG9R6&team_domain=acme&channel_id=C024BE91L&user_id=U2147483697&user_name=ada&command=%2Flead&text=Ada+Lovelace&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT061EG9R6%2F1234%2Fabcd&trigger_id=13345224609.738474920.8088930838d88f008e0",
            content_type: "application/x-www-form-urlencoded",
            user_agent: "Slackbot 1.0 (+https://api.slack.com/robots)",
            base64: true,
            only: Some(Api::HttpV2),
            ..HOOK
        },
        Hook {
            name: "standard-webhooks",
            source: "standard-webhooks",
            body: r#"{"type":"invoice.paid","timestamp":"2023-11-14T22:13:20Z","data":{"invoice":"in_2001","customer":"cus_42","amount":12900}}"#,
            user_agent: "Svix-Webhooks/1.14",
            event_id: Some("msg_2Yh3b4Wc7VzE1oQeK9sLpTnR0aX"),
            ..HOOK
        },
        Hook {
            name: "api-key",
            source: "api-key",
            body: r#"{"entry_id":"e-5001","form":"contact","fields":{"email":"ada@example.com","message":"Please call me"}}"#,
            user_agent: "FormTool/3.2",
            ..HOOK
        },
        Hook {
            name: "basic",
            source: "basic",
            body: r#"{"entry_id":"e-6001","form":"demo-request","fields":{"email":"ada@example.com","company":"Analytical Engines Ltd"}}"#,
            user_agent: "LegacyCRM/7.4",
            ..HOOK
        },
        Hook {
            name: "none",
            source: "none",
            body: r#"{"entry_id":"e-7001","kind":"heartbeat"}"#,
            user_agent: "InternalMonitor/1.0",
            ..HOOK
        },
    ]
}

/// The signed request: raw body bytes as sent and every header.
pub(super) struct Signed {
    body: Vec<u8>,
    headers: Vec<(String, String)>,
}

impl Hook {
    pub(super) fn signed(&self, verifier: &Verifier, now_ms: i64) -> Signed {
        let mut body = self.body.as_bytes().to_vec();
        let mut headers = vec![
            ("Content-Type".to_owned(), self.content_type.to_owned()),
            ("User-Agent".to_owned(), self.user_agent.to_owned()),
        ];
        headers.extend(
            self.headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        headers.extend(verifier.sign(&body, now_ms, self.event_id));
        if self.tamper {
            // The amount a man in the middle would change, after signing.
            body = String::from_utf8(body)
                .expect("UTF-8")
                .replace("Ada", "Eve")
                .into_bytes();
        }
        headers.push(("Content-Length".to_owned(), body.len().to_string()));
        Signed { body, headers }
    }
}

const HOST: &str = "r4nd0m1d.execute-api.eu-west-1.amazonaws.com";
const SOURCE_IP: &str = "203.0.113.7";

impl Api {
    pub(super) fn dir(self) -> &'static str {
        match self {
            Api::HttpV2 => "http-v2",
            Api::RestV1 => "rest-v1",
        }
    }

    pub(super) fn event(self, hook: &Hook, signed: &Signed, now_ms: i64) -> Value {
        let (body, encoded) = if hook.base64 {
            (B64.encode(&signed.body), true)
        } else {
            (
                String::from_utf8(signed.body.clone()).expect("text bodies are UTF-8"),
                false,
            )
        };
        let path = format!("/hooks/{}", hook.source);
        let request_id = request_id(hook.name, self);
        let mut headers: Vec<(String, String)> = vec![
            ("Host".into(), HOST.into()),
            ("X-Amzn-Trace-Id".into(), trace_id(&request_id)),
            ("X-Forwarded-For".into(), SOURCE_IP.into()),
            ("X-Forwarded-Port".into(), "443".into()),
            ("X-Forwarded-Proto".into(), "https".into()),
        ];
        headers.extend(signed.headers.iter().cloned());
        let time = clf_time(now_ms);
        match self {
            Api::HttpV2 => {
                let mut ev = shape("apigw-http-v2.json");
                let o = ev.as_object_mut().expect("an object");
                o.remove("cookies");
                o.remove("queryStringParameters");
                o.remove("stageVariables");
                o.insert("routeKey".into(), json!("POST /hooks/{source}"));
                o.insert("rawPath".into(), json!(path));
                o.insert("rawQueryString".into(), json!(""));
                // HTTP APIs lower-case header names.
                let h: Map<String, Value> = headers
                    .iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), json!(v)))
                    .collect();
                o.insert("headers".into(), Value::Object(h));
                o.insert("pathParameters".into(), json!({ "source": hook.source }));
                o.insert("body".into(), json!(body));
                o.insert("isBase64Encoded".into(), json!(encoded));
                let rc = o["requestContext"].as_object_mut().expect("an object");
                rc.remove("authentication");
                rc.remove("authorizer");
                rc.insert("apiId".into(), json!("r4nd0m1d"));
                rc.insert("domainName".into(), json!(HOST));
                rc.insert("domainPrefix".into(), json!("r4nd0m1d"));
                rc.insert(
                    "http".into(),
                    json!({ "method": "POST", "path": path, "protocol": "HTTP/1.1",
                            "sourceIp": SOURCE_IP, "userAgent": hook.user_agent }),
                );
                rc.insert("requestId".into(), json!(request_id));
                rc.insert("routeKey".into(), json!("POST /hooks/{source}"));
                rc.insert("time".into(), json!(time));
                rc.insert("timeEpoch".into(), json!(now_ms));
                ev
            }
            Api::RestV1 => {
                let mut ev = shape("apigw-rest-v1.json");
                let o = ev.as_object_mut().expect("an object");
                o.insert("body".into(), json!(body));
                o.insert("isBase64Encoded".into(), json!(encoded));
                o.insert("resource".into(), json!("/hooks/{source}"));
                o.insert("path".into(), json!(path));
                o.insert("httpMethod".into(), json!("POST"));
                o.insert("queryStringParameters".into(), Value::Null);
                o.insert("multiValueQueryStringParameters".into(), Value::Null);
                o.insert("pathParameters".into(), json!({ "source": hook.source }));
                o.insert("stageVariables".into(), Value::Null);
                // REST APIs keep the sender's header case.
                let single: BTreeMap<&str, &str> = headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                o.insert("headers".into(), json!(single));
                let multi: BTreeMap<&str, [&str; 1]> = headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), [v.as_str()]))
                    .collect();
                o.insert("multiValueHeaders".into(), json!(multi));
                let rc = o["requestContext"].as_object_mut().expect("an object");
                rc.insert("requestId".into(), json!(request_id));
                rc.insert("requestTime".into(), json!(time));
                rc.insert("requestTimeEpoch".into(), json!(now_ms));
                rc.insert("path".into(), json!(format!("/prod{path}")));
                rc.insert("resourcePath".into(), json!("/hooks/{source}"));
                rc.insert("httpMethod".into(), json!("POST"));
                rc.insert("apiId".into(), json!("r4nd0m1d"));
                rc.insert("domainName".into(), json!(HOST));
                let id = rc["identity"].as_object_mut().expect("an object");
                id.insert("sourceIp".into(), json!(SOURCE_IP));
                id.insert("userAgent".into(), json!(hook.user_agent));
                ev
            }
        }
    }
}

/// A stable, unique-looking request id per file.
fn request_id(name: &str, api: Api) -> String {
    use sha2::Digest;
    let h = hex::encode(sha2::Sha256::digest(format!("{}/{name}", api.dir())));
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..15],
        &h[15..18],
        &h[18..30]
    )
}

fn trace_id(request_id: &str) -> String {
    format!("Root=1-6553f100-{}", &request_id.replace('-', "")[..24])
}
