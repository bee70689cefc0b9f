//! A fake Salesforce REST API (one org's instance), for the `salesforce`
//! preset and the recipes.
//!
//! Written from Salesforce's public docs (read 2026-11-30):
//! - OAuth 2.0 refresh-token flow at `/services/oauth2/token`
//!   (`grant_type=refresh_token`, `client_id`, `client_secret`,
//!   `refresh_token`), answering `access_token`, `instance_url`,
//!   `token_type`, `issued_at` — no `expires_in`; a bad grant is `400`
//!   `{"error":"invalid_grant",…}`
//!   (*OAuth 2.0 Refresh Token Flow*, https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_refresh_token_flow.htm);
//! - errors are a JSON **array** `[{"message","errorCode"}]`; an expired or
//!   revoked session is `401 INVALID_SESSION_ID`, the org's API request
//!   limit is `403 REQUEST_LIMIT_EXCEEDED`; every answer carries
//!   `Sforce-Limit-Info: api-usage=<used>/<limit>`
//!   (*Status Codes and Error Responses*,
//!   https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm;
//!   *Limits*, https://developer.salesforce.com/docs/atlas.en-us.salesforce_app_limits_cheatsheet.meta/salesforce_app_limits_cheatsheet/salesforce_app_limits_platform_api.htm);
//! - SOQL query `GET /services/data/vXX.X/query?q=…` answering
//!   `{totalSize, done, nextRecordsUrl?, records}`, the next batch at
//!   `nextRecordsUrl` (*Execute a SOQL Query*,
//!   https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_query.htm);
//!   this fake ignores the query text and returns every Contact in
//!   `LastModifiedDate` order, [`Salesforce::page_size`] per batch;
//! - sObject Collections upsert by an external id,
//!   `PATCH /services/data/vXX.X/composite/sobjects/Contact/<Field>` with
//!   `{"allOrNone": false, "records": [...]}`, at most 200 records,
//!   answering `200` with one `{id, success, errors, created}` per record
//!   **in request order** (*Upsert Multiple Records*,
//!   https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_sobjects_collections_upsert.htm).
//!
//! A record whose `Email` has no `@` fails with `INVALID_EMAIL_ADDRESS`.

use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Map, Value, json};

use crate::target::{Answer, Seen, Target};

/// API version of the paths this fake serves.
pub const VERSION: &str = "v62.0";
/// The most records one collections call takes.
pub const COLLECTION_MAX: usize = 200;
/// The daily API request allocation it reports.
pub const DAILY_LIMIT: u32 = 15_000;
/// The fields every query answer carries (the fake does not read the SELECT list).
pub const SELECTED: &[&str] = &[
    "Email",
    "Sync_Email__c",
    "FirstName",
    "LastName",
    "Phone",
    "HubSpot_Lifecycle_Stage__c",
];
/// When the fake's record clock starts: 2026-11-30T00:00:00Z.
pub const EPOCH_MS: i64 = 1_795_996_800_000;

#[derive(Default)]
struct State {
    client_id: String,
    client_secret: String,
    refresh_token: String,
    access_tokens: Vec<String>,
    issued: u32,
    contacts: Vec<Map<String, Value>>,
    ticks: i64,
    used: u32,
    limited: u32,
    page_size: usize,
}

/// The fake, on its own [`Target`].
#[derive(Clone)]
pub struct Salesforce {
    /// The server (every request recorded; paths can be scripted).
    pub target: Target,
    state: Arc<Mutex<State>>,
}

impl Salesforce {
    /// Start for a connected app `client_id`/`client_secret` holding `refresh_token`.
    pub async fn start(client_id: &str, client_secret: &str, refresh_token: &str) -> Salesforce {
        let target = Target::start().await;
        let state = Arc::new(Mutex::new(State {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            refresh_token: refresh_token.to_owned(),
            page_size: 2000,
            ..State::default()
        }));
        let st = state.clone();
        let base = target.url();
        target.behave("/", move |seen| Some(answer(&st, &base, seen)));
        Salesforce { target, state }
    }

    /// `http://127.0.0.1:<port>`: the instance URL the user gives as `base_url`.
    pub fn url(&self) -> String {
        self.target.url()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records per query batch (Salesforce's default is 2,000).
    pub fn page_size(&self, n: usize) {
        self.state().page_size = n.max(1);
    }

    /// The stored contacts, in insertion order.
    pub fn contacts(&self) -> Vec<Map<String, Value>> {
        self.state().contacts.clone()
    }

    /// A stored contact by `Email` (case-insensitive).
    pub fn contact(&self, email: &str) -> Option<Map<String, Value>> {
        let email = email.to_lowercase();
        self.contacts().into_iter().find(|c| {
            c.get("Email")
                .and_then(Value::as_str)
                .is_some_and(|e| e.to_lowercase() == email)
        })
    }

    /// Store a contact as if a Salesforce user had written it; its `Id`.
    pub fn put_contact(&self, fields: Value) -> String {
        let mut st = self.state();
        let fields = fields.as_object().cloned().unwrap_or_default();
        let key = fields.get("Email").cloned().unwrap_or(Value::Null);
        write(&mut st, "Email", &key, fields).0
    }

    /// Every access token issued so far stops working (`401 INVALID_SESSION_ID`).
    pub fn expire_sessions(&self) {
        self.state().access_tokens.clear();
    }

    /// How many access tokens the token endpoint issued.
    pub fn tokens_issued(&self) -> u32 {
        self.state().issued
    }

    /// The next `n` API requests are answered `403 REQUEST_LIMIT_EXCEEDED`.
    pub fn limit_next(&self, n: u32) {
        self.state().limited += n;
    }
}

fn errors(status: u16, code: &str, message: &str) -> Answer {
    Answer::status(status, json!([{ "message": message, "errorCode": code }]))
}

fn answer(state: &Mutex<State>, base: &str, seen: &Seen) -> Answer {
    let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
    if seen.path == "/services/oauth2/token" {
        return token(&mut st, base, seen);
    }
    let bearer = seen
        .header("authorization")
        .strip_prefix("Bearer ")
        .unwrap_or_default();
    if !st.access_tokens.iter().any(|t| t == bearer) {
        return errors(401, "INVALID_SESSION_ID", "Session expired or invalid");
    }
    if st.limited > 0 {
        st.limited -= 1;
        return errors(
            403,
            "REQUEST_LIMIT_EXCEEDED",
            "TotalRequests Limit exceeded.",
        );
    }
    st.used += 1;
    let usage = format!("api-usage={}/{DAILY_LIMIT}", st.used);
    let data = format!("/services/data/{VERSION}");
    let Some(rest) = seen.path.strip_prefix(&data) else {
        return errors(404, "NOT_FOUND", "The requested resource does not exist");
    };
    let a = match (seen.method.as_str(), rest) {
        ("GET", "/query") => query(&st, 0),
        ("GET", r) if r.starts_with("/query/01gFERRY-") => {
            let offset = r
                .trim_start_matches("/query/01gFERRY-")
                .parse()
                .unwrap_or(0);
            query(&st, offset)
        }
        ("PATCH", r) if r.starts_with("/composite/sobjects/Contact/") => {
            let field = r
                .trim_start_matches("/composite/sobjects/Contact/")
                .to_owned();
            collection_upsert(&mut st, &field, &seen.body)
        }
        _ => errors(404, "NOT_FOUND", "The requested resource does not exist"),
    };
    a.header("Sforce-Limit-Info", &usage)
}

fn token(st: &mut State, base: &str, seen: &Seen) -> Answer {
    let ok = seen.form("grant_type").as_deref() == Some("refresh_token")
        && seen.form("client_id").as_deref() == Some(st.client_id.as_str())
        && seen.form("client_secret").as_deref() == Some(st.client_secret.as_str())
        && seen.form("refresh_token").as_deref() == Some(st.refresh_token.as_str());
    if !ok {
        return Answer::status(
            400,
            json!({"error": "invalid_grant", "error_description": "expired access/refresh token"}),
        );
    }
    st.issued += 1;
    let t = format!("00DFERRY!session-{}", st.issued);
    st.access_tokens.push(t.clone());
    Answer::ok(json!({
        "access_token": t,
        "instance_url": base,
        "id": format!("{base}/id/00DFERRY/005FERRY"),
        "token_type": "Bearer",
        "issued_at": "1795996800000",
        "signature": "fake",
    }))
}

fn stamp(st: &mut State) -> String {
    st.ticks += 1;
    let t = chrono::DateTime::from_timestamp_millis(EPOCH_MS + st.ticks * 1000).unwrap_or_default();
    t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

fn query(st: &State, offset: usize) -> Answer {
    let mut all = st.contacts.clone();
    all.sort_by(|a, b| {
        let k = |c: &Map<String, Value>| {
            c.get("LastModifiedDate")
                .cloned()
                .unwrap_or(Value::Null)
                .to_string()
        };
        k(a).cmp(&k(b))
    });
    let records: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(st.page_size)
        .map(|c| {
            let mut r = c.clone();
            // The fields a query selects are always there, `null` when empty.
            for f in SELECTED {
                r.entry((*f).to_owned()).or_insert(Value::Null);
            }
            let id = r.get("Id").cloned().unwrap_or(Value::Null);
            r.insert(
                "attributes".into(),
                json!({"type": "Contact", "url": format!("/services/data/{VERSION}/sobjects/Contact/{}", id.as_str().unwrap_or_default())}),
            );
            Value::Object(r)
        })
        .collect();
    let next = offset + st.page_size;
    let done = next >= all.len();
    let mut body = json!({ "totalSize": all.len(), "done": done, "records": records });
    if !done {
        body["nextRecordsUrl"] = json!(format!("/services/data/{VERSION}/query/01gFERRY-{next}"));
    }
    Answer::ok(body)
}

/// Upserts `fields` on `field == key`: (its Id, whether it was created).
fn write(st: &mut State, field: &str, key: &Value, fields: Map<String, Value>) -> (String, bool) {
    let when = stamp(st);
    let at = st
        .contacts
        .iter()
        .position(|c| c.get(field) == Some(key) && !key.is_null());
    let created = at.is_none();
    let i = match at {
        Some(i) => i,
        None => {
            let id = format!("003FERRY{:07}", st.contacts.len() + 1);
            st.contacts
                .push(Map::from_iter([("Id".to_owned(), json!(id))]));
            st.contacts.len() - 1
        }
    };
    let c = &mut st.contacts[i];
    c.extend(
        fields
            .into_iter()
            .filter(|(k, _)| k != "attributes" && k != "Id"),
    );
    c.insert("LastModifiedDate".into(), json!(when));
    (c["Id"].as_str().unwrap_or_default().to_owned(), created)
}

fn collection_upsert(st: &mut State, field: &str, body: &Value) -> Answer {
    let Some(records) = body["records"].as_array() else {
        return errors(400, "JSON_PARSER_ERROR", "records: required");
    };
    if records.len() > COLLECTION_MAX {
        return errors(
            400,
            "EXCEEDED_ID_LIMIT",
            &format!(
                "record limit reached. cannot submit more than {COLLECTION_MAX} records into this call"
            ),
        );
    }
    if body["allOrNone"] != json!(false) {
        // Not modelled: a rollback of the whole call.
        return errors(
            400,
            "INVALID_FIELD",
            "this fake only serves allOrNone: false",
        );
    }
    let out: Vec<Value> = records
        .iter()
        .map(|r| {
            let fields = r.as_object().cloned().unwrap_or_default();
            let key = fields.get(field).cloned().unwrap_or(Value::Null);
            let email = fields.get("Email").and_then(Value::as_str).unwrap_or("x@y");
            if key.is_null() {
                return json!({"success": false, "errors": [{"statusCode": "MISSING_ARGUMENT", "message": format!("{field} not specified"), "fields": [field]}]});
            }
            if !email.contains('@') {
                return json!({"success": false, "errors": [{"statusCode": "INVALID_EMAIL_ADDRESS", "message": format!("Email: invalid email address: {email}"), "fields": ["Email"]}]});
            }
            let (id, created) = write(st, field, &key, fields);
            json!({"id": id, "success": true, "errors": [], "created": created})
        })
        .collect();
    Answer::ok(Value::Array(out))
}
