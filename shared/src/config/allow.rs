//! A connection's `allow:` list: the only requests it may make, as rules
//! such as `"GET /contacts*"` or `"POST /contacts/*/notes"`.
//!
//! A rule is a method (or `*` for any) and a path relative to the
//! connection's `base_url`. In the path, `*` matches any characters within
//! one segment (never a `/`), except a `*` that ends the rule, which matches
//! the rest of the path whatever it holds. The query string is not matched.
//!
//! The same rules are applied twice: `ferry validate` checks each step's and
//! poll's method and path template (a template part stands for a value only a
//! `*` can match), and the call path checks the rendered request, so a
//! template that renders `/contacts/../admin` cannot escape the list.

/// One parsed `allow` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowRule {
    /// The method, upper case; `None` for `*` (any method).
    pub method: Option<String>,
    /// The path pattern, starting with `/`.
    pub path: String,
}

/// Stands for a template's value in a path checked before it is rendered:
/// no literal character of a rule matches it, only a `*`.
pub const OPAQUE: char = '\u{1}';

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

impl AllowRule {
    /// Parse `"GET /contacts*"`; the error says what a rule looks like.
    pub fn parse(rule: &str) -> Result<AllowRule, String> {
        let shape =
            "an allow rule is a method and a path, e.g. \"GET /contacts*\" or \"POST /contacts\"";
        let Some((method, path)) = rule.trim().split_once(char::is_whitespace) else {
            return Err(format!("{rule:?}: {shape}"));
        };
        let path = path.trim();
        let method = match method.to_ascii_uppercase().as_str() {
            "*" => None,
            m if METHODS.contains(&m) => Some(m.to_owned()),
            _ => {
                return Err(format!(
                    "{rule:?}: unknown method {method:?}; use one of GET, POST, PUT, PATCH, DELETE or *"
                ));
            }
        };
        if !path.starts_with('/') || path.contains(char::is_whitespace) {
            return Err(format!("{rule:?}: {shape} (the path starts with `/`)"));
        }
        if path.contains('?') {
            return Err(format!(
                "{rule:?}: the query string is not matched; leave it out of the rule"
            ));
        }
        Ok(AllowRule {
            method,
            path: path.to_owned(),
        })
    }

    /// Whether `method` on `path` (relative to the base URL, starting with `/`) is allowed.
    pub fn allows(&self, method: &str, path: &str) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && glob(self.path.as_bytes(), path.as_bytes())
    }
}

impl std::fmt::Display for AllowRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method.as_deref().unwrap_or("*"), self.path)
    }
}

/// Parse every rule of a list (the loader has already refused bad ones; a
/// bad one here allows nothing).
pub fn parse_all(rules: &[String]) -> Vec<AllowRule> {
    rules
        .iter()
        .filter_map(|r| AllowRule::parse(r).ok())
        .collect()
}

/// `None` when `method path` is allowed by `rules`; else why not, naming the list.
pub fn refusal(rules: &[AllowRule], method: &str, path: &str) -> Option<String> {
    if rules.iter().any(|r| r.allows(method, path)) {
        return None;
    }
    let list: Vec<String> = rules
        .iter()
        .map(|r| format!("{:?}", r.to_string()))
        .collect();
    Some(format!(
        "{method} {} is outside the connection's allow list [{}]",
        path.replace(OPAQUE, "{{…}}"),
        list.join(", ")
    ))
}

/// A path template with every `{{ … }}` / `{% … %}` part replaced by [`OPAQUE`],
/// a leading `/` (the call path joins it that way), and `.` / `..` segments
/// resolved as the URL parser will.
pub fn opaque_path(template: &str) -> String {
    let mut out = String::from("/");
    let mut rest = template.trim_start_matches('/');
    while let Some(start) = rest.find(['{']) {
        let tail = &rest[start..];
        let close = if tail.starts_with("{{") {
            "}}"
        } else if tail.starts_with("{%") {
            "%}"
        } else {
            out.push_str(&rest[..=start]);
            rest = &rest[start + 1..];
            continue;
        };
        out.push_str(&rest[..start]);
        out.push(OPAQUE);
        rest = tail.find(close).map_or("", |end| &tail[end + 2..]);
    }
    out.push_str(rest);
    let mut segs: Vec<&str> = Vec::new();
    for seg in out.split('/').skip(1) {
        match seg {
            "." => {}
            ".." => {
                segs.pop();
            }
            s => segs.push(s),
        }
    }
    format!("/{}", segs.join("/"))
}

/// `*` matches within a segment; a final `*` matches the rest.
fn glob(pat: &[u8], s: &[u8]) -> bool {
    match pat.split_first() {
        None => s.is_empty(),
        Some((b'*', [])) => true,
        Some((b'*', rest)) => (0..=s.len())
            .take_while(|&i| i == 0 || s[i - 1] != b'/')
            .any(|i| glob(rest, &s[i..])),
        Some((c, rest)) => s.first() == Some(c) && glob(rest, &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(list: &[&str]) -> Vec<AllowRule> {
        list.iter().map(|r| AllowRule::parse(r).unwrap()).collect()
    }

    #[test]
    fn a_final_star_matches_the_rest_and_an_inner_one_a_segment() {
        let r = rules(&[
            "GET /contacts*",
            "POST /contacts",
            "PATCH /contacts/*/notes",
        ]);
        for (m, p) in [
            ("GET", "/contacts"),
            ("GET", "/contacts/7/deals"),
            ("POST", "/contacts"),
            ("PATCH", "/contacts/7/notes"),
        ] {
            assert!(refusal(&r, m, p).is_none(), "{m} {p}");
        }
        for (m, p) in [
            ("DELETE", "/contacts/7"),
            ("POST", "/contacts/7"),
            ("PATCH", "/contacts/7/8/notes"),
            ("GET", "/admin"),
        ] {
            assert!(refusal(&r, m, p).is_some(), "{m} {p}");
        }
        let why = refusal(&r, "DELETE", "/contacts/7").unwrap();
        assert!(why.contains("DELETE /contacts/7 is outside"), "{why}");
        assert!(why.contains("\"POST /contacts\""), "{why}");
    }

    #[test]
    fn a_template_part_is_matched_only_by_a_star() {
        let p = opaque_path("contacts/{{ steps.find.response.body.id }}/notes");
        assert_eq!(p, format!("/contacts/{OPAQUE}/notes"));
        assert!(refusal(&rules(&["POST /contacts/*/notes"]), "POST", &p).is_none());
        assert!(refusal(&rules(&["POST /contacts/1/notes"]), "POST", &p).is_some());
        assert!(refusal(&rules(&["* /contacts*"]), "PUT", &p).is_none());
        assert_eq!(opaque_path("/contacts/./x/../../admin"), "/admin");
    }

    #[test]
    fn bad_rules_say_what_a_rule_looks_like() {
        assert!(
            AllowRule::parse("/contacts")
                .unwrap_err()
                .contains("method and a path")
        );
        assert!(
            AllowRule::parse("FETCH /x")
                .unwrap_err()
                .contains("unknown method")
        );
        assert!(
            AllowRule::parse("GET contacts")
                .unwrap_err()
                .contains("starts with `/`")
        );
        assert!(
            AllowRule::parse("GET /x?y=1")
                .unwrap_err()
                .contains("query")
        );
    }
}
