//! What an alert says: one [`Notice`] per message, whichever channel carries
//! it. Channels render it (`channel`); the webhook channel sends it as JSON
//! (its fields are the documented payload, see `docs/alerts.md`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::clock::Millis;
use crate::config::Condition;

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    /// A workflow (run_failed, error_rate, late, drift).
    Workflow,
    /// A connection (auth_failed, circuit_open).
    Connection,
    /// A webhook source (silent).
    Source,
    /// A sync (silent).
    Sync,
    /// The dead-letter queue (dlq_depth).
    Queue,
}

/// Firing or cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// The condition holds (a new alert, or more of it in a later window).
    Firing,
    /// The condition cleared.
    Resolved,
}

/// One alert message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    /// Unique per message and stable across retries of its delivery (the
    /// webhook's `webhook-id`), e.g. `run_failed:workflow:new-lead:1700000100000`.
    pub id: String,
    /// The condition.
    pub condition: Condition,
    /// What kind of thing it is about.
    pub kind: SubjectKind,
    /// Its name (`new-lead`; `dlq` for the queue).
    pub subject: String,
    /// Firing or resolved.
    pub state: State,
    /// One line a person reads first, e.g. `new-lead: 12 runs failed for good`.
    pub title: String,
    /// The reason and anything else worth knowing, a few lines at most.
    pub detail: String,
    /// How many occurrences the message stands for (1 for a state change).
    pub count: u64,
    /// When the first of them happened.
    pub first_at: Millis,
    /// When the latest happened.
    pub last_at: Millis,
    /// Commands that show or fix it, e.g. `ferry runs show <id>`, `ferry dlq replay --workflow new-lead`.
    pub commands: Vec<String>,
    /// Condition-specific facts: `field`, `source`, `step`, `reason`, `failure`, `rate`…
    pub facts: BTreeMap<String, String>,
}

impl Notice {
    /// The sample `ferry alerts test` sends: a firing `run_failed` on a
    /// workflow named `example`, dated `now`, with every field filled so a
    /// channel shows what a real alert looks like.
    pub fn sample(now: Millis) -> Notice {
        Notice {
            id: format!("test:workflow:example:{now}"),
            condition: Condition::RunFailed,
            kind: SubjectKind::Workflow,
            subject: "example".into(),
            state: State::Firing,
            title: "example: 3 runs failed for good (a test alert from `ferry alerts test`)".into(),
            detail:
                "This is a sample sent by `ferry alerts test` to check the wiring; nothing failed."
                    .into(),
            count: 3,
            first_at: now - 4 * 60 * 1000,
            last_at: now,
            commands: vec![
                "ferry runs list --workflow example".into(),
                "ferry dlq replay --workflow example".into(),
            ],
            facts: BTreeMap::from([
                ("reason".to_owned(), "rejected".to_owned()),
                ("step".to_owned(), "create-contact".to_owned()),
            ]),
        }
    }
}
