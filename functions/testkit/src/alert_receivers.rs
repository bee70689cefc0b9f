//! Local receivers for the alert channels, each on 127.0.0.1 and a free port,
//! each recording what it got:
//!
//! - [`SlackReceiver`]: a Slack incoming webhook as Slack documents it
//!   (`200 ok`; `400 invalid_payload` unless the request is JSON with a
//!   non-empty `text` or `blocks`), told to fail the next N requests with
//!   [`SlackReceiver::fail_next`];
//! - [`WebhookReceiver`]: checks every Standard Webhooks signature with
//!   ferry's own verifier and counts verified and unverified deliveries;
//! - [`SmtpSink`]: just enough SMTP for `lettre` (greeting, EHLO/HELO, MAIL,
//!   RCPT, DATA, RSET, NOOP, QUIT), recording each message.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ferry::clock::Clock;
use ferry::config::{Scheme, Secrets, Verify};
use ferry::verify::Verifier;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// A failure to answer with, for some number of requests.
#[derive(Debug, Clone)]
struct Failure {
    status: u16,
    body: String,
    retry_after: Option<String>,
}

async fn serve(router: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

fn answer(f: &Failure) -> Response {
    let status = StatusCode::from_u16(f.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = (status, f.body.clone()).into_response();
    if let Some(ra) = &f.retry_after {
        r.headers_mut()
            .insert("retry-after", ra.parse().expect("a header value"));
    }
    r
}

#[derive(Debug, Default)]
struct SlackState {
    received: Vec<Value>,
    rejected: u64,
    failures: VecDeque<Failure>,
}

/// A Slack incoming webhook on loopback.
#[derive(Debug, Clone)]
pub struct SlackReceiver {
    url: String,
    state: Arc<Mutex<SlackState>>,
}

impl SlackReceiver {
    /// Starts one; its webhook URL is [`SlackReceiver::url`].
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(SlackState::default()));
        let router = Router::new()
            .route(
                "/services/T000/B000/secret-token",
                axum::routing::post(slack),
            )
            .with_state(state.clone());
        let base = serve(router).await;
        Self {
            url: format!("{base}/services/T000/B000/secret-token"),
            state,
        }
    }

    /// The webhook URL (its path is the credential, as at Slack).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Answers the next `n` requests with `status` (Slack's body for it:
    /// `rollup_error` for 5xx, `rate_limited` with `Retry-After: 1` for 429,
    /// else `invalid_payload`), without recording them.
    pub fn fail_next(&self, status: u16, n: usize) {
        let (body, retry_after) = match status {
            429 => ("rate_limited", Some("1".to_owned())),
            500..=599 => ("rollup_error", None),
            403 => ("action_prohibited", None),
            404 => ("no_service", None),
            410 => ("channel_is_archived", None),
            _ => ("invalid_payload", None),
        };
        let mut s = self.state.lock().unwrap();
        for _ in 0..n {
            s.failures.push_back(Failure {
                status,
                body: body.into(),
                retry_after: retry_after.clone(),
            });
        }
    }

    /// The messages accepted, in order.
    pub fn received(&self) -> Vec<Value> {
        self.state.lock().unwrap().received.clone()
    }

    /// How many requests were answered `invalid_payload` because of what they held.
    pub fn rejected(&self) -> u64 {
        self.state.lock().unwrap().rejected
    }
}

async fn slack(
    State(state): State<Arc<Mutex<SlackState>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut s = state.lock().unwrap();
    if let Some(f) = s.failures.pop_front() {
        return answer(&f);
    }
    let json = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let has_content = parsed.as_ref().is_some_and(|v| {
        v["text"].as_str().is_some_and(|t| !t.is_empty())
            || v["blocks"].as_array().is_some_and(|b| !b.is_empty())
    });
    match parsed {
        Some(v) if json && has_content => {
            s.received.push(v);
            (StatusCode::OK, "ok").into_response()
        }
        _ => {
            s.rejected += 1;
            (StatusCode::BAD_REQUEST, "invalid_payload").into_response()
        }
    }
}

#[derive(Debug)]
struct WebhookState {
    verifier: Verifier,
    clock: Arc<dyn Clock>,
    verified: Vec<(HeaderMap, Value)>,
    unverified: u64,
    failures: VecDeque<Failure>,
}

/// A receiver of signed webhooks that verifies each with ferry's verifier.
#[derive(Debug, Clone)]
pub struct WebhookReceiver {
    url: String,
    state: Arc<Mutex<WebhookState>>,
}

impl WebhookReceiver {
    /// Starts one that verifies with `secret` (`whsec_…`) at `clock`'s time:
    /// `204` when the signature verifies, `401` when not.
    pub async fn start(secret: &str, clock: Arc<dyn Clock>) -> Self {
        let verify = Verify {
            scheme: Scheme::StandardWebhooks,
            header: None,
            secret: Some(Secrets::One(secret.into())),
            encoding: None,
            prefix: None,
            timestamp_header: None,
            signed_content: None,
            timestamp_unit: None,
            tolerance: None,
            username: None,
        };
        let verifier = Verifier::from_config(&verify).expect("a whsec_ secret");
        let state = Arc::new(Mutex::new(WebhookState {
            verifier,
            clock,
            verified: Vec::new(),
            unverified: 0,
            failures: VecDeque::new(),
        }));
        let router = Router::new()
            .route("/alerts", axum::routing::post(webhook))
            .with_state(state.clone());
        let base = serve(router).await;
        Self {
            url: format!("{base}/alerts"),
            state,
        }
    }

    /// Where to POST.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Answers the next `n` requests with `status` (after verifying them).
    pub fn fail_next(&self, status: u16, n: usize) {
        let retry_after = (status == 429).then(|| "7".to_owned());
        let mut s = self.state.lock().unwrap();
        for _ in 0..n {
            s.failures.push_back(Failure {
                status,
                body: format!("failing with {status} as told"),
                retry_after: retry_after.clone(),
            });
        }
    }

    /// The verified deliveries (headers, JSON body), in order.
    pub fn verified(&self) -> Vec<(HeaderMap, Value)> {
        self.state.lock().unwrap().verified.clone()
    }

    /// How many deliveries did not verify.
    pub fn unverified(&self) -> u64 {
        self.state.lock().unwrap().unverified
    }
}

async fn webhook(
    State(state): State<Arc<Mutex<WebhookState>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut s = state.lock().unwrap();
    let now = s.clock.now_ms();
    if s.verifier.verify(&headers, &body, now).is_err() {
        s.unverified += 1;
        return (StatusCode::UNAUTHORIZED, "signature does not verify").into_response();
    }
    if let Some(f) = s.failures.pop_front() {
        return answer(&f);
    }
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    s.verified.push((headers, json));
    StatusCode::NO_CONTENT.into_response()
}

/// One message an [`SmtpSink`] accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// The `MAIL FROM` address.
    pub from: String,
    /// The `RCPT TO` addresses.
    pub to: Vec<String>,
    /// The message as sent after `DATA` (headers and body; dot-unstuffed).
    pub data: String,
}

#[derive(Debug, Default)]
struct SmtpState {
    mails: Vec<Mail>,
    replies: VecDeque<String>,
}

/// A tiny SMTP server on loopback that accepts and records every message.
#[derive(Debug, Clone)]
pub struct SmtpSink {
    port: u16,
    state: Arc<Mutex<SmtpState>>,
}

impl SmtpSink {
    /// Starts one; [`SmtpSink::url`] is its `smtp://` URL.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("local address").port();
        let state = Arc::new(Mutex::new(SmtpState::default()));
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let _ = session(stream, state).await;
                });
            }
        });
        Self { port, state }
    }

    /// `smtp://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Answers the next `n` `MAIL FROM` commands with `reply` (e.g.
    /// `451 4.3.0 try again later`, `550 5.1.0 rejected`).
    pub fn reject_next(&self, reply: &str, n: usize) {
        let mut s = self.state.lock().unwrap();
        for _ in 0..n {
            s.replies.push_back(reply.to_owned());
        }
    }

    /// The messages accepted, in order.
    pub fn mails(&self) -> Vec<Mail> {
        self.state.lock().unwrap().mails.clone()
    }
}

async fn session(
    stream: tokio::net::TcpStream,
    state: Arc<Mutex<SmtpState>>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 sink ESMTP ready\r\n").await?;
    let mut from = String::new();
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_owned();
        let upper = cmd.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") {
            "250-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n".into()
        } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
            "250 ok\r\n".into()
        } else if upper.starts_with("RSET") {
            from.clear();
            to.clear();
            "250 ok\r\n".into()
        } else if upper.starts_with("MAIL FROM:") {
            let told = state.lock().unwrap().replies.pop_front();
            match told {
                Some(r) => format!("{r}\r\n"),
                None => {
                    from = address(&cmd["MAIL FROM:".len()..]);
                    to.clear();
                    "250 ok\r\n".into()
                }
            }
        } else if upper.starts_with("RCPT TO:") {
            to.push(address(&cmd["RCPT TO:".len()..]));
            "250 ok\r\n".into()
        } else if upper == "DATA" {
            write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                let unstuffed = line.strip_prefix('.').unwrap_or(&line);
                data.push_str(unstuffed);
            }
            state.lock().unwrap().mails.push(Mail {
                from: std::mem::take(&mut from),
                to: std::mem::take(&mut to),
                data,
            });
            "250 queued\r\n".into()
        } else if upper.starts_with("QUIT") {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            "502 command not implemented\r\n".into()
        };
        write.write_all(reply.as_bytes()).await?;
    }
}

/// The address inside `<…>` (parameters after it dropped).
fn address(arg: &str) -> String {
    let arg = arg.trim();
    match (arg.find('<'), arg.find('>')) {
        (Some(a), Some(b)) if a < b => arg[a + 1..b].to_owned(),
        _ => arg.split_whitespace().next().unwrap_or("").to_owned(),
    }
}
