//! Outbound HTTP: turn a step's templated request into a real call on its
//! connection (base URL, auth, headers, timeout) and read the answer.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use minijinja::Value;

use crate::config::{Connection, RequestSpec};
use crate::destination::{self, UrlError};
use crate::hub::Conn;
use crate::template::{MAX_RENDERED_BYTES, TemplateError, Templates};

mod answer;
pub use answer::{CallError, Response, describe_error, excerpt};
use answer::{classify, parse_body};

/// Per-request timeout when the connection does not set one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response body ferry reads (bigger bodies are cut and kept as text).
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// A request with every template rendered; auth is added only when it is sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// Method.
    pub method: http::Method,
    /// Full URL without the query.
    pub url: reqwest::Url,
    /// Query parameters.
    pub query: Vec<(String, String)>,
    /// Headers from the connection and the step.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Body,
}

/// A request body.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// No body.
    None,
    /// JSON.
    Json(serde_json::Value),
    /// Form-encoded fields.
    Form(Vec<(String, String)>),
}

impl Prepared {
    /// What a token budget's `cost` sees as `request`: `method`, `url`,
    /// `query`, `headers` (lower-case names), `json` (the JSON body, else
    /// null), `form` (the form fields, else null) and `body` (the body as
    /// sent, as text).
    pub fn to_context(&self) -> serde_json::Value {
        let headers: BTreeMap<String, &str> = self
            .headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str()))
            .collect();
        let query: BTreeMap<&str, &str> = self
            .query
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let (json, form, body) = match &self.body {
            Body::None => (
                serde_json::Value::Null,
                serde_json::Value::Null,
                String::new(),
            ),
            Body::Json(v) => (v.clone(), serde_json::Value::Null, v.to_string()),
            Body::Form(f) => {
                let fields: BTreeMap<&str, &str> =
                    f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let text = f
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("&");
                (serde_json::Value::Null, serde_json::json!(fields), text)
            }
        };
        serde_json::json!({
            "method": self.method.as_str(),
            "url": self.url.as_str(),
            "query": query,
            "headers": headers,
            "json": json,
            "form": form,
            "body": body,
        })
    }
}

/// Why a request could not be prepared: a mapping error of this run
/// (trying again cannot help).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrepareError {
    /// A template failed (a missing field, a dot-segment path value…).
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// The URL would leave the connection's base URL, or does not parse.
    #[error("path: {0}")]
    Url(#[from] UrlError),
    /// A header name or value HTTP does not allow.
    #[error("header {name:?}: {why}")]
    Header {
        /// The header's name (its value is not shown: it may be a secret).
        name: String,
        /// What is wrong with it.
        why: String,
    },
}

/// Render `spec` on `conn` with `ctx`.
pub fn prepare(
    t: &Templates,
    conn: &Conn,
    spec: &RequestSpec,
    ctx: &Value,
) -> Result<Prepared, PrepareError> {
    let t = &t.budget(); // one budget for every template of the request
    let path = t.render_path(&spec.path, ctx)?;
    let url = destination::join_parsed(&conn.base_url, &conn.base, &path)?;
    let render_map =
        |m: &BTreeMap<String, String>| -> Result<Vec<(String, String)>, TemplateError> {
            m.iter()
                .map(|(k, v)| Ok((k.clone(), t.render(v, ctx)?)))
                .collect()
        };
    let mut headers = connection_headers(conn);
    headers.extend(render_map(&spec.headers)?);
    check_headers(&headers)?;
    let body = match (&spec.json, &spec.form) {
        (Some(json), _) => Body::Json(t.render_json(json, ctx)?),
        (None, Some(form)) => Body::Form(render_map(form)?),
        (None, None) => Body::None,
    };
    let prepared = Prepared {
        method: spec.method.as_http(),
        url,
        query: render_map(&spec.query)?,
        headers,
        body,
    };
    check_size(&prepared)?;
    Ok(prepared)
}

/// A rendered request may be at most [`MAX_RENDERED_BYTES`] (URL, query,
/// headers and body together); a bigger one is a mapping error.
pub fn check_size(p: &Prepared) -> Result<(), TemplateError> {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 = self.0.saturating_add(buf.len());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let pairs = |v: &[(String, String)]| v.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
    let mut n = Count(p.url.as_str().len() + pairs(&p.query) + pairs(&p.headers));
    match &p.body {
        Body::None => {}
        Body::Json(v) => serde_json::to_writer(&mut n, v).unwrap_or_default(),
        Body::Form(f) => n.0 += pairs(f),
    }
    if n.0 <= MAX_RENDERED_BYTES {
        return Ok(());
    }
    Err(TemplateError {
        template: String::new(),
        message: format!(
            "the rendered request is {} bytes; a request may be at most {MAX_RENDERED_BYTES} bytes (1 MiB)",
            n.0
        ),
    })
}

/// The connection's own (static) headers.
pub fn connection_headers(conn: &Connection) -> Vec<(String, String)> {
    conn.headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Every header name and value is one HTTP allows (a value holds no CR, LF,
/// NUL or other control character but tab), checked before anything is sent.
pub fn check_headers(headers: &[(String, String)]) -> Result<(), PrepareError> {
    for (name, value) in headers {
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(PrepareError::Header {
                name: name.clone(),
                why: "not a valid header name (letters, digits and !#$%&'*+-.^_`|~ only)".into(),
            });
        }
        if http::HeaderValue::from_str(value).is_err() {
            let (at, c) = value
                .chars()
                .enumerate()
                .find(|(_, c)| c.is_ascii_control() && *c != '\t')
                .unwrap_or((0, '?'));
            let what = match c {
                '\r' => "a carriage return (CR)".to_owned(),
                '\n' => "a line feed (LF)".to_owned(),
                '\0' => "a NUL".to_owned(),
                c => format!("the control character U+{:04X}", c as u32),
            };
            return Err(PrepareError::Header {
                name: name.clone(),
                why: format!(
                    "the value has {what} at character {}; a header value cannot hold control characters other than tab",
                    at + 1
                ),
            });
        }
    }
    Ok(())
}

/// The shared HTTP client.
#[derive(Debug, Clone)]
pub struct Outbound {
    client: reqwest::Client,
}

impl Default for Outbound {
    fn default() -> Self {
        Self::new()
    }
}

impl Outbound {
    /// One client (connection pool) for the process, with ferry's redirect
    /// rule and no `Referer` ([`destination::client_builder`]).
    pub fn new() -> Self {
        let client = destination::client_builder()
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .expect("the TLS backend initialises");
        Self { client }
    }

    /// The client, for calls that are not steps (token endpoints).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Send `req`, carrying `cred` and the `Idempotency-Key`, within `timeout`.
    pub async fn send_with(
        &self,
        timeout: Duration,
        req: &Prepared,
        idempotency_key: &str,
        cred: &Credential,
    ) -> Result<Response, CallError> {
        let mut b = self
            .client
            .request(req.method.clone(), req.url.clone())
            .timeout(timeout);
        for (k, v) in &req.headers {
            b = b.header(k, v);
        }
        b = b.header("Idempotency-Key", idempotency_key);
        let mut extra = None;
        match cred {
            Credential::None => {}
            Credential::Header(k, v) => b = b.header(k, v),
            Credential::Query(k, v) => extra = Some((k, v)),
        }
        if !req.query.is_empty() || extra.is_some() {
            let mut query: Vec<(&str, &str)> = req
                .query
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            if let Some((k, v)) = extra {
                query.push((k, v));
            }
            b = b.query(&query);
        }
        b = match &req.body {
            Body::None => b,
            Body::Json(v) => b.json(v),
            Body::Form(f) => b.form(f),
        };
        let started = Instant::now();
        let resp = b.send().await.map_err(|e| classify(e, timeout))?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let bytes = resp.bytes().await.map_err(|e| classify(e, timeout))?;
        let body = parse_body(&bytes);
        Ok(Response {
            status,
            headers,
            body,
            elapsed: started.elapsed(),
        })
    }
}

/// What a call carries for its connection's auth.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Credential {
    /// Nothing.
    #[default]
    None,
    /// A header.
    Header(String, String),
    /// A query parameter.
    Query(String, String),
}
