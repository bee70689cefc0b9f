//! Pause and resume a workflow or a connection, by hand (`ferry pause
//! workflow W`, `ferry resume connection C`) or in the config (`enabled: false`).
//!
//! - The pause is stored through the [`Cursors`](crate::ports::Cursors) port
//!   (`pause:<workflow|connection>:<name>`, see [`crate::keys`]), so every
//!   instance honours it; each process reads it again at most every
//!   [`REFRESH`], like a circuit breaker.
//! - A paused workflow keeps accepting events (ingest answers 202 and the
//!   run is durably queued); its runs execute nothing: each is put back on
//!   the queue for [`HOLD`] (a fresh message, not an attempt) and looks again.
//! - A paused connection gets no calls: a step that needs it waits the same
//!   way (the gate in [`crate::call`], before the breaker and the rate limit),
//!   without spending an attempt; its earlier steps are not called again.
//! - Resume clears it: held runs go on within [`HOLD`] (plus [`REFRESH`]),
//!   and their calls pass the rate limit like any other, so a backlog is
//!   drained at the connection's rate, never above it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::{Millis, after};
use crate::hub::Hub;
use crate::keys;
use crate::ports::StoreError;

/// Longest this process trusts its copy of a pause.
pub const REFRESH: Duration = Duration::from_secs(1);
/// How long a held run waits before it looks again.
pub const HOLD: Duration = Duration::from_secs(5);

/// What can be paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A workflow: its runs do not execute.
    Workflow,
    /// A connection: no calls go out on it.
    Connection,
}

impl Kind {
    /// `workflow` / `connection`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Workflow => "workflow",
            Kind::Connection => "connection",
        }
    }
}

/// A pause as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Stored {
    paused: bool,
    /// When it was paused or resumed.
    at: Millis,
}

/// Something paused, for people (`ferry runs`, `ferry status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paused {
    /// Workflow or connection.
    pub kind: Kind,
    /// Its name.
    pub name: String,
    /// Paused by `enabled: false` in the config (else by hand).
    pub by_config: bool,
    /// When it was paused by hand (0 for the config).
    pub since: Millis,
}

/// This process's copy of each pause, and when it was read.
#[derive(Debug, Default)]
pub struct Pauses {
    seen: Mutex<HashMap<(Kind, String), (bool, Millis)>>,
}

impl Pauses {
    fn cached(&self, kind: Kind, name: &str, now: Millis) -> Option<bool> {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let (paused, at) = seen.get(&(kind, name.to_owned()))?;
        (now >= *at && now < after(*at, REFRESH)).then_some(*paused)
    }

    fn remember(&self, kind: Kind, name: &str, paused: bool, now: Millis) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.insert((kind, name.to_owned()), (paused, now));
    }
}

/// Whether the config turns it off (`enabled: false`).
fn disabled(hub: &Hub, kind: Kind, name: &str) -> bool {
    let enabled = match kind {
        Kind::Workflow => hub.config.workflows.get(name).and_then(|w| w.enabled),
        Kind::Connection => hub.config.connections.get(name).and_then(|c| c.enabled),
    };
    enabled == Some(false)
}

async fn read(hub: &Hub, kind: Kind, name: &str) -> Result<Option<Stored>, StoreError> {
    let got = hub.ports.cursors.get(&keys::pause(kind, name)).await?;
    Ok(got.and_then(|c| serde_json::from_str(&c.value).ok()))
}

/// Is `name` held now (paused by hand, or off in the config)?
pub async fn held(hub: &Hub, kind: Kind, name: &str) -> Result<bool, StoreError> {
    if disabled(hub, kind, name) {
        return Ok(true);
    }
    let now = hub.ports.clock.now_ms();
    if let Some(paused) = hub.pauses.cached(kind, name, now) {
        return Ok(paused);
    }
    let paused = read(hub, kind, name).await?.is_some_and(|s| s.paused);
    hub.pauses.remember(kind, name, paused, now);
    Ok(paused)
}

/// Pause (`paused`) or resume `name`, for every instance. It must be in the config.
pub async fn set(hub: &Hub, kind: Kind, name: &str, paused: bool) -> Result<(), String> {
    let known = match kind {
        Kind::Workflow => hub.config.workflows.contains_key(name),
        Kind::Connection => hub.config.connections.contains_key(name),
    };
    if !known {
        return Err(format!("no {} {name:?} in the config", kind.as_str()));
    }
    let key = keys::pause(kind, name);
    let cursors = &hub.ports.cursors;
    loop {
        let now = hub.ports.clock.now_ms();
        let current = cursors.get(&key).await.map_err(|e| e.to_string())?;
        let value = serde_json::to_string(&Stored { paused, at: now }).expect("serializes");
        let expected = current.map(|c| c.version);
        if cursors
            .put(&key, &value, expected)
            .await
            .map_err(|e| e.to_string())?
            .is_some()
        {
            hub.pauses.remember(kind, name, paused, now);
            tracing::info!(kind = kind.as_str(), name, paused, "pause set");
            return Ok(());
        }
    }
}

/// Every workflow and connection of the config that is held now, workflows first.
pub async fn list(hub: &Hub) -> Result<Vec<Paused>, String> {
    let names = hub
        .config
        .workflows
        .keys()
        .map(|n| (Kind::Workflow, n))
        .chain(hub.config.connections.keys().map(|n| (Kind::Connection, n)));
    let mut out = Vec::new();
    for (kind, name) in names {
        let stored = read(hub, kind, name).await.map_err(|e| e.to_string())?;
        let by_config = disabled(hub, kind, name);
        let by_hand = stored.filter(|s| s.paused);
        if by_config || by_hand.is_some() {
            out.push(Paused {
                kind,
                name: name.clone(),
                by_config,
                since: by_hand.map_or(0, |s| s.at),
            });
        }
    }
    Ok(out)
}
