//! What a sync remembers between runs, as one JSON value in the cursors port
//! (`sync:<name>`), written with its optimistic version: per poll (`source`,
//! `tombstones`, `a`, `b`) the committed watermark and the unfinished pass
//! (filter and next page), plus running totals and the last run.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::SyncError;
use crate::clock::Millis;
use crate::hub::Hub;

/// Everything a sync remembers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncState {
    /// Per poll: `source`, `tombstones`, or the two-way sides `a` and `b`.
    #[serde(default)]
    pub polls: BTreeMap<String, PollState>,
    /// Counts over every run.
    #[serde(default)]
    pub totals: Counts,
    /// The latest run that finished (or stopped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<LastRun>,
    /// When the latest run that did not fail ended (completed, or stopped by
    /// its budget after progress); what `max_silence` on a sync watches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<Millis>,
}

/// One poll's position.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PollState {
    /// The watermark the next pass filters from (the highest one of the last finished pass).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark: Option<String>,
    /// A pass that a budget (or an error) interrupted: the next run continues it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass: Option<Pass>,
}

/// A pass over the records changed since `since`, page by page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pass {
    /// The watermark this pass filters from (fixed for the whole pass).
    pub since: String,
    /// The next page to read.
    pub next: PagePos,
    /// Pages read so far.
    pub pages: u64,
    /// The highest watermark seen so far in this pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high: Option<String>,
}

/// Where the next page is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PagePos {
    /// The configured request as it is.
    First,
    /// The configured request plus a cursor token.
    Token {
        /// The token.
        token: String,
    },
    /// A URL the API gave (`next` in the body, or a `Link` header).
    Url {
        /// The URL.
        url: String,
    },
    /// The configured request plus a page number.
    Page {
        /// Page number.
        n: u64,
    },
    /// The configured request plus an offset.
    Offset {
        /// Records to skip.
        offset: u64,
    },
}

impl std::fmt::Display for PagePos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PagePos::First => f.write_str("first page"),
            PagePos::Token { token } => write!(f, "token {token}"),
            PagePos::Url { url } => write!(f, "{url}"),
            PagePos::Page { n } => write!(f, "page {n}"),
            PagePos::Offset { offset } => write!(f, "offset {offset}"),
        }
    }
}

/// Record counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Records read from the source(s).
    #[serde(default)]
    pub seen: u64,
    /// Runs enqueued (upserts, deletes, two-way writes).
    #[serde(default)]
    pub sent: u64,
    /// Records already sent at this version, or (two-way) unchanged or echoes of ferry's own writes.
    #[serde(default)]
    pub skipped: u64,
    /// Records that could not be read or mapped.
    #[serde(default)]
    pub failed: u64,
    /// Of `sent`, deletions.
    #[serde(default)]
    pub deleted: u64,
    /// Two-way: fields changed on both sides, resolved by the rule.
    #[serde(default)]
    pub conflicts: u64,
}

impl SyncState {
    /// Each poll's watermark, and where an unfinished pass stands, in one
    /// line (`ferry sync status`, the console's syncs page).
    pub fn cursor_text(&self) -> String {
        if self.polls.is_empty() {
            return "none yet".into();
        }
        self.polls
            .iter()
            .map(|(k, PollState { watermark, pass })| {
                let wm = watermark.as_deref().unwrap_or("(none)");
                match pass {
                    Some(p) => format!(
                        "{k}: {wm}, pass since {:?} resumes at {} after {} page(s)",
                        p.since, p.next, p.pages
                    ),
                    None => format!("{k}: {wm}"),
                }
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl Counts {
    /// Add `other` to these counts.
    pub fn add(&mut self, other: &Counts) {
        self.seen += other.seen;
        self.sent += other.sent;
        self.skipped += other.skipped;
        self.failed += other.failed;
        self.deleted += other.deleted;
        self.conflicts += other.conflicts;
    }
}

/// The latest run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastRun {
    /// The run's id in the run log.
    pub run_id: String,
    /// When it started.
    pub started_at: Millis,
    /// When it ended.
    pub finished_at: Millis,
    /// `completed`, `stopped` (budget) or `failed`.
    pub outcome: String,
    /// Why it stopped or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Pages read.
    pub pages: u64,
    /// What it did.
    pub counts: Counts,
}

/// The state as loaded, with the version it must still have when saved.
#[derive(Debug)]
pub struct Saved {
    key: String,
    version: Option<u64>,
    /// The state.
    pub state: SyncState,
}

impl Saved {
    /// Load sync `name`'s state (empty when it never ran).
    pub async fn load(hub: &Hub, name: &str) -> Result<Saved, SyncError> {
        let key = crate::keys::sync_cursor(name);
        let cur = hub
            .ports
            .cursors
            .get(&key)
            .await
            .map_err(SyncError::store)?;
        let (version, state) = match cur {
            None => (None, SyncState::default()),
            Some(c) => {
                let state = serde_json::from_str(&c.value).unwrap_or_else(|_| {
                    // The first cut stored the bare watermark.
                    let mut s = SyncState::default();
                    s.polls.insert(
                        "source".into(),
                        PollState {
                            watermark: Some(c.value.clone()),
                            pass: None,
                        },
                    );
                    s
                });
                (Some(c.version), state)
            }
        };
        Ok(Saved {
            key,
            version,
            state,
        })
    }

    /// Write the state if nobody else wrote it since it was loaded (or last saved).
    pub async fn save(&mut self, hub: &Hub, name: &str) -> Result<(), SyncError> {
        let value = serde_json::to_string(&self.state).expect("state serializes");
        match hub
            .ports
            .cursors
            .put(&self.key, &value, self.version)
            .await
            .map_err(SyncError::store)?
        {
            Some(v) => {
                self.version = Some(v);
                Ok(())
            }
            None => Err(SyncError::Moved(name.to_owned())),
        }
    }
}
