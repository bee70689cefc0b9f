//! Templating and `when` expressions, on minijinja.
//!
//! Undefined values are errors (strict mode): a template that refers to a field
//! the event does not have fails the run with the field's name instead of
//! sending an empty string to a CRM.
//!
//! In a JSON body, a string that is exactly one `{{ expression }}` keeps the
//! expression's type (a number stays a number, an object stays an object);
//! any other string is rendered as text.
//!
//! A request path is rendered with [`Templates::render_path`]: there every
//! `{{ }}` output is one path segment (see [`crate::destination::segment`]).
//!
//! Each template and expression is compiled the first time it is rendered
//! and kept compiled (see [`CACHE_MAX`]).

use std::cell::Cell;

use minijinja::{AutoEscape, ErrorKind, Output, State, Value};

mod compiled;
mod sole_path;
use compiled::{Compiled, Kind, Rendered};
pub use sole_path::{plain_text, sole_path};

/// The auto-escape mode of path templates.
const PATH_SEGMENT: &str = "path-segment";

/// The work one request's templates may do together (its path, query, headers
/// and body), or one expression or template rendered on its own. minijinja
/// charges one fuel per instruction and one per 64 bytes of data a template
/// creates or writes, so this bounds a render's time and memory (about 12 MiB).
/// A render may run up to this much on its own, and fails its request when
/// it used more than the renders before it left: a request's templates do at
/// most twice this work before it fails.
pub const FUEL: u64 = 200_000;

/// The largest rendered request (URL, query, headers and body), in bytes.
pub const MAX_RENDERED_BYTES: usize = 1 << 20;

/// Most distinct templates and expressions kept compiled. A config's
/// templates are a few dozen; past this (expressions typed at run time,
/// such as `ferry runs list --where`, by the thousand) each new one is
/// compiled for its render alone, so the cache cannot grow without bound.
pub const CACHE_MAX: usize = 4096;

/// An expression runs as `{% set __ferry_value = (expr) %}`, so that it is
/// rendered, and its fuel counted, like any template.
const EXPR_PREFIX: &str = "{% set __ferry_value = (";
const EXPR_SUFFIX: &str = ") %}";
const EXPR_VALUE: &str = "__ferry_value";

/// A template or expression failed for this run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct TemplateError {
    /// The template source (never contains secrets: secrets live in connections,
    /// not templates); empty when the request as a whole is at fault.
    pub template: String,
    /// What went wrong, naming the missing field when one is missing.
    pub message: String,
}

impl TemplateError {
    fn describe(&self) -> String {
        if self.template.is_empty() {
            self.message.clone()
        } else {
            format!("template {:?}: {}", self.template, self.message)
        }
    }
}

/// The template engine, configured once; it keeps what it compiles.
#[derive(Debug)]
pub struct Templates {
    compiled: Compiled,
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl Templates {
    /// The engine with ferry's settings: strict undefined, no autoescape, [`FUEL`].
    pub fn new() -> Self {
        Self {
            compiled: Compiled::new(),
        }
    }

    /// A budget of [`FUEL`] shared by every render made through it (one request).
    pub fn budget(&self) -> Budget<'_> {
        Budget {
            t: self,
            left: Cell::new(FUEL),
        }
    }

    /// How many templates and expressions are kept compiled (at most [`CACHE_MAX`]).
    pub fn cached(&self) -> usize {
        self.compiled.len()
    }

    /// Render `src` as text, with a budget of its own.
    pub fn render(&self, src: &str, ctx: &Value) -> Result<String, TemplateError> {
        self.budget().render(src, ctx)
    }

    /// Render a request path (each `{{ }}` output one path segment), with a budget of its own.
    pub fn render_path(&self, src: &str, ctx: &Value) -> Result<String, TemplateError> {
        self.budget().render_path(src, ctx)
    }

    /// Evaluate an expression (no `{{ }}`) to a value, with a budget of its own.
    pub fn eval(&self, expr: &str, ctx: &Value) -> Result<Value, TemplateError> {
        self.budget().eval(expr, ctx)
    }

    /// Evaluate a `when` condition; undefined counts as an error, not as false.
    pub fn is_true(&self, expr: &str, ctx: &Value) -> Result<bool, TemplateError> {
        Ok(self.eval(expr, ctx)?.is_true())
    }

    /// Evaluate an expression to JSON, with a budget of its own.
    pub fn eval_json(&self, expr: &str, ctx: &Value) -> Result<serde_json::Value, TemplateError> {
        self.budget().eval_json(expr, ctx)
    }

    /// Render every string leaf of a JSON value under one budget; `"{{ expr }}"`
    /// alone keeps its type.
    pub fn render_json(
        &self,
        v: &serde_json::Value,
        ctx: &Value,
    ) -> Result<serde_json::Value, TemplateError> {
        self.budget().render_json(v, ctx)
    }
}

/// Fuel left for the renders of one request: each render may use what the
/// ones before it left, and a render that runs out fails the request.
#[derive(Debug)]
pub struct Budget<'t> {
    t: &'t Templates,
    left: Cell<u64>,
}

impl Budget<'_> {
    /// The fuel not used yet.
    pub fn left(&self) -> u64 {
        self.left.get()
    }

    /// Render `src` as text.
    pub fn render(&self, src: &str, ctx: &Value) -> Result<String, TemplateError> {
        if !src.contains("{{") && !src.contains("{%") {
            return Ok(src.to_owned());
        }
        self.run(Kind::Text, src, ctx)
            .map(|r| r.output)
            .map_err(|e| error(src, &e, 0))
    }

    /// Render a request path: the literal parts as written, every `{{ }}`
    /// output as exactly one percent-encoded path segment (a value of `.` or
    /// `..` is an error).
    pub fn render_path(&self, src: &str, ctx: &Value) -> Result<String, TemplateError> {
        if !src.contains("{{") && !src.contains("{%") {
            return Ok(src.to_owned());
        }
        self.run(Kind::Path, src, ctx)
            .map(|r| r.output)
            .map_err(|e| error(src, &e, 0))
    }

    /// Evaluate an expression (no `{{ }}`) to a value.
    pub fn eval(&self, expr: &str, ctx: &Value) -> Result<Value, TemplateError> {
        self.run(Kind::Expr, expr, ctx)
            .map(|r| r.value)
            .map_err(|e| error(expr, &e, EXPR_PREFIX.len()))
    }

    /// Evaluate an expression to JSON.
    pub fn eval_json(&self, expr: &str, ctx: &Value) -> Result<serde_json::Value, TemplateError> {
        let v = self.eval(expr, ctx)?;
        to_json(expr, &v)
    }

    /// Render every string leaf of a JSON value; `"{{ expr }}"` alone keeps its type.
    pub fn render_json(
        &self,
        v: &serde_json::Value,
        ctx: &Value,
    ) -> Result<serde_json::Value, TemplateError> {
        use serde_json::Value as J;
        Ok(match v {
            J::String(s) => match sole_expression(s) {
                Some(expr) => self.eval_json(expr, ctx)?,
                None => J::String(self.render(s, ctx)?),
            },
            J::Array(items) => J::Array(
                items
                    .iter()
                    .map(|i| self.render_json(i, ctx))
                    .collect::<Result<_, _>>()?,
            ),
            J::Object(map) => {
                let mut out = serde_json::Map::with_capacity(map.len());
                for (k, item) in map {
                    out.insert(k.clone(), self.render_json(item, ctx)?);
                }
                J::Object(out)
            }
            other => other.clone(),
        })
    }

    /// Render `src` as `kind` with the fuel that is left. A render may run
    /// up to [`FUEL`] on its own; one that used more than was left, or
    /// failed, uses up the budget (the request fails).
    fn run(&self, kind: Kind, src: &str, ctx: &Value) -> Result<Rendered, minijinja::Error> {
        let left = self.left.replace(0);
        let out_of_fuel = || {
            minijinja::Error::new(
                ErrorKind::OutOfFuel,
                "the request's templates used up their budget",
            )
        };
        if left == 0 {
            return Err(out_of_fuel());
        }
        let rendered = self.t.compiled.render(kind, src, ctx)?;
        if rendered.used > left {
            return Err(out_of_fuel());
        }
        self.left.set(left - rendered.used);
        Ok(rendered)
    }
}

/// Write one `{{ }}` output: strict about undefined values (a custom
/// formatter replaces minijinja's own check), and in a path template as one
/// path segment.
fn format_output(
    out: &mut Output,
    state: &mut State,
    value: &Value,
) -> Result<(), minijinja::Error> {
    if value.is_undefined() {
        return Err(minijinja::Error::from(ErrorKind::UndefinedError));
    }
    if matches!(state.auto_escape(), AutoEscape::Custom(mode) if mode == PATH_SEGMENT) {
        let text = value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_owned);
        let seg = crate::destination::segment(&text)
            .map_err(|e| minijinja::Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
        return Ok(out.write_str(&seg)?);
    }
    minijinja::escape_formatter(out, state, value)
}

/// Turn any serializable value (usually a `serde_json::Value`) into a template context.
pub fn context<T: serde::Serialize>(v: &T) -> Value {
    Value::from(minijinja::value::Serde(v))
}

/// `"{{ expr }}"` with nothing around it → `Some("expr")`.
fn sole_expression(s: &str) -> Option<&str> {
    let inner = s.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    if inner.contains("{{") || inner.contains("}}") || inner.contains("{%") {
        return None;
    }
    Some(inner.trim())
}

fn to_json(src: &str, v: &Value) -> Result<serde_json::Value, TemplateError> {
    if v.is_undefined() {
        return Err(TemplateError {
            template: src.to_owned(),
            // Strict mode lets an expression end on a missing attribute: name it.
            message: format!("missing field `{}`", src.trim()),
        });
    }
    serde_json::to_value(v).map_err(|e| TemplateError {
        template: src.to_owned(),
        message: format!("result is not JSON: {e}"),
    })
}

/// `e` as a message about `src`; `offset` is where `src` starts in the text that ran.
fn error(src: &str, e: &minijinja::Error, offset: usize) -> TemplateError {
    if e.kind() == ErrorKind::OutOfFuel {
        return TemplateError {
            template: src.to_owned(),
            message: format!(
                "over the template budget ({FUEL} fuel per request: about {FUEL} steps or {} MiB of data); a template may not loop or build text without bound",
                (FUEL * 64) >> 20
            ),
        };
    }
    // Point at the expression that failed: for an undefined field this is its name.
    // minijinja's range may start at the failing attribute (`.response`):
    // widen it back over the path it hangs off (`steps.contact.response`).
    let culprit = e
        .range()
        .map(|r| r.start.saturating_sub(offset)..r.end.saturating_sub(offset))
        .map(|r| {
            let path_start = |end: usize| {
                src[..end]
                    .rfind(|c: char| {
                        !(c.is_alphanumeric() || matches!(c, '_' | '.' | '[' | ']' | '"' | '\''))
                    })
                    .map_or(0, |i| i + 1)
            };
            let start = path_start(r.start.min(src.len()));
            // `record.email | lower`: the range is the filter; the culprit is what it filters.
            let before = src[..start].trim_end();
            match before.strip_suffix('|') {
                Some(lhs) if !lhs.ends_with('|') => {
                    let end = lhs.trim_end().len();
                    path_start(end)..end
                }
                _ => start..r.end.min(src.len()),
            }
        })
        .and_then(|r| src.get(r))
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let message = match (e.kind(), culprit) {
        (ErrorKind::UndefinedError, Some(c)) => format!("missing field `{c}`"),
        (ErrorKind::UndefinedError, None) => "refers to a missing field".to_owned(),
        (_, Some(c)) => format!("{} (at `{c}`)", e.detail().unwrap_or(&e.kind().to_string())),
        (_, None) => e
            .detail()
            .map(str::to_owned)
            .unwrap_or_else(|| e.kind().to_string()),
    };
    TemplateError {
        template: src.to_owned(),
        message,
    }
}

#[cfg(test)]
mod tests;
