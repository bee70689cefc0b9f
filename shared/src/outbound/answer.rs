//! What a call brings back: the response, or why there is none.

use std::collections::BTreeMap;
use std::time::Duration;

use super::MAX_RESPONSE_BYTES;
use crate::destination::RedirectRefused;

/// What came back.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Headers (lower-case names; the last value wins).
    pub headers: BTreeMap<String, String>,
    /// JSON when the body parses as JSON, else the text.
    pub body: serde_json::Value,
    /// Round-trip time.
    pub elapsed: Duration,
}

impl Response {
    /// The step output templates see as `steps.<id>.response`.
    pub fn to_output(&self) -> serde_json::Value {
        serde_json::json!({ "status": self.status, "headers": self.headers, "body": self.body })
    }
}

/// Why no response arrived.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// No answer within the timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// Could not connect, or the connection dropped.
    #[error("connection failed: {0}")]
    Connect(String),
    /// A redirect ferry does not follow (another origin, or too many).
    #[error("{0}")]
    Redirect(RedirectRefused),
    /// The request could not be built (a header the connection's auth adds is invalid).
    #[error("the request could not be built: {0}")]
    Invalid(String),
}

impl CallError {
    /// Whether trying again can help: not for a refused redirect or a request
    /// that cannot be built.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Timeout(_) | Self::Connect(_))
    }

    /// The HTTP status that ended the call, for a refused redirect.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Redirect(r) => Some(r.status()),
            _ => None,
        }
    }
}

/// The useful part of a transport error ("connection refused", "reset by peer").
pub fn describe_error(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg = s.to_string();
        src = s.source();
    }
    msg
}

pub(super) fn classify(e: reqwest::Error, timeout: Duration) -> CallError {
    if let Some(r) = RedirectRefused::find(&e) {
        CallError::Redirect(r)
    } else if e.is_timeout() {
        CallError::Timeout(timeout)
    } else if e.is_builder() {
        CallError::Invalid(describe_error(&e))
    } else {
        CallError::Connect(describe_error(&e))
    }
}

pub(super) fn parse_body(bytes: &[u8]) -> serde_json::Value {
    if bytes.is_empty() {
        return serde_json::Value::Null;
    }
    if let Ok(v) = serde_json::from_slice(bytes) {
        return v;
    }
    let cut = &bytes[..bytes.len().min(MAX_RESPONSE_BYTES)];
    serde_json::Value::String(String::from_utf8_lossy(cut).into_owned())
}

/// A short, single-line excerpt of a response body for error messages.
pub fn excerpt(body: &serde_json::Value, max: usize) -> String {
    let s = match body {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    let s = s.replace(['\n', '\r'], " ");
    if s.chars().count() <= max {
        s
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push('…');
        out
    }
}
