//! YAML text → a plain tree that remembers the line of every key and item.
//!
//! saphyr does the parsing (YAML 1.2, so `yes`/`no`/`on` stay strings); this
//! module only keeps what ferry needs: scalars with their source text, lists,
//! mappings in document order, and line numbers.

use std::collections::HashMap;

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar as YScalar, YamlData};

use super::diagnostic::{Diagnostic, Path, Seg};

/// A node and the line it starts on (1-based).
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub line: usize,
    pub value: Value,
}

/// The shape of a node.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    Null,
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// A non-null scalar.
#[derive(Debug, Clone)]
pub(crate) struct Scalar {
    /// The string value, or the source text of a number or boolean (`2.10`, `0x1F`, `true`).
    pub text: String,
    /// What the YAML core schema resolves it to.
    pub kind: Kind,
    /// The text before `${env:NAME}` references were replaced, when any were.
    pub raw: Option<String>,
}

/// Resolved type of a scalar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    Str,
    Bool(bool),
    Int(i64),
    Float(f64),
}

/// A mapping entry; `line` is the key's line.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub key: String,
    pub line: usize,
    pub value: Node,
}

impl Node {
    /// The value at `key`, when this is a mapping that has it.
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|e| e.key == key).map(|e| &e.value),
            _ => None,
        }
    }

    /// Remove the map entry at `rel` (relative to this node); `false` when there is none.
    pub(crate) fn remove(&mut self, rel: &[Seg]) -> bool {
        match (rel, &mut self.value) {
            ([Seg::Key(k)], Value::Map(entries)) => {
                let before = entries.len();
                entries.retain(|e| &e.key != k);
                entries.len() != before
            }
            ([Seg::Key(k), rest @ ..], Value::Map(entries)) => entries
                .iter_mut()
                .find(|e| &e.key == k)
                .is_some_and(|e| e.value.remove(rest)),
            ([Seg::Index(i), rest @ ..], Value::Seq(items)) if !rest.is_empty() => {
                items.get_mut(*i).is_some_and(|n| n.remove(rest))
            }
            _ => false,
        }
    }

    /// The entries, if this is a mapping (else none).
    pub(crate) fn entries(&self) -> &[Entry] {
        match &self.value {
            Value::Map(entries) => entries,
            _ => &[],
        }
    }

    /// The items, if this is a list (else none).
    pub(crate) fn items(&self) -> &[Node] {
        match &self.value {
            Value::Seq(items) => items,
            _ => &[],
        }
    }

    /// The scalar, if this is one.
    pub(crate) fn scalar(&self) -> Option<&Scalar> {
        match &self.value {
            Value::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// "a mapping", "a list", ... for messages.
    pub(crate) fn describe(&self) -> &'static str {
        match &self.value {
            Value::Null => "nothing (null)",
            Value::Scalar(s) => match s.kind {
                Kind::Str => "a string",
                Kind::Bool(_) => "a boolean",
                Kind::Int(_) | Kind::Float(_) => "a number",
            },
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

/// Parse one YAML document. Syntax errors and documents beyond the limits of
/// [`super::shape`] stop here (there is no tree to go on with); tree-level
/// problems (tags, odd keys) are all collected.
pub(crate) fn parse(text: &str) -> Result<Node, Vec<Diagnostic>> {
    // Size, depth and alias expansion first: saphyr's loader recurses per level.
    super::shape::check(text).map_err(|d| vec![d])?;
    let docs = MarkedYaml::load_from_str(text).map_err(|e| {
        let m = e.marker();
        vec![Diagnostic {
            path: String::new(),
            line: Some(m.line()),
            message: format!("YAML syntax error at column {}: {}", m.col() + 1, e.info()),
        }]
    })?;
    let mut docs = docs.into_iter();
    let Some(doc) = docs.next() else {
        return Err(vec![empty()]);
    };
    if let Some(extra) = docs.next() {
        return Err(vec![Diagnostic {
            path: String::new(),
            line: Some(extra.span.start.line()),
            message: "a config file holds one YAML document; remove the second `---`".into(),
        }]);
    }
    if matches!(doc.data, YamlData::BadValue) {
        return Err(vec![empty()]);
    }
    let mut conv = Converter {
        text,
        chars: None,
        errors: Vec::new(),
    };
    let root = conv.node(&doc, &Path::root());
    if conv.errors.is_empty() {
        Ok(root)
    } else {
        Err(conv.errors)
    }
}

fn empty() -> Diagnostic {
    Diagnostic {
        path: String::new(),
        line: None,
        message: "the file is empty; a config starts with `version: 1`".into(),
    }
}

struct Converter<'t> {
    text: &'t str,
    /// Byte offset of every char, built on first use (saphyr marks in chars).
    chars: Option<Vec<usize>>,
    errors: Vec<Diagnostic>,
}

impl Converter<'_> {
    fn error(&mut self, path: &Path, line: usize, message: String) {
        self.errors.push(Diagnostic {
            path: path.to_string(),
            line: Some(line),
            message,
        });
    }

    fn node(&mut self, y: &MarkedYaml<'_>, path: &Path) -> Node {
        let line = y.span.start.line();
        let value = match &y.data {
            YamlData::Value(YScalar::Null) => Value::Null,
            YamlData::Value(s) => Value::Scalar(self.scalar(y, s)),
            YamlData::Sequence(items) => Value::Seq(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.node(item, &path.index(i)))
                    .collect(),
            ),
            YamlData::Mapping(map) => {
                let mut entries = Vec::with_capacity(map.len());
                for (k, v) in map {
                    let key_line = k.span.start.line();
                    let Some(key) = self.key(k, path, key_line) else {
                        continue;
                    };
                    let value = self.node(v, &path.key(&key));
                    entries.push(Entry {
                        key,
                        line: key_line,
                        value,
                    });
                }
                Value::Map(entries)
            }
            YamlData::Tagged(tag, _) => {
                let msg = format!(
                    "YAML tags such as `{}{}` are not supported; write plain values, and ${{env:NAME}} for values from the environment",
                    tag.handle, tag.suffix
                );
                self.error(path, line, msg);
                Value::Null
            }
            YamlData::Alias(_) | YamlData::Representation(..) | YamlData::BadValue => {
                self.error(
                    path,
                    line,
                    "this value cannot be read (is a tag or anchor wrong?)".into(),
                );
                Value::Null
            }
        };
        Node { line, value }
    }

    fn key(&mut self, k: &MarkedYaml<'_>, path: &Path, line: usize) -> Option<String> {
        match &k.data {
            YamlData::Value(YScalar::Null) => {
                self.error(path, line, "a key is empty".into());
                None
            }
            YamlData::Value(s) => Some(self.scalar(k, s).text),
            _ => {
                self.error(
                    path,
                    line,
                    "keys must be plain strings, not lists or mappings".into(),
                );
                None
            }
        }
    }

    fn scalar(&mut self, y: &MarkedYaml<'_>, s: &YScalar<'_>) -> Scalar {
        let (kind, fallback) = match s {
            YScalar::String(v) => {
                return Scalar {
                    text: v.to_string(),
                    kind: Kind::Str,
                    raw: None,
                };
            }
            YScalar::Boolean(b) => (Kind::Bool(*b), b.to_string()),
            YScalar::Integer(i) => (Kind::Int(*i), i.to_string()),
            YScalar::FloatingPoint(f) => (Kind::Float(f.into_inner()), f.to_string()),
            YScalar::Null => (Kind::Str, String::new()),
        };
        // Keep numbers and booleans as written, so a string field given `2.10` gets "2.10".
        let text = self
            .source(y.span.start.index(), y.span.end.index())
            .unwrap_or(fallback);
        Scalar {
            text,
            kind,
            raw: None,
        }
    }

    fn source(&mut self, start: usize, end: usize) -> Option<String> {
        let text = self.text;
        let chars = self.chars.get_or_insert_with(|| {
            text.char_indices()
                .map(|(b, _)| b)
                .chain(std::iter::once(text.len()))
                .collect()
        });
        let s = text.get(*chars.get(start)?..*chars.get(end)?)?.trim();
        (!s.is_empty()).then(|| s.to_owned())
    }
}

/// The line of every path in the tree (keys at their key's line, items at
/// theirs), and the text as written of every value that had `${env:NAME}` in it.
#[derive(Debug, Default)]
pub(crate) struct Index {
    lines: HashMap<Path, usize>,
    raw: HashMap<Path, String>,
}

impl Index {
    pub(crate) fn of(root: &Node) -> Self {
        let mut index = Index::default();
        index.walk(root, &Path::root(), root.line);
        index
    }

    fn walk(&mut self, node: &Node, path: &Path, line: usize) {
        self.lines.insert(path.clone(), line);
        match &node.value {
            Value::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.walk(item, &path.index(i), item.line);
                }
            }
            Value::Map(entries) => {
                for e in entries {
                    self.walk(&e.value, &path.key(&e.key), e.line);
                }
            }
            Value::Scalar(Scalar { raw: Some(raw), .. }) => {
                self.raw.insert(path.clone(), raw.clone());
            }
            Value::Null | Value::Scalar(_) => {}
        }
    }

    /// The line of `path`, or of its nearest enclosing path that is in the file
    /// (a missing key is reported where its mapping is).
    pub(crate) fn line(&self, path: &Path) -> Option<usize> {
        let mut p = Some(path.clone());
        while let Some(cur) = p {
            if let Some(l) = self.lines.get(&cur) {
                return Some(*l);
            }
            p = cur.parent();
        }
        None
    }

    /// `value` as it may be shown in a message: the text as written when it
    /// came from the environment (`${env:CRM_URL}`), else the value itself.
    pub(crate) fn shown<'a>(&'a self, path: &Path, value: &'a str) -> &'a str {
        self.raw.get(path).map_or(value, String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_lines_and_number_text() {
        let root = parse("a:\n  b: 2.10\n  c: [x, 0x1F]\nd: 'q'\n").unwrap();
        let b = root.get("a").unwrap().get("b").unwrap().scalar().unwrap();
        assert_eq!((b.text.as_str(), b.kind), ("2.10", Kind::Float(2.1)));
        let Value::Seq(c) = &root.get("a").unwrap().get("c").unwrap().value else {
            panic!()
        };
        assert_eq!(c[1].scalar().unwrap().text, "0x1F");
        let index = Index::of(&root);
        assert_eq!(index.line(&Path::root().key("a").key("b")), Some(2));
        assert_eq!(index.line(&Path::root().key("d")), Some(4));
        // A missing key falls back to its mapping's line.
        assert_eq!(
            index.line(&Path::root().key("a").key("c").key("zz")),
            Some(3)
        );
    }

    #[test]
    fn syntax_errors_and_duplicates_report_a_line() {
        let e = parse("a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
        assert!(
            e[0].line.is_some() && e[0].message.starts_with("YAML syntax error"),
            "{e:?}"
        );
        let e = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(e[0].line, Some(3), "{e:?}");
    }

    #[test]
    fn anchors_and_aliases_resolve() {
        let root = parse("base: &b { x: 1 }\nother: *b\n").unwrap();
        assert_eq!(
            root.get("other")
                .unwrap()
                .get("x")
                .unwrap()
                .scalar()
                .unwrap()
                .text,
            "1"
        );
    }

    #[test]
    fn tags_are_rejected_with_a_hint() {
        let e = parse("a: !Ref x\n").unwrap_err();
        assert!(e[0].message.contains("`!Ref`"), "{e:?}");
    }
}
