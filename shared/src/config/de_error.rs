//! Deserialization errors that know where they happened, worded for people
//! writing YAML ("a mapping", "a whole number"), not for Rust programmers.

use std::fmt;

use serde::de::{self, Expected, Unexpected};

use super::diagnostic::{Path, closest, did_you_mean};
use super::yaml::{Node, Value};

/// The message for a key that is not one of `expected`.
pub(crate) fn unknown_key(key: &str, expected: &[&str]) -> String {
    unknown("key", key, expected)
}

/// `unknown key "x"; did you mean "y"?`, or the list of what is known.
fn unknown(what: &str, got: &str, expected: &[&str]) -> String {
    let hint = did_you_mean(got, expected.iter().copied());
    if hint.is_empty() {
        format!(
            "unknown {what} {got:?}; expected one of: {}",
            expected.join(", ")
        )
    } else {
        format!("unknown {what} {got:?}{hint}")
    }
}

/// A deserialization error, located on its way up.
#[derive(Debug)]
pub(crate) struct DeError {
    pub message: String,
    pub at: Option<(Path, usize)>,
    /// For an unknown key: the key, so the error can point at it.
    key: Option<String>,
    /// For a missing key: its name.
    pub missing: Option<&'static str>,
    /// For an unknown key: the known key it is probably a typo of.
    pub suggestion: Option<&'static str>,
}

impl DeError {
    pub(crate) fn new(message: String) -> Self {
        Self {
            message,
            at: None,
            key: None,
            missing: None,
            suggestion: None,
        }
    }

    /// Pin the error to `node` unless a deeper node already claimed it. Values
    /// that came from `${env:NAME}` are shown as the reference, not the value.
    pub(crate) fn locate(mut self, node: &Node, path: &Path, line: usize) -> Self {
        if self.at.is_some() {
            return self;
        }
        if let (Some(k), Value::Map(entries)) = (&self.key, &node.value)
            && let Some(e) = entries.iter().find(|e| &e.key == k)
        {
            self.at = Some((path.key(k), e.line));
            return self;
        }
        if let Some(s) = node.scalar()
            && let Some(raw) = &s.raw
        {
            // Quoted, as serde quotes strings; bare only when long enough not
            // to hit an unrelated part of the message.
            self.message = self
                .message
                .replace(&format!("{:?}", s.text), &format!("{raw:?}"));
            if s.text.len() >= 4 {
                self.message = self.message.replace(&s.text, raw);
            }
        }
        self.at = Some((path.clone(), line));
        self
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self::new(msg.to_string())
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        Self::new(format!(
            "expected {}, found {}",
            expected(exp),
            unexpected(unexp)
        ))
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        Self::new(format!(
            "invalid value {}: expected {}",
            unexpected(unexp),
            expected(exp)
        ))
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        Self::new(unknown("value", variant, expected))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        Self {
            key: Some(field.to_owned()),
            suggestion: closest(field, expected.iter().copied()),
            ..Self::new(unknown_key(field, expected))
        }
    }

    fn missing_field(field: &'static str) -> Self {
        Self {
            missing: Some(field),
            ..Self::new(format!("missing required key {field:?}"))
        }
    }

    fn duplicate_field(field: &'static str) -> Self {
        Self::new(format!("key {field:?} is given twice"))
    }
}

/// serde's description of what a visitor wanted, in YAML words.
fn expected(exp: &dyn Expected) -> String {
    let s = exp.to_string();
    if s.starts_with("struct ") || s.contains("tagged enum") || s == "a map" {
        return "a mapping".into();
    }
    if s.starts_with("a nonzero") {
        return "a whole number greater than 0".into();
    }
    match s.as_str() {
        "a sequence" => "a list".into(),
        "u8" | "u16" | "u32" | "u64" | "usize" | "i8" | "i16" | "i32" | "i64" => {
            "a whole number".into()
        }
        "f32" | "f64" => "a number".into(),
        "a boolean" => "true or false".into(),
        _ => s,
    }
}

pub(crate) fn unexpected(u: Unexpected<'_>) -> String {
    match u {
        Unexpected::Bool(b) => b.to_string(),
        Unexpected::Unsigned(n) => n.to_string(),
        Unexpected::Signed(n) => n.to_string(),
        Unexpected::Float(f) => f.to_string(),
        Unexpected::Str(s) => format!("the string {s:?}"),
        Unexpected::Unit => "nothing (null)".into(),
        Unexpected::Seq => "a list".into(),
        Unexpected::Map => "a mapping".into(),
        other => other.to_string(),
    }
}
