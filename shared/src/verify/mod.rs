//! Webhook verification and signing, for every scheme a source can use.
//!
//! A [`Verifier`] is built once per source from its `verify:` settings
//! ([`Verifier::from_config`], which reports every config problem at once).
//! [`Verifier::verify`] turns raw request parts into a [`Verified`] request —
//! the only way to obtain one — so unverified bytes cannot reach the domain.
//! [`Verifier::sign`] produces exactly the headers the provider would send
//! (for `ferry send` and tests).
//!
//! Everything is pure: no I/O and no system clock (`now_ms` is an argument).
//! Signatures are checked over the raw body bytes with `hmac`'s constant-time
//! `verify_slice`; plain credentials with `subtle`. Any one of several
//! configured secrets passes (rotation). Errors ([`VerifyError`]) carry a
//! stable code and a sentence that never contains a secret or a signature.
//!
//! The user-facing description of every scheme is `docs/webhooks.md`.

mod build;
mod common;
mod credentials;
mod error;
mod event_id;
mod header_hmac;
mod standard;
mod stripe;
mod window;

use std::fmt;

use http::HeaderMap;

pub use error::VerifyError;
pub use event_id::{default_event_id, slack_event_id, slack_url_verification};

use crate::config::{Scheme, Verify};
use build::Kind;

/// One scheme's checking and signing. Implementations hold their secrets.
pub(crate) trait SchemeVerifier: fmt::Debug + Send + Sync {
    /// Checks a request; on success says what was learnt while checking.
    fn check(&self, headers: &HeaderMap, body: &[u8], now_ms: i64) -> Result<Checked, VerifyError>;
    /// The headers the provider would send for `body` at `now_ms`.
    fn sign(&self, body: &[u8], now_ms: i64, event_id: Option<&str>) -> Vec<(String, String)>;
    /// Lower-case names of the headers holding signatures or credentials.
    fn secret_headers(&self) -> Vec<&str>;
}

/// Signs an outgoing message with the Standard Webhooks scheme (the one
/// [`Scheme::StandardWebhooks`] verifies): the `(header, value)` pairs
/// `webhook-id` (= `id`), `webhook-timestamp` (from `now_ms`) and
/// `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, keyed
/// by the base64 after `whsec_` in `secret`. A verifier built from the same
/// secret accepts them. The error names what is wrong with the secret (e.g.
/// "must be `whsec_` followed by base64"), never the secret.
pub fn sign_standard_webhooks(
    secret: &str,
    id: &str,
    body: &[u8],
    now_ms: i64,
) -> Result<Vec<(String, String)>, &'static str> {
    standard::sign_outgoing(secret, id, body, now_ms)
}

/// Whether `secret` is a usable Standard Webhooks secret (`whsec_` + base64);
/// the error says why not, without the secret.
pub fn check_standard_webhooks_secret(secret: &str) -> Result<(), &'static str> {
    if !secret.starts_with("whsec_") {
        return Err("must be `whsec_` followed by base64");
    }
    standard::key_from_secret(secret).map(|_| ())
}

/// What a scheme learnt while checking a request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Checked {
    /// The signed timestamp (Unix seconds), for schemes with one.
    pub(crate) timestamp: Option<i64>,
}

/// Every problem in a source's `verify:` settings, each a sentence starting
/// with the field it is about, e.g. `secret: required by scheme github`.
/// `Display` joins them with `; `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.join("; "))]
pub struct ConfigErrors(pub Vec<String>);

/// Verifies (and signs) requests for one source. Cheap to clone; its `Debug`
/// output never shows a secret.
#[derive(Debug, Clone)]
pub struct Verifier {
    scheme: Scheme,
    kind: Kind,
}

impl Verifier {
    /// Builds the verifier for a source's `verify:` settings, whose secrets are
    /// already resolved. On failure, returns every problem found.
    pub fn from_config(verify: &Verify) -> Result<Self, ConfigErrors> {
        match build::build(verify) {
            Ok(kind) => Ok(Self {
                scheme: verify.scheme,
                kind,
            }),
            Err(problems) => Err(ConfigErrors(problems)),
        }
    }

    /// The scheme this verifier checks.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// Checks a request's headers and raw body at `now_ms` (milliseconds since
    /// the Unix epoch). On success the request is [`Verified`], with the
    /// scheme's default event id.
    pub fn verify<'a>(
        &self,
        headers: &'a HeaderMap,
        body: &'a [u8],
        now_ms: i64,
    ) -> Result<Verified<'a>, VerifyError> {
        let checked = self.inner().check(headers, body, now_ms)?;
        Ok(Verified {
            scheme: self.scheme,
            headers,
            body,
            event_id: default_event_id(self.scheme, headers, body),
            timestamp: checked.timestamp,
        })
    }

    /// The `(header, value)` pairs the provider would send with `body` at
    /// `now_ms`, signed with the first secret. `event_id` goes where the
    /// scheme carries one in a header (`X-GitHub-Delivery`,
    /// `X-Shopify-Webhook-Id`, `webhook-id`); Stripe and Slack carry theirs in
    /// the body. `standard-webhooks` derives an id when none is given.
    /// `verify` accepts the result at the same `now_ms`, for every scheme.
    pub fn sign(&self, body: &[u8], now_ms: i64, event_id: Option<&str>) -> Vec<(String, String)> {
        self.inner().sign(body, now_ms, event_id)
    }

    /// Lower-case names of the headers that carry this source's signature or
    /// credentials: keep them out of stored events and templates.
    pub fn secret_headers(&self) -> Vec<&str> {
        self.inner().secret_headers()
    }

    fn inner(&self) -> &dyn SchemeVerifier {
        match &self.kind {
            Kind::Header(v) => v,
            Kind::Stripe(v) => v,
            Kind::Standard(v) => v,
            Kind::ApiKey(v) => v,
            Kind::Basic(v) => v,
            Kind::None(v) => v,
        }
    }
}

/// A request that passed verification. Only [`Verifier::verify`] makes one,
/// so code taking a `Verified` cannot be handed unverified bytes.
#[derive(Clone)]
pub struct Verified<'a> {
    scheme: Scheme,
    headers: &'a HeaderMap,
    body: &'a [u8],
    event_id: Option<String>,
    timestamp: Option<i64>,
}

impl<'a> Verified<'a> {
    /// The scheme that verified it.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The raw body, exactly as verified.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// The request headers.
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// The scheme's default event id ([`default_event_id`]), if it has one.
    pub fn event_id(&self) -> Option<&str> {
        self.event_id.as_deref()
    }

    /// The signed timestamp in Unix seconds, for schemes with one.
    pub fn timestamp(&self) -> Option<i64> {
        self.timestamp
    }

    /// For a verified Slack request that is the `url_verification` handshake,
    /// the challenge to echo back; `None` otherwise.
    pub fn slack_challenge(&self) -> Option<String> {
        match self.scheme {
            Scheme::Slack => slack_url_verification(self.body),
            _ => None,
        }
    }
}

/// Shows the scheme, event id, timestamp and body length — never the headers
/// (they hold credentials for `api-key` and `basic`) nor the body.
impl fmt::Debug for Verified<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verified")
            .field("scheme", &self.scheme)
            .field("event_id", &self.event_id)
            .field("timestamp", &self.timestamp)
            .field("body_len", &self.body.len())
            .finish()
    }
}
