//! Companies and notes on the HubSpot fake: what a "log this on the
//! customer's account" workflow (recipe 5) needs.
//!
//! Written from HubSpot's public docs (read 2026-11-30):
//! - search: `POST /crm/v3/objects/{type}/search` with `filterGroups`
//!   (groups ORed, the filters in a group ANDed), `properties` and `limit`;
//!   the answer is `{"total", "results": [{id, properties, createdAt,
//!   updatedAt, archived}]}`
//!   (https://developers.hubspot.com/docs/api-reference/search/guide);
//!   this fake knows the `EQ` operator only and refuses others with `400`;
//! - notes: `POST /crm/v3/objects/notes` with `properties` (`hs_timestamp`
//!   required, `hs_note_body`) and `associations` (`to.id`, `types`);
//!   `201` with the note
//!   (https://developers.hubspot.com/docs/api-reference/crm-notes-v3/guide).

use serde_json::{Map, Value, json};

use super::{HubSpot, Object, State, contact_json, error, stamp};
use crate::target::Answer;

/// One note created through the API.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    /// The note record (`hs_note_body`, `hs_timestamp`, …).
    pub object: Object,
    /// The `associations` as sent (`[{to: {id}, types: […]}]`).
    pub associations: Value,
}

impl HubSpot {
    /// Store a company with `properties` (e.g. `name`, `domain`) as if a
    /// HubSpot user had created it; its id.
    pub fn put_company(&self, properties: Value) -> String {
        let mut st = self.state();
        let id = st.next_id.to_string();
        st.next_id += 1;
        let updated_at = stamp(&mut st);
        st.companies.push(Object {
            id: id.clone(),
            properties: properties.as_object().cloned().unwrap_or_default(),
            updated_at,
        });
        id
    }

    /// The notes created, in order.
    pub fn notes(&self) -> Vec<Note> {
        self.state().notes.clone()
    }
}

/// A property's value as the search compares it (strings as they are,
/// anything else as JSON).
fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

/// Does `company` pass every filter of `group`? `Err` names an operator
/// the fake does not know.
fn matches(company: &Object, group: &Value) -> Result<bool, String> {
    for f in group["filters"].as_array().into_iter().flatten() {
        let op = f["operator"].as_str().unwrap_or_default();
        if op != "EQ" {
            return Err(op.to_owned());
        }
        let name = f["propertyName"].as_str().unwrap_or_default();
        let have = company.properties.get(name).map(text);
        if have.as_deref() != Some(text(&f["value"]).as_str()) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `POST /crm/v3/objects/companies/search`.
pub(super) fn search_companies(st: &State, body: &Value) -> Answer {
    let groups: Vec<&Value> = body["filterGroups"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let mut found: Vec<&Object> = Vec::new();
    for c in &st.companies {
        let mut hit = groups.is_empty();
        for g in &groups {
            match matches(c, g) {
                Ok(true) => hit = true,
                Ok(false) => {}
                Err(op) => {
                    return error(
                        400,
                        "VALIDATION_ERROR",
                        &format!("this fake does not know the search operator {op:?}"),
                    );
                }
            }
        }
        if hit {
            found.push(c);
        }
    }
    let total = found.len();
    let limit = body["limit"].as_u64().unwrap_or(10) as usize;
    let results: Vec<Value> = found.into_iter().take(limit).map(contact_json).collect();
    Answer::ok(json!({ "total": total, "results": results }))
}

/// `POST /crm/v3/objects/notes`.
pub(super) fn create_note(st: &mut State, body: &Value) -> Answer {
    let props: Map<String, Value> = body["properties"].as_object().cloned().unwrap_or_default();
    if !props.contains_key("hs_timestamp") {
        return error(
            400,
            "VALIDATION_ERROR",
            "Property values were not valid: [{\"isValid\":false,\"message\":\"hs_timestamp is required\",\"error\":\"REQUIRED_PROPERTY\",\"name\":\"hs_timestamp\"}]",
        );
    }
    let id = st.next_id.to_string();
    st.next_id += 1;
    let updated_at = stamp(st);
    let object = Object {
        id,
        properties: props,
        updated_at,
    };
    let mut out = contact_json(&object);
    out["associations"] = body["associations"].clone();
    st.notes.push(Note {
        object,
        associations: body["associations"].clone(),
    });
    Answer::status(201, out)
}
