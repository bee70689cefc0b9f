//! Template and expression checks at load: every template parses as minijinja,
//! every expression compiles, and every `steps.<id>` names a step that has run
//! by then. A plain `minijinja::Environment` in strict mode is enough to check
//! syntax; rendering is the template engine's business, not the loader's.

use std::collections::{BTreeSet, HashSet};

use minijinja::{Environment, ErrorKind, UndefinedBehavior};

use super::diagnostic::{Path, did_you_mean};
use super::model::RequestSpec;
use super::validate::{Report, header};

/// Which step results a template can see.
pub(crate) struct Scope<'a> {
    /// Ids of every step of the workflow, in order (`None` where unreadable).
    pub ids: &'a [Option<String>],
    /// The step the template belongs to; earlier steps are visible.
    pub current: Option<usize>,
}

impl Scope<'static> {
    /// Templates evaluated before any step runs (a workflow's `when`, a source's `event_id`, syncs).
    pub(crate) const NO_STEPS: Scope<'static> = Scope {
        ids: &[],
        current: None,
    };
}

/// The syntax checker: one environment as strict as the engine's, built once
/// (building one per template made a config of 50 000 templates take seconds).
pub(crate) struct Jinja {
    env: Environment<'static>,
}

impl Jinja {
    pub(crate) fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        Jinja { env }
    }

    /// `src` parses as a template.
    pub(crate) fn template(&self, src: &str, path: &Path, scope: &Scope<'_>, r: &mut Report<'_>) {
        match self.env.template_from_str(src) {
            Ok(t) => step_refs(t.undeclared_variables(true), path, scope, r),
            Err(e) => r.error(path, message("template", src, &e)),
        }
    }

    /// `src` compiles as an expression (no `{{ }}` around it).
    pub(crate) fn expression(&self, src: &str, path: &Path, scope: &Scope<'_>, r: &mut Report<'_>) {
        let trimmed = src.trim();
        if trimmed.is_empty() {
            return r.error(path, "the expression is empty");
        }
        if trimmed.starts_with("{{") {
            return r.error(
                path,
                "write the expression without {{ }}, e.g. `body.email is defined`",
            );
        }
        match self.env.compile_expression(src) {
            Ok(e) => step_refs(e.undeclared_variables(true), path, scope, r),
            Err(e) => r.error(path, message("expression", src, &e)),
        }
    }

    /// `src` compiles as an expression over `response` alone (a `classify` rule).
    pub(crate) fn response_expression(&self, src: &str, path: &Path, r: &mut Report<'_>) {
        self.expression_over(
            src,
            path,
            "response",
            "a classify rule sees only `response` (`response.status`, `response.headers['name']`, `response.body`)",
            "`response.status == 409`",
            r,
        );
    }

    /// `src` compiles as an expression over the rendered `request` alone
    /// (a token budget's `cost`).
    pub(crate) fn request_expression(&self, src: &str, path: &Path, r: &mut Report<'_>) {
        self.expression_over(
            src,
            path,
            "request",
            "a cost sees only the rendered `request` (`request.json`, `request.body`, `request.headers['name']`, `request.method`, `request.url`)",
            "`(request.body | length) // 4`",
            r,
        );
    }

    /// `src` compiles as an expression naming no variable but `var`.
    fn expression_over(
        &self,
        src: &str,
        path: &Path,
        var: &str,
        sees: &str,
        example: &str,
        r: &mut Report<'_>,
    ) {
        let trimmed = src.trim();
        if trimmed.is_empty() {
            return r.error(path, "the expression is empty");
        }
        if trimmed.starts_with("{{") {
            return r.error(
                path,
                format!("write the expression without {{{{ }}}}, e.g. {example}"),
            );
        }
        match self.env.compile_expression(src) {
            Ok(e) => {
                let mut others: Vec<String> = e
                    .undeclared_variables(false)
                    .into_iter()
                    .filter(|v| v != var)
                    .collect();
                others.sort();
                if let Some(first) = others.first() {
                    r.error(
                        path,
                        format!(
                            "refers to `{first}`, but {sees}{}",
                            did_you_mean(first, [var])
                        ),
                    );
                }
            }
            Err(e) => r.error(path, message("expression", src, &e)),
        }
    }

    /// Every template of a request: path, query, headers, json string leaves, form.
    pub(crate) fn request(
        &self,
        spec: &RequestSpec,
        path: &Path,
        scope: &Scope<'_>,
        r: &mut Report<'_>,
    ) {
        self.template(&spec.path, &path.key("path"), scope, r);
        for (k, v) in &spec.query {
            self.template(v, &path.key("query").key(k), scope, r);
        }
        for (k, v) in &spec.headers {
            let hp = path.key("headers").key(k);
            header(k, None, &hp, r);
            self.template(v, &hp, scope, r);
        }
        if let Some(json) = &spec.json {
            self.json(json, &path.key("json"), scope, r);
        }
        for (k, v) in spec.form.iter().flatten() {
            self.template(v, &path.key("form").key(k), scope, r);
        }
        if spec.json.is_some() && spec.form.is_some() {
            r.error(
                path,
                "a request has a `json` body or a `form` body, not both",
            );
        }
    }

    /// Every string leaf of a JSON value parses as a template.
    pub(crate) fn json(
        &self,
        v: &serde_json::Value,
        path: &Path,
        scope: &Scope<'_>,
        r: &mut Report<'_>,
    ) {
        match v {
            serde_json::Value::String(s) => self.template(s, path, scope, r),
            serde_json::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.json(item, &path.index(i), scope, r);
                }
            }
            serde_json::Value::Object(map) => {
                for (k, item) in map {
                    self.json(item, &path.key(k), scope, r);
                }
            }
            _ => {}
        }
    }
}

fn message(what: &str, src: &str, e: &minijinja::Error) -> String {
    let detail = e
        .detail()
        .map_or_else(|| e.kind().to_string(), str::to_owned);
    let mut msg = match e.kind() {
        ErrorKind::SyntaxError => format!("{what} syntax error: {detail}"),
        _ => format!("invalid {what}: {detail}"),
    };
    if let (true, Some(line)) = (src.contains('\n'), e.line()) {
        msg.push_str(&format!(" (line {line} of the {what})"));
    }
    msg
}

/// Each `steps.<id>` in `vars` must be a step that runs before this one.
fn step_refs(vars: HashSet<String>, path: &Path, scope: &Scope<'_>, r: &mut Report<'_>) {
    let ids: BTreeSet<String> = vars
        .iter()
        .filter_map(|v| v.strip_prefix("steps."))
        .filter_map(|rest| rest.split('.').next())
        .map(str::to_owned)
        .collect();
    const ONLY_EARLIER: &str = "a step sees only the results of the steps before it";
    for id in ids {
        let pos = scope
            .ids
            .iter()
            .position(|x| x.as_deref() == Some(id.as_str()));
        let msg = match (pos, scope.current) {
            (Some(p), Some(cur)) if p < cur => continue,
            (Some(p), Some(cur)) if p == cur => {
                format!("refers to steps.{id}, which is this step; {ONLY_EARLIER}")
            }
            (Some(_), _) => {
                format!("refers to steps.{id}, which has not run yet here; {ONLY_EARLIER}")
            }
            (None, None) => format!("refers to steps.{id}, but no step has run at this point"),
            (None, Some(_)) => {
                let known = scope.ids.iter().flatten().map(String::as_str);
                format!(
                    "refers to steps.{id}, but there is no step {id:?}{}",
                    did_you_mean(&id, known)
                )
            }
        };
        r.error(path, msg);
    }
}
