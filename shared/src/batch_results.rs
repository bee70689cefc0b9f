//! Batch answers keyed by id rather than in item order: HubSpot's batch
//! upsert answers `200`/`207` with `results` (the records that worked, in
//! any order) and a separate `errors` list whose entries name the ids they
//! concern (`errors[].context.ids`). With `batch.item_id` and
//! `batch.result_id` each item is matched to the result, or the error, that
//! names its id; an item named by neither fails, since its fate is unknown.
//! `item_id` also sees `index`, the item's position in the batch (from 0),
//! for APIs that answer by position (OpenAI embeddings: `data[].index`):
//! `item_id: index`, `result_id: result.index`.

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

/// Match `items` (their bodies) to `results` and the `errors` in `response`.
pub fn keyed(
    t: &Templates,
    batch: &Batch,
    response: &Value,
    results: Vec<Value>,
    items: &[Value],
) -> Result<Vec<Share>, String> {
    let (Some(item_id), Some(result_id)) = (&batch.item_id, &batch.result_id) else {
        return Err("batch: keyed results need both `item_id` and `result_id`".into());
    };
    let id = |expr: &str, name: &str, v: &Value| -> Option<String> {
        t.eval_json(expr, &context(&json!({ name: v })))
            .ok()
            .and_then(|v| key_text(&v))
    };
    let mut by_id: HashMap<String, Value> = HashMap::new();
    for r in results {
        if let Some(k) = id(result_id, "result", &r) {
            by_id.insert(k, r);
        }
    }
    let mut errors_by_id: HashMap<String, (Value, u16)> = HashMap::new();
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
                .and_then(|expr| t.eval_json(expr, &context(&json!({ "error": &e }))).ok())
                .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
                .and_then(|s| u16::try_from(s).ok())
                .unwrap_or(DEFAULT_ERROR_STATUS);
            let ids = batch
                .error_ids
                .as_ref()
                .and_then(|expr| t.eval_json(expr, &context(&json!({ "error": &e }))).ok());
            let ids = match ids {
                Some(Value::Array(ids)) => ids.iter().filter_map(key_text).collect(),
                Some(v) => key_text(&v).into_iter().collect(),
                None => Vec::new(),
            };
            for k in ids {
                errors_by_id.insert(k, (e.clone(), status));
            }
        }
    }
    let item_key = |i: usize, item: &Value| -> Option<String> {
        t.eval_json(item_id, &context(&json!({ "item": item, "index": i })))
            .ok()
            .and_then(|v| key_text(&v))
    };
    Ok(items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let Some(k) = item_key(i, item) else {
                return Share::Unmatched(format!(
                    "batch.item_id: no id in the item {}",
                    crate::outbound::excerpt(item, 200)
                ));
            };
            if let Some((e, status)) = errors_by_id.remove(&k) {
                Share::Error(e, status)
            } else if let Some(r) = by_id.remove(&k) {
                Share::Result(r)
            } else {
                Share::Unmatched(format!(
                    "the batch answer has no result and no error for item {k:?}"
                ))
            }
        })
        .collect())
}

/// An id as text: a string as is, a number written out; anything else is no id.
fn key_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// OpenAI embeddings answer `data[]` with each input's `index`, in any
    /// order: `item_id: index` matches by position.
    #[test]
    fn results_are_matched_by_position_index() {
        let batch: Batch = serde_json::from_value(json!({
            "max_items": 10,
            "path": "/v1/embeddings",
            "results": "response.body.data",
            "item_id": "index",
            "result_id": "result.index",
        }))
        .unwrap();
        let results = vec![
            json!({"index": 2, "embedding": [2.0]}),
            json!({"index": 0, "embedding": [0.0]}),
            json!({"index": 1, "embedding": [1.0]}),
        ];
        let items = [json!("a"), json!("b"), json!("c"), json!("d")];
        let shares = keyed(&Templates::new(), &batch, &json!({}), results, &items).unwrap();
        assert_eq!(
            shares[0],
            Share::Result(json!({"index": 0, "embedding": [0.0]}))
        );
        assert_eq!(
            shares[1],
            Share::Result(json!({"index": 1, "embedding": [1.0]}))
        );
        assert_eq!(
            shares[2],
            Share::Result(json!({"index": 2, "embedding": [2.0]}))
        );
        assert!(matches!(&shares[3], Share::Unmatched(why) if why.contains("\"3\"")));
    }

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
}
