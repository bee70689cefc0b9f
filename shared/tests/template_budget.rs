//! Templates have a budget: a hostile template (string repetition, nested
//! loops, many expensive leaves) is a mapping error for its request, never a
//! 100 MB body or a render that holds a worker for seconds.

use ferry::config::{Connection, RequestSpec};
use ferry::hub::Conn;
use ferry::outbound::{self, Body};
use ferry::template::{FUEL, MAX_RENDERED_BYTES, Templates, context};
use serde_json::json;

fn conn() -> Conn {
    let config: Connection =
        serde_yaml_ng::from_str("base_url: https://crm.example.com/v1").unwrap();
    Conn::new("crm", config)
}

fn spec(json: serde_json::Value) -> RequestSpec {
    RequestSpec {
        method: ferry::config::Method::Post,
        path: "/contacts".into(),
        query: Default::default(),
        headers: Default::default(),
        json: Some(json),
        form: None,
    }
}

/// Prepare a request whose body is `json`, for an event with body `body`.
fn prepare(json: serde_json::Value, body: serde_json::Value) -> Result<Body, String> {
    let t = Templates::new();
    let ctx = context(&json!({ "body": body }));
    outbound::prepare(&t, &conn(), &spec(json), &ctx)
        .map(|p| p.body)
        .map_err(|e| e.to_string())
}

fn over_budget(e: &str) -> bool {
    e.contains("over the template budget (200000 fuel per request")
}

mod template_budget {
    use super::*;

    #[test]
    fn string_repetition_is_stopped_before_it_allocates() {
        // Sent a 100 MB body before.
        let body = json!({ "s": "x", "n": 100_000_000 });
        let e = prepare(json!({ "a": "{{ body.s * body.n }}" }), body.clone()).unwrap_err();
        assert!(over_budget(&e), "{e}");
        let e = prepare(json!({ "a": "text: {{ body.s * body.n }}" }), body).unwrap_err();
        assert!(over_budget(&e), "{e}");
    }

    #[test]
    fn nested_loops_run_out_of_fuel() {
        // Rendered for 10 s before.
        let t = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}";
        let e = prepare(json!({ "a": t }), json!({})).unwrap_err();
        assert!(over_budget(&e), "{e}");
        let e = Templates::new()
            .eval(
                "range(100000) | map('string') | join * 1000",
                &context(&json!({})),
            )
            .unwrap_err();
        assert!(over_budget(&e.to_string()), "{e}");
    }

    /// Each leaf alone fits in the budget; together they do not: the budget
    /// is per request, for text leaves and typed (`"{{ expr }}"`) leaves alike.
    #[test]
    fn the_budget_is_shared_by_every_template_of_a_request() {
        let leaf = "{% for i in range(3000) %}{{ i }}{% endfor %}";
        let t = Templates::new();
        let ctx = context(&json!({}));
        let b = t.budget();
        b.render(leaf, &ctx).unwrap();
        let one = FUEL - b.left();
        assert!(one > 0 && one < FUEL / 10, "one leaf used {one}");
        let leaves = (FUEL / one + 1) as usize;
        let e = prepare(json!(vec![leaf; leaves]), json!({})).unwrap_err();
        assert!(over_budget(&e), "{e}");
        let typed = "{{ range(3000) | map('string') | join }}";
        let e = prepare(json!(vec![typed; leaves * 4]), json!({})).unwrap_err();
        assert!(over_budget(&e), "{e}");
        // Fewer of them fit.
        prepare(json!(vec![leaf; leaves / 2]), json!({})).unwrap();
    }

    #[test]
    fn a_rendered_request_over_one_mib_is_a_mapping_error() {
        let body = json!({ "s": "x".repeat(1000), "n": 600 });
        // 600 kB per leaf fits the budget; two leaves make 1.2 MB.
        let two = json!({ "a": "{{ body.s * body.n }}", "b": "{{ body.s * body.n }}" });
        let e = prepare(two, body.clone()).unwrap_err();
        assert!(
            e.starts_with("the rendered request is 1200")
                && e.ends_with("at most 1048576 bytes (1 MiB)"),
            "{e}"
        );
        let Body::Json(one) = prepare(json!({ "a": "{{ body.s * body.n }}" }), body).unwrap()
        else {
            panic!("a JSON body")
        };
        assert_eq!(one["a"].as_str().map(str::len), Some(600_000));
    }

    #[test]
    fn ordinary_templates_render_as_before() {
        let body = json!({ "email": "Ada@Example.com", "tags": ["a", "b"], "n": 3 });
        let Body::Json(out) = prepare(
            json!({
                "email": "{{ body.email | lower }}",
                "tags": "{{ body.tags }}",
                "n": "{{ body.n * 2 }}",
                "list": "{% for t in body.tags %}{{ t }};{% endfor %}",
            }),
            body,
        )
        .unwrap() else {
            panic!("a JSON body")
        };
        assert_eq!(
            out,
            json!({ "email": "ada@example.com", "tags": ["a", "b"], "n": 6, "list": "a;b;" })
        );
        let e = prepare(json!({ "x": "{{ body.missing }}" }), json!({})).unwrap_err();
        assert!(e.contains("missing field `body.missing`"), "{e}");
    }

    /// The numbers docs/execution.md gives are the ones in the code.
    #[test]
    fn the_budget_and_the_cap_are_what_the_docs_say() {
        assert_eq!(FUEL, 200_000);
        assert_eq!(MAX_RENDERED_BYTES, 1 << 20);
        let docs = include_str!("../../docs/execution.md");
        assert!(
            docs.contains("200 000 fuel"),
            "docs/execution.md names the budget"
        );
        assert!(
            docs.contains("1 MiB (1 048 576 bytes)"),
            "docs/execution.md names the cap"
        );
    }
}
