//! Templates compiled once: the engine's own cache (its loader), keyed by
//! what a source is rendered as and the source itself, and held to
//! [`CACHE_MAX`] entries.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};

use super::{CACHE_MAX, EXPR_PREFIX, EXPR_SUFFIX, EXPR_VALUE, FUEL, PATH_SEGMENT, format_output};

/// What a template source is rendered as. Its one-character tag starts the
/// name the source is compiled and kept under (the tag, then the source), so
/// the same text as a path and as plain text are two templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Plain text, nothing escaped.
    Text,
    /// A request path: every `{{ }}` output one path segment.
    Path,
    /// An expression, run as `{% set __ferry_value = (expr) %}`.
    Expr,
}

impl Kind {
    fn tag(self) -> char {
        match self {
            Kind::Text => 't',
            Kind::Path => 'p',
            Kind::Expr => 'e',
        }
    }

    /// The name `src` is compiled under as this kind.
    fn name(self, src: &str) -> String {
        let mut name = String::with_capacity(src.len() + 1);
        name.push(self.tag());
        name.push_str(src);
        name
    }

    /// The template text behind `name` (see [`Kind::name`]).
    fn source(name: &str) -> Option<String> {
        let mut chars = name.chars();
        let tag = chars.next()?;
        let src = chars.as_str();
        match tag {
            't' | 'p' => Some(src.to_owned()),
            'e' => Some(format!("{EXPR_PREFIX}{src}{EXPR_SUFFIX}")),
            _ => None,
        }
    }
}

/// What one render gave.
pub(super) struct Rendered {
    /// The text written.
    pub output: String,
    /// The value an expression left (undefined for a template).
    pub value: Value,
    /// The fuel it used.
    pub used: u64,
}

impl Rendered {
    fn of(captured: minijinja::Captured<'_>) -> Self {
        let state = captured.state();
        let used = state.fuel_levels().map_or(0, |(used, _)| used);
        let value = state.lookup(EXPR_VALUE).unwrap_or(Value::UNDEFINED);
        Rendered {
            output: captured.into_output(),
            value,
            used,
        }
    }
}

/// The names admitted to the engine's cache (see [`Kind::name`]).
type Kept = Arc<RwLock<HashSet<String>>>;

/// The engine with ferry's settings, and the names it keeps compiled.
#[derive(Debug)]
pub(super) struct Compiled {
    env: Environment<'static>,
    /// The names kept in `env`'s cache, at most [`CACHE_MAX`]. The loader
    /// answers only these: an `{% include %}` or `{% import %}` (of a name
    /// an event could choose) finds nothing, as without a loader.
    kept: Kept,
}

impl Compiled {
    /// Strict undefined, no autoescape but in paths, [`FUEL`] per render.
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|name| {
            if name.starts_with(Kind::Path.tag()) {
                AutoEscape::Custom(PATH_SEGMENT.into())
            } else {
                AutoEscape::None
            }
        });
        env.set_formatter(format_output);
        env.set_fuel(Some(FUEL));
        let kept = Kept::default();
        let admitted = kept.clone();
        env.set_loader(move |name| {
            let known = read(&admitted).contains(name);
            Ok(known.then(|| Kind::source(name)).flatten())
        });
        Self { env, kept }
    }

    /// How many templates are kept compiled.
    pub fn len(&self) -> usize {
        read(&self.kept).len()
    }

    /// Render `src` as `kind` with `ctx`, with [`FUEL`]: compiled the first
    /// time and kept while there is room; past [`CACHE_MAX`], compiled for
    /// this render alone.
    pub fn render(&self, kind: Kind, src: &str, ctx: &Value) -> Result<Rendered, minijinja::Error> {
        let name = kind.name(src);
        // The read guard is dropped here, before any write below.
        let known = read(&self.kept).contains(&name);
        let admitted = known || {
            let mut kept = self.kept.write().unwrap_or_else(|p| p.into_inner());
            kept.len() < CACHE_MAX && {
                kept.insert(name.clone());
                true
            }
        };
        if admitted {
            return match self.env.get_template(&name) {
                Ok(template) => Ok(Rendered::of(template.render_captured(ctx)?)),
                Err(e) => {
                    // It does not compile: it is not kept and takes no room.
                    let mut kept = self.kept.write().unwrap_or_else(|p| p.into_inner());
                    kept.remove(&name);
                    Err(e)
                }
            };
        }
        let text = Kind::source(&name).unwrap_or_default();
        let template = self.env.template_from_named_str(&name, &text)?;
        Ok(Rendered::of(template.render_captured(ctx)?))
    }
}

fn read(kept: &Kept) -> std::sync::RwLockReadGuard<'_, HashSet<String>> {
    kept.read().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A template is compiled once and kept; the same text as a path and as
    /// text are two templates; an `{% include %}` or `{% import %}` loads
    /// nothing (the loader answers only the names it was asked to keep); and
    /// the cache stops growing at its bound.
    #[test]
    fn templates_are_kept_up_to_the_bound_and_include_nothing() {
        let c = Compiled::new();
        let ctx = super::super::context(&serde_json::json!({"id": "a/b"}));
        let text = c.render(Kind::Text, "/x/{{ id }}", &ctx).unwrap();
        assert_eq!(text.output, "/x/a/b");
        assert_eq!(
            c.render(Kind::Text, "/x/{{ id }}", &ctx).unwrap().output,
            "/x/a/b"
        );
        assert_eq!(c.len(), 1);
        let path = c.render(Kind::Path, "/x/{{ id }}", &ctx).unwrap();
        assert_eq!(path.output, "/x/a%2Fb");
        assert_eq!(c.len(), 2);
        // A template that does not compile takes no room.
        assert!(c.render(Kind::Text, "{{ id", &ctx).is_err());
        assert_eq!(c.len(), 2);
        // An include finds nothing, whatever name the event gives it.
        let event = super::super::context(&serde_json::json!({"n": "t{{ 1 + 1 }}"}));
        let e = c
            .render(Kind::Text, "{% include n %}", &event)
            .err()
            .unwrap();
        assert_eq!(e.kind(), minijinja::ErrorKind::TemplateNotFound);
        let e = c
            .render(Kind::Text, "{% import 'e2' as m %}", &event)
            .err()
            .unwrap();
        assert_eq!(e.kind(), minijinja::ErrorKind::TemplateNotFound);
        assert_eq!(c.len(), 4);
        for i in 0..CACHE_MAX + 10 {
            let e = c.render(Kind::Expr, &format!("{i} + 1"), &ctx).unwrap();
            assert_eq!(e.value, Value::from(i + 1));
        }
        assert_eq!(c.len(), CACHE_MAX);
        // Past the bound a new template still renders, compiled for itself.
        let e = c.render(Kind::Expr, "id ~ '!'", &ctx).unwrap();
        assert_eq!(e.value.as_str(), Some("a/b!"));
        assert_eq!(c.len(), CACHE_MAX);
    }
}
