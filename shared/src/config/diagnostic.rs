//! What is wrong with a config and where: [`Diagnostic`], [`ConfigErrors`], and
//! the small helpers that build paths and did-you-mean suggestions.

use std::fmt;
use std::path::PathBuf;

/// One problem (or warning) in a config file, at a path such as
/// `workflows.new-lead.steps[1].connection`.
///
/// Displays as `line 23: workflows.new-lead.steps[1].connection: unknown connection "chatt"; did you mean "chat"?`.
/// Messages never contain secret values: a value that came from `${env:NAME}`
/// is shown as the reference, not as what it resolved to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Diagnostic {
    /// Where, in dotted form (`connections.crm.auth.token`); empty for the file as a whole.
    pub path: String,
    /// 1-based line in the file, when known.
    pub line: Option<usize>,
    /// What is wrong, in a sentence a person can act on.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Every error found in a config, in file order. Loading reports them all at
/// once rather than stopping at the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    /// The file, when loaded with [`load_file`](super::load_file).
    pub file: Option<PathBuf>,
    /// The errors, sorted by line.
    pub errors: Vec<Diagnostic>,
}

impl ConfigErrors {
    /// The errors, sorted by line.
    pub fn errors(&self) -> &[Diagnostic] {
        &self.errors
    }

    /// The messages as displayed (`line N: path: message`), one per error.
    pub fn lines(&self) -> Vec<String> {
        self.errors.iter().map(ToString::to_string).collect()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        let noun = if n == 1 { "error" } else { "errors" };
        match &self.file {
            Some(file) => write!(f, "{}: {n} configuration {noun}", file.display())?,
            None => write!(f, "{n} configuration {noun}")?,
        }
        for d in &self.errors {
            write!(f, "\n  {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// One step of a [`Path`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// A location in the document: `workflows.new-lead.steps[1].connection`.
/// Keys made only of letters, digits, `_` and `-` are written after a dot;
/// any other key is quoted: `headers["X Weird.Key"]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct Path(Vec<Seg>);

impl Path {
    /// The document root (displays as the empty string).
    pub(crate) fn root() -> Self {
        Self::default()
    }

    /// This path followed by map key `k`.
    pub(crate) fn key(&self, k: &str) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Key(k.to_owned()));
        Self(v)
    }

    /// This path followed by list index `i`.
    pub(crate) fn index(&self, i: usize) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Index(i));
        Self(v)
    }

    /// The enclosing path, if any.
    pub(crate) fn parent(&self) -> Option<Self> {
        let (_, rest) = self.0.split_last()?;
        Some(Self(rest.to_vec()))
    }

    /// The steps of `self` below `base`, when `self` is inside `base`.
    pub(crate) fn below(&self, base: &Path) -> Option<&[Seg]> {
        self.0.strip_prefix(base.0.as_slice())
    }

    /// The deepest path (this one or an enclosing one) that ends in a map key.
    pub(crate) fn nearest_entry(&self) -> Self {
        let end = self
            .0
            .iter()
            .rposition(|s| matches!(s, Seg::Key(_)))
            .map_or(0, |i| i + 1);
        Self(self.0[..end].to_vec())
    }

    /// The keys and indices, for matching by shape (an index shows as `[]`).
    pub(crate) fn shape(&self) -> Vec<&str> {
        self.0
            .iter()
            .map(|s| match s {
                Seg::Key(k) => k.as_str(),
                Seg::Index(_) => "[]",
            })
            .collect()
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Index(n) => write!(f, "[{n}]")?,
                Seg::Key(k) if is_plain_key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                Seg::Key(k) => write!(f, "[{}]", serde_json::Value::from(k.as_str()))?,
            }
        }
        Ok(())
    }
}

fn is_plain_key(k: &str) -> bool {
    !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The option closest to `got`, when it is close enough to be a likely typo:
/// a letter or two off (also swapped letters, as in "cmr" for "crm"), or alike
/// by Jaro-Winkler (which is kind to long names with a shared start).
pub(crate) fn closest<'a>(
    got: &str,
    options: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let got = got.to_lowercase();
    let allowed_edits = (got.chars().count() / 3).max(1);
    options
        .into_iter()
        .filter_map(|o| {
            let lower = o.to_lowercase();
            let edits = strsim::osa_distance(&got, &lower);
            let alike = strsim::jaro_winkler(&got, &lower);
            (edits <= allowed_edits || alike >= 0.8).then_some((edits, alike, o))
        })
        .min_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)))
        .map(|(_, _, o)| o)
}

/// `; did you mean "x"?` when an option is close to `got`, else the empty string.
pub(crate) fn did_you_mean<'a>(got: &str, options: impl IntoIterator<Item = &'a str>) -> String {
    match closest(got, options) {
        Some(s) => format!("; did you mean {s:?}?"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_display_dotted_with_indices_and_quoted_odd_keys() {
        let p = Path::root()
            .key("workflows")
            .key("new-lead")
            .key("steps")
            .index(1)
            .key("connection");
        assert_eq!(p.to_string(), "workflows.new-lead.steps[1].connection");
        let q = Path::root().key("headers").key("a.b c");
        assert_eq!(q.to_string(), r#"headers["a.b c"]"#);
        assert_eq!(
            p.parent().unwrap().to_string(),
            "workflows.new-lead.steps[1]"
        );
    }

    #[test]
    fn suggestions_only_when_close() {
        assert_eq!(closest("chatt", ["crm", "chat"]), Some("chat"));
        assert_eq!(
            closest(
                "bas_url",
                ["base_url", "auth", "rate_limit", "timeout", "headers"]
            ),
            Some("base_url")
        );
        assert_eq!(closest("cmr", ["chat", "crm"]), Some("crm"));
        assert_eq!(closest("zzz", ["crm", "chat"]), None);
        assert_eq!(closest("retry", ["request", "path", "method"]), None);
        assert_eq!(
            did_you_mean("post", ["GET", "POST"]),
            "; did you mean \"POST\"?"
        );
    }

    #[test]
    fn display_with_and_without_file() {
        let d = Diagnostic {
            path: "a.b".into(),
            line: Some(3),
            message: "bad".into(),
        };
        assert_eq!(d.to_string(), "line 3: a.b: bad");
        let e = ConfigErrors {
            file: Some("ferry.yaml".into()),
            errors: vec![d.clone(), d],
        };
        assert_eq!(
            e.to_string(),
            "ferry.yaml: 2 configuration errors\n  line 3: a.b: bad\n  line 3: a.b: bad"
        );
    }
}
