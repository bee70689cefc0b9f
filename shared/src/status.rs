//! The hub on one screen, on either store — what `ferry status` prints and
//! the console's overview shows: per workflow the runs of the last 24 hours
//! by status (and by hour), per source its latest event and whether it is
//! fresh, per connection ok / paused / its breaker / auth failing, the
//! dead-letter queue's depth, per sync its last pass, what is on hold and how
//! many alerts are open.
//!
//! Every read is an indexed one: a workflow's day is one Query on
//! `by_workflow` with a time range, a source's latest event one on
//! `by_source` with limit 1 (see docs/store.md).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::breaker::State;
use crate::clock::Millis;
use crate::config::Condition;
use crate::hub::Hub;
use crate::model::{RunQuery, RunStatus};

/// Runs counted per workflow at most; beyond, the count says `truncated`.
pub const DAY_LIMIT: usize = 10_000;
/// Dead letters counted at most.
pub const DLQ_LIMIT: usize = 1_000;
/// A day, in milliseconds.
pub const DAY_MS: Millis = 24 * 60 * 60 * 1000;
const HOUR_MS: Millis = 60 * 60 * 1000;

/// The whole report (`ferry status --json` prints it as is).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// When it was made (ms).
    pub at: Millis,
    /// Per workflow, the runs created in the 24 hours before `at`, by status.
    pub workflows: Vec<WorkflowDay>,
    /// Per source, its latest event.
    pub sources: Vec<SourceSeen>,
    /// Per connection: `ok`, `paused` (a 429), `open` or `probing` (its breaker).
    pub connections: Vec<ConnectionState>,
    /// Dead letters waiting (at most [`DLQ_LIMIT`] counted).
    pub dlq_depth: usize,
    /// Per sync, its last pass.
    pub syncs: Vec<SyncPass>,
    /// Workflows and connections on hold (`ferry pause`, `enabled: false`).
    pub paused: Vec<PausedRow>,
    /// Alerts open now.
    pub open_alerts: usize,
}

/// Something on hold.
#[derive(Debug, Clone, Serialize)]
pub struct PausedRow {
    /// `workflow` or `connection`.
    pub kind: &'static str,
    /// Its name.
    pub name: String,
    /// `config` (`enabled: false`) or `ferry pause`.
    pub by: &'static str,
    /// When it was paused by hand (ms); none for the config.
    pub since: Option<Millis>,
}

/// One workflow's day.
#[derive(Debug, Clone, Serialize)]
pub struct WorkflowDay {
    /// Workflow name.
    pub workflow: String,
    /// Runs by status (only statuses with runs).
    pub runs: BTreeMap<String, usize>,
    /// More than [`DAY_LIMIT`] runs: the counts are of the newest ones.
    pub truncated: bool,
    /// Succeeded (or skipped), failed (dead-lettered, auth failed) and
    /// waiting (queued, running, retrying) runs per hour, oldest hour first
    /// (24 of them, the last one ending at `at`). For the console's chart;
    /// not in `ferry status --json`.
    #[serde(skip_serializing)]
    pub hourly: Vec<[usize; 3]>,
}

impl WorkflowDay {
    /// Succeeded, failed and waiting runs over the whole day.
    pub fn totals(&self) -> [usize; 3] {
        self.hourly.iter().fold([0; 3], |mut t, h| {
            for i in 0..3 {
                t[i] += h[i];
            }
            t
        })
    }
}

/// Which of succeeded (0), failed (1), waiting (2) a status counts as.
pub fn bucket_of(s: RunStatus) -> usize {
    match s {
        RunStatus::Succeeded | RunStatus::Skipped => 0,
        RunStatus::DeadLettered | RunStatus::AuthFailed => 1,
        RunStatus::Queued | RunStatus::Running | RunStatus::Retrying => 2,
    }
}

/// One source's latest event.
#[derive(Debug, Clone, Serialize)]
pub struct SourceSeen {
    /// Source name.
    pub source: String,
    /// When its newest run was created (ms), `null` when none.
    pub last_event_at: Option<Millis>,
    /// That event's id.
    pub last_event_id: Option<String>,
    /// `fresh` (an event within `max_silence`), `silent` (none for longer),
    /// or `unwatched` (no `max_silence`).
    pub freshness: &'static str,
    /// The source's `max_silence`, ms.
    pub max_silence_ms: Option<u64>,
}

/// One connection.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionState {
    /// Connection name.
    pub connection: String,
    /// `ok`, `paused` (a 429), `open` or `probing` (its breaker).
    pub state: String,
    /// Until when (a pause or an open breaker), ms.
    pub until: Option<Millis>,
    /// Paused by hand or by `enabled: false`.
    pub held: bool,
    /// An `auth_failed` alert is open for it: its credentials are refused.
    pub auth_failing: bool,
}

/// One sync's last pass.
#[derive(Debug, Clone, Serialize)]
pub struct SyncPass {
    /// Sync name.
    pub sync: String,
    /// Its last pass, `null` before the first.
    pub last_pass: Option<crate::sync::LastRun>,
}

/// Make the report, as of the hub's clock.
pub async fn report(hub: &Hub) -> Result<Report, String> {
    let ports = &hub.ports;
    let at = ports.clock.now_ms();
    let err = |e: crate::ports::StoreError| e.to_string();

    let mut workflows = Vec::new();
    for name in hub.config.workflows.keys() {
        // Counts only: no run is read (on the embedded store, not even a row).
        let day = ports
            .runs
            .counts(
                &RunQuery {
                    workflow: Some(name.clone()),
                    since: Some(at - DAY_MS),
                    limit: DAY_LIMIT,
                    ..RunQuery::default()
                },
                at,
                HOUR_MS,
            )
            .await
            .map_err(err)?;
        let mut runs = BTreeMap::new();
        let mut hourly = vec![[0usize; 3]; 24];
        for (&(ago, status), &n) in &day.cells {
            *runs.entry(status.as_str().to_owned()).or_insert(0) += n;
            if let Some(hour) = usize::try_from(ago).ok().filter(|a| *a < 24) {
                hourly[23 - hour][bucket_of(status)] += n;
            }
        }
        workflows.push(WorkflowDay {
            workflow: name.clone(),
            runs,
            truncated: !day.complete,
            hourly,
        });
    }

    let sources = sources(hub, at).await?;
    let held = crate::pause::list(hub).await?;
    let book = crate::alerts::list(hub).await.map_err(err)?;
    let connections = connections(hub, at, &held, &book).await?;
    let dlq_depth = ports
        .queue
        .dead_letter_depth(DLQ_LIMIT)
        .await
        .map_err(err)?;

    let mut syncs = Vec::new();
    for name in hub.config.syncs.keys() {
        let state = crate::sync::status(hub, name)
            .await
            .map_err(|e| e.to_string())?;
        syncs.push(SyncPass {
            sync: name.clone(),
            last_pass: state.and_then(|(s, _)| s.last_run),
        });
    }

    let paused = held
        .into_iter()
        .map(|p| PausedRow {
            kind: p.kind.as_str(),
            name: p.name,
            by: if p.by_config { "config" } else { "ferry pause" },
            since: (!p.by_config).then_some(p.since),
        })
        .collect();

    Ok(Report {
        at,
        workflows,
        sources,
        connections,
        dlq_depth,
        syncs,
        paused,
        open_alerts: book.open.len(),
    })
}

/// Per source its latest event and freshness, at `at`.
pub async fn sources(hub: &Hub, at: Millis) -> Result<Vec<SourceSeen>, String> {
    let mut sources = Vec::new();
    for (name, def) in &hub.config.sources {
        let newest = hub
            .ports
            .runs
            .list(&RunQuery {
                source: Some(name.clone()),
                limit: 1,
                ..RunQuery::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        let newest = newest.first();
        let max = def
            .max_silence
            .map(|d| u64::try_from(d.get().as_millis()).unwrap_or(u64::MAX));
        let freshness = match (max, newest) {
            (None, _) => "unwatched",
            (Some(max), Some(r)) if u64::try_from(at - r.created_at).unwrap_or(0) <= max => "fresh",
            (Some(_), _) => "silent",
        };
        sources.push(SourceSeen {
            source: name.clone(),
            last_event_at: newest.map(|r| r.created_at),
            last_event_id: newest.map(|r| r.event_id.clone()),
            freshness,
            max_silence_ms: max,
        });
    }
    Ok(sources)
}

/// Per connection its state at `at`, given what is `held` and the alert `book`.
pub async fn connections(
    hub: &Hub,
    at: Millis,
    held: &[crate::pause::Paused],
    book: &crate::alerts::book::Book,
) -> Result<Vec<ConnectionState>, String> {
    Ok(crate::breaker::status(hub)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|c| {
            let (state, until) = match c.breaker {
                State::Open => ("open", c.until),
                State::Probing => ("probing", c.until),
                _ if c.paused_until.is_some_and(|p| p > at) => ("paused", c.paused_until),
                _ => ("ok", None),
            };
            ConnectionState {
                held: held
                    .iter()
                    .any(|p| p.kind == crate::pause::Kind::Connection && p.name == c.name),
                auth_failing: book
                    .open
                    .values()
                    .any(|a| a.condition == Condition::AuthFailed && a.subject == c.name),
                connection: c.name,
                state: state.to_owned(),
                until,
            }
        })
        .collect())
}
