//! A fake transactional e-mail API, modelled on Postmark's, for the lead
//! chain recipe (any API that takes one message per call behaves alike).
//!
//! Written from Postmark's public docs (read 2026-11-30):
//! - `POST /email` with `X-Postmark-Server-Token`, a JSON body with `From`,
//!   `To`, `Subject`, `TextBody`/`HtmlBody`, `MessageStream`; a sent message
//!   is `200 {"To","SubmittedAt","MessageID","ErrorCode":0,"Message":"OK"}`
//!   (*Email API*, https://postmarkapp.com/developer/api/email-api);
//! - a missing or wrong token is `401` with `ErrorCode` 10; a request it
//!   cannot send is `422` with a non-zero `ErrorCode` — 300 for an invalid
//!   e-mail request, 406 for an inactive recipient
//!   (*API overview — error codes*, https://postmarkapp.com/developer/api/overview#error-codes).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};

use crate::target::{Answer, Seen, Target};

#[derive(Default)]
struct State {
    token: String,
    sent: Vec<Value>,
    inactive: HashSet<String>,
}

/// The fake, on its own [`Target`].
#[derive(Clone)]
pub struct Postmark {
    /// The server (every request recorded; paths can be scripted).
    pub target: Target,
    state: Arc<Mutex<State>>,
}

impl Postmark {
    /// Start, accepting `token` as the server token.
    pub async fn start(token: &str) -> Postmark {
        let target = Target::start().await;
        let state = Arc::new(Mutex::new(State {
            token: token.to_owned(),
            ..State::default()
        }));
        let st = state.clone();
        target.behave("/", move |seen| Some(answer(&st, seen)));
        Postmark { target, state }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.target.url()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The messages accepted, in order (their JSON bodies).
    pub fn sent(&self) -> Vec<Value> {
        self.state().sent.clone()
    }

    /// Mark `address` inactive (hard-bounced or unsubscribed): sending to it is refused.
    pub fn deactivate(&self, address: &str) {
        self.state().inactive.insert(address.to_lowercase());
    }
}

fn error(status: u16, code: u32, message: &str) -> Answer {
    Answer::status(status, json!({ "ErrorCode": code, "Message": message }))
}

fn answer(state: &Mutex<State>, seen: &Seen) -> Answer {
    let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
    if seen.header("x-postmark-server-token") != st.token {
        return error(
            401,
            10,
            "No Account or Server API tokens were supplied in the HTTP headers.",
        );
    }
    if (seen.method.as_str(), seen.path.as_str()) != ("POST", "/email") {
        return error(404, 0, "Not found");
    }
    let to = seen.body["To"].as_str().unwrap_or_default().to_lowercase();
    if seen.body["From"].as_str().is_none_or(str::is_empty) || !to.contains('@') {
        return error(422, 300, "Invalid email request");
    }
    if st.inactive.contains(&to) {
        return error(
            422,
            406,
            "You tried to send to a recipient that has been marked as inactive.",
        );
    }
    st.sent.push(seen.body.clone());
    let n = st.sent.len();
    Answer::ok(json!({
        "To": to,
        "SubmittedAt": "2026-11-30T00:00:00.0000000Z",
        "MessageID": format!("0a129aee-e1cd-480d-b08d-{n:012}"),
        "ErrorCode": 0,
        "Message": "OK",
    }))
}
