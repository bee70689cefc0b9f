//! A fake QuickBooks Online Accounting API
//! (`https://quickbooks.api.intuit.com/v3/company/<realmId>`) and its OAuth
//! 2.0 token endpoint, as Intuit's docs describe them (read 2026-11-30):
//!
//! - tokens: `POST /oauth2/v1/tokens/bearer` with `grant_type=refresh_token`,
//!   the client id and secret as HTTP Basic; each answer carries a new
//!   `refresh_token` and the one used stops working (`400 invalid_grant`);
//!   a bad client is `401 invalid_client` (*OAuth 2.0*,
//!   https://developer.intuit.com/app/developer/qbo/docs/develop/authentication-and-authorization/oauth-2.0;
//!   *Refresh access tokens*, https://developer.intuit.com/app/developer/qbo/docs/develop/authentication-and-authorization/faq);
//! - API auth: `Authorization: Bearer <access token>`; an unknown or expired
//!   one is `401` with a `Fault` of code `3200` (AuthenticationFailed);
//! - errors are `{"Fault": {"Error": [{"Message", "Detail", "code"}], "type"}}`:
//!   `400 ValidationFault` (`6240` duplicate name), `429` `ThrottleExceeded`
//!   (`003001`) past 500 requests a minute per company (*Error codes*,
//!   https://developer.intuit.com/app/developer/qbo/docs/develop/troubleshooting/error-codes;
//!   *API call limits*, https://developer.intuit.com/app/developer/qbo/docs/learn/rest-api-features#limits-and-throttles);
//! - query: `GET /query?query=select * from Customer where PrimaryEmailAddr = '…'`
//!   answers `{"QueryResponse": {"Customer": [...]}}`, or `{"QueryResponse": {}}`
//!   when nothing matches (*Data queries*, https://developer.intuit.com/app/developer/qbo/docs/learn/explore-the-quickbooks-online-api/data-queries);
//! - create: `POST /customer`, `POST /invoice` answer `{"Customer": {...}}` /
//!   `{"Invoice": {...}}`; a customer's `DisplayName` must be unique (`6240`);
//! - batch: `POST /batch` with up to 30 `BatchItemRequest` items, each with a
//!   `bId` and an `operation`; `BatchItemResponse` answers each by `bId`
//!   with the entity or a `Fault` (*Batch*, https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/batch);
//! - webhooks: `intuit-signature` = base64 HMAC-SHA256 of the body keyed by
//!   the app's verifier token (*Managing webhooks notifications*,
//!   https://developer.intuit.com/app/developer/qbo/docs/develop/webhooks/managing-webhooks-notifications).

use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine as _;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

use crate::target::{Answer, Seen, Target};

/// Most operations in one batch call.
pub const BATCH_MAX: usize = 30;

#[derive(Default)]
struct State {
    client: (String, String),
    refresh_token: String,
    access_tokens: Vec<String>,
    issued: u64,
    customers: Vec<Value>,
    invoices: Vec<Value>,
    throttle: usize,
}

/// The fake. Every request is also in [`QuickBooks::target`].
#[derive(Clone)]
pub struct QuickBooks {
    /// The recording server underneath.
    pub target: Target,
    state: Arc<Mutex<State>>,
}

impl QuickBooks {
    /// Start on 127.0.0.1 for the app `client_id`/`client_secret`, whose
    /// first refresh token is `refresh_token`.
    pub async fn start(client_id: &str, client_secret: &str, refresh_token: &str) -> QuickBooks {
        let target = Target::start().await;
        let state = Arc::new(Mutex::new(State {
            client: (client_id.to_owned(), client_secret.to_owned()),
            refresh_token: refresh_token.to_owned(),
            ..State::default()
        }));
        let st = state.clone();
        target.behave("/", move |seen| {
            let mut st = st.lock().unwrap_or_else(|p| p.into_inner());
            Some(if seen.path == "/oauth2/v1/tokens/bearer" {
                token(&mut st, seen)
            } else {
                api(&mut st, seen)
            })
        });
        QuickBooks { target, state }
    }

    /// The token endpoint's URL.
    pub fn token_url(&self) -> String {
        format!("{}/oauth2/v1/tokens/bearer", self.target.url())
    }

    /// The API's base URL for company `realm` (`…/v3/company/<realm>`).
    pub fn company_url(&self, realm: &str) -> String {
        format!("{}/v3/company/{realm}", self.target.url())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The refresh token that works now (the latest issued).
    pub fn refresh_token(&self) -> String {
        self.state().refresh_token.clone()
    }

    /// Make every access token issued so far stop working (they expired).
    pub fn expire_access_tokens(&self) {
        self.state().access_tokens.clear();
    }

    /// Answer the next `n` API calls `429 ThrottleExceeded`.
    pub fn throttle_next(&self, n: usize) {
        self.state().throttle += n;
    }

    /// Add a customer, as if made in QuickBooks; its id.
    pub fn seed_customer(&self, name: &str, email: &str) -> String {
        let mut st = self.state();
        let id = (st.customers.len() + 1).to_string();
        st.customers
            .push(json!({"Id": id, "DisplayName": name, "PrimaryEmailAddr": {"Address": email}}));
        id
    }

    /// Every customer, in order of creation.
    pub fn customers(&self) -> Vec<Value> {
        self.state().customers.clone()
    }

    /// Every invoice, in order of creation.
    pub fn invoices(&self) -> Vec<Value> {
        self.state().invoices.clone()
    }
}

/// The `intuit-signature` header for `body`, keyed by `verifier_token`.
pub fn signature(verifier_token: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(verifier_token.as_bytes())
        .expect("HMAC takes any key");
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// A `Fault` body with one error.
pub fn fault(kind: &str, code: &str, message: &str) -> Value {
    json!({"Fault": {"Error": [{"Message": message, "Detail": message, "code": code}], "type": kind}, "time": "2026-11-30T10:00:00.000-08:00"})
}

fn token(st: &mut State, seen: &Seen) -> Answer {
    let b64 = base64::engine::general_purpose::STANDARD;
    let want = format!(
        "Basic {}",
        b64.encode(format!("{}:{}", st.client.0, st.client.1))
    );
    if seen.header("authorization") != want {
        return Answer::status(401, json!({"error": "invalid_client"}));
    }
    if seen.form("grant_type").as_deref() != Some("refresh_token")
        || seen.form("refresh_token").as_deref() != Some(st.refresh_token.as_str())
    {
        return Answer::status(400, json!({"error": "invalid_grant"}));
    }
    st.issued += 1;
    let access = format!("qb-at-{}", st.issued);
    st.refresh_token = format!("qb-rt-{}", st.issued);
    st.access_tokens.push(access.clone());
    Answer::ok(json!({
        "token_type": "bearer", "access_token": access, "expires_in": 3600,
        "refresh_token": st.refresh_token, "x_refresh_token_expires_in": 8_726_400
    }))
}

fn api(st: &mut State, seen: &Seen) -> Answer {
    let bearer = seen
        .header("authorization")
        .strip_prefix("Bearer ")
        .unwrap_or("");
    if !st.access_tokens.iter().any(|t| t == bearer) {
        return Answer::status(
            401,
            fault(
                "AUTHENTICATION",
                "3200",
                "message=AuthenticationFailed; errorCode=003200; statusCode=401",
            ),
        );
    }
    if st.throttle > 0 {
        st.throttle -= 1;
        return Answer::status(
            429,
            fault(
                "SERVICE",
                "003001",
                "message=ThrottleExceeded; errorCode=003001; statusCode=429",
            ),
        );
    }
    // /v3/company/<realm>/<entity>
    let entity = seen.path.splitn(5, '/').nth(4).unwrap_or("");
    match (seen.method.as_str(), entity) {
        ("GET", "query") => query(st, &seen.param("query").unwrap_or_default()),
        ("POST", "customer") => wrap(create_customer(st, &seen.body), "Customer"),
        ("POST", "invoice") => wrap(create_invoice(st, &seen.body), "Invoice"),
        ("POST", "batch") => batch(st, &seen.body),
        _ => Answer::status(
            400,
            fault(
                "ValidationFault",
                "4000",
                &format!("unsupported operation {} {}", seen.method, seen.path),
            ),
        ),
    }
}

fn wrap(made: Result<Value, Value>, name: &str) -> Answer {
    match made {
        Ok(v) => Answer::ok(json!({ name: v, "time": "2026-11-30T10:00:00.000-08:00" })),
        Err(f) => Answer::status(400, f),
    }
}

fn create_customer(st: &mut State, body: &Value) -> Result<Value, Value> {
    let Some(name) = body["DisplayName"].as_str().filter(|n| !n.is_empty()) else {
        return Err(fault(
            "ValidationFault",
            "2020",
            "Required param missing, need to supply the required value for the API: DisplayName",
        ));
    };
    if st.customers.iter().any(|c| c["DisplayName"] == name) {
        return Err(fault(
            "ValidationFault",
            "6240",
            "Duplicate Name Exists Error",
        ));
    }
    let mut c = body.clone();
    c["Id"] = json!((st.customers.len() + 1).to_string());
    st.customers.push(c.clone());
    Ok(c)
}

fn create_invoice(st: &mut State, body: &Value) -> Result<Value, Value> {
    let customer = body["CustomerRef"]["value"].as_str().unwrap_or("");
    if !st.customers.iter().any(|c| c["Id"] == customer) {
        return Err(fault(
            "ValidationFault",
            "2500",
            &format!("Invalid Reference Id: Customer {customer:?}"),
        ));
    }
    if body["Line"].as_array().is_none_or(Vec::is_empty) {
        return Err(fault(
            "ValidationFault",
            "2020",
            "Required param missing, need to supply the required value for the API: Line",
        ));
    }
    let mut inv = body.clone();
    inv["Id"] = json!((st.invoices.len() + 100).to_string());
    st.invoices.push(inv.clone());
    Ok(inv)
}

/// `select * from Customer where <Field> = '<value>'` (the one shape used here).
fn query(st: &State, q: &str) -> Answer {
    let lower = q.to_ascii_lowercase();
    if !lower.starts_with("select * from customer where ") {
        return Answer::status(
            400,
            fault(
                "ValidationFault",
                "4000",
                "QueryParserError: unsupported query",
            ),
        );
    }
    let cond = &q["select * from customer where ".len()..];
    let Some((field, value)) = cond.split_once('=') else {
        return Answer::status(
            400,
            fault("ValidationFault", "4000", "QueryParserError: no condition"),
        );
    };
    let value = value.trim().trim_matches('\'').replace("\\'", "'");
    let found: Vec<Value> = st
        .customers
        .iter()
        .filter(|c| match field.trim() {
            "PrimaryEmailAddr" => c["PrimaryEmailAddr"]["Address"] == value.as_str(),
            f => c[f] == value.as_str(),
        })
        .cloned()
        .collect();
    let resp = if found.is_empty() {
        json!({})
    } else {
        json!({"Customer": found, "startPosition": 1, "maxResults": found.len()})
    };
    Answer::ok(json!({"QueryResponse": resp, "time": "2026-11-30T10:00:00.000-08:00"}))
}

fn batch(st: &mut State, body: &Value) -> Answer {
    let items = body["BatchItemRequest"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if items.is_empty() || items.len() > BATCH_MAX {
        return Answer::status(
            400,
            fault(
                "ValidationFault",
                "4001",
                &format!(
                    "a batch holds 1 to {BATCH_MAX} operations, not {}",
                    items.len()
                ),
            ),
        );
    }
    let answers: Vec<Value> = items
        .iter()
        .map(|item| {
            let bid = item["bId"].clone();
            let made = match item["operation"].as_str() {
                Some("create") if item.get("Invoice").is_some() => {
                    create_invoice(st, &item["Invoice"]).map(|v| ("Invoice", v))
                }
                Some("create") if item.get("Customer").is_some() => {
                    create_customer(st, &item["Customer"]).map(|v| ("Customer", v))
                }
                _ => Err(fault(
                    "ValidationFault",
                    "4000",
                    "unsupported batch operation",
                )),
            };
            match made {
                Ok((name, v)) => json!({"bId": bid, name: v}),
                Err(f) => json!({"bId": bid, "Fault": f["Fault"]}),
            }
        })
        .collect();
    Answer::ok(json!({"BatchItemResponse": answers, "time": "2026-11-30T10:00:00.000-08:00"}))
}
