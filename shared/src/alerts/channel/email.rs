//! E-mail: by SMTP (`ferry dev`; `smtp://` plaintext, `smtp://…?tls=required`
//! STARTTLS, `smtps://` TLS, all through `lettre` on rustls) or, on AWS, by
//! publishing to an SNS topic (which fans out to e-mail, SMS or Chatbot). The
//! subject is the notice's headline; the body is [`plain_text`], everything
//! the Slack message says.
//!
//! The SMTP URL may hold a password: it is never part of an error message.

use aws_sdk_sns::error::{ProvideErrorMetadata, SdkError};
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::text::{headline, plain_text};
use super::{SEND_TIMEOUT, SendError};
use crate::alerts::Notice;

/// The sender address when a channel has no `from`.
pub const DEFAULT_FROM: &str = "ferry@localhost";
/// SNS's limit on a subject's length.
const SNS_SUBJECT_MAX: usize = 100;

/// How one e-mail channel sends.
pub(crate) enum Route<'a> {
    /// SMTP to the server at `url`.
    Smtp {
        url: &'a str,
        to: &'a [String],
        from: Option<&'a str>,
    },
    /// SNS Publish to `topic`.
    Sns {
        client: &'a aws_sdk_sns::Client,
        topic: &'a str,
    },
}

/// Sends `notice` the way `route` says.
pub(crate) async fn send(route: Route<'_>, n: &Notice) -> Result<(), SendError> {
    match route {
        Route::Smtp { url, to, from } => smtp(url, to, from, n).await,
        Route::Sns { client, topic } => sns(client, topic, n).await,
    }
}

/// `title` as an SNS subject: printable ASCII only (line breaks and other
/// control characters become spaces, other characters `?`), runs of spaces
/// collapsed, at most 100 characters (cut with `...`), never empty.
pub fn sns_subject(title: &str) -> String {
    let mapped: String = title
        .chars()
        .map(|c| match c {
            ' '..='~' => c,
            c if c.is_whitespace() || c.is_control() => ' ',
            _ => '?',
        })
        .collect();
    let collapsed = mapped
        .split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let subject = if collapsed.len() > SNS_SUBJECT_MAX {
        format!("{}...", collapsed[..SNS_SUBJECT_MAX - 3].trim_end())
    } else {
        collapsed
    };
    if subject.is_empty() {
        "ferry alert".into()
    } else {
        subject
    }
}

async fn smtp(url: &str, to: &[String], from: Option<&str>, n: &Notice) -> Result<(), SendError> {
    if to.is_empty() {
        return Err(SendError::fatal("to: no recipients"));
    }
    let from = from.unwrap_or(DEFAULT_FROM);
    let from: Mailbox = from
        .parse()
        .map_err(|e| SendError::fatal(format!("from: {from:?} is not an e-mail address ({e})")))?;
    let mut message = Message::builder().from(from);
    for address in to {
        let mailbox: Mailbox = address.parse().map_err(|e| {
            SendError::fatal(format!("to: {address:?} is not an e-mail address ({e})"))
        })?;
        message = message.to(mailbox);
    }
    let message = message
        .subject(headline(n))
        .header(ContentType::TEXT_PLAIN)
        .body(plain_text(n))
        .map_err(|e| SendError::fatal(format!("the message cannot be built: {e}")))?;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .map_err(|_| {
            SendError::fatal(
                "smtp: not an smtp:// or smtps:// URL (smtp://[user:password@]host[:port][?tls=required])",
            )
        })?
        .timeout(Some(SEND_TIMEOUT))
        .build();
    match transport.send(message).await {
        Ok(_) => Ok(()),
        Err(e) => Err(smtp_failure(&e, url)),
    }
}

/// Permanent SMTP replies (5xx) and client-side problems do not retry;
/// transient replies (4xx), timeouts, TLS and connection failures do.
fn smtp_failure(e: &lettre::transport::smtp::Error, url: &str) -> SendError {
    let mut text = e.to_string();
    // lettre's messages quote the server, not the URL; make sure of it.
    if let Ok(u) = reqwest::Url::parse(url)
        && let Some(p) = u.password().filter(|p| p.len() >= 2)
    {
        text = text.replace(p, "[redacted]");
    }
    let message = format!("the SMTP server: {text}");
    if e.is_permanent() || e.is_client() {
        SendError::fatal(message)
    } else {
        SendError::retry(message)
    }
}

async fn sns(client: &aws_sdk_sns::Client, topic: &str, n: &Notice) -> Result<(), SendError> {
    let sent = client
        .publish()
        .topic_arn(topic)
        .subject(sns_subject(&headline(n)))
        .message(plain_text(n))
        .send()
        .await;
    match sent {
        Ok(_) => Ok(()),
        Err(SdkError::TimeoutError(_)) => Err(SendError::retry(format!(
            "SNS Publish to {topic} timed out"
        ))),
        Err(SdkError::DispatchFailure(_)) | Err(SdkError::ResponseError(_)) => Err(
            SendError::retry(format!("SNS Publish to {topic}: no answer from SNS")),
        ),
        Err(SdkError::ServiceError(ctx)) => {
            let status = ctx.raw().status().as_u16();
            let err = ctx.err();
            let code = err.code().unwrap_or("error");
            let message = format!(
                "SNS Publish to {topic} failed ({status} {code}): {}",
                err.message().unwrap_or("no message")
            );
            let throttled = code.contains("Throttl") || code == "InternalError";
            if status >= 500 || status == 429 || throttled {
                Err(SendError::retry(message))
            } else {
                Err(SendError::fatal(message))
            }
        }
        Err(e) => Err(SendError::fatal(format!(
            "SNS Publish to {topic} could not be made: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sns_subjects_are_printable_ascii_and_short() {
        assert_eq!(
            sns_subject("[FIRING] new-lead: 3 failed"),
            "[FIRING] new-lead: 3 failed"
        );
        assert_eq!(sns_subject("a\nb\t\u{7}c  é"), "a b c ?");
        let long = sns_subject(&"x".repeat(300));
        assert_eq!(long.len(), 100);
        assert!(long.ends_with("..."));
        assert_eq!(sns_subject(" \n "), "ferry alert");
    }
}
