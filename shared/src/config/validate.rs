//! Semantic checks: what a well-typed config can still get wrong — references
//! between sections (read from the tree, so a step that failed to parse is
//! still checked), step ids, URLs, schedules. Steps are checked in
//! `validate_steps`, syncs in `validate_sync`; source verification rules are
//! in `sources`; template syntax in `templates`; the range of every duration
//! and count in `ranges`.

use std::collections::HashSet;

use super::diagnostic::{Diagnostic, Path, did_you_mean};
use super::load::{Parsed, Target};
use super::model::{Auth, Connection, RateLimit, Workflow};
use super::sources;
use super::templates::{Jinja, Scope};
use super::validate_steps::{retry_policy, steps};
use super::validate_sync::sync;
use super::yaml::Index;

/// Errors and warnings, each placed at its line through the index.
pub(crate) struct Report<'a> {
    index: &'a Index,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

impl<'a> Report<'a> {
    pub(crate) fn new(index: &'a Index, errors: Vec<Diagnostic>) -> Self {
        Self {
            index,
            errors,
            warnings: Vec::new(),
        }
    }

    fn diagnostic(&self, path: &Path, message: String) -> Diagnostic {
        Diagnostic {
            path: path.to_string(),
            line: self.index.line(path),
            message,
        }
    }

    pub(crate) fn error(&mut self, path: &Path, message: impl Into<String>) {
        let d = self.diagnostic(path, message.into());
        self.errors.push(d);
    }

    pub(crate) fn warn(&mut self, path: &Path, message: impl Into<String>) {
        let d = self.diagnostic(path, message.into());
        self.warnings.push(d);
    }

    /// Whether an error was already reported at `path` (e.g. an unset variable).
    pub(crate) fn has_error_at(&self, path: &Path) -> bool {
        let p = path.to_string();
        self.errors.iter().any(|d| d.path == p)
    }

    /// `value` as it may appear in a message (the `${env:NAME}` text when it came from there).
    pub(crate) fn shown<'v>(&'v self, path: &Path, value: &'v str) -> &'v str {
        self.index.shown(path, value)
    }
}

/// Run every semantic check on what could be read.
pub(crate) fn check(p: &Parsed, r: &mut Report<'_>) {
    let root = Path::root();
    if let Some(v) = p.version.filter(|v| *v != 1) {
        r.error(
            &root.key("version"),
            format!("unsupported version {v}; this ferry reads version 1"),
        );
    }
    let jinja = Jinja::new();
    let conns: Vec<&str> = p.connections.keys().map(String::as_str).collect();
    let sources: Vec<&str> = p.sources.keys().map(String::as_str).collect();
    let mut used: HashSet<(Target, &str)> = HashSet::new();
    for rf in &p.references {
        let (names, kind) = match rf.target {
            Target::Connection => (&conns, "connection"),
            Target::Source => (&sources, "source"),
        };
        if names.contains(&rf.name.as_str()) {
            used.insert((rf.target, &rf.name));
        } else {
            let hint = did_you_mean(&rf.name, names.iter().copied());
            r.error(&rf.path, format!("unknown {kind} {:?}{hint}", rf.name));
        }
    }

    for (name, c) in &p.connections {
        if let Some(c) = c {
            connection(c, &root.key("connections").key(name), &jinja, r);
        }
    }
    for (name, s) in &p.sources {
        let path = root.key("sources").key(name);
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            r.error(&path, "a source name is part of its webhook URL (/hooks/<name>); use only letters, digits, `-` and `_`");
        }
        if let Some(s) = s {
            sources::check(s, &path, &jinja, r);
        }
    }

    for (name, f) in &p.workflows {
        let path = root.key("workflows").key(name);
        if let Some(w) = &f.def {
            workflow(w, &path, &jinja, r);
        }
        steps(f, &path.key("steps"), &jinja, r);
    }
    for (name, f) in &p.syncs {
        let path = root.key("syncs").key(name);
        if let Some(s) = &f.def {
            sync(name, s, &path, &jinja, r);
        }
        // A two-way sync has no `steps` of its own (each side has `write`).
        let two_way = f.def.as_ref().is_some_and(|s| s.two_way.is_some());
        if !two_way {
            steps(f, &path.key("steps"), &jinja, r);
        } else if !f.steps.is_empty() {
            r.error(
                &path.key("steps"),
                "`steps` is for one-way syncs; a two-way sync writes with `two_way.a.write` and `two_way.b.write`",
            );
        }
    }

    for name in conns
        .iter()
        .filter(|c| !used.contains(&(Target::Connection, **c)))
    {
        r.warn(
            &root.key("connections").key(name),
            "no step or sync uses this connection",
        );
    }
    for name in sources
        .iter()
        .filter(|s| !used.contains(&(Target::Source, **s)))
    {
        r.warn(
            &root.key("sources").key(name),
            "no workflow is triggered by this source; its events are recorded but nothing runs",
        );
    }
    super::validate_alerts::check(p, r);
    super::validate_allow::check(p, r);
    super::ranges::check(p, r);
}

fn connection(c: &Connection, path: &Path, jinja: &Jinja, r: &mut Report<'_>) {
    let url_path = path.key("base_url");
    if !r.has_error_at(&url_path) {
        let shown = r.shown(&url_path, &c.base_url).to_owned();
        match c.base_url.parse::<http::Uri>() {
            Ok(u) if matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some_and(|h| !h.is_empty()) => {
                if u.query().is_some() {
                    r.error(&url_path, format!("base_url {shown:?} has a query string; put query parameters in each step's `query`"));
                }
            }
            _ => r.error(
                &url_path,
                format!("base_url {shown:?} is not an absolute http(s) URL such as \"https://api.example.com/v2\""),
            ),
        }
    }
    for (name, value) in &c.headers {
        header(name, Some(value), &path.key("headers").key(name), r);
    }
    match &c.auth {
        Some(Auth::ApiKey {
            header: Some(_),
            query: Some(_),
            ..
        }) => {
            r.error(
                &path.key("auth"),
                "api_key auth goes in a `header` or in the `query`, not both",
            );
        }
        Some(Auth::ApiKey {
            header: Some(h), ..
        }) => header(h, None, &path.key("auth").key("header"), r),
        Some(Auth::Basic { username, .. }) if username.is_empty() || username.contains(':') => {
            r.error(
                &path.key("auth").key("username"),
                "username must be non-empty and must not contain `:`",
            );
        }
        Some(
            auth @ Auth::OAuth2 {
                token_url,
                client_id,
                ..
            },
        ) => {
            oauth2(token_url, client_id, &path.key("auth"), r);
            super::validate_oauth2::grant(auth, &path.key("auth"), r);
        }
        _ => {}
    }
    super::validate_classify::check(&c.classify, &path.key("classify"), jinja, r);
    if let Some(rl) = &c.rate_limit {
        rate_limit(rl, &path.key("rate_limit"), jinja, r);
    }
    if c.timeout.is_some_and(|t| t.get().is_zero()) {
        r.error(&path.key("timeout"), "timeout must be greater than zero");
    }
}

fn oauth2(token_url: &str, client_id: &str, path: &Path, r: &mut Report<'_>) {
    let url_path = path.key("token_url");
    if !r.has_error_at(&url_path) {
        let ok = token_url.parse::<http::Uri>().is_ok_and(|u| {
            matches!(u.scheme_str(), Some("http" | "https"))
                && u.host().is_some_and(|h| !h.is_empty())
        });
        if !ok {
            let shown = r.shown(&url_path, token_url).to_owned();
            r.error(
                &url_path,
                format!("token_url {shown:?} is not an absolute http(s) URL such as \"https://auth.example.com/oauth/token\""),
            );
        }
    }
    if client_id.is_empty() {
        r.error(&path.key("client_id"), "client_id must not be empty");
    }
}

fn rate_limit(rl: &RateLimit, path: &Path, jinja: &Jinja, r: &mut Report<'_>) {
    if rl.per.get().is_zero() {
        r.error(&path.key("per"), "the window must be greater than zero");
    }
    if let Some(h) = rl.headroom.filter(|h| !(*h > 0.0 && *h <= 1.0)) {
        r.error(
            &path.key("headroom"),
            format!(
                "headroom is the fraction of the limit ferry spends, in (0, 1] (e.g. 0.8); got {h}"
            ),
        );
    }
    if let Some(key) = &rl.key {
        jinja.template(key, &path.key("key"), &Scope::NO_STEPS, r);
    }
    if let Some(f) = &rl.from_headers {
        let p = path.key("from_headers");
        match f {
            super::FromHeadersList::One(f) => super::rate_headers::check(f, &p, r),
            super::FromHeadersList::Many(all) => {
                if all.is_empty() {
                    r.error(
                        &p,
                        "from_headers lists no header pair; remove it or add one",
                    );
                }
                for (i, f) in all.iter().enumerate() {
                    super::rate_headers::check(f, &p.index(i), r);
                }
            }
        }
    }
    if let Some(t) = &rl.tokens {
        super::rate_tokens::check(t, &path.key("tokens"), jinja, r);
    }
}

/// A header name (and value, when it is not a template) that HTTP accepts.
pub(crate) fn header(name: &str, value: Option<&str>, path: &Path, r: &mut Report<'_>) {
    if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
        r.error(path, format!("{name:?} is not a valid HTTP header name"));
    } else if value.is_some_and(|v| http::HeaderValue::from_str(v).is_err()) {
        r.error(
            path,
            "the value is not a valid HTTP header value (no line breaks or control characters)",
        );
    }
}

fn workflow(w: &Workflow, path: &Path, jinja: &Jinja, r: &mut Report<'_>) {
    if let Some(when) = &w.when {
        jinja.expression(when, &path.key("when"), &Scope::NO_STEPS, r);
    }
    if let Some(retry) = &w.retry {
        retry_policy(retry, &path.key("retry"), r);
    }
    if let Some(key) = w.concurrency.as_ref().and_then(|c| c.key.as_ref()) {
        jinja.template(
            key,
            &path.key("concurrency").key("key"),
            &Scope::NO_STEPS,
            r,
        );
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`: usable as `steps.<id>` in a template.
pub(super) fn is_identifier(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
