//! A fake HubSpot CRM API (v3), for the `hubspot` preset and the recipes.
//!
//! Written from HubSpot's public docs (read 2026-11-30):
//! - private-app auth: `Authorization: Bearer <token>`; a bad token is `401`
//!   with `category: INVALID_AUTHENTICATION`
//!   (https://developers.hubspot.com/docs/api-reference/error-handling);
//! - limits: every answer carries `X-HubSpot-RateLimit-Max`,
//!   `-Remaining` and `-Interval-Milliseconds`; past the limit a `429` with
//!   `{"status":"error","errorType":"RATE_LIMIT","policyName":"SECONDLY",
//!   "category":"RATE_LIMITS",…}`
//!   (https://developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines);
//! - batch upsert of contacts by a unique property, at most 100 inputs,
//!   answering `200` when every input was written and `207 Multi-Status`
//!   with `results` and a separate `errors` list otherwise; each error's
//!   `context` is a map of string lists naming the inputs it concerns
//!   (https://developers.hubspot.com/docs/api-reference/legacy/crm/objects/contacts/batch/upsert-contacts);
//!   this fake names an input both by its id (`ids`) and by its 0-based
//!   position in the request (`index`); when no input was written it answers
//!   `400` with the first error (HubSpot answers a failed request whole);
//! - list contacts with `limit` and `after`, paged by `paging.next.after`
//!   (https://developers.hubspot.com/docs/api-reference/crm-contacts-v3/basic/get-crm-v3-objects-contacts);
//! - create a task (`POST /crm/v3/objects/tasks`) with `hubspot_owner_id`:
//!   an owner that is unknown or deactivated is a `400 VALIDATION_ERROR`
//!   naming the property (*Tasks*, https://developers.hubspot.com/docs/api-reference/crm-tasks-v3/guide;
//!   *Owners*, https://developers.hubspot.com/docs/api-reference/crm-owners-v3/guide,
//!   where a deactivated user's owner is `archived`);
//! - companies found by `POST /crm/v3/objects/companies/search` and notes
//!   created by `POST /crm/v3/objects/notes`: see [`engagements`].
//!
//! Invalid e-mail addresses (no `@`, or no `.` after it) fail validation as
//! HubSpot's `INVALID_EMAIL` does. Any path can still be scripted through
//! [`HubSpot::target`]; [`HubSpot::set_down`] is an outage of the whole API.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Map, Value, json};

use crate::target::{Answer, Seen, Target};

pub mod engagements;

/// The most inputs one batch call takes.
pub const BATCH_MAX: usize = 100;
/// `X-HubSpot-RateLimit-Max` this fake reports: 100 requests per 10 s (Free and Starter).
pub const RATE_MAX: u32 = 100;
/// When the fake's record clock starts: 2026-11-30T00:00:00Z.
pub const EPOCH_MS: i64 = 1_795_996_800_000;

/// One stored contact (or task).
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// HubSpot's record id.
    pub id: String,
    /// Its properties.
    pub properties: Map<String, Value>,
    /// `updatedAt`, as the API writes it.
    pub updated_at: String,
}

#[derive(Default)]
struct State {
    token: String,
    contacts: BTreeMap<String, Object>,
    tasks: Vec<Object>,
    companies: Vec<Object>,
    notes: Vec<engagements::Note>,
    inactive_owners: HashSet<String>,
    next_id: u64,
    ticks: i64,
    remaining: u32,
    limited: u32,
    down: bool,
}

/// The fake, on its own [`Target`].
#[derive(Clone)]
pub struct HubSpot {
    /// The server (every request recorded; paths can be scripted).
    pub target: Target,
    state: Arc<Mutex<State>>,
}

impl HubSpot {
    /// Start, accepting `token` as the private app's access token.
    pub async fn start(token: &str) -> HubSpot {
        let target = Target::start().await;
        let state = Arc::new(Mutex::new(State {
            token: token.to_owned(),
            next_id: 101,
            remaining: RATE_MAX,
            ..State::default()
        }));
        let st = state.clone();
        target.behave("/", move |seen| Some(answer(&st, seen)));
        HubSpot { target, state }
    }

    /// `http://127.0.0.1:<port>` (the preset's `base_url` replaced).
    pub fn url(&self) -> String {
        self.target.url()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The contacts stored, keyed by lower-case e-mail.
    pub fn contacts(&self) -> BTreeMap<String, Object> {
        self.state().contacts.clone()
    }

    /// The tasks created, in order.
    pub fn tasks(&self) -> Vec<Object> {
        self.state().tasks.clone()
    }

    /// Store a contact as if a HubSpot user had written it; its id.
    pub fn put_contact(&self, properties: Value) -> String {
        let mut st = self.state();
        let props = properties.as_object().cloned().unwrap_or_default();
        upsert(&mut st, props).0.id
    }

    /// Deactivate owner `id`: tasks assigned to it are refused.
    pub fn deactivate_owner(&self, id: &str) {
        self.state().inactive_owners.insert(id.to_owned());
    }

    /// The next `n` requests (after auth) are answered `429` (the secondly limit).
    pub fn limit_next(&self, n: u32) {
        self.state().limited += n;
    }

    /// While `down`, every request is answered `503` (an outage).
    pub fn set_down(&self, down: bool) {
        self.state().down = down;
    }

    /// Set `X-HubSpot-RateLimit-Remaining` for the next answer (it then counts down).
    pub fn set_remaining(&self, n: u32) {
        self.state().remaining = n;
    }
}

fn error(status: u16, category: &str, message: &str) -> Answer {
    Answer::status(
        status,
        json!({
            "status": "error",
            "message": message,
            "correlationId": "5b4a4b4c-0f0e-4d4f-9b9b-000000000000",
            "category": category,
        }),
    )
}

fn answer(state: &Mutex<State>, seen: &Seen) -> Answer {
    let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
    if st.down {
        return error(503, "SERVICE_UNAVAILABLE", "Service Unavailable");
    }
    if seen.header("authorization") != format!("Bearer {}", st.token) {
        return error(
            401,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found. This API supports OAuth 2.0 authentication.",
        );
    }
    if st.limited > 0 {
        st.limited -= 1;
        let mut a = error(429, "RATE_LIMITS", "You have reached your secondly limit.");
        a.body["errorType"] = json!("RATE_LIMIT");
        a.body["policyName"] = json!("SECONDLY");
        return limit_headers(a, 0);
    }
    st.remaining = st.remaining.saturating_sub(1);
    let remaining = st.remaining;
    let a = match (seen.method.as_str(), seen.path.as_str()) {
        ("POST", "/crm/v3/objects/contacts/batch/upsert") => batch_upsert(&mut st, &seen.body),
        ("GET", "/crm/v3/objects/contacts") => list(&st, seen),
        ("POST", "/crm/v3/objects/tasks") => create_task(&mut st, &seen.body),
        ("POST", "/crm/v3/objects/companies/search") => {
            engagements::search_companies(&st, &seen.body)
        }
        ("POST", "/crm/v3/objects/notes") => engagements::create_note(&mut st, &seen.body),
        _ => error(404, "OBJECT_NOT_FOUND", "Resource not found"),
    };
    limit_headers(a, remaining)
}

fn limit_headers(a: Answer, remaining: u32) -> Answer {
    a.header("X-HubSpot-RateLimit-Max", &RATE_MAX.to_string())
        .header("X-HubSpot-RateLimit-Remaining", &remaining.to_string())
        .header("X-HubSpot-RateLimit-Interval-Milliseconds", "10000")
}

fn stamp(st: &mut State) -> String {
    st.ticks += 1;
    let t = chrono::DateTime::from_timestamp_millis(EPOCH_MS + st.ticks * 1000).unwrap_or_default();
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn valid_email(e: &str) -> bool {
    e.split_once('@')
        .is_some_and(|(user, host)| !user.is_empty() && host.contains('.') && !host.ends_with('.'))
}

/// Writes `props` into the contact with its e-mail: (the contact, whether it is new).
fn upsert(st: &mut State, props: Map<String, Value>) -> (Object, bool) {
    let email = props
        .get("email")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_lowercase();
    let updated_at = stamp(st);
    let new = !st.contacts.contains_key(&email);
    if new {
        let id = st.next_id.to_string();
        st.next_id += 1;
        st.contacts.insert(
            email.clone(),
            Object {
                id,
                properties: Map::new(),
                updated_at: updated_at.clone(),
            },
        );
    }
    let c = st.contacts.get_mut(&email).expect("just inserted");
    c.properties.extend(props);
    c.properties.insert("email".into(), json!(email));
    c.updated_at = updated_at;
    (c.clone(), new)
}

fn contact_json(c: &Object) -> Value {
    json!({
        "id": c.id,
        "properties": c.properties,
        "createdAt": c.updated_at,
        "updatedAt": c.updated_at,
        "archived": false,
    })
}

fn batch_upsert(st: &mut State, body: &Value) -> Answer {
    let Some(inputs) = body["inputs"].as_array() else {
        return error(
            400,
            "VALIDATION_ERROR",
            "Invalid input JSON: `inputs` is required",
        );
    };
    if inputs.len() > BATCH_MAX {
        return error(
            400,
            "VALIDATION_ERROR",
            &format!(
                "Batch size {} exceeds the limit of {BATCH_MAX}",
                inputs.len()
            ),
        );
    }
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let id = input["id"].as_str().unwrap_or_default();
        let mut props = input["properties"].as_object().cloned().unwrap_or_default();
        if input["idProperty"] == "email" {
            props.insert("email".into(), json!(id));
        }
        let email = props
            .get("email")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if !valid_email(&email) {
            errors.push(json!({
                "status": "error",
                "category": "VALIDATION_ERROR",
                "message": format!("Property values were not valid: [{{\"isValid\":false,\"message\":\"Email address {email} is invalid\",\"error\":\"INVALID_EMAIL\",\"name\":\"email\"}}]"),
                "context": { "ids": [id], "index": [i.to_string()] },
            }));
            continue;
        }
        let (c, new) = upsert(st, props);
        let mut r = contact_json(&c);
        r["new"] = json!(new);
        results.push(r);
    }
    if results.is_empty() && !errors.is_empty() {
        return Answer::status(400, errors.swap_remove(0));
    }
    let status = if errors.is_empty() { 200 } else { 207 };
    let mut body = json!({
        "status": "COMPLETE",
        "results": results,
        "startedAt": "2026-11-30T00:00:00.000Z",
        "completedAt": "2026-11-30T00:00:00.100Z",
    });
    if !errors.is_empty() {
        body["numErrors"] = json!(errors.len());
        body["errors"] = Value::Array(errors);
    }
    Answer::status(status, body)
}

fn list(st: &State, seen: &Seen) -> Answer {
    let limit: usize = seen
        .param("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(10)
        .clamp(1, 100);
    let after: usize = seen
        .param("after")
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    // Requested properties come back, `null` when a contact has none; by
    // default email, firstname and lastname.
    let wanted = seen
        .param("properties")
        .unwrap_or_else(|| "email,firstname,lastname".into());
    let all: Vec<&Object> = st.contacts.values().collect();
    let page: Vec<Value> = all
        .iter()
        .skip(after)
        .take(limit)
        .map(|c| {
            let mut c = (*c).clone();
            for p in wanted.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                c.properties.entry(p.to_owned()).or_insert(Value::Null);
            }
            contact_json(&c)
        })
        .collect();
    let mut body = json!({ "results": page });
    if after + limit < all.len() {
        let next = (after + limit).to_string();
        body["paging"] = json!({ "next": {
            "after": next,
            "link": format!("/crm/v3/objects/contacts?after={next}&limit={limit}"),
        }});
    }
    Answer::ok(body)
}

fn create_task(st: &mut State, body: &Value) -> Answer {
    let props = body["properties"].as_object().cloned().unwrap_or_default();
    let owner = props
        .get("hubspot_owner_id")
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned));
    if let Some(owner) = owner.filter(|o| st.inactive_owners.contains(o)) {
        return error(
            400,
            "VALIDATION_ERROR",
            &format!(
                "Property values were not valid: [{{\"isValid\":false,\"message\":\"{owner} is not a valid owner id (the owner is deactivated)\",\"error\":\"INVALID_OWNER_ID\",\"name\":\"hubspot_owner_id\"}}]"
            ),
        );
    }
    let id = st.next_id.to_string();
    st.next_id += 1;
    let updated_at = stamp(st);
    let task = Object {
        id,
        properties: props,
        updated_at,
    };
    st.tasks.push(task.clone());
    let mut out = contact_json(&task);
    out["associations"] = body["associations"].clone();
    Answer::status(201, out)
}
