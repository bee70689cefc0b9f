//! Semantic checks: what a well-typed config can still get wrong — references
//! between sections (read from the tree, so a step that failed to parse is
//! still checked), step ids, URLs, schedules. Source verification rules are
//! in `sources`; template syntax in `templates`; the range of every duration
//! and count in `ranges`.

use std::collections::{HashMap, HashSet};

use super::diagnostic::{Diagnostic, Path, did_you_mean};
use super::load::{Flow, Parsed, Target};
use super::model::{
    Auth, Batch, Connection, Pagination, Poll, RateLimit, RetryPolicy, Step, SyncDef, Workflow,
};
use super::sources;
use super::templates::{Jinja, Scope};
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

fn batch(b: &Batch, s: &Step, path: &Path, jinja: &Jinja, r: &mut Report<'_>) {
    if s.request.json.is_none() {
        r.error(
            &path.key("request").key("json"),
            "a batched step needs a `request.json`: it is each run's item in the batch",
        );
    }
    let scope = Scope::NO_STEPS;
    jinja.template(&b.path, &path.key("batch").key("path"), &scope, r);
    if let Some(json) = &b.json {
        let body = crate::config::RequestSpec {
            method: b.method,
            path: String::new(),
            query: Default::default(),
            headers: Default::default(),
            json: Some(json.clone()),
            form: None,
        };
        jinja.request(&body, &path.key("batch"), &scope, r);
    }
    for (key, expr) in [("results", &b.results), ("item_status", &b.item_status)] {
        if let Some(expr) = expr {
            jinja.expression(expr, &path.key("batch").key(key), &scope, r);
        }
    }
    for (key, expr) in [
        ("item_id", &b.item_id),
        ("result_id", &b.result_id),
        ("result_index", &b.result_index),
        ("errors", &b.errors),
        ("error_ids", &b.error_ids),
        ("error_index", &b.error_index),
        ("error_status", &b.error_status),
    ] {
        if let Some(expr) = expr {
            jinja.expression(expr, &path.key("batch").key(key), &scope, r);
        }
    }
    if b.result_id.is_some() && b.result_index.is_some() {
        r.error(
            &path.key("batch").key("result_index"),
            "match results by id (`result_id`) or by index (`result_index`), not both",
        );
    }
    if b.item_id.is_some() != b.result_id.is_some()
        && !(b.item_id.is_some() && b.result_index.is_some())
    {
        r.error(
            &path.key("batch"),
            "results matched by id need both `item_id` (an item's id) and `result_id` (the id a result is for)",
        );
    }
    for (key, set) in [
        ("result_id", b.result_id.is_some()),
        ("result_index", b.result_index.is_some()),
    ] {
        if set && b.results.is_none() {
            r.error(
                &path.key("batch").key(key),
                format!("`{key}` reads each `result`; set `results` to say where the results are"),
            );
        }
    }
    let keyed = b.result_id.is_some() || b.result_index.is_some();
    if (b.errors.is_some()
        || b.error_ids.is_some()
        || b.error_index.is_some()
        || b.error_status.is_some())
        && (b.errors.is_none() || (b.error_ids.is_none() && b.error_index.is_none()) || !keyed)
    {
        r.error(
            &path.key("batch").key("errors"),
            "per-item errors need `errors` (where they are), `error_ids` or `error_index` (what each names) and results matched by id or index (`item_id` + `result_id`, or `result_index`)",
        );
    }
    if b.error_ids.is_some() && b.item_id.is_none() {
        r.error(
            &path.key("batch").key("error_ids"),
            "`error_ids` names items by id; set `item_id` to say where an item's id is",
        );
    }
    if b.item_status.is_some() && b.results.is_none() {
        r.error(
            &path.key("batch").key("item_status"),
            "`item_status` reads each item's `result`; set `results` to say where the results are",
        );
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

fn sync(name: &str, s: &SyncDef, path: &Path, jinja: &Jinja, r: &mut Report<'_>) {
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        r.error(path, "a sync name is part of its cursor and run names; use only letters, digits, `-` and `_`");
    }
    if let Err(e) = crate::schedule::Schedule::parse(&s.schedule) {
        r.error(&path.key("schedule"), e);
    }
    if s.budget.is_some_and(|b| b.get().is_zero()) {
        r.error(&path.key("budget"), "budget must be greater than zero");
    }
    if let Some(retry) = &s.retry {
        retry_policy(retry, &path.key("retry"), r);
    }
    match (&s.source, &s.two_way) {
        (Some(_), Some(_)) => r.error(
            path,
            "a sync has a `source` (one-way) or `two_way`, not both",
        ),
        (None, None) => r.error(
            path,
            "missing `source` (where a one-way sync reads records) or `two_way`",
        ),
        (Some(src), None) => {
            poll(src, &path.key("source"), jinja, r);
            if let Some(t) = &s.tombstones {
                poll(t, &path.key("tombstones"), jinja, r);
            }
            if let Some(map) = &s.map {
                jinja.json(map, &path.key("map"), &Scope::NO_STEPS, r);
            }
            let deletes = s.tombstones.is_some() || src.deleted.is_some();
            if deletes && s.on_delete.is_empty() {
                r.error(
                    &path.key("on_delete"),
                    "deleted records need steps to run: add `on_delete` (e.g. a DELETE or an archive call)",
                );
            }
            if !deletes && !s.on_delete.is_empty() {
                r.error(
                    &path.key("on_delete"),
                    "nothing marks records as deleted: set `source.deleted` or `tombstones`",
                );
            }
            step_list(&s.on_delete, &path.key("on_delete"), jinja, r);
        }
        (None, Some(tw)) => {
            let tp = path.key("two_way");
            for (key, set) in [
                ("tombstones", s.tombstones.is_some()),
                ("map", s.map.is_some()),
                ("steps", !s.steps.is_empty()),
                ("on_delete", !s.on_delete.is_empty()),
            ] {
                if set {
                    r.error(
                        &path.key(key),
                        format!("`{key}` is for one-way syncs; a two-way sync writes with `two_way.a.write` and `two_way.b.write`"),
                    );
                }
            }
            if tw.fields.is_empty() {
                r.error(&tp.key("fields"), "list at least one field to keep in step");
            }
            for (field, f) in &tw.fields {
                let fp = tp.key("fields").key(field);
                jinja.expression(&f.a, &fp.key("a"), &Scope::NO_STEPS, r);
                jinja.expression(&f.b, &fp.key("b"), &Scope::NO_STEPS, r);
            }
            for (key, side) in [("a", &tw.a), ("b", &tw.b)] {
                let sp = tp.key(key);
                poll(&side.source, &sp.key("source"), jinja, r);
                if side.source.watermark.is_none() {
                    r.error(
                        &sp.key("source").key("watermark"),
                        "a two-way side needs `watermark` (the record's update time): it drives both the incremental poll and the `newest` rule",
                    );
                }
                if side.write.is_empty() {
                    r.error(&sp.key("write"), "there are no steps; add at least one");
                }
                step_list(&side.write, &sp.key("write"), jinja, r);
            }
        }
    }
}

/// A poll: its request, pagination and record expressions.
fn poll(p: &Poll, path: &Path, jinja: &Jinja, r: &mut Report<'_>) {
    jinja.request(&p.request, &path.key("request"), &Scope::NO_STEPS, r);
    let exprs = [
        ("records", Some(&p.records)),
        ("id", Some(&p.id)),
        ("version", p.version.as_ref()),
        ("watermark", p.watermark.as_ref()),
        ("deleted", p.deleted.as_ref()),
        ("total", p.total.as_ref()),
    ];
    for (key, expr) in exprs {
        if let Some(expr) = expr {
            jinja.expression(expr, &path.key(key), &Scope::NO_STEPS, r);
        }
    }
    let pp = path.key("pagination");
    match &p.pagination {
        Some(Pagination::Cursor { token, param }) => {
            jinja.expression(token, &pp.key("token"), &Scope::NO_STEPS, r);
            if param.is_empty() {
                r.error(
                    &pp.key("param"),
                    "name the query parameter that carries the token",
                );
            }
        }
        Some(Pagination::NextUrl { next }) => {
            jinja.expression(next, &pp.key("next"), &Scope::NO_STEPS, r);
        }
        Some(Pagination::Page { param, .. }) if param.is_empty() => {
            r.error(
                &pp.key("param"),
                "name the query parameter of the page number",
            );
        }
        Some(Pagination::Offset {
            param, limit_param, ..
        }) if param.is_empty() || limit_param.is_empty() => {
            r.error(&pp, "name both query parameters, `param` and `limit_param`");
        }
        _ => {}
    }
    if p.start.is_some() && p.watermark.is_none() {
        r.error(
            &path.key("start"),
            "`start` is a first watermark, but there is no `watermark` expression",
        );
    }
}

/// A list of steps outside the loader's step-by-step reading (`on_delete`, `write`).
fn step_list(list: &[Step], path: &Path, jinja: &Jinja, r: &mut Report<'_>) {
    let ids: Vec<Option<String>> = list.iter().map(|s| Some(s.id.clone())).collect();
    let f = Flow::<()> {
        def: None,
        steps: list.iter().cloned().map(Some).collect(),
        step_ids: ids,
    };
    steps(&f, path, jinja, r);
}

/// The steps of a workflow or sync: ids, connections, templates, retries.
fn steps<T>(f: &Flow<T>, steps_path: &Path, jinja: &Jinja, r: &mut Report<'_>) {
    let steps_path = steps_path.clone();
    if f.def.is_some() && f.steps.is_empty() {
        r.error(&steps_path, "there are no steps; add at least one");
    }
    let mut first_use: HashMap<&str, usize> = HashMap::new();
    for (i, id) in f.step_ids.iter().enumerate() {
        let Some(id) = id else { continue };
        let id_path = steps_path.index(i).key("id");
        if let Some(earlier) = first_use.get(id.as_str()) {
            r.error(&id_path, format!("duplicate step id {id:?} (also steps[{earlier}]); ids must be unique in a workflow"));
        } else {
            first_use.insert(id, i);
        }
        if !is_identifier(id) {
            let fixed: String = id
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            r.error(
                &id_path,
                format!(
                    "step id {id:?} cannot be written as steps.{id} in a later template; use letters, digits and `_`, not starting with a digit (e.g. {:?})",
                    if fixed.starts_with(|c: char| c.is_ascii_digit()) { format!("_{fixed}") } else { fixed }
                ),
            );
        }
    }
    for (i, step) in f.steps.iter().enumerate() {
        let Some(step) = step else { continue };
        let sp = steps_path.index(i);
        self::step(
            step,
            &sp,
            &Scope {
                ids: &f.step_ids,
                current: Some(i),
            },
            jinja,
            r,
        );
    }
}

fn step(s: &Step, path: &Path, scope: &Scope<'_>, jinja: &Jinja, r: &mut Report<'_>) {
    if let Some(when) = &s.when {
        jinja.expression(when, &path.key("when"), scope, r);
    }
    jinja.request(&s.request, &path.key("request"), scope, r);
    if let Some(retry) = &s.retry {
        retry_policy(retry, &path.key("retry"), r);
    }
    super::validate_classify::check(&s.classify, &path.key("classify"), jinja, r);
    if let Some(b) = &s.batch {
        batch(b, s, path, jinja, r);
    }
}

fn retry_policy(p: &RetryPolicy, path: &Path, r: &mut Report<'_>) {
    if p.max_age.is_some_and(|a| a.get().is_zero()) {
        r.error(&path.key("max_age"), "max_age must be greater than zero");
    }
    if p.initial_backoff.is_some_and(|b| b.get().is_zero()) {
        r.error(
            &path.key("initial_backoff"),
            "initial_backoff must be greater than zero",
        );
    }
    if let (Some(i), Some(m)) = (p.initial_backoff, p.max_backoff)
        && i > m
    {
        r.error(
            &path.key("max_backoff"),
            format!("max_backoff ({m}) is shorter than initial_backoff ({i})"),
        );
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`: usable as `steps.<id>` in a template.
fn is_identifier(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
