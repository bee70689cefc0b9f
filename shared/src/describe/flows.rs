//! Which fields feed which parts of a request, through which filters; a
//! step as `ferry describe` tells it.

use std::collections::BTreeMap;

use super::about::{FieldFlow, StepInfo};
use super::fields::fields_of_template;
use crate::config::{RequestSpec, RetryPolicy, Step};
use crate::retry::Policy;

/// A duration in words: its largest whole unit (`7 days`, `1 minute`,
/// `90 seconds`), else humantime's form (`1s 500ms`).
pub fn human(d: std::time::Duration) -> String {
    const UNITS: [(u64, &str); 4] = [
        (86_400, "day"),
        (3_600, "hour"),
        (60, "minute"),
        (1, "second"),
    ];
    let ms = d.as_millis();
    if ms > 0 && ms.is_multiple_of(1000) {
        let secs = d.as_secs();
        for (n, unit) in UNITS {
            if secs.is_multiple_of(n) {
                let k = secs / n;
                return format!("{k} {unit}{}", if k == 1 { "" } else { "s" });
            }
        }
    }
    humantime::format_duration(d).to_string()
}

/// The retry policy a step follows, in a sentence.
pub fn retry_sentence(step: Option<&RetryPolicy>, flow: Option<&RetryPolicy>) -> String {
    let p = Policy::resolve(step, flow);
    format!(
        "up to {} attempts, backoff from {} doubling to at most {} (with jitter), giving up {} after the first attempt; then the run is dead-lettered",
        p.max_attempts,
        human(p.initial),
        human(p.max),
        human(p.max_age)
    )
}

/// `POST /contacts`.
pub fn request_line(r: &RequestSpec) -> String {
    format!("{} {}", r.method.as_http(), r.path)
}

/// A step, its request's field flows and its retry policy.
pub fn step_info(s: &Step, flow_retry: Option<&RetryPolicy>) -> StepInfo {
    StepInfo {
        id: s.id.clone(),
        connection: s.connection.clone(),
        request: request_line(&s.request),
        batch: s.batch.as_ref().map(|b| {
            format!(
                "{} {} (up to {} items per call)",
                b.method.as_http(),
                b.path,
                b.max_items
            )
        }),
        when: s.when.clone(),
        fields: request_flows(&s.request),
        retry: retry_sentence(s.retry.as_ref(), flow_retry),
    }
}

/// Every templated part of a request and what feeds it; fixed parts of a
/// JSON body are listed too (with no fields), so the whole body is told.
pub fn request_flows(r: &RequestSpec) -> Vec<FieldFlow> {
    let mut out = Vec::new();
    if is_template(&r.path) {
        out.push(flow("path", &r.path));
    }
    for (k, v) in &r.query {
        out.push(flow(&format!("query.{k}"), v));
    }
    for (k, v) in &r.headers {
        out.push(flow(&format!("header {k}"), v));
    }
    if let Some(form) = &r.form {
        for (k, v) in form {
            out.push(flow(&format!("form.{k}"), v));
        }
    }
    if let Some(json) = &r.json {
        json_flows("json", json, &mut out);
    }
    out
}

/// The flows of a JSON value whose strings are templates (`map`, bodies).
pub fn json_flows(at: &str, v: &serde_json::Value, out: &mut Vec<FieldFlow>) {
    use serde_json::Value;
    match v {
        Value::String(s) => out.push(flow(at, s)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                json_flows(&format!("{at}[{i}]"), item, out);
            }
        }
        Value::Object(map) => {
            // `preserve_order` keeps the config's order; sort for determinism anyway.
            let sorted: BTreeMap<&String, &Value> = map.iter().collect();
            for (k, item) in sorted {
                json_flows(&format!("{at}.{k}"), item, out);
            }
        }
        other => out.push(FieldFlow {
            to: at.to_owned(),
            from: Vec::new(),
            filters: vec![format!("fixed value {other}")],
        }),
    }
}

fn flow(to: &str, template: &str) -> FieldFlow {
    let (from, filters) = if is_template(template) {
        (
            fields_of_template(template).into_iter().collect(),
            filters_of(template),
        )
    } else {
        (Vec::new(), vec![format!("fixed value {template:?}")])
    };
    FieldFlow {
        to: to.to_owned(),
        from,
        filters,
    }
}

fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%")
}

/// The filters a template applies (`{{ body.email | lower | trim }}` →
/// `lower`, `trim`), in order of first appearance; text inside quotes is skipped.
pub fn filters_of(template: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{").or_else(|| rest.find("{%")) {
        let body = &rest[start + 2..];
        let end = body
            .find("}}")
            .or_else(|| body.find("%}"))
            .unwrap_or(body.len());
        let mut quote: Option<char> = None;
        for (i, c) in body[..end].char_indices() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'') => quote = Some(c),
                (None, '|') => {
                    let name: String = body[i + 1..end]
                        .trim_start()
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() && !out.contains(&name) {
                        out.push(name);
                    }
                }
                _ => {}
            }
        }
        rest = &body[end..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_named_in_order_and_quoted_pipes_are_text() {
        assert_eq!(
            filters_of("{{ body.email | lower | trim }} {{ x|default('a|b') | upper }}"),
            ["lower", "trim", "default", "upper"]
        );
        assert!(filters_of("plain | text").is_empty());
        let d = std::time::Duration::from_secs;
        assert_eq!(human(d(7 * 86_400)), "7 days");
        assert_eq!(human(d(60)), "1 minute");
        assert_eq!(human(d(90)), "90 seconds");
    }

    #[test]
    fn each_request_part_names_its_fields_and_filters() {
        let spec: RequestSpec = serde_json::from_value(serde_json::json!({
            "path": "/contacts/{{ steps.find.response.body.id }}",
            "json": { "email": "{{ body.email | lower }}", "source": "form", "n": 2 }
        }))
        .unwrap();
        let got = request_flows(&spec);
        let row = |to: &str| got.iter().find(|f| f.to == to).unwrap().clone();
        assert_eq!(row("path").from, ["steps.find.response.body.id"]);
        assert_eq!(
            (row("json.email").from, row("json.email").filters),
            (vec!["body.email".to_owned()], vec!["lower".to_owned()])
        );
        assert_eq!(row("json.source").filters, ["fixed value \"form\""]);
        assert_eq!(row("json.n").filters, ["fixed value 2"]);
    }
}
