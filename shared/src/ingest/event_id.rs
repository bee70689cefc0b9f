//! A webhook's event id: the source's `event_id` template, else the
//! scheme's own id, else the body's hash.

use std::collections::BTreeMap;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::Reply;
use crate::config::Source;
use crate::model::Event;
use crate::template::{Templates, context, plain_text, sole_path};
use crate::verify::Verified;

pub(super) fn event_id(
    templates: &Templates,
    source: &Source,
    verified: &Verified<'_>,
    event: &Event,
    raw: &[u8],
) -> Result<String, Reply> {
    if let Some(tmpl) = &source.event_id {
        if let Some(id) = by_path(tmpl, event) {
            return Ok(id);
        }
        return rendered(templates, tmpl, event)
            .map_err(|message| Reply::error(400, "missing_event_id", message));
    }
    // The scheme's own id (a delivery header, the body's id), else the body's hash.
    Ok(verified
        .event_id()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("sha256:{}", hex::encode(Sha256::digest(raw)))))
}

/// The id of a template that is one plain path (`{{ body.submission_id }}`,
/// most of them), read straight from the event: the engine would first copy
/// the whole body and headers into its own values. `None` wherever the
/// engine's answer could differ from a plain read (see
/// [`crate::template::sole_path`]): those go to [`rendered`].
fn by_path(tmpl: &str, event: &Event) -> Option<String> {
    let names = sole_path(tmpl)?;
    let (root, rest) = names.split_first()?;
    let text = match *root {
        "body" => {
            let mut v = &event.body;
            for name in rest {
                v = v.as_object()?.get(*name)?;
            }
            plain_text(v)?
        }
        "headers" | "query" => {
            let map = if *root == "headers" {
                &event.headers
            } else {
                &event.query
            };
            let [key] = rest else { return None };
            map.get(*key)?.clone()
        }
        _ => return None,
    };
    let id = text.trim();
    (!id.is_empty()).then(|| id.to_owned())
}

/// The id `tmpl` renders to with the engine, or why there is none.
fn rendered(templates: &Templates, tmpl: &str, event: &Event) -> Result<String, String> {
    // By reference: the body is not copied into a JSON value first.
    #[derive(serde::Serialize)]
    struct View<'a> {
        body: &'a Value,
        headers: &'a BTreeMap<String, String>,
        query: &'a BTreeMap<String, String>,
    }
    let ctx = context(&View {
        body: &event.body,
        headers: &event.headers,
        query: &event.query,
    });
    match templates.render(tmpl, &ctx) {
        Ok(id) if !id.trim().is_empty() => Ok(id.trim().to_owned()),
        Ok(_) => Err("the event id template rendered an empty string".to_owned()),
        Err(e) => Err(format!("cannot compute the event id: {}", e.message)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(body: Value) -> Event {
        Event {
            headers: [("x-delivery-id", " d-1 "), ("x-empty", "")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .into(),
            query: [("id", "q-7")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .into(),
            body,
            received_at: 0,
        }
    }

    /// Wherever a template is read without the engine, the id is the
    /// engine's; and the common templates are read without it.
    #[test]
    fn a_plain_path_gives_the_engines_id() {
        let templates = Templates::new();
        let bodies = [
            json!({"submission_id": "s-1", "order": {"id": 12, "ref": " r "}, "n": null,
                   "f": 1.5, "whole": 2.0, "t": true, "list": [1], "big": u64::MAX,
                   "neg": -3, "blank": "  ", "a.b": "dotted", "items": "k"}),
            json!("just text"),
            json!(42),
            json!([{"id": "x"}]),
            json!({"order": "not an object"}),
        ];
        let templates_src = [
            "{{ body.submission_id }}",
            "{{body.order.id}}",
            "{{ body.order['ref'] }}",
            "{{ body[\"a.b\"] }}",
            "{{ body.items }}",
            "{{ body.n }}",
            "{{ body.f }}",
            "{{ body.whole }}",
            "{{ body.t }}",
            "{{ body.list }}",
            "{{ body.big }}",
            "{{ body.neg }}",
            "{{ body.blank }}",
            "{{ body.missing }}",
            "{{ body.order.id.deeper }}",
            "{{ body }}",
            "{{ headers['x-delivery-id'] }}",
            "{{ headers.x_missing }}",
            "{{ headers['x-empty'] }}",
            "{{ headers }}",
            "{{ query.id }}",
            "{{ query.id.more }}",
            "{{ other.id }}",
            "{{ body.submission_id | upper }}",
        ];
        let mut plain = 0;
        for body in &bodies {
            let event = event(body.clone());
            for tmpl in templates_src {
                let engine = rendered(&templates, tmpl, &event);
                if let Some(id) = by_path(tmpl, &event) {
                    plain += 1;
                    assert_eq!(Ok(&id), engine.as_ref(), "{tmpl} on {}", event.body);
                }
            }
        }
        // Strings and integers of the body, headers and query.
        let event = event(bodies[0].clone());
        for (tmpl, want) in [
            ("{{ body.submission_id }}", "s-1"),
            ("{{body.order.id}}", "12"),
            ("{{ body.order['ref'] }}", "r"),
            ("{{ body.big }}", "18446744073709551615"),
            ("{{ headers['x-delivery-id'] }}", "d-1"),
            ("{{ query.id }}", "q-7"),
        ] {
            assert_eq!(by_path(tmpl, &event).as_deref(), Some(want), "{tmpl}");
        }
        assert!(plain >= 10, "{plain}");
    }
}
