//! `classify`: what an answer with a given status means, as the config
//! says it (`{"409": success, "5xx": retry}`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What an answer with a given status means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The call did what it should (e.g. `409` for an upsert that already happened).
    Success,
    /// Worth trying again, with backoff.
    Retry,
    /// Trying again cannot help: the run is dead-lettered with the reason.
    Fail,
}

/// A `classify` key: one status, or a class such as `4xx`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusRule {
    /// Exactly this status.
    Exact(u16),
    /// Every status whose first digit is this.
    Class(u16),
}

impl StatusRule {
    /// `"409"` or `"4xx"` (100–599); anything else is `None`.
    pub fn parse(key: &str) -> Option<Self> {
        let k = key.trim().to_ascii_lowercase();
        if let Some(d) = k.strip_suffix("xx") {
            let d: u16 = d.parse().ok()?;
            return (d.to_string().len() == 1 && (1..=5).contains(&d)).then_some(Self::Class(d));
        }
        let n: u16 = k.parse().ok()?;
        (k.len() == 3 && (100..=599).contains(&n)).then_some(Self::Exact(n))
    }
}
