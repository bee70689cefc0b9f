//! Batch answers keyed by id or by position rather than in item order:
//! HubSpot's batch upsert answers `200`/`207` with `results` (the records
//! that worked, in any order) and a separate `errors` list whose entries name
//! what they concern in their `context` — the ids (`errors[].context.ids`) or
//! the position of the input in the request. Results are matched to items
//! by id (`batch.item_id` + `batch.result_id`) or by index
//! (`batch.result_index`, 0-based); errors by id (`batch.error_ids`) and/or
//! by index (`batch.error_index`). An item named by neither a result nor an
//! error fails, since its fate is unknown.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::config::Batch;
use crate::template::{Templates, context};

/// The status an item named in `errors` counts as when `error_status` says nothing.
pub const DEFAULT_ERROR_STATUS: u16 = 400;

/// One item's part of a keyed answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Share {
    /// A result names it: its body (judged by `item_status` when set, else a success).
    Result(Value),
    /// An error names it: the error entry and the status it counts as.
    Error(Value, u16),
    /// Nothing in the answer names it (or its id could not be read): why.
    Unmatched(String),
}

/// What an answer entry names an item by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    /// The item's id (`item_id`).
    Id(String),
    /// The item's 0-based position in the request.
    Index(usize),
}

/// Whether `batch` matches results to items by id or index rather than in order.
pub fn is_keyed(batch: &Batch) -> bool {
    batch.result_id.is_some() || batch.result_index.is_some()
}

/// Match `items` (their bodies) to `results` and the `errors` in `response`.
pub fn keyed(
    t: &Templates,
    batch: &Batch,
    response: &Value,
    results: Vec<Value>,
    items: &[Value],
) -> Result<Vec<Share>, String> {
    let eval = |expr: &str, name: &str, v: &Value| -> Option<Value> {
        t.eval_json(expr, &context(&json!({ name: v }))).ok()
    };
    let result_key = |r: &Value| -> Option<Key> {
        match (&batch.result_id, &batch.result_index) {
            (Some(expr), _) => eval(expr, "result", r)
                .as_ref()
                .and_then(key_text)
                .map(Key::Id),
            (None, Some(expr)) => eval(expr, "result", r)
                .as_ref()
                .and_then(index)
                .map(Key::Index),
            (None, None) => None,
        }
    };
    if batch.result_id.is_some() && batch.item_id.is_none() {
        return Err("batch: results matched by id need both `item_id` and `result_id`".into());
    }
    if !is_keyed(batch) {
        return Err("batch: keyed results need `result_id` or `result_index`".into());
    }
    let mut by_key: HashMap<Key, Value> = HashMap::new();
    for r in results {
        if let Some(k) = result_key(&r) {
            by_key.insert(k, r);
        }
    }
    let mut errors_by_key: HashMap<Key, (Value, u16)> = HashMap::new();
    if let Some(errors_expr) = &batch.errors {
        let errors = match t.eval_json(errors_expr, &context(&json!({ "response": response }))) {
            Ok(Value::Array(e)) => e,
            Ok(Value::Null) => Vec::new(),
            Ok(other) => return Err(format!("batch.errors: expected a list, got {other}")),
            Err(e) => return Err(format!("batch.errors: {e}")),
        };
        for e in errors {
            let status = batch
                .error_status
                .as_ref()
                .and_then(|expr| eval(expr, "error", &e))
                .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
                .and_then(|s| u16::try_from(s).ok())
                .unwrap_or(DEFAULT_ERROR_STATUS);
            let mut keys: Vec<Key> = Vec::new();
            if let Some(expr) = &batch.error_ids {
                keys.extend(
                    one_or_many(eval(expr, "error", &e))
                        .iter()
                        .filter_map(key_text)
                        .map(Key::Id),
                );
            }
            if let Some(expr) = &batch.error_index {
                keys.extend(
                    one_or_many(eval(expr, "error", &e))
                        .iter()
                        .filter_map(index)
                        .map(Key::Index),
                );
            }
            for k in keys {
                errors_by_key.insert(k, (e.clone(), status));
            }
        }
    }
    Ok(items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let id = batch
                .item_id
                .as_ref()
                .map(|expr| eval(expr, "item", item).as_ref().and_then(key_text));
            let mut keys = Vec::with_capacity(2);
            if let Some(Some(k)) = &id {
                keys.push(Key::Id(k.clone()));
            }
            keys.push(Key::Index(i));
            if let Some((e, status)) = keys.iter().find_map(|k| errors_by_key.remove(k)) {
                return Share::Error(e, status);
            }
            if let Some(r) = keys.iter().find_map(|k| by_key.remove(k)) {
                return Share::Result(r);
            }
            match id {
                Some(None) if batch.result_id.is_some() => Share::Unmatched(format!(
                    "batch.item_id: no id in the item {}",
                    crate::outbound::excerpt(item, 200)
                )),
                Some(Some(k)) => Share::Unmatched(format!(
                    "the batch answer has no result and no error for item {k:?} (index {i})"
                )),
                _ => Share::Unmatched(format!(
                    "the batch answer has no result and no error for the item at index {i}"
                )),
            }
        })
        .collect())
}

/// A value or a list of values, as a list (`null` or nothing: empty).
fn one_or_many(v: Option<Value>) -> Vec<Value> {
    match v {
        Some(Value::Array(vs)) => vs,
        Some(Value::Null) | None => Vec::new(),
        Some(v) => vec![v],
    }
}

/// An id as text: a string as is, a number written out; anything else is no id.
fn key_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A 0-based index: a non-negative integer, or a string holding one (HubSpot's
/// `context` values are strings).
fn index(v: &Value) -> Option<usize> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hubspot_207_results_and_errors_are_matched_by_id() {
        let batch: Batch = serde_json::from_value(json!({
            "max_items": 10,
            "path": "/batch/upsert",
            "results": "response.body.results",
            "item_id": "item.id",
            "result_id": "result.properties.email",
            "errors": "response.body.errors",
            "error_ids": "error.context.ids",
        }))
        .unwrap();
        let response = json!({"status": 207, "body": {
            "results": [
                {"id": "901", "properties": {"email": "c@x.io"}},
                {"id": "900", "properties": {"email": "a@x.io"}}
            ],
            "errors": [{"category": "VALIDATION_ERROR", "message": "bad email", "context": {"ids": ["b@x"]}}]
        }});
        let results = response["body"]["results"].as_array().unwrap().clone();
        let items = [
            json!({"id": "a@x.io"}),
            json!({"id": "b@x"}),
            json!({"id": "c@x.io"}),
            json!({"id": "d@x.io"}),
        ];
        let t = Templates::new();
        let shares = keyed(&t, &batch, &response, results, &items).unwrap();
        assert!(matches!(&shares[0], Share::Result(r) if r["id"] == "900"));
        assert!(matches!(&shares[1], Share::Error(e, 400) if e["message"] == "bad email"));
        assert!(matches!(&shares[2], Share::Result(r) if r["id"] == "901"));
        assert!(matches!(&shares[3], Share::Unmatched(why) if why.contains("d@x.io")));
    }

    fn batch(extra: Value) -> Batch {
        let mut b = json!({"max_items": 10, "path": "/batch", "results": "response.body.results"});
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value(b).unwrap()
    }

    #[test]
    fn errors_naming_an_input_index_fail_that_item_and_results_match_by_id() {
        let batch = batch(json!({
            "item_id": "item.id",
            "result_id": "result.properties.email",
            "errors": "response.body.errors",
            "error_index": "error.context.index",
        }));
        // HubSpot's `context` values are lists of strings.
        let response = json!({"status": 207, "body": {
            "results": [{"id": "901", "properties": {"email": "c@x.io"}}],
            "errors": [{"message": "Property values were not valid", "context": {"index": ["1"]}}]
        }});
        let results = response["body"]["results"].as_array().unwrap().clone();
        let items = [
            json!({"id": "a@x.io"}),
            json!({"id": "b@x"}),
            json!({"id": "c@x.io"}),
        ];
        let shares = keyed(&Templates::new(), &batch, &response, results, &items).unwrap();
        assert!(
            matches!(&shares[0], Share::Unmatched(why) if why.contains("a@x.io") && why.contains("index 0"))
        );
        assert!(
            matches!(&shares[1], Share::Error(e, 400) if e["message"] == "Property values were not valid")
        );
        assert!(matches!(&shares[2], Share::Result(r) if r["id"] == "901"));
    }

    #[test]
    fn results_and_errors_matched_by_index_alone() {
        let batch = batch(json!({
            "result_index": "result.index",
            "errors": "response.body.errors",
            "error_index": "error.context.index",
            "error_status": "error.status",
        }));
        let response = json!({"status": 207, "body": {
            "results": [{"index": 2, "id": "r2"}, {"index": "0", "id": "r0"}],
            "errors": [{"status": 429, "context": {"index": 1}}, {"context": {"index": [7]}}]
        }});
        let results = response["body"]["results"].as_array().unwrap().clone();
        let items = [
            json!({"n": 0}),
            json!({"n": 1}),
            json!({"n": 2}),
            json!({"n": 3}),
        ];
        let shares = keyed(&Templates::new(), &batch, &response, results, &items).unwrap();
        assert!(matches!(&shares[0], Share::Result(r) if r["id"] == "r0"));
        assert!(matches!(&shares[1], Share::Error(_, 429)));
        assert!(matches!(&shares[2], Share::Result(r) if r["id"] == "r2"));
        assert!(matches!(&shares[3], Share::Unmatched(why) if why.contains("index 3")));
    }
}
