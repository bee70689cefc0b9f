//! A fake Stripe API (`https://api.stripe.com`), as its docs describe it
//! (read 2026-11-30):
//!
//! - auth: `Authorization: Bearer <secret key>`; anything else is `401` with
//!   an `invalid_request_error` body (*Authentication*,
//!   https://docs.stripe.com/api/authentication; *Errors*,
//!   https://docs.stripe.com/api/errors);
//! - bodies are form-encoded (`application/x-www-form-urlencoded`) and
//!   answers JSON (https://docs.stripe.com/api);
//! - `Idempotency-Key`: the first answer for a key is saved and replayed
//!   (with `Idempotent-Replayed: true`) for the same parameters; other
//!   parameters under the same key are an `idempotency_error`; a request
//!   while the key's first one is still running is `409`
//!   `idempotency_key_in_use` (*Idempotent requests*,
//!   https://docs.stripe.com/api/idempotent_requests; *Advanced error
//!   handling*, https://docs.stripe.com/error-low-level);
//! - errors: `402` `card_error` for a declined card (final), `429` with code
//!   `rate_limit` for too many requests, `429` `lock_timeout` when another
//!   request holds the object's lock, each with `Stripe-Should-Retry`
//!   (https://docs.stripe.com/error-low-level; *Rate limits*,
//!   https://docs.stripe.com/rate-limits; *Error codes*,
//!   https://docs.stripe.com/error-codes);
//! - lists: `limit` (1–100, default 10), `starting_after` (an object id),
//!   answered `{"object": "list", "data": [...], "has_more": bool}`
//!   (*Pagination*, https://docs.stripe.com/api/pagination);
//! - webhooks: `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of
//!   "<t>.<body>">` keyed by the endpoint secret (*Check the webhook
//!   signatures*, https://docs.stripe.com/webhooks#verify-manually).
//!
//! Endpoints: `GET/POST /v1/customers`, `GET /v1/customers/<id>`, `POST /v1/payment_intents`
//! (`payment_method=pm_card_chargeDeclined` is declined, as Stripe's test
//! card is: https://docs.stripe.com/testing#declined-payments).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

use crate::target::{Answer, Seen, Target};

/// A fault the fake answers the next calls with, before anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `429` `rate_limit` (too many requests), `Stripe-Should-Retry: true`.
    RateLimit,
    /// `429` `lock_timeout` (another request holds the object), retryable.
    LockTimeout,
    /// `409` `idempotency_key_in_use` (the key's first request still runs).
    KeyInUse,
    /// `500` `api_error` with `Stripe-Should-Retry: false` (Stripe says a
    /// retry would not help, whatever the status suggests).
    ServerNoRetry,
}

#[derive(Default)]
struct State {
    customers: Vec<Value>,
    payment_intents: Vec<Value>,
    /// Idempotency key → (parameters, the saved answer).
    keys: HashMap<String, (BTreeMap<String, String>, Answer)>,
    faults: Vec<Fault>,
    next_id: u64,
}

/// The fake. Every request is also in [`Stripe::target`].
#[derive(Clone)]
pub struct Stripe {
    /// The recording server underneath.
    pub target: Target,
    state: Arc<Mutex<State>>,
}

impl Stripe {
    /// Start on 127.0.0.1, accepting `secret_key` (e.g. `sk_test_…`).
    pub async fn start(secret_key: &str) -> Stripe {
        let target = Target::start().await;
        let state = Arc::new(Mutex::new(State::default()));
        let (st, key) = (state.clone(), secret_key.to_owned());
        target.behave("/", move |seen| Some(handle(&st, &key, seen)));
        Stripe { target, state }
    }

    /// `http://127.0.0.1:<port>` (the base URL; paths start `/v1/`).
    pub fn url(&self) -> String {
        self.target.url()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Answer the next `n` API calls with `fault`.
    pub fn fail_next(&self, n: usize, fault: Fault) {
        self.state().faults.extend(std::iter::repeat_n(fault, n));
    }

    /// Add `n` customers (`cus_0001`…), oldest first, for list calls.
    pub fn seed_customers(&self, n: usize) {
        let mut st = self.state();
        for _ in 0..n {
            let id = new_id(&mut st, "cus");
            st.customers.push(
                json!({"id": id, "object": "customer", "email": format!("{id}@example.com")}),
            );
        }
    }

    /// Add customer `id` with `email`.
    pub fn add_customer(&self, id: &str, email: &str) {
        self.state()
            .customers
            .push(json!({"id": id, "object": "customer", "email": email}));
    }

    /// Every customer created or seeded, in order.
    pub fn customers(&self) -> Vec<Value> {
        self.state().customers.clone()
    }

    /// Every payment intent created (declined ones too), in order.
    pub fn payment_intents(&self) -> Vec<Value> {
        self.state().payment_intents.clone()
    }
}

/// The `Stripe-Signature` header Stripe sends for `body` signed at `t`
/// (Unix seconds) with the endpoint secret `secret` (`whsec_…`, used as is).
pub fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

fn new_id(st: &mut State, prefix: &str) -> String {
    st.next_id += 1;
    format!("{prefix}_{:04}", st.next_id)
}

fn error(status: u16, kind: &str, code: &str, message: &str) -> Answer {
    Answer::status(
        status,
        json!({"error": {"type": kind, "code": code, "message": message}}),
    )
}

fn handle(state: &Arc<Mutex<State>>, key: &str, seen: &Seen) -> Answer {
    let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
    // https://docs.stripe.com/api/authentication: a bad key is a 401.
    if seen.header("authorization") != format!("Bearer {key}") {
        return error(
            401,
            "invalid_request_error",
            "api_key_invalid",
            "Invalid API Key provided",
        );
    }
    if !st.faults.is_empty() {
        return fault(st.faults.remove(0));
    }
    let params: BTreeMap<String, String> =
        serde_urlencoded::from_bytes(&seen.raw).unwrap_or_default();
    let idem = seen.header("idempotency-key").to_owned();
    if seen.method == "POST"
        && !idem.is_empty()
        && let Some((first, answer)) = st.keys.get(&idem)
    {
        // https://docs.stripe.com/api/idempotent_requests: other parameters
        // under a used key are refused; the same ones replay the answer.
        if *first != params {
            return error(
                400,
                "idempotency_error",
                "idempotency_key_reused",
                "Keys for idempotent requests can only be used with the same parameters they were first used with.",
            );
        }
        return answer.clone().header("idempotent-replayed", "true");
    }
    let answer = route(&mut st, seen, &params);
    if seen.method == "POST" && !idem.is_empty() {
        st.keys.insert(idem, (params, answer.clone()));
    }
    answer
}

fn fault(f: Fault) -> Answer {
    match f {
        Fault::RateLimit => error(
            429,
            "invalid_request_error",
            "rate_limit",
            "Too many requests hit the API too quickly.",
        )
        .header("stripe-should-retry", "true"),
        Fault::LockTimeout => error(
            429,
            "invalid_request_error",
            "lock_timeout",
            "This object cannot be accessed right now because another API request or Stripe process is currently accessing it.",
        )
        .header("stripe-should-retry", "true"),
        Fault::KeyInUse => error(
            409,
            "invalid_request_error",
            "idempotency_key_in_use",
            "There is currently another in-progress request using this Idempotent Key.",
        )
        .header("stripe-should-retry", "true"),
        Fault::ServerNoRetry => error(500, "api_error", "", "An unknown error occurred.")
            .header("stripe-should-retry", "false"),
    }
}

fn route(st: &mut State, seen: &Seen, params: &BTreeMap<String, String>) -> Answer {
    match (seen.method.as_str(), seen.path.as_str()) {
        ("GET", "/v1/customers") => list(&st.customers, seen),
        ("POST", "/v1/customers") => {
            let id = new_id(st, "cus");
            let mut c = json!({"id": id, "object": "customer"});
            for (k, v) in params {
                c[k] = json!(v);
            }
            st.customers.push(c.clone());
            Answer::ok(c)
        }
        ("GET", p) if p.starts_with("/v1/customers/") => {
            let id = &p["/v1/customers/".len()..];
            match st.customers.iter().find(|c| c["id"] == id) {
                Some(c) => Answer::ok(c.clone()),
                None => error(
                    404,
                    "invalid_request_error",
                    "resource_missing",
                    &format!("No such customer: '{id}'"),
                ),
            }
        }
        ("POST", "/v1/payment_intents") => {
            let id = new_id(st, "pi");
            let declined =
                params.get("payment_method").map(String::as_str) == Some("pm_card_chargeDeclined");
            let status = if declined {
                "requires_payment_method"
            } else {
                "succeeded"
            };
            let pi = json!({"id": id, "object": "payment_intent", "amount": params.get("amount"), "status": status});
            st.payment_intents.push(pi.clone());
            if declined {
                // https://docs.stripe.com/declines: a decline is a 402 card_error.
                return Answer::status(
                    402,
                    json!({"error": {"type": "card_error", "code": "card_declined", "decline_code": "generic_decline", "message": "Your card was declined.", "payment_intent": pi}}),
                )
                .header("stripe-should-retry", "false");
            }
            Answer::ok(pi)
        }
        _ => error(
            404,
            "invalid_request_error",
            "resource_missing",
            &format!("Unrecognized request URL ({} {}).", seen.method, seen.path),
        ),
    }
}

/// https://docs.stripe.com/api/pagination: `limit` and `starting_after`.
fn list(all: &[Value], seen: &Seen) -> Answer {
    let limit = seen
        .param("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(10)
        .clamp(1, 100);
    let start = match seen.param("starting_after") {
        Some(after) => match all.iter().position(|c| c["id"] == after.as_str()) {
            Some(i) => i + 1,
            None => {
                return error(
                    400,
                    "invalid_request_error",
                    "resource_missing",
                    &format!("No such object: '{after}'"),
                );
            }
        },
        None => 0,
    };
    let page: Vec<Value> = all.iter().skip(start).take(limit).cloned().collect();
    let has_more = start + page.len() < all.len();
    Answer::ok(json!({"object": "list", "url": seen.path, "has_more": has_more, "data": page}))
}
