//! Slack incoming webhooks: POST a JSON message (`text` as the notification
//! fallback, `blocks` for the channel) to the webhook URL, which is the
//! credential and is never shown.
//!
//! What Slack answers (<https://api.slack.com/messaging/webhooks>, "Handling
//! errors", and <https://api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks>):
//! `200 ok`; `400 invalid_payload` / `user_not_found`; `403 action_prohibited`;
//! `404 channel_not_found` / `no_service` (the webhook was removed); `410
//! channel_is_archived`; `500 rollup_error`; and `429` with `Retry-After` when
//! posting faster than about one message per second. 5xx, 429 and timeouts
//! retry; those 4xx will fail the same way again and do not.

use serde_json::{Value, json};

use super::text::{headline, occurrences, state, subject, utc};
use super::{SendError, http_failure, transport_failure};
use crate::alerts::{Notice, State};

/// Slack truncates a section's text at 3,000 characters.
const SECTION_MAX: usize = 3000;

/// The Slack message for `notice`: `text` (the fallback shown in
/// notifications) and `blocks` (a header, the state, subject, count and
/// times as fields, the detail, the facts, and the commands in a code block).
pub fn slack_payload(n: &Notice) -> Value {
    let icon = match n.state {
        State::Firing => ":rotating_light:",
        State::Resolved => ":white_check_mark:",
    };
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": cut(&headline(n), 150), "emoji": true}}),
        json!({"type": "section", "fields": [
            {"type": "mrkdwn", "text": format!("*State*\n{icon} {}", state(n.state))},
            {"type": "mrkdwn", "text": format!("*Subject*\n{}", escape(&subject(n)))},
            {"type": "mrkdwn", "text": format!("*Condition*\n`{}`", n.condition.as_str())},
            {"type": "mrkdwn", "text": format!("*Count*\n{}", n.count)},
            {"type": "mrkdwn", "text": format!("*First*\n{}", utc(n.first_at))},
            {"type": "mrkdwn", "text": format!("*Last*\n{}", utc(n.last_at))},
        ]}),
    ];
    if !n.detail.trim().is_empty() {
        blocks.push(section(&escape(n.detail.trim_end())));
    }
    if !n.facts.is_empty() {
        let facts: Vec<String> = n
            .facts
            .iter()
            .map(|(k, v)| format!("*{}*: {}", escape(k), escape(v)))
            .collect();
        blocks.push(section(&facts.join("\n")));
    }
    if !n.commands.is_empty() {
        // Inside ``` Slack shows text as written (only &, <, > are escaped).
        let cmds = escape(&n.commands.join("\n"));
        blocks.push(section(&format!("```\n{cmds}\n```")));
    }
    blocks.push(json!({"type": "context", "elements": [
        {"type": "mrkdwn", "text": format!("ferry alert `{}`", escape(&n.id))}
    ]}));
    let fallback = format!(
        "{} ({}, {}, {})",
        headline(n),
        subject(n),
        n.condition.as_str(),
        occurrences(n)
    );
    json!({"text": fallback, "blocks": blocks})
}

fn section(text: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(text, SECTION_MAX)}})
}

/// At most `max` characters, with `…` when cut.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(max - 1).collect();
        s.push('…');
        s
    }
}

/// Slack's three control characters in mrkdwn text.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Posts `notice` to the incoming webhook at `url`.
/// `now_ms` dates a `Retry-After` given as an HTTP date.
pub(crate) async fn send(
    http: &reqwest::Client,
    url: &str,
    n: &Notice,
    now_ms: i64,
) -> Result<(), SendError> {
    let answer = http
        .post(url)
        .json(&slack_payload(n))
        .send()
        .await
        .map_err(|e| transport_failure("Slack", &e))?;
    let status = answer.status().as_u16();
    let retry_after = answer
        .headers()
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = answer.text().await.unwrap_or_default();
    if status == 200 {
        return Ok(());
    }
    Err(http_failure(
        "Slack",
        status,
        retry_after.as_deref(),
        &body,
        now_ms,
    ))
}
