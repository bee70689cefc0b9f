//! A webhook request's parts as templates see them: the body parsed by its
//! declared content type, the headers a template may read, the query.

use std::collections::BTreeMap;

use serde_json::Value;

use super::Reply;
use crate::verify::Verifier;

/// The body as templates see it, by declared content type.
pub(crate) fn parse_body(headers: &http::HeaderMap, raw: &[u8]) -> Result<Value, Reply> {
    let ctype = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let malformed = |what: &str, e: String| {
        Reply::error(
            400,
            "malformed_body",
            format!("the body is not valid {what}: {e}"),
        )
    };
    match ctype.as_str() {
        "application/json" => {
            serde_json::from_slice(raw).map_err(|e| malformed("JSON", e.to_string()))
        }
        t if t.starts_with("application/") && t.ends_with("+json") => {
            serde_json::from_slice(raw).map_err(|e| malformed("JSON", e.to_string()))
        }
        "application/x-www-form-urlencoded" => {
            let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(raw)
                .map_err(|e| malformed("form data", e.to_string()))?;
            Ok(Value::Object(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect(),
            ))
        }
        "text/plain" | "" if raw.is_empty() => Ok(Value::Null),
        "text/plain" => std::str::from_utf8(raw)
            .map(|s| Value::String(s.to_owned()))
            .map_err(|e| malformed("UTF-8 text", e.to_string())),
        // No declared type: JSON if it parses, else text.
        "" => Ok(serde_json::from_slice(raw)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(raw).into_owned()))),
        other => Err(Reply::error(
            415,
            "unsupported_media_type",
            format!(
                "content type {other:?} is not supported; send application/json, application/x-www-form-urlencoded or text/plain"
            ),
        )),
    }
}

/// Headers templates may see: lower-case names, without credentials or signatures.
pub(crate) fn visible_headers(
    headers: &http::HeaderMap,
    verifier: &Verifier,
) -> BTreeMap<String, String> {
    let secret = verifier.secret_headers();
    headers
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "authorization" | "cookie" | "proxy-authorization"
            ) && !secret.contains(&k.as_str())
        })
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect()
}

pub(crate) fn parse_query(q: Option<&str>) -> BTreeMap<String, String> {
    q.map(|q| {
        serde_urlencoded::from_str::<Vec<(String, String)>>(q)
            .unwrap_or_default()
            .into_iter()
            .collect()
    })
    .unwrap_or_default()
}
