use super::*;
use serde_json::json;

fn ctx(v: serde_json::Value) -> Value {
    context(&v)
}

#[test]
fn renders_filters_and_nested_fields() {
    let t = Templates::new();
    let c = ctx(json!({"body": {"email": "  Ada@Example.COM ", "first": "Ada"}}));
    assert_eq!(
        t.render("{{ body.email | lower | trim }}", &c).unwrap(),
        "ada@example.com"
    );
    assert_eq!(t.render("Hi {{ body.first }}!", &c).unwrap(), "Hi Ada!");
}

#[test]
fn missing_field_is_an_error_naming_the_field() {
    let t = Templates::new();
    let c = ctx(json!({"body": {"email": "a@b.c"}}));
    let err = t
        .render("{{ body.first_name }} {{ body.last_name }}", &c)
        .unwrap_err();
    assert_eq!(err.message, "missing field `body.first_name`");
    let err = t
        .render_json(&json!({"x": "{{ steps.contact.response.body.id }}"}), &c)
        .unwrap_err();
    assert!(err.message.contains("steps.contact"), "{err}");
    let err = t.render("{{ body.email | lower }}", &c).unwrap();
    assert_eq!(err, "a@b.c");
    let err = t.render("{{ body.phone | lower }}", &c).unwrap_err();
    assert_eq!(err.message, "missing field `body.phone`");
    let err = t.render_json(&json!("{{ body.phone }}"), &c).unwrap_err();
    assert_eq!(err.message, "missing field `body.phone`");
}

#[test]
fn path_values_are_single_segments() {
    let t = Templates::new();
    let c = ctx(json!({"body": {"id": "../a/b?x=1#f", "dot": "..", "n": 7}}));
    assert_eq!(
        t.render_path("/contacts/{{ body.id }}/notes", &c).unwrap(),
        "/contacts/..%2Fa%2Fb%3Fx%3D1%23f/notes"
    );
    assert_eq!(t.render_path("/n/{{ body.n }}", &c).unwrap(), "/n/7");
    let err = t.render_path("/c/{{ body.dot }}", &c).unwrap_err();
    assert_eq!(
        err.message,
        "the path value \"..\" is a dot-segment; a value in a path must name one segment, not move the path (at `body.dot`)"
    );
    let err = t.render_path("/c/{{ body.missing }}", &c).unwrap_err();
    assert_eq!(err.message, "missing field `body.missing`");
    // Outside paths nothing is escaped, and undefined is still an error.
    assert_eq!(t.render("{{ body.id }}", &c).unwrap(), "../a/b?x=1#f");
    let err = t.render("{{ body.missing }}", &c).unwrap_err();
    assert_eq!(err.message, "missing field `body.missing`");
}

#[test]
fn when_expressions() {
    let t = Templates::new();
    let c = ctx(json!({"body": {"email": "a@b.c"}}));
    assert!(t.is_true("body.email is defined", &c).unwrap());
    assert!(!t.is_true("body.phone is defined", &c).unwrap());
}

#[test]
fn sole_expression_keeps_type() {
    let t = Templates::new();
    let c = ctx(json!({"body": {"n": 42, "tags": ["a"], "s": "x"}}));
    let out = t
        .render_json(&json!({"n": "{{ body.n }}", "tags": "{{ body.tags }}", "text": "n={{ body.n }}", "lit": 7}), &c)
        .unwrap();
    assert_eq!(
        out,
        json!({"n": 42, "tags": ["a"], "text": "n=42", "lit": 7})
    );
}
