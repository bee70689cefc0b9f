//! Webhook sources: how a request is verified, answered and given its event id.

use super::*;

/// A webhook source.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// How requests are verified.
    pub verify: Verify,
    /// Template giving the event id used for dedupe (overrides the scheme's default).
    #[serde(default)]
    pub event_id: Option<String>,
    /// Dedupe window (default 7d, covering Stripe's 3-day retry horizon).
    #[serde(default)]
    pub dedupe_window: Option<Dur>,
    /// Largest accepted body in bytes (default 256 KiB).
    #[serde(default)]
    pub max_body_bytes: Option<u64>,
    /// Alert (`silent`) when no event was accepted for this long.
    #[serde(default)]
    pub max_silence: Option<Dur>,
    /// What the sender is answered once an event is accepted (new or a
    /// duplicate), instead of ferry's `202`/`200` JSON: for providers that
    /// want a plain `200` or a body of their own (Slack).
    #[serde(default)]
    pub respond: Option<Respond>,
}

/// A source's answer to an accepted event (`sources.*.respond`).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Respond {
    /// The status, a 2xx (default `200`).
    #[serde(default = "Respond::default_status")]
    pub status: u16,
    /// The JSON body; strings are templates over `body`, `headers`, `query`
    /// and `event` (`id`, `source`). None: an empty body.
    #[serde(default)]
    pub body: Option<serde_json::Value>,
}

impl Respond {
    fn default_status() -> u16 {
        200
    }
}

/// Signature verification scheme names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    /// HMAC-SHA256 of the raw body in a named header (hex by default, optional `sha256=` prefix).
    HmacSha256,
    /// GitHub: `X-Hub-Signature-256: sha256=<hex>`.
    Github,
    /// Stripe: `Stripe-Signature: t=..,v1=..` over `<t>.<body>`.
    Stripe,
    /// Shopify: `X-Shopify-Hmac-Sha256: <base64>`.
    Shopify,
    /// Slack: `X-Slack-Signature: v0=<hex>` over `v0:<ts>:<body>`.
    Slack,
    /// Standard Webhooks (Svix and others).
    StandardWebhooks,
    /// A header must equal a secret.
    ApiKey,
    /// HTTP basic authentication.
    Basic,
    /// No verification; must be written explicitly and is reported as a warning.
    None,
}

impl Scheme {
    /// The scheme as written in config (`hmac-sha256`).
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::HmacSha256 => "hmac-sha256",
            Scheme::Github => "github",
            Scheme::Stripe => "stripe",
            Scheme::Shopify => "shopify",
            Scheme::Slack => "slack",
            Scheme::StandardWebhooks => "standard-webhooks",
            Scheme::ApiKey => "api-key",
            Scheme::Basic => "basic",
            Scheme::None => "none",
        }
    }

    /// The settings of [`Verify`] besides `scheme` that this scheme reads;
    /// any other one set in config is an error. The config loader and the
    /// verifier both judge by this one table.
    pub fn settings(self) -> &'static [&'static str] {
        match self {
            Scheme::HmacSha256 => &[
                "header",
                "secret",
                "encoding",
                "prefix",
                "timestamp_header",
                "signed_content",
                "timestamp_unit",
                "tolerance",
            ],
            Scheme::Github | Scheme::Shopify | Scheme::ApiKey => &["header", "secret"],
            Scheme::Stripe | Scheme::Slack => &["header", "secret", "tolerance"],
            Scheme::StandardWebhooks => &["secret", "tolerance"],
            Scheme::Basic => &["secret", "username"],
            Scheme::None => &[],
        }
    }
}

/// How a signed timestamp header is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TimestampUnit {
    /// Unix seconds, or an ISO-8601 (RFC 3339) date-time.
    #[default]
    Seconds,
    /// Unix milliseconds (HubSpot's `X-HubSpot-Request-Timestamp`).
    Milliseconds,
}

/// Signature encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Lower- or upper-case hexadecimal.
    Hex,
    /// Standard base64.
    Base64,
}

/// One secret reference or a list of them (rotation: any one valid secret passes).
///
/// `Deserialize` is written by hand so a wrong value says what was expected,
/// instead of serde's "data did not match any variant of untagged enum".
/// `Debug` shows secrets as `[redacted]`.
#[derive(Clone, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Secrets {
    /// A single secret reference.
    One(String),
    /// Several secret references.
    Many(Vec<String>),
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Secrets::One(_) => f.debug_tuple("One").field(&REDACTED).finish(),
            Secrets::Many(v) => f
                .debug_tuple("Many")
                .field(&vec![REDACTED; v.len()])
                .finish(),
        }
    }
}

impl<'de> Deserialize<'de> for Secrets {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Secrets;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a secret reference such as \"${env:NAME}\", or a list of them")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Secrets, E> {
                Ok(Secrets::One(s.to_owned()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Secrets, A::Error> {
                let mut all = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    all.push(s);
                }
                Ok(Secrets::Many(all))
            }
        }
        d.deserialize_any(V)
    }
}

impl Secrets {
    /// All secrets in order.
    pub fn all(&self) -> Vec<&str> {
        match self {
            Secrets::One(s) => vec![s.as_str()],
            Secrets::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// Verification settings of a source.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    /// The scheme.
    pub scheme: Scheme,
    /// Header carrying the signature or key (scheme default when omitted).
    #[serde(default)]
    pub header: Option<String>,
    /// Signing secret(s), as references.
    #[serde(default)]
    pub secret: Option<Secrets>,
    /// Signature encoding for `hmac-sha256` (default hex).
    #[serde(default)]
    pub encoding: Option<Encoding>,
    /// Signature prefix for `hmac-sha256`, e.g. `sha256=` (optional on input).
    #[serde(default)]
    pub prefix: Option<String>,
    /// Timestamp header for `hmac-sha256` with replay protection.
    #[serde(default)]
    pub timestamp_header: Option<String>,
    /// Signed content template for `hmac-sha256` with a timestamp, e.g. `{timestamp}.{body}`.
    #[serde(default)]
    pub signed_content: Option<String>,
    /// How `timestamp_header` is written for `hmac-sha256` (default seconds).
    #[serde(default)]
    pub timestamp_unit: Option<TimestampUnit>,
    /// Replay window (scheme default, 5m).
    #[serde(default)]
    pub tolerance: Option<Dur>,
    /// User name for `basic`.
    #[serde(default)]
    pub username: Option<String>,
}

impl Verify {
    /// The settings written in config that `scheme` does not read.
    pub fn settings_not_read(&self) -> Vec<&'static str> {
        let given = [
            ("header", self.header.is_some()),
            ("secret", self.secret.is_some()),
            ("encoding", self.encoding.is_some()),
            ("prefix", self.prefix.is_some()),
            ("timestamp_header", self.timestamp_header.is_some()),
            ("signed_content", self.signed_content.is_some()),
            ("timestamp_unit", self.timestamp_unit.is_some()),
            ("tolerance", self.tolerance.is_some()),
            ("username", self.username.is_some()),
        ];
        let read = self.scheme.settings();
        given
            .into_iter()
            .filter(|(f, set)| *set && !read.contains(f))
            .map(|(f, _)| f)
            .collect()
    }
}
