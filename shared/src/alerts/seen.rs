//! What one evaluation observed, condition by condition, before it is
//! compared with the open alerts ([`super::apply`]).

use std::collections::BTreeMap;

use crate::clock::Millis;
use crate::config::Condition;

use super::notice::SubjectKind;
use super::route::Subject;

/// One observation.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    /// The condition.
    pub condition: Condition,
    /// What it is about.
    pub kind: SubjectKind,
    /// Its name.
    pub subject: String,
    /// For drift: the field (part of the alert's key), and the source.
    pub field: Option<String>,
    /// For drift: the source whose events lost the field (for rules' `sources`).
    pub source: Option<String>,
    /// What was seen.
    pub what: What,
}

/// Occurrences, a condition holding, or a condition clear.
#[derive(Debug, Clone, PartialEq)]
pub enum What {
    /// `new` occurrences since the last evaluation (run_failed, late, auth_failed).
    Counted {
        /// How many.
        new: u64,
        /// The first of them.
        first: Millis,
        /// The latest.
        last: Millis,
        /// About the latest.
        message: Message,
    },
    /// The condition holds now (silent, drift, error_rate, circuit_open, dlq_depth).
    Holds {
        /// Since when, as far as known.
        since: Millis,
        /// What to say.
        message: Message,
    },
    /// The condition is clear now; `why` says how it cleared.
    Clear {
        /// E.g. `an event arrived at …`.
        why: String,
    },
}

/// What a message about it says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Message {
    /// One line.
    pub title: String,
    /// A few lines.
    pub detail: String,
    /// Facts by name.
    pub facts: BTreeMap<String, String>,
    /// Commands.
    pub commands: Vec<String>,
}

impl Seen {
    /// The alert's key: `<condition>:<kind>:<subject>[:<field>]`.
    pub fn key(&self) -> String {
        key(
            self.condition,
            self.kind,
            &self.subject,
            self.field.as_deref(),
        )
    }

    /// The subject as rules filter it.
    pub fn route_subject(&self) -> Subject<'_> {
        Subject {
            kind: self.kind,
            name: &self.subject,
            source: self.source.as_deref(),
        }
    }
}

/// The key of an alert.
pub fn key(condition: Condition, kind: SubjectKind, subject: &str, field: Option<&str>) -> String {
    let kind = serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    match field {
        Some(f) => format!("{}:{kind}:{subject}:{f}", condition.as_str()),
        None => format!("{}:{kind}:{subject}", condition.as_str()),
    }
}

/// Whether a condition counts occurrences (a message per window while they
/// go on, resolved after a quiet window) rather than holding a state.
pub fn counts(c: Condition) -> bool {
    matches!(c, Condition::RunFailed | Condition::Late)
}
