//! Redaction: every known secret value in a string replaced by `[redacted]`.
//!
//! Almost no string holds a secret (every header, key and value of every
//! event and call is checked), so [`Secrets`] first asks, in one pass over
//! the string, whether any configured secret occurs in it (an Aho-Corasick
//! automaton built once); only then does it replace them one by one, longest
//! first, exactly as before.

use aho_corasick::{AhoCorasick, AhoCorasickKind};

/// What a secret is replaced with.
const REDACTED: &str = "[redacted]";

/// The configured secret values (with their derived forms), longest first.
pub(super) struct Secrets {
    list: Vec<String>,
    /// Finds whether any of `list` occurs; `None` when there are none.
    any: Option<AhoCorasick>,
}

impl Secrets {
    /// `list` must be ordered longest first (a secret that contains another
    /// is then redacted whole).
    pub(super) fn new(list: Vec<String>) -> Self {
        let any = if list.is_empty() {
            None
        } else {
            // Built from a handful of short strings: it cannot exceed the
            // automaton's size limits; should it, every string is checked
            // the slow way instead.
            AhoCorasick::builder()
                .kind(Some(AhoCorasickKind::DFA))
                .build(&list)
                .ok()
        };
        Secrets { list, any }
    }

    /// `text` with every secret of the config and every one of `tokens`
    /// replaced by `[redacted]`.
    pub(super) fn redact(&self, text: &str, tokens: &[String]) -> String {
        let configured = match &self.any {
            Some(any) => any.is_match(text),
            None => !self.list.is_empty(),
        };
        if !configured && !tokens.iter().any(|t| text.contains(t.as_str())) {
            return text.to_owned();
        }
        replace_each(text, &self.list, tokens)
    }
}

/// Replace each secret in turn, the configured ones (longest first) then the tokens.
fn replace_each(text: &str, secrets: &[String], tokens: &[String]) -> String {
    let mut out = text.to_owned();
    for s in secrets.iter().chain(tokens) {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), REDACTED);
        }
    }
    out
}

/// `v` with [`Secrets::redact`] (as `r`) applied to every string and key.
pub(super) fn redact_json_with(
    v: &serde_json::Value,
    r: &dyn Fn(&str) -> String,
) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        J::String(s) => J::String(r(s)),
        J::Array(items) => J::Array(items.iter().map(|i| redact_json_with(i, r)).collect()),
        J::Object(map) => J::Object(
            map.iter()
                .map(|(k, i)| (r(k), redact_json_with(i, r)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    /// The one-pass check only decides whether to replace: the answer is the
    /// one-by-one replacement's, whether a secret occurs or not.
    #[test]
    fn answers_as_replacing_each_secret_in_turn() {
        // Longest first, as the hub orders them; one contains another.
        let list = strings(&["Bearer sk_live_123", "sk_live_123", "hunter22"]);
        let secrets = Secrets::new(list.clone());
        let tokens = strings(&["tok_abcd"]);
        for text in [
            "",
            "nothing to hide",
            "Authorization: Bearer sk_live_123",
            "key=sk_live_123&pw=hunter22",
            "hunter2",
            "hunter22hunter22",
            "a tok_abcd token",
            "sk_live_12",
            "é sk_live_123 ü",
        ] {
            assert_eq!(
                secrets.redact(text, &tokens),
                replace_each(text, &list, &tokens),
                "{text:?}"
            );
        }
        assert_eq!(
            secrets.redact("Authorization: Bearer sk_live_123", &[]),
            "Authorization: [redacted]"
        );
        assert_eq!(
            secrets.redact("pw=hunter22, t=tok_abcd", &tokens),
            "pw=[redacted], t=[redacted]"
        );
        assert_eq!(secrets.redact("plain", &tokens), "plain");
    }

    /// No configured secret: only the tokens are looked for.
    #[test]
    fn without_configured_secrets_only_tokens_are_redacted() {
        let secrets = Secrets::new(Vec::new());
        assert_eq!(
            secrets.redact("x tok_abcd y", &strings(&["tok_abcd"])),
            "x [redacted] y"
        );
        assert_eq!(secrets.redact("x tok_abcd y", &[]), "x tok_abcd y");
    }
}
