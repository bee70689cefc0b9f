//! Alerts: nothing fails quietly. See `docs/alerts.md`.
//!
//! - [`note`]: execute (and a sync) count what happens — runs failed for
//!   good, credentials refused, runs finished late — in the
//!   [`Tallies`](crate::ports::Tallies) port, as it happens.
//! - [`evaluate`] (every few seconds in `ferry dev`, every minute in the
//!   `watch` Lambda): [`observe`] reads the tallies and the state of every
//!   watched thing (silent sources and syncs, open circuits, the dead-letter
//!   queue, error rates, [`drift`]); [`apply`] decides what opens, what
//!   resolves and which messages go out, grouped per window; the [`book`]
//!   keeps it in the store, so several evaluators send each alert once;
//!   [`deliver`] sends the outbox on each [`channel`], retrying with backoff.
//! - [`route`]: which rule and channels a condition on a subject follows.

pub mod apply;
pub mod book;
pub mod channel;
pub mod deliver;
pub mod drift;
pub mod note;
pub mod notice;
pub mod observe;
pub mod route;
pub mod seen;
pub mod watched;

use std::time::Duration;

pub use channel::{SendError, Senders};
pub use deliver::{Delivered, Sender};
pub use notice::{Notice, State, SubjectKind};

use crate::hub::Hub;
use crate::ports::StoreError;

/// What one evaluation did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Report {
    /// Keys of alerts opened.
    pub opened: Vec<String>,
    /// Keys of alerts resolved.
    pub resolved: Vec<String>,
    /// Messages queued.
    pub queued: usize,
    /// Messages delivered and failed attempts.
    pub delivered: Delivered,
}

/// Evaluate every condition once, then deliver what is due. Without an
/// `alerts:` section it does nothing.
pub async fn evaluate(hub: &Hub, sender: &dyn Sender) -> Result<Report, StoreError> {
    let Some(alerts) = &hub.config.alerts else {
        return Ok(Report::default());
    };
    let mut report = Report::default();
    let mut saved = false;
    for _ in 0..3 {
        let (mut b, version) = book::load(hub).await?;
        let now = hub.ports.clock.now_ms();
        let (seen, mark) = observe::observe(hub, alerts, &b, now).await?;
        let decided = apply::apply(alerts, &mut b, seen, now);
        b.mark = mark;
        if b.started_at == 0 {
            b.started_at = now;
        }
        b.evaluated_at = now;
        if book::save(hub, &b, version).await? {
            report.opened = decided.opened;
            report.resolved = decided.resolved;
            report.queued = decided.notices.len();
            saved = true;
            break;
        }
        // Another evaluator saved first: look again from what it wrote.
    }
    if !saved {
        tracing::warn!("alert book busy: another evaluator keeps saving first");
    }
    report.delivered = deliver::deliver(hub, sender).await?;
    Ok(report)
}

/// Evaluate every `every` until `stop` turns true (`ferry dev`). A failed
/// evaluation (the store down) is logged and tried again next time.
pub async fn watch(
    hub: std::sync::Arc<Hub>,
    sender: std::sync::Arc<dyn Sender>,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    if hub.config.alerts.is_none() {
        return;
    }
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        match evaluate(&hub, sender.as_ref()).await {
            Ok(r) if !r.opened.is_empty() || !r.resolved.is_empty() || r.delivered.failed > 0 => {
                tracing::info!(opened = ?r.opened, resolved = ?r.resolved, sent = r.delivered.sent, failed = r.delivered.failed, "alerts evaluated");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "alerts not evaluated; trying again"),
        }
    }
}

/// Open alerts and the latest resolved ones (newest first), for people.
pub async fn list(hub: &Hub) -> Result<book::Book, StoreError> {
    Ok(book::load(hub).await?.0)
}
