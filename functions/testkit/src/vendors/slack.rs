//! A local Slack: the Web API methods the `slack` preset and the recipes use,
//! and Slack's request signing for the webhooks it sends.
//!
//! Written from Slack's public docs (read 2026-11-30):
//! - Web API basics — every answer is JSON with `ok`; errors are `200` with
//!   `{"ok": false, "error": "…"}`: https://docs.slack.dev/apis/web-api/
//! - `chat.postMessage` (arguments `channel`, `text`/`blocks`; answer
//!   `channel`, `ts`, `message`; errors `channel_not_found`,
//!   `not_in_channel`, `is_archived`, `no_text`, `msg_too_long`):
//!   https://docs.slack.dev/reference/methods/chat.postMessage
//! - `auth.test`: https://docs.slack.dev/reference/methods/auth.test
//! - token errors (`not_authed`, `invalid_auth`, `account_inactive`,
//!   `token_revoked`), common to every method: same pages.
//! - Rate limits: `429 Too Many Requests` with `Retry-After` in seconds;
//!   `chat.postMessage` about 1 message per second per channel:
//!   https://docs.slack.dev/apis/web-api/rate-limits
//! - Signing: `X-Slack-Signature: v0=hex(HMAC-SHA256(secret,
//!   "v0:<ts>:<body>"))` with `X-Slack-Request-Timestamp`:
//!   https://docs.slack.dev/authentication/verifying-requests-from-slack
//!
//! It is built on [`Target`], so every request is recorded there
//! ([`Slack::target`]) and a test may still script raw answers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

use crate::target::{Answer, Seen, Target};

/// The bot token the fake accepts (`xoxb-…`, as Slack's bot tokens look).
pub const TOKEN: &str = "xoxb-ferry-test-token";

/// How the fake answers a rate-limited call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    /// `429` with `Retry-After` and `{"ok": false, "error": "ratelimited"}`
    /// (the documented shape).
    Status429,
    /// `200` with `Retry-After` and `{"ok": false, "error": "ratelimited"}`
    /// (the shape issue 14 reports from `chat.postMessage`).
    Ok200,
}

/// One message posted to a channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Channel id.
    pub channel: String,
    /// Its `ts`, Slack's message id.
    pub ts: String,
    /// Its `text` (empty when only `blocks` were sent).
    pub text: String,
    /// Every argument as sent.
    pub args: Value,
}

#[derive(Default)]
struct State {
    /// Channel id → (the bot is a member, archived).
    channels: BTreeMap<String, (bool, bool)>,
    /// What a call with the right token answers instead of working
    /// (`token_revoked`, `account_inactive`…), when set.
    token_error: Option<String>,
    /// The next calls answered as rate limited: (how many left, shape, Retry-After s).
    limited: Option<(usize, Limited, u64)>,
    messages: Vec<Message>,
}

/// The fake Slack. It stops with the test's runtime.
#[derive(Clone)]
pub struct Slack {
    /// The server underneath: every request is recorded there.
    pub target: Target,
    state: Arc<Mutex<State>>,
}

impl Slack {
    /// Start on a free port of 127.0.0.1, with channels `C0GENERAL` and
    /// `C0ALERTS` (the bot a member of both) and `C0PRIVATE` (not a member).
    pub async fn start() -> Slack {
        let target = Target::start().await;
        let state = Arc::new(Mutex::new(State::default()));
        let slack = Slack { target, state };
        slack.add_channel("C0GENERAL", true);
        slack.add_channel("C0ALERTS", true);
        slack.add_channel("C0PRIVATE", false);
        let st = slack.state.clone();
        slack
            .target
            .behave("/api/", move |seen| Some(web_api(&st, seen)));
        slack
    }

    /// The Web API's base URL, `http://127.0.0.1:<port>/api` (Slack's is
    /// `https://slack.com/api`).
    pub fn url(&self) -> String {
        format!("{}/api", self.target.url())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// A channel `id`; `member`: the bot was invited to it.
    pub fn add_channel(&self, id: &str, member: bool) {
        self.state().channels.insert(id.to_owned(), (member, false));
    }

    /// Archive channel `id` (posts answer `is_archived`).
    pub fn archive(&self, id: &str) {
        if let Some(c) = self.state().channels.get_mut(id) {
            c.1 = true;
        }
    }

    /// From now on the right token is refused with `error` (e.g.
    /// `token_revoked`, `account_inactive`); `None` accepts it again.
    pub fn token_error(&self, error: Option<&str>) {
        self.state().token_error = error.map(str::to_owned);
    }

    /// The next `n` calls (with the right token) are rate limited, answered
    /// in `shape` with `Retry-After: retry_after` seconds.
    pub fn limit_next(&self, n: usize, shape: Limited, retry_after: u64) {
        self.state().limited = Some((n, shape, retry_after));
    }

    /// Every message posted, in order.
    pub fn messages(&self) -> Vec<Message> {
        self.state().messages.clone()
    }

    /// The messages posted to channel `id`.
    pub fn messages_in(&self, id: &str) -> Vec<Message> {
        let all = self.messages();
        all.into_iter().filter(|m| m.channel == id).collect()
    }

    /// The calls of Web API method `method` (e.g. `chat.postMessage`).
    pub fn calls(&self, method: &str) -> Vec<Seen> {
        self.target.seen_at(&format!("/api/{method}"))
    }
}

/// The headers Slack sends with a request it signs: `X-Slack-Request-Timestamp`
/// and `X-Slack-Signature: v0=hex(HMAC-SHA256(secret, "v0:<ts>:<body>"))`.
/// Computed here, independently of ferry's verifier.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> Vec<(String, String)> {
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    let sig = hex::encode(mac.finalize().into_bytes());
    vec![
        ("x-slack-request-timestamp".into(), timestamp.to_string()),
        ("x-slack-signature".into(), format!("v0={sig}")),
    ]
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

fn error(code: &str) -> Answer {
    Answer::ok(json!({ "ok": false, "error": code }))
}

/// One Web API call: the token, then the rate limit, then the method.
fn web_api(state: &Mutex<State>, seen: &Seen) -> Answer {
    // Token: `Authorization: Bearer`, or a `token` argument (form bodies).
    let token = seen
        .header("authorization")
        .strip_prefix("Bearer ")
        .map(str::to_owned)
        .or_else(|| seen.form("token"));
    let mut st = lock(state);
    match token.as_deref() {
        None | Some("") => return error("not_authed"),
        Some(TOKEN) => {}
        Some(_) => return error("invalid_auth"),
    }
    if let Some(e) = &st.token_error {
        return error(e);
    }
    if let Some((left, shape, after)) = st.limited.as_mut() {
        let (shape, after) = (*shape, *after);
        *left -= 1;
        if *left == 0 {
            st.limited = None;
        }
        let status = match shape {
            Limited::Status429 => 429,
            Limited::Ok200 => 200,
        };
        return Answer::status(status, json!({ "ok": false, "error": "ratelimited" }))
            .header("retry-after", &after.to_string());
    }
    let args = arguments(seen);
    match seen.path.trim_start_matches("/api/") {
        "auth.test" => Answer::ok(json!({
            "ok": true, "url": "https://ferry-test.slack.com/", "team": "Ferry Test",
            "user": "ferry", "team_id": "T0FERRY", "user_id": "U0FERRY", "bot_id": "B0FERRY"
        })),
        "chat.postMessage" => post_message(&mut st, args),
        _ => error("unknown_method"),
    }
}

/// The call's arguments: a JSON body, or form fields.
fn arguments(seen: &Seen) -> Value {
    if seen.body.is_object() {
        return seen.body.clone();
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&seen.raw).unwrap_or_default();
    Value::Object(
        pairs
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect(),
    )
}

/// `chat.postMessage`: channel checks, then the text, then store it.
fn post_message(st: &mut State, args: Value) -> Answer {
    let channel = args["channel"].as_str().unwrap_or_default().to_owned();
    let Some(&(member, archived)) = st.channels.get(&channel) else {
        return error("channel_not_found");
    };
    if !member {
        return error("not_in_channel");
    }
    if archived {
        return error("is_archived");
    }
    let text = args["text"].as_str().unwrap_or_default().to_owned();
    if text.is_empty() && args.get("blocks").is_none() && args.get("attachments").is_none() {
        return error("no_text");
    }
    // Slack truncates over 4,000 characters and refuses over 40,000.
    if text.chars().count() > 40_000 {
        return error("msg_too_long");
    }
    let ts = format!("1700000000.{:06}", st.messages.len() + 1);
    st.messages.push(Message {
        channel: channel.clone(),
        ts: ts.clone(),
        text: text.clone(),
        args,
    });
    Answer::ok(json!({
        "ok": true,
        "channel": channel,
        "ts": ts,
        "message": { "type": "message", "bot_id": "B0FERRY", "text": text, "ts": ts }
    }))
}
