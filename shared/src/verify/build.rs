//! From a source's `verify:` settings to a verifier, checking everything at
//! once: every problem is reported, each starting with the field it concerns
//! (`secret[1]: is empty`), so the config loader can prefix the path.

use std::time::Duration;

use super::common::{Credentials, Header, Keys};
use super::credentials::{ApiKey, Basic, NoVerification};
use super::header_hmac::{DEFAULT_TOLERANCE, HeaderHmac, Stamped, Template};
use super::standard::{self, StandardWebhooks};
use super::stripe::Stripe;
use crate::config::{Encoding, Scheme, Secrets, Verify};

/// A scheme's verifier, chosen once from config.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Header(HeaderHmac),
    Stripe(Stripe),
    Standard(StandardWebhooks),
    ApiKey(ApiKey),
    Basic(Basic),
    None(NoVerification),
}

pub(crate) fn build(v: &Verify) -> Result<Kind, Vec<String>> {
    let mut errors = Vec::new();
    let name = v.scheme.as_str();
    for field in v.settings_not_read() {
        errors.push(format!("{field}: does not apply to scheme {name}"));
    }

    let header = v
        .header
        .as_deref()
        .and_then(|h| collect(&mut errors, Header::parse("header", h)));
    let tolerance = tolerance(v, &mut errors);
    let secrets = secrets(v, &mut errors);
    let keys = || Keys::new(secrets.iter().map(|s| s.as_bytes().to_vec()).collect());

    let kind = match v.scheme {
        Scheme::None => Some(Kind::None(NoVerification)),
        Scheme::HmacSha256 => {
            if v.header.is_none() {
                errors.push(format!("header: required by scheme {name}"));
            }
            if v.prefix.as_deref() == Some("") {
                errors.push("prefix: is empty; leave it out instead".into());
            }
            let stamped = stamped(v, tolerance, &mut errors);
            let encoding = v.encoding.unwrap_or(Encoding::Hex);
            match (header, keys()) {
                (Some(h), Some(k)) => Some(Kind::Header(HeaderHmac::generic(
                    h,
                    encoding,
                    v.prefix.clone(),
                    stamped,
                    k,
                ))),
                _ => None,
            }
        }
        Scheme::Github => keys().map(|k| Kind::Header(HeaderHmac::github(header, k))),
        Scheme::Shopify => keys().map(|k| Kind::Header(HeaderHmac::shopify(header, k))),
        Scheme::Slack => keys().map(|k| Kind::Header(HeaderHmac::slack(header, tolerance, k))),
        Scheme::Stripe => keys().map(|k| Kind::Stripe(Stripe::new(header, tolerance, k))),
        Scheme::StandardWebhooks => {
            let decoded: Vec<Vec<u8>> = secrets
                .iter()
                .enumerate()
                .filter_map(|(i, s)| {
                    let key = standard::key_from_secret(s);
                    collect(
                        &mut errors,
                        key.map_err(|e| format!("{}: {e}", secret_field(v, i))),
                    )
                })
                .collect();
            Keys::new(decoded).map(|k| Kind::Standard(StandardWebhooks::new(tolerance, k)))
        }
        Scheme::ApiKey => {
            let creds = Credentials::new(secrets.iter().map(|s| s.as_bytes().to_vec()).collect());
            creds.map(|c| Kind::ApiKey(ApiKey::new(header, c)))
        }
        Scheme::Basic => {
            let username = v.username.as_deref().unwrap_or_default();
            if v.username.is_none() {
                errors.push(format!("username: required by scheme {name}"));
            } else if username.is_empty() || username.contains(':') {
                errors.push("username: must be non-empty and must not contain `:`".into());
            }
            let pairs = secrets
                .iter()
                .map(|s| format!("{username}:{s}").into_bytes())
                .collect();
            Credentials::new(pairs).map(|c| Kind::Basic(Basic::new(c)))
        }
    };
    match kind {
        Some(kind) if errors.is_empty() => Ok(kind),
        _ => Err(errors),
    }
}

fn collect<T>(errors: &mut Vec<String>, r: Result<T, String>) -> Option<T> {
    r.map_err(|e| errors.push(e)).ok()
}

fn secret_field(v: &Verify, i: usize) -> String {
    match v.secret {
        Some(Secrets::Many(_)) => format!("secret[{i}]"),
        _ => "secret".into(),
    }
}

/// The non-empty secrets, in order; problems go to `errors`.
fn secrets<'v>(v: &'v Verify, errors: &mut Vec<String>) -> Vec<&'v str> {
    let Some(secret) = &v.secret else {
        if v.scheme != Scheme::None {
            errors.push(format!("secret: required by scheme {}", v.scheme.as_str()));
        }
        return Vec::new();
    };
    let all = secret.all();
    if all.is_empty() {
        errors.push("secret: the list is empty; give at least one secret".into());
    }
    for (i, s) in all.iter().enumerate() {
        if s.is_empty() {
            errors.push(format!(
                "{}: is empty (is its environment variable set?)",
                secret_field(v, i)
            ));
        }
    }
    all.into_iter().filter(|s| !s.is_empty()).collect()
}

fn tolerance(v: &Verify, errors: &mut Vec<String>) -> Option<Duration> {
    let t = v.tolerance?.get();
    if t.is_zero() {
        errors.push("tolerance: must be greater than zero".into());
    }
    Some(t)
}

/// `hmac-sha256` replay protection: needs `timestamp_header`; the template
/// defaults to `{timestamp}.{body}`.
fn stamped(v: &Verify, tolerance: Option<Duration>, errors: &mut Vec<String>) -> Option<Stamped> {
    let Some(ts_header) = &v.timestamp_header else {
        for (field, set) in [
            ("signed_content", v.signed_content.is_some()),
            ("timestamp_unit", v.timestamp_unit.is_some()),
            ("tolerance", v.tolerance.is_some()),
        ] {
            if set {
                errors.push(format!("{field}: needs timestamp_header"));
            }
        }
        return None;
    };
    let header = collect(errors, Header::parse("timestamp_header", ts_header));
    let text = v.signed_content.as_deref().unwrap_or("{timestamp}.{body}");
    let template = collect(errors, Template::parse("signed_content", text));
    Some(Stamped {
        header: header?,
        template: template?,
        tolerance: tolerance.unwrap_or(DEFAULT_TOLERANCE),
        unit: v.timestamp_unit.unwrap_or_default(),
    })
}
