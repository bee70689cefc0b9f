//! `${env:NAME}` references: replaced in every string value at load, with the
//! secret fields held to being references (never literals).
//!
//! `$${` writes a literal `${`. Values that came from the environment are
//! collected for log redaction; diagnostics show the reference, never the value.

use super::diagnostic::{Diagnostic, Path};
use super::yaml::{Kind, Node, Value};

/// A lookup of environment variables (`std::env::var(..).ok()` in production).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The message for a literal where a secret reference belongs.
pub(crate) const LITERAL_SECRET: &str =
    "secrets must be references such as ${env:NAME}; literal secrets end up in version control";

/// What resolving found: errors, and every value that came from the environment.
#[derive(Debug, Default)]
pub(crate) struct Resolved {
    pub errors: Vec<Diagnostic>,
    /// Resolved values to redact from logs: every secret field, and every other
    /// value from `${env:NAME}` except in a connection's `base_url`.
    pub secrets: Vec<String>,
}

/// Replace every `${env:NAME}` in the tree, checking secret fields on the way.
pub(crate) fn resolve(root: &mut Node, env: EnvLookup<'_>) -> Resolved {
    let mut out = Resolved::default();
    walk(root, &Path::root(), root.line, env, &mut out);
    let mut seen = std::collections::HashSet::new();
    out.secrets
        .retain(|s| !s.is_empty() && seen.insert(s.clone()));
    out
}

/// Whether `path` holds a secret: an auth `token`/`password`/`key`, or a verify `secret`.
fn is_secret_field(path: &Path) -> bool {
    matches!(
        path.shape().as_slice(),
        [
            "connections",
            _,
            "auth",
            "token" | "password" | "key" | "client_secret" | "refresh_token"
        ] | ["sources", _, "verify", "secret"]
            | ["alerts", "channels", _, "webhook_url" | "secret" | "smtp"]
            | ["sources", _, "verify", "secret", "[]"]
    )
}

fn is_base_url(path: &Path) -> bool {
    matches!(path.shape().as_slice(), ["connections", _, "base_url"])
}

fn walk(node: &mut Node, path: &Path, line: usize, env: EnvLookup<'_>, out: &mut Resolved) {
    let error = |out: &mut Resolved, message: String| {
        out.errors.push(Diagnostic {
            path: path.to_string(),
            line: Some(line),
            message,
        });
    };
    match &mut node.value {
        Value::Map(entries) => {
            for e in entries {
                walk(&mut e.value, &path.key(&e.key), e.line, env, out);
            }
        }
        Value::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let l = item.line;
                walk(item, &path.index(i), l, env, out);
            }
        }
        Value::Scalar(s) => {
            let secret = is_secret_field(path);
            if secret && (s.kind != Kind::Str || sole_reference(&s.text).is_none()) {
                let msg = if s.text.contains("${env:") {
                    "a secret must be exactly one reference such as ${env:NAME}, with nothing around it".into()
                } else {
                    LITERAL_SECRET.into()
                };
                error(out, msg);
                return;
            }
            if s.kind != Kind::Str || !s.text.contains('$') {
                return;
            }
            let Substituted {
                text,
                values,
                errors,
            } = substitute(&s.text, env);
            for e in errors {
                error(out, e);
            }
            if text == s.text {
                return;
            }
            if secret
                && let Some((name, value)) = sole_reference(&s.text).zip(values.first())
                && value.is_empty()
            {
                error(out, format!("environment variable {name} is empty"));
            }
            if secret || !is_base_url(path) {
                out.secrets.extend(values);
            }
            s.raw = Some(std::mem::replace(&mut s.text, text));
        }
        Value::Null => {
            if is_secret_field(path) {
                error(out, format!("{LITERAL_SECRET} (here the value is empty)"));
            }
        }
    }
}

/// `NAME` when `s` is exactly `${env:NAME}`.
fn sole_reference(s: &str) -> Option<&str> {
    let name = s.strip_prefix("${env:")?.strip_suffix('}')?;
    is_var_name(name).then_some(name)
}

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

struct Substituted {
    text: String,
    values: Vec<String>,
    errors: Vec<String>,
}

fn substitute(s: &str, env: EnvLookup<'_>) -> Substituted {
    let mut out = Substituted {
        text: String::with_capacity(s.len()),
        values: vec![],
        errors: vec![],
    };
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.text.push_str(&rest[..i]);
        let at = &rest[i..];
        if let Some(after) = at.strip_prefix("$${") {
            out.text.push_str("${");
            rest = after;
        } else if let Some(body) = at.strip_prefix("${env:") {
            let Some(end) = body.find('}') else {
                out.errors
                    .push("unterminated reference; write ${env:NAME}".into());
                out.text.push_str(at);
                return out;
            };
            let name = &body[..end];
            if !is_var_name(name) {
                out.errors.push(
                    "malformed reference; write ${env:NAME} where NAME is letters, digits and `_` (and `$${` for a literal `${`)".into(),
                );
                out.text.push_str(&at[..end + 7]);
            } else if let Some(v) = env(name) {
                out.text.push_str(&v);
                out.values.push(v);
            } else {
                out.errors
                    .push(format!("environment variable {name} is not set"));
                out.text.push_str(&at[..end + 7]);
            }
            rest = &body[end + 1..];
        } else {
            out.text.push('$');
            rest = &at[1..];
        }
    }
    out.text.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::yaml;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("api.example.com".into()),
            "TOKEN" => Some("s3cr3t-token".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn run(src: &str) -> (Node, Resolved) {
        let mut root = yaml::parse(src).unwrap();
        let r = resolve(&mut root, &env);
        (root, r)
    }

    #[test]
    fn replaces_references_anywhere_in_a_string_and_keeps_the_raw_text() {
        let (root, r) = run("a: \"https://${env:HOST}/v1\"\nb: \"cost $5, $${env:X}\"\n");
        let a = root.get("a").unwrap().scalar().unwrap();
        assert_eq!(a.text, "https://api.example.com/v1");
        assert_eq!(a.raw.as_deref(), Some("https://${env:HOST}/v1"));
        assert_eq!(
            root.get("b").unwrap().scalar().unwrap().text,
            "cost $5, ${env:X}"
        );
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.secrets, ["api.example.com"]);
    }

    #[test]
    fn missing_variables_and_malformed_references_are_errors_at_their_path() {
        let (_, r) = run("x:\n  y: ${env:NOPE}\n  z: ${env:bad-name}\n  w: ${env:OPEN\n");
        let msgs: Vec<String> = r.errors.iter().map(ToString::to_string).collect();
        assert_eq!(msgs[0], "line 2: x.y: environment variable NOPE is not set");
        assert!(
            msgs[1].starts_with("line 3: x.z: malformed reference"),
            "{msgs:?}"
        );
        assert!(
            msgs[2].starts_with("line 4: x.w: unterminated reference"),
            "{msgs:?}"
        );
    }

    #[test]
    fn secret_fields_must_be_sole_references_and_are_collected() {
        let src = "connections:\n  crm:\n    base_url: https://${env:HOST}\n    auth: { type: bearer, token: \"${env:TOKEN}\" }\n  b:\n    auth: { type: basic, username: u, password: hunter2 }\nsources:\n  s:\n    verify: { secret: [\"${env:TOKEN}\", \"x${env:TOKEN}\", \"${env:EMPTY}\"] }\n";
        let (_, r) = run(src);
        let msgs: Vec<String> = r.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            msgs,
            [
                format!("line 6: connections.b.auth.password: {LITERAL_SECRET}"),
                "line 9: sources.s.verify.secret[1]: a secret must be exactly one reference such as ${env:NAME}, with nothing around it".to_owned(),
                "line 9: sources.s.verify.secret[2]: environment variable EMPTY is empty".to_owned(),
            ]
        );
        assert!(!msgs.concat().contains("hunter2"));
        // base_url values are not secrets; the token is, once.
        assert_eq!(r.secrets, ["s3cr3t-token"]);
    }
}
