//! A local Zendesk Support API: tickets (read, update with a comment,
//! listed with cursor pagination, exported incrementally), users and
//! organizations; its auth check, its rate-limit headers and `429`s; and
//! Zendesk's webhook signing.
//!
//! Written from Zendesk's public docs (read 2026-11-30):
//! - Security and authentication: API token as HTTP Basic
//!   `{email}/token:{api_token}`, or an OAuth access token as `Bearer`;
//!   a failure is `401 {"error": "Couldn't authenticate you"}`:
//!   https://developer.zendesk.com/api-reference/introduction/security-and-auth/
//! - Rate limits: `X-Rate-Limit` / `X-Rate-Limit-Remaining` on every answer
//!   (and `ratelimit-limit` / `-remaining` / `-reset` in seconds on ticketing
//!   endpoints); over it `429` with `Retry-After` in seconds:
//!   https://developer.zendesk.com/api-reference/introduction/rate-limits/
//! - Cursor pagination: `page[size]` (at most 100), `page[after]`; answers
//!   carry `meta.has_more`, `meta.after_cursor` and `links.next`:
//!   https://developer.zendesk.com/api-reference/introduction/pagination/
//! - Incremental ticket export, cursor based:
//!   `GET /api/v2/incremental/tickets/cursor.json?start_time=…` then
//!   `?cursor=…`; answers carry `after_cursor`, `after_url` and
//!   `end_of_stream`:
//!   https://developer.zendesk.com/api-reference/ticketing/ticket-management/incremental_exports/
//! - Tickets (`GET`/`PUT /api/v2/tickets/{id}.json`, a comment added with
//!   `{"ticket": {"comment": {"body", "public"}}}`), users, organizations:
//!   https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/
//! - Webhook signatures: `X-Zendesk-Webhook-Signature` =
//!   base64(HMAC-SHA256(secret, timestamp + body)) with
//!   `X-Zendesk-Webhook-Signature-Timestamp` (ISO-8601, UTC), plus
//!   `X-Zendesk-Webhook-Id` and `X-Zendesk-Webhook-Invocation-Id`:
//!   https://developer.zendesk.com/documentation/webhooks/verifying/
//!
//! Built on [`Target`]: every request is recorded there ([`Zendesk::target`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

use crate::target::{Answer, Seen, Target};

/// The agent e-mail of the API token.
pub const EMAIL: &str = "ferry@example.com";
/// The API token the fake accepts (with [`EMAIL`]).
pub const API_TOKEN: &str = "zd-api-token-ferry-test";
/// An OAuth access token the fake accepts.
pub const OAUTH_TOKEN: &str = "zd-oauth-ferry-test";
/// The account's limit per minute the fake reports (Team plan).
pub const LIMIT: u32 = 200;

#[derive(Default)]
struct State {
    tickets: BTreeMap<u64, Value>,
    users: BTreeMap<u64, Value>,
    organizations: BTreeMap<u64, Value>,
    /// The next calls answered `429`: (how many, Retry-After seconds).
    limited: Option<(usize, u64)>,
    remaining: u32,
}

/// The fake Zendesk. It stops with the test's runtime.
#[derive(Clone)]
pub struct Zendesk {
    /// The server underneath: every request is recorded there.
    pub target: Target,
    state: Arc<Mutex<State>>,
}

impl Zendesk {
    /// Start on a free port of 127.0.0.1, with no data.
    pub async fn start() -> Zendesk {
        let target = Target::start().await;
        let state = Arc::new(Mutex::new(State {
            remaining: LIMIT,
            ..State::default()
        }));
        let zd = Zendesk { target, state };
        let (st, base) = (zd.state.clone(), zd.url());
        zd.target
            .behave("/api/v2/", move |seen| Some(api(&st, &base, seen)));
        zd
    }

    /// The account's base URL (Zendesk's is `https://{subdomain}.zendesk.com`).
    pub fn url(&self) -> String {
        self.target.url()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Add an organization with its domain names.
    pub fn add_organization(&self, id: u64, name: &str, domains: &[&str]) {
        let org = json!({ "id": id, "name": name, "domain_names": domains });
        self.state().organizations.insert(id, org);
    }

    /// Add an end user.
    pub fn add_user(&self, id: u64, name: &str, email: &str, organization_id: Option<u64>) {
        let user = json!({ "id": id, "name": name, "email": email, "role": "end-user", "organization_id": organization_id });
        self.state().users.insert(id, user);
    }

    /// Add a ticket, updated at `updated_at` (epoch seconds).
    pub fn add_ticket(&self, id: u64, subject: &str, requester_id: u64, updated_at: i64) {
        let org = self
            .state()
            .users
            .get(&requester_id)
            .map(|u| u["organization_id"].clone());
        let ticket = json!({
            "id": id, "subject": subject, "description": subject, "status": "new",
            "requester_id": requester_id, "organization_id": org.unwrap_or(Value::Null),
            "updated_at": iso(updated_at * 1000), "generated_timestamp": updated_at, "comments": [],
        });
        self.state().tickets.insert(id, ticket);
    }

    /// Ticket `id` as stored (its `comments` too).
    pub fn ticket(&self, id: u64) -> Option<Value> {
        self.state().tickets.get(&id).cloned()
    }

    /// The next `n` calls are answered `429` with `Retry-After: retry_after`.
    pub fn limit_next(&self, n: usize, retry_after: u64) {
        self.state().limited = Some((n, retry_after));
    }
}

/// The headers Zendesk sends with a webhook request: the signature
/// (base64 HMAC-SHA256 over `timestamp + body`), the ISO-8601 timestamp,
/// the webhook and invocation ids. Computed here, independently of ferry.
pub fn sign(secret: &str, timestamp: &str, invocation: &str, body: &[u8]) -> Vec<(String, String)> {
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(timestamp.as_bytes());
    mac.update(body);
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    vec![
        ("x-zendesk-webhook-signature".into(), sig),
        (
            "x-zendesk-webhook-signature-timestamp".into(),
            timestamp.to_owned(),
        ),
        (
            "x-zendesk-webhook-id".into(),
            "01GTWAW1JYRP8GPRNKDKH4C1C6".into(),
        ),
        (
            "x-zendesk-webhook-invocation-id".into(),
            invocation.to_owned(),
        ),
        ("content-type".into(), "application/json".into()),
    ]
}

/// `epoch_ms` as Zendesk writes it: `2026-11-30T12:00:00Z`.
pub fn iso(epoch_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(epoch_ms)
        .expect("a time in range")
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn error(status: u16, body: Value) -> Answer {
    Answer::status(status, body)
}

fn authenticated(seen: &Seen) -> bool {
    let auth = seen.header("authorization");
    if let Some(b64) = auth.strip_prefix("Basic ") {
        let want = format!("{EMAIL}/token:{API_TOKEN}");
        let got = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .unwrap_or_default();
        return got == want.as_bytes();
    }
    auth.strip_prefix("Bearer ") == Some(OAUTH_TOKEN)
}

/// One call: auth, the rate limit, then the endpoint, with the rate headers.
fn api(state: &Mutex<State>, base: &str, seen: &Seen) -> Answer {
    if !authenticated(seen) {
        return error(401, json!({ "error": "Couldn't authenticate you" }));
    }
    let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((left, after)) = st.limited.as_mut() {
        let after = *after;
        *left -= 1;
        if *left == 0 {
            st.limited = None;
        }
        return Answer::status(
            429,
            json!("Number of allowed API requests per minute exceeded"),
        )
        .header("retry-after", &after.to_string())
        .header("x-rate-limit", &LIMIT.to_string())
        .header("x-rate-limit-remaining", "0");
    }
    st.remaining = st.remaining.saturating_sub(1).max(1);
    let remaining = st.remaining.to_string();
    endpoint(&mut st, base, seen)
        .header("x-rate-limit", &LIMIT.to_string())
        .header("x-rate-limit-remaining", &remaining)
        .header("ratelimit-limit", &LIMIT.to_string())
        .header("ratelimit-remaining", &remaining)
        .header("ratelimit-reset", "60")
}

fn not_found() -> Answer {
    error(
        404,
        json!({ "error": "RecordNotFound", "description": "Not found" }),
    )
}

fn endpoint(st: &mut State, base: &str, seen: &Seen) -> Answer {
    let path = seen.path.trim_start_matches("/api/v2/");
    let id_of = |rest: &str| {
        rest.strip_suffix(".json")
            .and_then(|n| n.parse::<u64>().ok())
    };
    match (seen.method.as_str(), path) {
        ("GET", "tickets.json") => list_tickets(st, base, seen),
        ("GET", "incremental/tickets/cursor.json") => export(st, base, seen),
        ("GET", p) if p.starts_with("tickets/") => {
            match id_of(&p[8..]).and_then(|id| st.tickets.get(&id)) {
                Some(t) => Answer::ok(json!({ "ticket": t })),
                None => not_found(),
            }
        }
        ("PUT", p) if p.starts_with("tickets/") => {
            let Some(t) = id_of(&p[8..]).and_then(|id| st.tickets.get_mut(&id)) else {
                return not_found();
            };
            let update = &seen.body["ticket"];
            if !update.is_object() {
                return error(
                    400,
                    json!({ "error": "InvalidEndpoint", "description": "ticket is required" }),
                );
            }
            if let Some(body) = update["comment"]["body"].as_str() {
                let public = update["comment"]["public"].as_bool().unwrap_or(true);
                let comments = t["comments"].as_array_mut().expect("comments");
                comments.push(json!({ "body": body, "public": public }));
            }
            if let Some(status) = update["status"].as_str() {
                t["status"] = json!(status);
            }
            Answer::ok(json!({ "ticket": t }))
        }
        ("GET", p) if p.starts_with("users/") => {
            match id_of(&p[6..]).and_then(|id| st.users.get(&id)) {
                Some(u) => Answer::ok(json!({ "user": u })),
                None => not_found(),
            }
        }
        ("GET", p) if p.starts_with("organizations/") => {
            match id_of(&p[14..]).and_then(|id| st.organizations.get(&id)) {
                Some(o) => Answer::ok(json!({ "organization": o })),
                None => not_found(),
            }
        }
        _ => error(
            404,
            json!({ "error": "InvalidEndpoint", "description": "Not found" }),
        ),
    }
}

/// `GET /api/v2/tickets.json?page[size]=&page[after]=`: by id; the cursor
/// is the last id of the page (opaque to clients).
fn list_tickets(st: &State, base: &str, seen: &Seen) -> Answer {
    let size = seen
        .param("page[size]")
        .and_then(|s| s.parse().ok())
        .unwrap_or(100usize)
        .clamp(1, 100);
    let after: u64 = seen
        .param("page[after]")
        .and_then(|c| c.strip_prefix("c").and_then(|n| n.parse().ok()))
        .unwrap_or(0);
    let page: Vec<&Value> = st
        .tickets
        .range(after + 1..)
        .map(|(_, t)| t)
        .take(size)
        .collect();
    let last = page.last().and_then(|t| t["id"].as_u64());
    let has_more = last.is_some_and(|l| st.tickets.range(l + 1..).next().is_some());
    let cursor = last.map(|l| format!("c{l}"));
    let next = match (&cursor, has_more) {
        (Some(c), true) => json!(format!(
            "{base}/api/v2/tickets.json?page%5Bafter%5D={c}&page%5Bsize%5D={size}"
        )),
        _ => Value::Null,
    };
    Answer::ok(json!({
        "tickets": page,
        "meta": { "has_more": has_more, "after_cursor": cursor, "before_cursor": null },
        "links": { "next": next, "prev": null },
    }))
}

/// The cursor-based incremental export: tickets updated at or after
/// `start_time` (by `generated_timestamp`), oldest first, 2 per page here (1000 at Zendesk) so tests
/// see several pages; the cursor is the last (updated_at, id) of the page.
fn export(st: &State, base: &str, seen: &Seen) -> Answer {
    const PER_PAGE: usize = 2;
    let mut all: Vec<&Value> = st.tickets.values().collect();
    all.sort_by_key(|t| (t["generated_timestamp"].as_i64(), t["id"].as_u64()));
    // Strictly after a cursor's position, or updated at or after start_time.
    let (from, strictly) = match (seen.param("cursor"), seen.param("start_time")) {
        (Some(c), _) => match c
            .split_once('.')
            .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
        {
            Some(pos) => (pos, true),
            None => {
                return error(
                    400,
                    json!({ "error": "InvalidValue", "description": "invalid cursor" }),
                );
            }
        },
        (None, Some(t)) => match t.parse::<i64>() {
            Ok(t) => ((t, 0u64), false),
            Err(_) => {
                return error(
                    400,
                    json!({ "error": "InvalidValue", "description": "start_time must be a Unix epoch time" }),
                );
            }
        },
        (None, None) => {
            return error(
                400,
                json!({ "error": "InvalidValue", "description": "start_time or cursor is required" }),
            );
        }
    };
    let pos = |t: &Value| {
        (
            t["generated_timestamp"].as_i64().unwrap_or(0),
            t["id"].as_u64().unwrap_or(0),
        )
    };
    let rest: Vec<&Value> = all
        .into_iter()
        .filter(|t| {
            if strictly {
                pos(t) > from
            } else {
                pos(t) >= from
            }
        })
        .collect();
    let page: Vec<&Value> = rest.iter().take(PER_PAGE).copied().collect();
    let end = rest.len() <= PER_PAGE;
    let cursor = page
        .last()
        .map(|t| format!("{}.{}", pos(t).0, pos(t).1))
        .unwrap_or_else(|| format!("{}.{}", from.0, from.1));
    Answer::ok(json!({
        "tickets": page,
        "after_cursor": cursor,
        "after_url": format!("{base}/api/v2/incremental/tickets/cursor.json?cursor={cursor}"),
        "before_cursor": null,
        "end_of_stream": end,
    }))
}
