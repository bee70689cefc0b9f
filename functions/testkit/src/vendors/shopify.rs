//! A fake Shopify Admin API (`https://<shop>.myshopify.com/admin/api/<version>`),
//! as its docs describe it (read 2026-11-30):
//!
//! - auth: `X-Shopify-Access-Token`; a missing or wrong token is `401`
//!   `{"errors": "[API] Invalid API key or access token …"}` (*Admin API
//!   authentication*, https://shopify.dev/docs/api/usage/authentication);
//! - REST: a leaky bucket of 40 calls that leaks 2 a second (standard
//!   plans); every answer carries `X-Shopify-Shop-Api-Call-Limit: used/40`,
//!   and a call over the bucket is `429` `{"errors": "Exceeded 2 calls per
//!   second for api client. Reduce request rates to resume uninterrupted
//!   service."}` with `Retry-After` in seconds (*REST Admin API rate limits*,
//!   https://shopify.dev/docs/api/admin-rest/usage/rate-limits; *API rate
//!   limits*, https://shopify.dev/docs/api/usage/rate-limits);
//! - REST pagination: `limit` (≤ 250) and an opaque `page_info`, the next
//!   page in an RFC 8288 `Link` header, `rel="next"` (*Paginating results
//!   with REST*, https://shopify.dev/docs/api/usage/pagination-rest);
//! - GraphQL: a cost bucket of 1000 points restoring 50 a second; every
//!   answer has `extensions.cost` (`requestedQueryCost`, `actualQueryCost`,
//!   `throttleStatus {maximumAvailable, currentlyAvailable, restoreRate}`);
//!   a query costing more than is available is answered `200` with
//!   `errors: [{message: "Throttled", extensions: {code: "THROTTLED"}}]`
//!   (*GraphQL Admin API rate limits*, https://shopify.dev/docs/api/usage/rate-limits#graphql-admin-api-rate-limits);
//! - webhooks: `X-Shopify-Hmac-Sha256` = base64 HMAC-SHA256 of the raw body
//!   keyed by the app's client secret; `X-Shopify-Topic`,
//!   `X-Shopify-Webhook-Id`, `X-Shopify-Event-Id` (the same for every
//!   delivery of one event: the id to drop duplicates by), `X-Shopify-Shop-Domain`
//!   (*Deliver webhooks through HTTPS*, https://shopify.dev/docs/apps/build/webhooks/subscribe/https;
//!   *Ignore duplicate webhooks*, https://shopify.dev/docs/apps/build/webhooks/ignore-duplicates).
//!
//! Time (the buckets' leak) comes from a function the test gives, so a
//! manual clock drives it.

use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine as _;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

use crate::target::{Answer, Seen, Target};

/// The API version the fake serves (`/admin/api/2025-10/…`).
pub const VERSION: &str = "2025-10";
/// REST bucket size (standard plans).
pub const REST_BUCKET: f64 = 40.0;
/// REST leak rate, calls per second.
pub const REST_LEAK: f64 = 2.0;
/// GraphQL bucket size, points (standard plans).
pub const GRAPHQL_BUCKET: f64 = 1000.0;
/// GraphQL restore rate, points per second.
pub const GRAPHQL_RESTORE: f64 = 50.0;

/// Now, in milliseconds.
pub type Now = Arc<dyn Fn() -> i64 + Send + Sync>;

struct State {
    orders: Vec<Value>,
    /// REST calls in the bucket, as of `rest_at`.
    rest_used: f64,
    rest_at: i64,
    /// GraphQL points available, as of `gql_at`.
    gql_available: f64,
    gql_at: i64,
    /// What one GraphQL query costs.
    query_cost: f64,
}

/// The fake. Every request is also in [`Shopify::target`].
#[derive(Clone)]
pub struct Shopify {
    /// The recording server underneath.
    pub target: Target,
    state: Arc<Mutex<State>>,
    now: Now,
}

impl Shopify {
    /// Start on 127.0.0.1, accepting `token`, with time from `now`.
    pub async fn start(token: &str, now: Now) -> Shopify {
        let target = Target::start().await;
        let t0 = now();
        let state = Arc::new(Mutex::new(State {
            orders: Vec::new(),
            rest_used: 0.0,
            rest_at: t0,
            gql_available: GRAPHQL_BUCKET,
            gql_at: t0,
            query_cost: 10.0,
        }));
        let (st, tok, clock) = (state.clone(), token.to_owned(), now.clone());
        let base = target.url();
        target.behave("/", move |seen| {
            let mut st = st.lock().unwrap_or_else(|p| p.into_inner());
            Some(handle(&mut st, &tok, clock(), &base, seen))
        });
        Shopify { target, state, now }
    }

    /// `http://127.0.0.1:<port>/admin/api/<VERSION>` (what the user's `base_url` would be).
    pub fn url(&self) -> String {
        format!("{}/admin/api/{VERSION}", self.target.url())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fill the REST bucket to `used` calls now (e.g. 40: the next call is a `429`).
    pub fn set_rest_used(&self, used: f64) {
        let now = (self.now)();
        let mut st = self.state();
        st.rest_used = used;
        st.rest_at = now;
    }

    /// Leave `points` available in the GraphQL bucket now, and make each
    /// query cost `cost`.
    pub fn set_graphql(&self, points: f64, cost: f64) {
        let now = (self.now)();
        let mut st = self.state();
        st.gql_available = points;
        st.gql_at = now;
        st.query_cost = cost;
    }

    /// Add `n` orders (ids 1001…), for list calls.
    pub fn seed_orders(&self, n: usize) {
        let mut st = self.state();
        for _ in 0..n {
            let id = 1001 + st.orders.len() as u64;
            st.orders
                .push(json!({"id": id, "name": format!("#{id}"), "financial_status": "paid"}));
        }
    }
}

/// The `X-Shopify-Hmac-Sha256` header Shopify sends for `body` (base64
/// HMAC-SHA256, keyed by the app's client secret).
pub fn hmac_header(secret: &str, body: &[u8]) -> String {
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn handle(st: &mut State, token: &str, now: i64, base: &str, seen: &Seen) -> Answer {
    if seen.header("x-shopify-access-token") != token {
        return Answer::status(
            401,
            json!({"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}),
        );
    }
    let prefix = format!("/admin/api/{VERSION}");
    let Some(path) = seen.path.strip_prefix(&prefix) else {
        return Answer::status(404, json!({"errors": "Not Found"}));
    };
    if path == "/graphql.json" {
        return graphql(st, now);
    }
    // The REST leaky bucket: leak since the last call, then add this one.
    let leaked = (now - st.rest_at).max(0) as f64 / 1000.0 * REST_LEAK;
    st.rest_used = (st.rest_used - leaked).max(0.0);
    st.rest_at = now;
    if st.rest_used + 1.0 > REST_BUCKET {
        let wait = ((st.rest_used + 1.0 - REST_BUCKET) / REST_LEAK)
            .ceil()
            .max(1.0);
        return Answer::status(
            429,
            json!({"errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."}),
        )
        .header("retry-after", &format!("{wait:.1}"))
        .header("x-shopify-shop-api-call-limit", &limit(st.rest_used));
    }
    st.rest_used += 1.0;
    let answer = match (seen.method.as_str(), path) {
        ("GET", "/orders.json") => orders(st, seen, base, &prefix),
        _ => Answer::status(404, json!({"errors": "Not Found"})),
    };
    answer.header("x-shopify-shop-api-call-limit", &limit(st.rest_used))
}

fn limit(used: f64) -> String {
    format!("{}/{}", used.ceil() as u64, REST_BUCKET as u64)
}

/// `limit` and `page_info` (here: the index of the page's first order).
fn orders(st: &State, seen: &Seen, base: &str, prefix: &str) -> Answer {
    let limit = seen
        .param("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(50)
        .clamp(1, 250);
    let start = seen
        .param("page_info")
        .and_then(|p| p.strip_prefix("idx").and_then(|n| n.parse::<usize>().ok()))
        .unwrap_or(0);
    let page: Vec<Value> = st.orders.iter().skip(start).take(limit).cloned().collect();
    let mut answer = Answer::ok(json!({"orders": page}));
    if start + page.len() < st.orders.len() {
        let next = format!(
            "<{base}{prefix}/orders.json?limit={limit}&page_info=idx{}>; rel=\"next\"",
            start + limit
        );
        answer = answer.header("link", &next);
    }
    answer
}

fn graphql(st: &mut State, now: i64) -> Answer {
    let restored = (now - st.gql_at).max(0) as f64 / 1000.0 * GRAPHQL_RESTORE;
    st.gql_available = (st.gql_available + restored).min(GRAPHQL_BUCKET);
    st.gql_at = now;
    let cost = st.query_cost;
    let status = |available: f64| json!({"maximumAvailable": GRAPHQL_BUCKET, "currentlyAvailable": available, "restoreRate": GRAPHQL_RESTORE});
    if cost > st.gql_available {
        return Answer::ok(json!({
            "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
            "extensions": {"cost": {"requestedQueryCost": cost, "actualQueryCost": null, "throttleStatus": status(st.gql_available)}}
        }));
    }
    st.gql_available -= cost;
    Answer::ok(json!({
        "data": {"shop": {"name": "ferry test shop"}},
        "extensions": {"cost": {"requestedQueryCost": cost, "actualQueryCost": cost, "throttleStatus": status(st.gql_available)}}
    }))
}
