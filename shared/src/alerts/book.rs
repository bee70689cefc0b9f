//! The alert book: everything the evaluator remembers, as one JSON value in
//! the cursors port ([`keys::ALERT_BOOK`]), written with its optimistic
//! version. Two evaluators (two Lambdas, two `ferry dev` on one AWS store)
//! read the same book; only the one whose write lands sends what it decided,
//! so every alert is sent once.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::notice::{Notice, SubjectKind};
use crate::clock::Millis;
use crate::config::Condition;
use crate::hub::Hub;
use crate::keys;
use crate::ports::StoreError;

/// Resolved alerts kept for `ferry alerts list`.
pub const KEEP_RECENT: usize = 50;
/// Deliveries kept in the log.
pub const KEEP_LOG: usize = 50;
/// Messages waiting for a channel; past this the oldest are dropped (and logged).
pub const MAX_OUTBOX: usize = 200;

/// Everything the evaluator remembers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Book {
    /// When the first evaluation ran (a source that never sent anything is
    /// silent from then on).
    #[serde(default)]
    pub started_at: Millis,
    /// When the latest evaluation ran.
    #[serde(default)]
    pub evaluated_at: Millis,
    /// How far the tallies have been counted.
    #[serde(default)]
    pub mark: Mark,
    /// Open alerts by key.
    #[serde(default)]
    pub open: BTreeMap<String, Alert>,
    /// Resolved alerts, newest last.
    #[serde(default)]
    pub recent: Vec<Alert>,
    /// Messages not delivered yet, one per channel.
    #[serde(default)]
    pub outbox: Vec<Pending>,
    /// The latest deliveries and failed attempts, newest last.
    #[serde(default)]
    pub log: Vec<Delivery>,
}

/// How far the tallies have been counted: every minute before `bucket`,
/// and of `bucket` itself the counts in `counts`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Mark {
    /// The minute counted last.
    pub bucket: Millis,
    /// What that minute held then, by tally subject.
    #[serde(default)]
    pub counts: BTreeMap<String, u64>,
}

/// An alert, open or resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// `<condition>:<kind>:<subject>[:<field>]`.
    pub key: String,
    /// The condition.
    pub condition: Condition,
    /// What it is about.
    pub kind: SubjectKind,
    /// Its name.
    pub subject: String,
    /// The latest title.
    pub title: String,
    /// The latest detail.
    pub detail: String,
    /// Condition-specific facts.
    #[serde(default)]
    pub facts: BTreeMap<String, String>,
    /// Commands that show or fix it.
    #[serde(default)]
    pub commands: Vec<String>,
    /// When it opened.
    pub opened_at: Millis,
    /// When the first occurrence happened.
    pub first_at: Millis,
    /// When the latest occurrence happened (or the condition was last seen holding).
    pub last_at: Millis,
    /// When the latest message about it was made.
    pub last_sent_at: Millis,
    /// Occurrences reported in messages so far.
    pub reported: u64,
    /// Occurrences since the latest message (reported with the next one).
    #[serde(default)]
    pub pending: u64,
    /// When it was resolved (`None` while open).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<Millis>,
}

impl Alert {
    /// Every occurrence so far.
    pub fn total(&self) -> u64 {
        self.reported + self.pending
    }
}

/// A message waiting for one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// The message.
    pub notice: Notice,
    /// The channel's name.
    pub channel: String,
    /// Attempts so far.
    #[serde(default)]
    pub attempts: u32,
    /// Not before then.
    pub due: Millis,
    /// An evaluator is sending it until then.
    #[serde(default)]
    pub lease_until: Millis,
    /// The latest failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// A delivery, or a failed attempt at one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// The message's id.
    pub notice: String,
    /// The channel.
    pub channel: String,
    /// When.
    pub at: Millis,
    /// Which attempt.
    pub attempt: u32,
    /// `None`: delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Book {
    /// Add a delivery to the log, keeping the newest [`KEEP_LOG`].
    pub fn log(&mut self, d: Delivery) {
        self.log.push(d);
        trim_front(&mut self.log, KEEP_LOG);
    }

    /// Queue `notice` for each channel, dropping the oldest past [`MAX_OUTBOX`].
    pub fn enqueue(&mut self, notice: &Notice, channels: &[String], now: Millis) {
        for channel in channels {
            self.outbox.push(Pending {
                notice: notice.clone(),
                channel: channel.clone(),
                attempts: 0,
                due: now,
                lease_until: 0,
                last_error: None,
            });
        }
        while self.outbox.len() > MAX_OUTBOX {
            let dropped = self.outbox.remove(0);
            tracing::error!(notice = %dropped.notice.id, channel = %dropped.channel, "alert outbox full: dropped the oldest message");
            self.log(Delivery {
                notice: dropped.notice.id,
                channel: dropped.channel,
                at: now,
                attempt: dropped.attempts,
                error: Some("dropped: the outbox was full".into()),
            });
        }
    }

    /// Move an open alert to the resolved ones.
    pub fn close(&mut self, key: &str, now: Millis) -> Option<Alert> {
        let mut a = self.open.remove(key)?;
        a.resolved_at = Some(now);
        self.recent.push(a.clone());
        trim_front(&mut self.recent, KEEP_RECENT);
        Some(a)
    }
}

fn trim_front<T>(v: &mut Vec<T>, keep: usize) {
    if v.len() > keep {
        v.drain(..v.len() - keep);
    }
}

/// The book and the version it must still have when saved (`None`: new).
pub async fn load(hub: &Hub) -> Result<(Book, Option<u64>), StoreError> {
    match hub.ports.cursors.get(keys::ALERT_BOOK).await? {
        None => Ok((Book::default(), None)),
        Some(c) => {
            let book = serde_json::from_str(&c.value)
                .map_err(|e| StoreError::Corrupt(format!("alert book: {e}")))?;
            Ok((book, Some(c.version)))
        }
    }
}

/// Save `book` if it still has `version`; `false` when another evaluator
/// saved first (nothing was written).
pub async fn save(hub: &Hub, book: &Book, version: Option<u64>) -> Result<bool, StoreError> {
    let value =
        serde_json::to_string(book).map_err(|e| StoreError::Corrupt(format!("alert book: {e}")))?;
    Ok(hub
        .ports
        .cursors
        .put(keys::ALERT_BOOK, &value, version)
        .await?
        .is_some())
}
