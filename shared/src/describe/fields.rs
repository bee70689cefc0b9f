//! The fields a template or expression reads, as dotted paths
//! (`body.email`, `steps.contact.response.body.id`), from minijinja's own
//! analysis of the template (`undeclared_variables`), not from a regex.

use std::collections::BTreeSet;

use minijinja::Environment;

use crate::config::RequestSpec;

/// The variables `src` reads: a template when it contains `{{` or `{%`,
/// else an expression. A source that does not parse reads nothing (the
/// loader has already refused such configs).
pub fn fields_of_template(src: &str) -> BTreeSet<String> {
    let env = Environment::new();
    let found = if src.contains("{{") || src.contains("{%") {
        env.template_from_str(src)
            .map(|t| t.undeclared_variables(true))
            .unwrap_or_default()
    } else {
        env.compile_expression(src)
            .map(|e| e.undeclared_variables(true))
            .unwrap_or_default()
    };
    found.into_iter().collect()
}

/// Every field a request reads: path, query, headers and body templates.
pub fn fields_of_request(spec: &RequestSpec) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut add = |s: &str| {
        if s.contains("{{") || s.contains("{%") {
            out.extend(fields_of_template(s));
        }
    };
    add(&spec.path);
    spec.query.values().for_each(|v| add(v));
    spec.headers.values().for_each(|v| add(v));
    if let Some(form) = &spec.form {
        form.values().for_each(|v| add(v));
    }
    if let Some(json) = &spec.json {
        json_strings(json, &mut add);
    }
    out
}

fn json_strings(v: &serde_json::Value, f: &mut impl FnMut(&str)) {
    match v {
        serde_json::Value::String(s) => f(s),
        serde_json::Value::Array(items) => items.iter().for_each(|i| json_strings(i, f)),
        serde_json::Value::Object(map) => map.values().for_each(|i| json_strings(i, f)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_and_expressions_name_the_fields_they_read() {
        let got = fields_of_template("{{ body.first_name }} {{ body.last_name | upper }}");
        assert_eq!(
            got.into_iter().collect::<Vec<_>>(),
            ["body.first_name", "body.last_name"]
        );
        let got = fields_of_template("body.email is defined and headers['x-kind'] == 'lead'");
        assert!(got.contains("body.email"), "{got:?}");
        assert!(got.iter().any(|f| f.starts_with("headers")), "{got:?}");
        let spec: RequestSpec = serde_json::from_value(serde_json::json!({
            "path": "/contacts/{{ steps.find.response.body.id }}",
            "query": { "q": "{{ query.q }}" },
            "headers": { "X-Lead": "{{ body.source }}" },
            "json": { "email": "{{ body.email }}", "tags": ["{{ body.tag }}", "fixed"] }
        }))
        .unwrap();
        let got: Vec<_> = fields_of_request(&spec).into_iter().collect();
        assert_eq!(
            got,
            [
                "body.email",
                "body.source",
                "body.tag",
                "query.q",
                "steps.find.response.body.id"
            ]
        );
    }
}
