//! The plain-text rendering of a [`Notice`]: the e-mail body, the SNS message,
//! and Slack's `text` fallback draw from it, so every channel says the same.

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat};

use crate::alerts::{Notice, State};
use crate::clock::Millis;

/// `ms` as UTC RFC 3339 with seconds (`2023-11-14T22:13:20Z`).
pub fn utc(ms: Millis) -> String {
    DateTime::from_timestamp_millis(ms).map_or_else(
        || format!("{ms} ms after the Unix epoch"),
        |t| t.to_rfc3339_opts(SecondsFormat::Secs, true),
    )
}

/// `firing` or `resolved`.
pub(crate) fn state(s: State) -> &'static str {
    match s {
        State::Firing => "firing",
        State::Resolved => "resolved",
    }
}

/// `[FIRING] title` / `[RESOLVED] title`: a subject line.
pub(crate) fn headline(n: &Notice) -> String {
    format!("[{}] {}", state(n.state).to_ascii_uppercase(), n.title)
}

/// The kind and name of the subject, e.g. `workflow new-lead`.
pub(crate) fn subject(n: &Notice) -> String {
    let kind = serde_json::to_value(n.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    format!("{kind} {}", n.subject)
}

/// The occurrence line: `12 times, first 2023-…Z, last 2023-…Z` (or one time).
pub(crate) fn occurrences(n: &Notice) -> String {
    if n.count == 1 && n.first_at == n.last_at {
        format!("once, at {}", utc(n.first_at))
    } else {
        let times = if n.count == 1 { "time" } else { "times" };
        format!(
            "{} {times}, first {}, last {}",
            n.count,
            utc(n.first_at),
            utc(n.last_at)
        )
    }
}

/// Everything a notice says, as plain text: the headline, the state, the
/// subject, the condition, the detail, the count and times, the facts, and
/// the commands (indented, one per line).
pub fn plain_text(n: &Notice) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", headline(n));
    let _ = writeln!(out);
    let _ = writeln!(out, "State:     {}", state(n.state));
    let _ = writeln!(out, "Subject:   {}", subject(n));
    let _ = writeln!(out, "Condition: {}", n.condition.as_str());
    let _ = writeln!(out, "Seen:      {}", occurrences(n));
    if !n.detail.trim().is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "{}", n.detail.trim_end());
    }
    if !n.facts.is_empty() {
        let _ = writeln!(out);
        for (k, v) in &n.facts {
            let _ = writeln!(out, "{k}: {v}");
        }
    }
    if !n.commands.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "To look into it:");
        for c in &n.commands {
            let _ = writeln!(out, "    {c}");
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "Alert id: {}", n.id);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_rfc3339() {
        assert_eq!(utc(1_700_000_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(utc(1_700_000_000_999), "2023-11-14T22:13:20Z");
    }
}
