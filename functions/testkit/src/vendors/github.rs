//! A local GitHub REST API: issues (listed with `Link` pagination) and
//! issue comments, its auth check, its rate-limit headers and both kinds of
//! rate-limit answers; and GitHub's webhook signing.
//!
//! Written from GitHub's public docs (read 2026-11-30):
//! - Authentication: `Authorization: Bearer <token>` (or `token <token>`);
//!   a bad one is `401 {"message": "Bad credentials", "documentation_url": …}`:
//!   https://docs.github.com/en/rest/authentication/authenticating-to-the-rest-api
//! - API versions: `X-GitHub-Api-Version: 2022-11-28`; an unsupported
//!   version is `400`; `Accept: application/vnd.github+json`:
//!   https://docs.github.com/en/rest/about-the-rest-api/api-versions
//! - Rate limits: 5,000 requests per hour for a token; every answer carries
//!   `x-ratelimit-limit`, `-remaining`, `-used`, `-reset` (UTC epoch
//!   seconds), `-resource`; over the primary limit: `403` or `429` with
//!   `x-ratelimit-remaining: 0`; over a secondary limit: `403` or `429`
//!   with a message and maybe `retry-after`:
//!   https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api
//!   https://docs.github.com/en/rest/using-the-rest-api/troubleshooting-the-rest-api
//! - Pagination: `per_page` (max 100) and `page`, `Link` header with
//!   `rel="next"`, `"last"`, …:
//!   https://docs.github.com/en/rest/using-the-rest-api/using-pagination-in-the-rest-api
//! - Issues and comments: `GET /repos/{owner}/{repo}/issues`,
//!   `POST /repos/{owner}/{repo}/issues/{number}/comments` (`201`):
//!   https://docs.github.com/en/rest/issues/issues,
//!   https://docs.github.com/en/rest/issues/comments
//! - Webhooks: `X-Hub-Signature-256: sha256=hex(HMAC-SHA256(secret, body))`,
//!   `X-GitHub-Event`, `X-GitHub-Delivery` (a GUID), `X-GitHub-Hook-ID`:
//!   https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
//!   https://docs.github.com/en/webhooks/webhook-events-and-payloads
//!
//! Built on [`Target`]: every request is recorded there ([`GitHub::target`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

use crate::target::{Answer, Seen, Target};

/// The token the fake accepts.
pub const TOKEN: &str = "ghp_ferryTestToken0000000000000000000000";
/// The API version the fake supports.
pub const API_VERSION: &str = "2022-11-28";
/// The primary limit per hour for a token.
pub const LIMIT: u32 = 5000;

const DOCS: &str = "https://docs.github.com/rest";

/// A secondary-limit answer the fake gives next.
#[derive(Debug, Clone, Copy)]
struct Secondary {
    left: usize,
    status: u16,
    retry_after: Option<u64>,
}

#[derive(Default)]
struct State {
    remaining: u32,
    /// When the window resets, UTC epoch seconds (tests set it on their clock).
    reset: i64,
    /// The next calls over the primary limit: (how many, reset epoch seconds).
    exhausted: Option<(usize, i64)>,
    secondary: Option<Secondary>,
    /// "owner/repo" → number → issue.
    issues: BTreeMap<String, BTreeMap<u64, Value>>,
    /// ("owner/repo", number) → comments.
    comments: BTreeMap<(String, u64), Vec<Value>>,
    next_id: u64,
}

/// The fake GitHub. It stops with the test's runtime.
#[derive(Clone)]
pub struct GitHub {
    /// The server underneath: every request is recorded there.
    pub target: Target,
    state: Arc<Mutex<State>>,
}

impl GitHub {
    /// Start on a free port of 127.0.0.1, with a full primary budget.
    pub async fn start() -> GitHub {
        let target = Target::start().await;
        let state = Arc::new(Mutex::new(State {
            remaining: LIMIT,
            reset: 1_800_000_000,
            next_id: 1000,
            ..State::default()
        }));
        let gh = GitHub { target, state };
        let (st, base) = (gh.state.clone(), gh.url());
        gh.target
            .behave("/", move |seen| Some(rest(&st, &base, seen)));
        gh
    }

    /// The API's base URL (GitHub's is `https://api.github.com`).
    pub fn url(&self) -> String {
        self.target.url()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Set the calls left in the window and when it resets (epoch seconds).
    pub fn budget(&self, remaining: u32, reset: i64) {
        let mut st = self.state();
        st.remaining = remaining;
        st.reset = reset;
    }

    /// The next `n` calls are over the primary limit: `403` with
    /// `x-ratelimit-remaining: 0` and `x-ratelimit-reset: reset`.
    pub fn exhaust_next(&self, n: usize, reset: i64) {
        self.state().exhausted = Some((n, reset));
    }

    /// The next `n` calls hit a secondary limit: `status` (403 or 429) with
    /// GitHub's message, and `retry-after` when given.
    pub fn secondary_next(&self, n: usize, status: u16, retry_after: Option<u64>) {
        self.state().secondary = Some(Secondary {
            left: n,
            status,
            retry_after,
        });
    }

    /// Add an open issue to `repo` ("owner/name").
    pub fn add_issue(&self, repo: &str, number: u64, title: &str) {
        let issue = json!({
            "number": number, "title": title, "state": "open",
            "html_url": format!("https://github.com/{repo}/issues/{number}"),
        });
        let mut st = self.state();
        st.issues
            .entry(repo.to_owned())
            .or_default()
            .insert(number, issue);
    }

    /// The comments on issue `number` of `repo`.
    pub fn comments(&self, repo: &str, number: u64) -> Vec<Value> {
        let key = (repo.to_owned(), number);
        self.state().comments.get(&key).cloned().unwrap_or_default()
    }
}

/// The headers GitHub sends with a webhook delivery of `event`: the
/// signature (`sha256=` and the hex HMAC-SHA256 of the body), the event,
/// the delivery id. Computed here, independently of ferry's verifier.
pub fn sign(secret: &str, event: &str, delivery: &str, body: &[u8]) -> Vec<(String, String)> {
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    let sig = hex::encode(mac.finalize().into_bytes());
    vec![
        ("x-hub-signature-256".into(), format!("sha256={sig}")),
        ("x-github-event".into(), event.to_owned()),
        ("x-github-delivery".into(), delivery.to_owned()),
        ("x-github-hook-id".into(), "123456789".into()),
        ("user-agent".into(), "GitHub-Hookshot/ferry".into()),
        ("content-type".into(), "application/json".into()),
    ]
}

fn message(status: u16, text: &str) -> Answer {
    Answer::status(
        status,
        json!({ "message": text, "documentation_url": DOCS, "status": status.to_string() }),
    )
}

fn rate_headers(a: Answer, remaining: u32, reset: i64) -> Answer {
    a.header("x-ratelimit-limit", &LIMIT.to_string())
        .header("x-ratelimit-remaining", &remaining.to_string())
        .header(
            "x-ratelimit-used",
            &(LIMIT - remaining.min(LIMIT)).to_string(),
        )
        .header("x-ratelimit-reset", &reset.to_string())
        .header("x-ratelimit-resource", "core")
}

/// One REST call: auth, version, limits, then the endpoint.
fn rest(state: &Mutex<State>, base: &str, seen: &Seen) -> Answer {
    // "All REST API requests must include a valid User-Agent header":
    // https://docs.github.com/en/rest/using-the-rest-api/getting-started-with-the-rest-api#user-agent
    if seen.header("user-agent").is_empty() {
        return message(
            403,
            "Request forbidden by administrative rules. Please make sure your request has a User-Agent header.",
        );
    }
    let auth = seen.header("authorization");
    let token = auth
        .strip_prefix("Bearer ")
        .or_else(|| auth.strip_prefix("token "));
    if token != Some(TOKEN) {
        return message(401, "Bad credentials");
    }
    let version = seen.header("x-github-api-version");
    if !version.is_empty() && version != API_VERSION {
        return message(
            400,
            &format!("Unsupported 'X-GitHub-Api-Version' header '{version}'"),
        );
    }
    let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((left, reset)) = st.exhausted.as_mut() {
        let reset = *reset;
        *left -= 1;
        if *left == 0 {
            st.exhausted = None;
        }
        let a = message(403, "API rate limit exceeded for user ID 1.");
        return rate_headers(a, 0, reset);
    }
    if let Some(s) = st.secondary.as_mut() {
        let s2 = *s;
        s.left -= 1;
        if s.left == 0 {
            st.secondary = None;
        }
        let text = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.";
        let mut a = rate_headers(message(s2.status, text), st.remaining, st.reset);
        if let Some(after) = s2.retry_after {
            a = a.header("retry-after", &after.to_string());
        }
        return a;
    }
    st.remaining = st.remaining.saturating_sub(1);
    let (remaining, reset) = (st.remaining, st.reset);
    let answer = endpoint(&mut st, base, seen);
    rate_headers(answer, remaining, reset)
}

fn endpoint(st: &mut State, base: &str, seen: &Seen) -> Answer {
    let parts: Vec<&str> = seen.path.trim_matches('/').split('/').collect();
    match (seen.method.as_str(), parts.as_slice()) {
        ("GET", ["repos", owner, repo, "issues"]) => {
            list_issues(st, base, seen, &format!("{owner}/{repo}"))
        }
        ("POST", ["repos", owner, repo, "issues", number, "comments"]) => {
            let repo = format!("{owner}/{repo}");
            let Ok(number) = number.parse::<u64>() else {
                return message(404, "Not Found");
            };
            if !st
                .issues
                .get(&repo)
                .is_some_and(|i| i.contains_key(&number))
            {
                return message(404, "Not Found");
            }
            let Some(body) = seen.body["body"].as_str().filter(|b| !b.is_empty()) else {
                return message(422, "Validation Failed");
            };
            st.next_id += 1;
            let comment = json!({
                "id": st.next_id, "body": body,
                "html_url": format!("https://github.com/{repo}/issues/{number}#issuecomment-{}", st.next_id),
            });
            st.comments
                .entry((repo, number))
                .or_default()
                .push(comment.clone());
            Answer::status(201, comment)
        }
        _ => message(404, "Not Found"),
    }
}

/// `GET /repos/{owner}/{repo}/issues?per_page=&page=`, with `Link`.
fn list_issues(st: &State, base: &str, seen: &Seen, repo: &str) -> Answer {
    let all: Vec<Value> = st
        .issues
        .get(repo)
        .map(|m| m.values().cloned().collect())
        .unwrap_or_default();
    let per_page = seen
        .param("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(30usize)
        .clamp(1, 100);
    let page = seen
        .param("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1usize)
        .max(1);
    let last = all.len().div_ceil(per_page).max(1);
    let items: Vec<Value> = all
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let link = |p: usize, rel: &str| {
        format!("<{base}/repos/{repo}/issues?per_page={per_page}&page={p}>; rel=\"{rel}\"")
    };
    let mut rels = vec![];
    if page < last {
        rels.push(link(page + 1, "next"));
        rels.push(link(last, "last"));
    }
    if page > 1 {
        rels.push(link(1, "first"));
        rels.push(link(page - 1, "prev"));
    }
    let a = Answer::ok(Value::Array(items));
    if rels.is_empty() {
        a
    } else {
        a.header("link", &rels.join(", "))
    }
}
