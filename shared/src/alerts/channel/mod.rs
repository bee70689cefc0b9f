//! Delivering one [`Notice`] on one configured [`Channel`]: Slack
//! ([`slack`]), a signed webhook ([`webhook`]) or e-mail by SMTP or SNS
//! ([`email`]). [`Senders`] holds what the channels share (one HTTP client,
//! an optional SNS client) and [`Senders::send`] makes one attempt; retrying
//! is the caller's (the alerts outbox), guided by [`SendError::retryable`]
//! and [`SendError::retry_after`].
//!
//! Error messages never contain a Slack webhook URL, a signing secret or an
//! SMTP URL (it may hold a password): each sender says what happened in its
//! own words, and [`SendError`] redacts the channel's secrets once more.

mod email;
mod slack;
mod text;
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::config::Channel;

use super::Notice;

pub use email::sns_subject;
pub use slack::slack_payload;
pub use text::{plain_text, utc};
pub use webhook::{WEBHOOK_TYPE, WEBHOOK_VERSION, webhook_payload};

/// How long one delivery attempt may take (connect, send, answer).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a delivery failed, and whether trying again later can help.
/// `Display` is the message: it names the channel and what went wrong, never
/// a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    /// Whether a later attempt may succeed (timeouts, 5xx, 429, throttling).
    pub retryable: bool,
    /// How long the receiver asked us to wait (a 429's `Retry-After`).
    pub retry_after: Option<Duration>,
    /// What happened, e.g. `channel ops (slack): Slack answered 400 invalid_payload`.
    pub message: String,
}

impl SendError {
    /// A failure a later attempt may fix.
    pub(crate) fn retry(message: impl Into<String>) -> Self {
        Self {
            retryable: true,
            retry_after: None,
            message: message.into(),
        }
    }

    /// A failure that will happen again (a bad payload, a missing channel, a bad secret).
    pub(crate) fn fatal(message: impl Into<String>) -> Self {
        Self {
            retryable: false,
            retry_after: None,
            message: message.into(),
        }
    }

    /// Prefixes the channel's name and kind, and blanks every secret of `channel`.
    fn about(mut self, name: &str, channel: &Channel) -> Self {
        self.message = format!("channel {name} ({}): {}", kind(channel), self.message);
        for secret in secrets(channel) {
            if secret.len() >= 4 && self.message.contains(secret) {
                self.message = self.message.replace(secret, "[redacted]");
            }
        }
        self
    }
}

/// The channel's type as written in config (`slack`, `webhook`, `email`).
pub fn kind(channel: &Channel) -> &'static str {
    match channel {
        Channel::Slack { .. } => "slack",
        Channel::Webhook { .. } => "webhook",
        Channel::Email { .. } => "email",
    }
}

/// The values of `channel` that must never be shown.
fn secrets(channel: &Channel) -> Vec<&str> {
    match channel {
        Channel::Slack { webhook_url } => vec![webhook_url.as_str()],
        Channel::Webhook { secret, .. } => vec![secret.as_str()],
        Channel::Email { smtp, .. } => smtp.iter().map(String::as_str).collect(),
    }
}

/// What the channels share: an HTTP client (10 s timeout, redirects not
/// followed: a redirect would carry a signed payload somewhere unreviewed),
/// an optional SNS client (on AWS), and the clock that dates signatures.
/// Cheap to clone.
#[derive(Clone, Debug)]
pub struct Senders {
    http: reqwest::Client,
    sns: Option<aws_sdk_sns::Client>,
    clock: Arc<dyn Clock>,
}

impl Senders {
    /// Senders on the system clock, without SNS (`ferry dev`).
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// Senders on `clock`, without SNS.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(SEND_TIMEOUT)
            .connect_timeout(SEND_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("ferry-alerts/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client builds with rustls");
        Self {
            http,
            sns: None,
            clock,
        }
    }

    /// These senders, publishing e-mail channels that have an `sns_topic` to
    /// SNS with `client` (on AWS).
    pub fn with_sns(mut self, client: aws_sdk_sns::Client) -> Self {
        self.sns = Some(client);
        self
    }

    /// These senders with an SNS client from the AWS environment (region,
    /// credentials and endpoint as the SDK finds them), for the CLI.
    pub async fn with_sns_from_env(self) -> Self {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        self.with_sns(aws_sdk_sns::Client::new(&config))
    }

    /// Whether e-mail channels with an `sns_topic` go to SNS.
    pub fn has_sns(&self) -> bool {
        self.sns.is_some()
    }

    /// Makes one attempt to deliver `notice` on `channel` (named `name` in
    /// config). `Ok` means the receiver accepted it (Slack's `200 ok`, a
    /// webhook's 2xx, the SMTP server's `250`, SNS's message id).
    pub async fn send(
        &self,
        name: &str,
        channel: &Channel,
        notice: &Notice,
    ) -> Result<(), SendError> {
        let now = self.clock.now_ms();
        let result = match channel {
            Channel::Slack { webhook_url } => {
                slack::send(&self.http, webhook_url, notice, now).await
            }
            Channel::Webhook { url, secret } => {
                webhook::send(&self.http, url, secret, notice, now).await
            }
            Channel::Email {
                to,
                from,
                smtp,
                sns_topic,
            } => {
                let route = match (&self.sns, sns_topic, smtp) {
                    (Some(client), Some(topic), _) => email::Route::Sns { client, topic },
                    (_, _, Some(url)) => email::Route::Smtp {
                        url,
                        to,
                        from: from.as_deref(),
                    },
                    (None, Some(_), None) => {
                        return Err(SendError::fatal(
                            "has only an sns_topic, and SNS is used on AWS only; add `smtp` to send from here",
                        )
                        .about(name, channel));
                    }
                    (_, None, None) => {
                        return Err(SendError::fatal("has neither `smtp` nor `sns_topic`")
                            .about(name, channel));
                    }
                };
                email::send(route, notice).await
            }
        };
        result.map_err(|e| e.about(name, channel))
    }
}

impl Default for Senders {
    fn default() -> Self {
        Self::new()
    }
}

/// Classifies an HTTP answer other than success: 408, 429 and 5xx retry
/// (429 with its `Retry-After`), any other status does not. `what` names the
/// receiver (`Slack`, `the webhook at https://…`), `body` is the start of
/// the answer, quoted when not empty.
pub(crate) fn http_failure(
    what: &str,
    status: u16,
    retry_after: Option<&str>,
    body: &str,
    now_ms: i64,
) -> SendError {
    let shown = body.trim();
    let shown: String = shown.chars().take(200).collect();
    let message = if shown.is_empty() {
        format!("{what} answered {status}")
    } else {
        format!("{what} answered {status} {shown}")
    };
    match status {
        408 | 429 | 500..=599 => SendError {
            retryable: true,
            retry_after: retry_after.and_then(|v| crate::retry::parse_retry_after(v, now_ms)),
            message,
        },
        _ => SendError::fatal(message),
    }
}

/// Classifies a request that got no answer: timeouts and connection failures
/// retry; anything else (a body that cannot be built) does not. The message
/// never includes the URL.
pub(crate) fn transport_failure(what: &str, e: &reqwest::Error) -> SendError {
    if e.is_timeout() {
        SendError::retry(format!(
            "{what} did not answer within {}s",
            SEND_TIMEOUT.as_secs()
        ))
    } else if e.is_connect() {
        SendError::retry(format!("could not connect to {what}"))
    } else if e.is_request() || e.is_body() {
        SendError::retry(format!("the request to {what} failed before an answer"))
    } else {
        SendError::fatal(format!("could not send to {what}"))
    }
}
