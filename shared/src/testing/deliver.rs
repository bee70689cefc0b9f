//! Delivering a case's event through the real [`crate::ingest`]: rendered
//! per event (`count`), signed with the source's scheme (or deliberately
//! not), and sent `deliveries` times.

use bytes::Bytes;
use serde_json::Value;

use super::file::{Case, Signature};
use crate::hub::Hub;
use crate::ingest::{Inbound, Reply, ingest};
use crate::template::context;

/// Send every event of `case` (collecting the run ids the answers name);
/// `(first payload, answer to the last delivery)`.
pub async fn all(
    hub: &Hub,
    case: &Case,
    run_ids: &mut Vec<String>,
) -> Result<(Value, Reply), String> {
    let ev = &case.event;
    let count = ev.count.unwrap_or(1).max(1);
    let mut first = None;
    let mut last = None;
    for n in 1..=count {
        let payload = if count > 1 {
            render(hub, &ev.payload, n)?
        } else {
            ev.payload.clone()
        };
        let body = Bytes::from(serde_json::to_vec(&payload).map_err(|e| e.to_string())?);
        let headers = headers(hub, case, &body, n)?;
        for _ in 0..ev.deliveries.unwrap_or(1).max(1) {
            let reply = ingest(
                hub,
                Inbound {
                    method: http::Method::POST,
                    source: ev.source.clone(),
                    headers: headers.clone(),
                    query: None,
                    body: body.clone(),
                },
            )
            .await;
            for id in reply.body["run_ids"].as_array().into_iter().flatten() {
                if let Some(id) = id.as_str()
                    && !run_ids.iter().any(|r| r == id)
                {
                    run_ids.push(id.to_owned());
                }
            }
            last = Some(reply);
        }
        first.get_or_insert(payload);
    }
    Ok((
        first.unwrap_or_default(),
        last.expect("at least one delivery"),
    ))
}

/// Every string of `v` rendered as a template of `n`.
fn render(hub: &Hub, v: &Value, n: u32) -> Result<Value, String> {
    Ok(match v {
        Value::String(s) if s.contains("{{") => {
            let ctx = context(&serde_json::json!({ "n": n }));
            Value::String(
                hub.templates
                    .render(s, &ctx)
                    .map_err(|e| format!("payload: {}", e.message))?,
            )
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| render(hub, i, n))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, i)| Ok((k.clone(), render(hub, i, n)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// The request headers: content type, the case's, and the signature.
fn headers(hub: &Hub, case: &Case, body: &[u8], n: u32) -> Result<http::HeaderMap, String> {
    let mut pairs = vec![("content-type".to_owned(), "application/json".to_owned())];
    if let Some(verifier) = hub.verifier(&case.event.source) {
        let now = hub.ports.clock.now_ms();
        let at = match case.event.signature {
            Signature::Stale => now - crate::clock::millis(super::run::STALE_BY),
            _ => now,
        };
        let secret = verifier.secret_headers();
        let signed = verifier.sign(body, at, Some(&format!("ferry-test-{n}")));
        for (k, v) in signed {
            let is_secret = secret.contains(&k.to_ascii_lowercase().as_str());
            match case.event.signature {
                Signature::None if is_secret => {}
                Signature::Forged if is_secret => pairs.push((k, forge(&v))),
                _ => pairs.push((k, v)),
            }
        }
    }
    pairs.extend(
        case.event
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    let mut map = http::HeaderMap::new();
    for (k, v) in pairs {
        let name =
            http::HeaderName::from_bytes(k.as_bytes()).map_err(|e| format!("header {k:?}: {e}"))?;
        let value = http::HeaderValue::from_str(&v).map_err(|e| format!("header {k:?}: {e}"))?;
        map.insert(name, value);
    }
    Ok(map)
}

/// `v` with its last letter or digit changed: the same shape, the wrong signature.
fn forge(v: &str) -> String {
    let mut chars: Vec<char> = v.chars().collect();
    if let Some(c) = chars.iter_mut().rev().find(|c| c.is_ascii_alphanumeric()) {
        *c = match *c {
            '0' => '1',
            'a' => 'b',
            'A' => 'B',
            _ => '0',
        };
    }
    chars.into_iter().collect()
}
