//! What `ferry connections` shows: each connection's breaker and 429 pause,
//! read from the store (the truth every instance shares).

use serde::Serialize;

use crate::clock::Millis;
use crate::hub::Hub;
use crate::keys;
use crate::ports::StoreError;

use super::Settings;

/// A breaker's state, as a person reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Calls go out.
    Closed,
    /// Calls wait until `until`; after it, the next caller probes.
    Open,
    /// `until` has passed and one probe call is out.
    Probing,
    /// `circuit_breaker: { enabled: false }`.
    Off,
}

/// One connection's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionStatus {
    /// The connection's name.
    pub name: String,
    /// Its breaker.
    pub breaker: State,
    /// When the breaker opened (open or probing).
    pub since: Option<Millis>,
    /// When calls may go again (a probe first).
    pub until: Option<Millis>,
    /// Why it opened: the last failure, redacted.
    pub why: Option<String>,
    /// When a `429` pause ends, while it lasts.
    pub paused_until: Option<Millis>,
}

/// Every configured connection's status, in name order.
pub async fn status(hub: &Hub) -> Result<Vec<ConnectionStatus>, StoreError> {
    let ports = &hub.ports;
    let now = ports.clock.now_ms();
    let mut all = Vec::new();
    for (name, conn) in &hub.config.connections {
        let open = ports.breakers.get(name).await?;
        let paused = ports.limits.paused_until(&keys::connection(name)).await?;
        let breaker = match &open {
            _ if Settings::of(conn).is_none() => State::Off,
            None => State::Closed,
            Some(b) if b.until <= now && b.probe_until > now => State::Probing,
            Some(_) => State::Open,
        };
        all.push(ConnectionStatus {
            name: name.clone(),
            breaker,
            since: open.as_ref().map(|b| b.since),
            until: open.as_ref().map(|b| b.until),
            why: open.map(|b| hub.redact(&b.why)),
            paused_until: (paused > now).then_some(paused),
        });
    }
    Ok(all)
}
