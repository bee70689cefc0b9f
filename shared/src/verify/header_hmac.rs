//! One HMAC-SHA256 signature in one header, over the raw body or over a
//! template of timestamp and body. `hmac-sha256` is this in full generality;
//! `github`, `shopify` and `slack` are presets of it.

use std::time::Duration;

use base64::Engine as _;
use http::HeaderMap;

use super::common::{BASE64, Header, Keys, decode_base64, decode_hex, strip_prefix_ci};
use super::window::unix_secs;
use super::{Checked, SchemeVerifier, VerifyError};
use crate::config::{Encoding, TimestampUnit};

/// Default tolerance of every scheme with a timestamp.
pub(crate) const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// A verifier for a signature carried alone in one header.
#[derive(Debug, Clone)]
pub(crate) struct HeaderHmac {
    sig: Header,
    encoding: Encoding,
    prefix: Prefix,
    stamped: Option<Stamped>,
    /// Header `sign` puts the event id in (GitHub, Shopify); not signed by the provider.
    event_id_header: Option<Header>,
    keys: Keys,
}

/// Which prefixes the signature value may start with.
#[derive(Debug, Clone)]
struct Prefix {
    /// Stripped when present, tried in order.
    accept: Vec<String>,
    /// Whether one of `accept` must be present.
    required: bool,
    /// Written before the signature by `sign`.
    emit: String,
}

/// Replay protection: a timestamp header and what is signed.
#[derive(Debug, Clone)]
pub(crate) struct Stamped {
    pub(crate) header: Header,
    pub(crate) template: Template,
    pub(crate) tolerance: Duration,
    /// How the timestamp header is written.
    pub(crate) unit: TimestampUnit,
}

impl HeaderHmac {
    /// `hmac-sha256`: the configured header, encoding and optional prefix.
    /// `sha256=` is stripped when present whatever the configured prefix.
    pub(crate) fn generic(
        sig: Header,
        encoding: Encoding,
        prefix: Option<String>,
        stamped: Option<Stamped>,
        keys: Keys,
    ) -> Self {
        let mut accept: Vec<String> = prefix.iter().cloned().collect();
        accept.push("sha256=".into());
        let prefix = Prefix {
            accept,
            required: false,
            emit: prefix.unwrap_or_default(),
        };
        Self {
            sig,
            encoding,
            prefix,
            stamped,
            event_id_header: None,
            keys,
        }
    }

    /// GitHub: `X-Hub-Signature-256: sha256=<hex>` over the body.
    pub(crate) fn github(sig: Option<Header>, keys: Keys) -> Self {
        Self {
            sig: sig.unwrap_or_else(|| Header::known("X-Hub-Signature-256")),
            encoding: Encoding::Hex,
            prefix: Prefix {
                accept: vec!["sha256=".into()],
                required: true,
                emit: "sha256=".into(),
            },
            stamped: None,
            event_id_header: Some(Header::known(super::event_id::GITHUB_DELIVERY)),
            keys,
        }
    }

    /// Shopify: `X-Shopify-Hmac-Sha256: <base64>` over the body.
    pub(crate) fn shopify(sig: Option<Header>, keys: Keys) -> Self {
        Self {
            sig: sig.unwrap_or_else(|| Header::known("X-Shopify-Hmac-Sha256")),
            encoding: Encoding::Base64,
            prefix: Prefix {
                accept: vec![],
                required: false,
                emit: String::new(),
            },
            stamped: None,
            event_id_header: Some(Header::known(super::event_id::SHOPIFY_WEBHOOK_ID)),
            keys,
        }
    }

    /// Slack: `X-Slack-Signature: v0=<hex>` over `v0:<X-Slack-Request-Timestamp>:<body>`.
    pub(crate) fn slack(sig: Option<Header>, tolerance: Option<Duration>, keys: Keys) -> Self {
        let template = Template::parse("signed_content", "v0:{timestamp}:{body}")
            .expect("Slack's template is valid");
        Self {
            sig: sig.unwrap_or_else(|| Header::known("X-Slack-Signature")),
            encoding: Encoding::Hex,
            prefix: Prefix {
                accept: vec!["v0=".into()],
                required: true,
                emit: "v0=".into(),
            },
            stamped: Some(Stamped {
                header: Header::known("X-Slack-Request-Timestamp"),
                template,
                tolerance: tolerance.unwrap_or(DEFAULT_TOLERANCE),
                unit: TimestampUnit::Seconds,
            }),
            event_id_header: None,
            keys,
        }
    }

    /// The tag the request carries, decoded.
    fn tag(&self, headers: &HeaderMap) -> Result<Vec<u8>, VerifyError> {
        let value = self.sig.signature(headers)?;
        let stripped = self
            .prefix
            .accept
            .iter()
            .find_map(|p| strip_prefix_ci(value, p));
        let tag = match stripped {
            Some(rest) => rest,
            None if self.prefix.required => {
                return Err(self.sig.malformed_signature("missing its required prefix"));
            }
            None => value,
        };
        let decoded = match self.encoding {
            Encoding::Hex => decode_hex(tag),
            Encoding::Base64 => decode_base64(tag),
        };
        decoded.map_err(|reason| self.sig.malformed_signature(reason))
    }
}

impl SchemeVerifier for HeaderHmac {
    fn check(&self, headers: &HeaderMap, body: &[u8], now_ms: i64) -> Result<Checked, VerifyError> {
        let tag = self.tag(headers)?;
        let Some(stamped) = &self.stamped else {
            return match self.keys.any_matches(&[body], &[tag]) {
                true => Ok(Checked { timestamp: None }),
                false => Err(self.sig.invalid_signature()),
            };
        };
        let stamp = stamped.header.timestamp_in(headers, stamped.unit)?;
        let parts = stamped.template.parts(stamp.text, body);
        if !self.keys.any_matches(&parts, &[tag]) {
            return Err(self.sig.invalid_signature());
        }
        stamp.check(now_ms, stamped.tolerance)?;
        Ok(Checked {
            timestamp: Some(stamp.secs),
        })
    }

    fn sign(&self, body: &[u8], now_ms: i64, event_id: Option<&str>) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mac = match &self.stamped {
            None => self.keys.sign(&[body]),
            Some(stamped) => {
                let ts = match stamped.unit {
                    TimestampUnit::Seconds => unix_secs(now_ms).to_string(),
                    TimestampUnit::Milliseconds => now_ms.to_string(),
                };
                let mac = self.keys.sign(&stamped.template.parts(&ts, body));
                out.push((stamped.header.as_str().to_string(), ts));
                mac
            }
        };
        let encoded = match self.encoding {
            Encoding::Hex => hex::encode(mac),
            Encoding::Base64 => BASE64.encode(mac),
        };
        out.push((
            self.sig.as_str().to_string(),
            format!("{}{encoded}", self.prefix.emit),
        ));
        if let (Some(h), Some(id)) = (&self.event_id_header, event_id) {
            out.push((h.as_str().to_string(), id.to_string()));
        }
        out
    }

    fn secret_headers(&self) -> Vec<&str> {
        vec![self.sig.lower()]
    }
}

/// What is signed when a timestamp is involved: literal text with exactly one
/// `{timestamp}` and one `{body}`, e.g. `{timestamp}.{body}`.
#[derive(Debug, Clone)]
pub(crate) struct Template(Vec<Segment>);

#[derive(Debug, Clone)]
enum Segment {
    Literal(Vec<u8>),
    Timestamp,
    Body,
}

impl Template {
    /// Parses a template; `field` names the config field in errors.
    pub(crate) fn parse(field: &str, text: &str) -> Result<Self, String> {
        let mut segments = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("{timestamp}") {
                segments.push(Segment::Timestamp);
                rest = after;
            } else if let Some(after) = rest.strip_prefix("{body}") {
                segments.push(Segment::Body);
                rest = after;
            } else if rest.starts_with(['{', '}']) {
                return Err(format!(
                    "{field}: only the placeholders {{timestamp}} and {{body}} are known (in {text:?})"
                ));
            } else {
                let end = rest.find(['{', '}']).unwrap_or(rest.len());
                segments.push(Segment::Literal(rest.as_bytes()[..end].to_vec()));
                rest = &rest[end..];
            }
        }
        let count = |f: fn(&Segment) -> bool| segments.iter().filter(|s| f(s)).count();
        let bodies = count(|s| matches!(s, Segment::Body));
        let stamps = count(|s| matches!(s, Segment::Timestamp));
        if bodies != 1 || stamps != 1 {
            return Err(format!(
                "{field}: must contain {{timestamp}} and {{body}} exactly once each (in {text:?})"
            ));
        }
        Ok(Self(segments))
    }

    /// The signed content as slices, in order (the body is not copied).
    pub(crate) fn parts<'a>(&'a self, timestamp: &'a str, body: &'a [u8]) -> Vec<&'a [u8]> {
        self.0
            .iter()
            .map(|s| match s {
                Segment::Literal(l) => l.as_slice(),
                Segment::Timestamp => timestamp.as_bytes(),
                Segment::Body => body,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(t: &Template) -> Vec<u8> {
        t.parts("123", b"BODY").concat()
    }

    #[test]
    fn templates_render_literals_and_placeholders() {
        let t = Template::parse("f", "{timestamp}.{body}").unwrap();
        assert_eq!(render(&t), b"123.BODY");
        let t = Template::parse("f", "v0:{timestamp}:{body}").unwrap();
        assert_eq!(render(&t), b"v0:123:BODY");
        let t = Template::parse("f", "{body}|{timestamp}|end").unwrap();
        assert_eq!(render(&t), b"BODY|123|end");
    }

    #[test]
    fn templates_need_both_placeholders_once_and_nothing_else() {
        for bad in [
            "{body}",
            "{timestamp}",
            "{timestamp}{body}{body}",
            "{id}.{timestamp}.{body}",
        ] {
            let err = Template::parse("signed_content", bad).unwrap_err();
            assert!(err.starts_with("signed_content: "), "{err}");
        }
        for bad in [
            "{timestamp}.{body",
            "{timestamp}}{body}",
            "é{timestamp{body}",
        ] {
            assert!(Template::parse("f", bad).is_err(), "{bad}");
        }
    }
}
