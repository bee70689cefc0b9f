//! A template that is one plain path, `{{ body.order.id }}` or
//! `{{ headers["x-delivery-id"] }}`, read without the engine: what most
//! event-id templates are. Only the common case is answered here (a string
//! or an integer found by names alone); anything else — a filter, an
//! index, a missing field, `null`, a float — is left to the engine, so its
//! output and its errors stay the engine's own (a test compares the two).

/// The names of a template that is exactly `{{ name(.name | ["key"])* }}`
/// (blanks only inside the braces around the path), root first; `None` for
/// any other template.
pub fn sole_path(src: &str) -> Option<Vec<&str>> {
    let (root, mut rest) = split_name(super::sole_expression(src)?)?;
    let mut names = vec![root];
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let (name, r) = split_name(r)?;
            names.push(name);
            rest = r;
        } else if let Some(r) = rest.strip_prefix('[') {
            let quote = r.chars().next().filter(|q| matches!(q, '"' | '\''))?;
            let (key, r) = r[1..].split_once(quote)?;
            // An escape or a second quote kind is the engine's to read.
            if key.contains(['\\', '"', '\'']) {
                return None;
            }
            names.push(key);
            rest = r.strip_prefix(']')?;
        } else {
            return None;
        }
    }
    Some(names)
}

/// A name (`[A-Za-z_][A-Za-z0-9_]*`) at the start of `s`, and what follows it.
fn split_name(s: &str) -> Option<(&str, &str)> {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    let name = &s[..end];
    let first = name.chars().next()?;
    (first.is_ascii_alphabetic() || first == '_').then_some((name, &s[end..]))
}

/// `v` as the engine writes it, where that is plain: a string as it is, an
/// integer in decimal; `None` for any other value.
pub fn plain_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_names_and_quoted_keys_only() {
        assert_eq!(
            sole_path("{{ body.submission_id }}"),
            Some(vec!["body", "submission_id"])
        );
        assert_eq!(
            sole_path("  {{headers[\"x-delivery-id\"]}}\n"),
            Some(vec!["headers", "x-delivery-id"])
        );
        assert_eq!(
            sole_path("{{body.order['id']}}"),
            Some(vec!["body", "order", "id"])
        );
        for other in [
            "{{ body.id | lower }}",
            "{{ body.items[0] }}",
            "{{ body.id ~ 'x' }}",
            "x-{{ body.id }}",
            "{{ body.id }}-{{ body.n }}",
            "{{- body.id -}}",
            "{{ body[\"a\\\"b\"] }}",
            "{{ body['a\"b'] }}",
            "{{ body.0 }}",
            "{{ body . id }}",
            "{{ body[ 'id' ] }}",
            "{{ 1body }}",
            "{{ }}",
            "{% if x %}{{ body.id }}{% endif %}",
            "body.id",
            "{{ body.id }",
        ] {
            assert_eq!(sole_path(other), None, "{other}");
        }
    }

    #[test]
    fn only_strings_and_integers_are_plain() {
        use serde_json::json;
        assert_eq!(plain_text(&json!("a b")).as_deref(), Some("a b"));
        assert_eq!(plain_text(&json!(-42)).as_deref(), Some("-42"));
        assert_eq!(
            plain_text(&json!(u64::MAX)).as_deref(),
            Some("18446744073709551615")
        );
        for other in [
            json!(1.5),
            json!(1.0),
            json!(null),
            json!(true),
            json!([1]),
            json!({}),
        ] {
            assert_eq!(plain_text(&other), None, "{other}");
        }
    }
}
