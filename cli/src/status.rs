//! `ferry status`: the hub on one screen, on either store — per workflow the
//! runs of the last 24 hours by status, per source its latest event, per
//! connection ok / paused / its breaker, the dead-letter queue's depth, per
//! sync its last pass.
//!
//! Every read is an indexed one: a workflow's day is one Query on
//! `by_workflow` with a time range, a source's latest event one on
//! `by_source` with limit 1 (see docs/store.md).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use ferry::breaker::State;
use ferry::clock::Millis;
use ferry::model::RunQuery;
use serde::Serialize;

use crate::store_opt::{StoreArgs, build_hub};

/// Runs counted per workflow at most; beyond, the count says `truncated`.
const DAY_LIMIT: usize = 10_000;
/// Dead letters counted at most.
const DLQ_LIMIT: usize = 1_000;
const DAY_MS: Millis = 24 * 60 * 60 * 1000;

/// `ferry status` options.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The config file.
    #[arg(long, short, default_value = "examples/new-lead.yaml")]
    pub config: PathBuf,
    /// KEY=VALUE file for `${env:NAME}` references.
    #[arg(long)]
    pub env_file: Option<PathBuf>,
    /// The store: `--store embedded --data DIR` (default) or `--store aws`.
    #[command(flatten)]
    pub store: StoreArgs,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

/// The whole report (`--json` prints it as is).
#[derive(Debug, Serialize)]
pub struct Report {
    /// When it was made (ms).
    pub at: Millis,
    /// Per workflow, the runs created in the 24 hours before `at`, by status.
    pub workflows: Vec<WorkflowDay>,
    /// Per source, its latest event.
    pub sources: Vec<SourceSeen>,
    /// Per connection: `ok`, `paused` (a 429), `open` or `probing` (its breaker).
    pub connections: Vec<ConnectionState>,
    /// Dead letters waiting (at most 1000 counted).
    pub dlq_depth: usize,
    /// Per sync, its last pass.
    pub syncs: Vec<SyncPass>,
    /// Workflows and connections on hold (`ferry pause`, `enabled: false`).
    pub paused: Vec<PausedRow>,
}

/// Something on hold.
#[derive(Debug, Serialize)]
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
#[derive(Debug, Serialize)]
pub struct WorkflowDay {
    /// Workflow name.
    pub workflow: String,
    /// Runs by status (only statuses with runs).
    pub runs: BTreeMap<String, usize>,
    /// More than 10 000 runs: the counts are of the newest 10 000.
    pub truncated: bool,
}

/// One source's latest event.
#[derive(Debug, Serialize)]
pub struct SourceSeen {
    /// Source name.
    pub source: String,
    /// When its newest run was created (ms), `null` when none.
    pub last_event_at: Option<Millis>,
    /// That event's id.
    pub last_event_id: Option<String>,
}

/// One connection.
#[derive(Debug, Serialize)]
pub struct ConnectionState {
    /// Connection name.
    pub connection: String,
    /// `ok`, `paused`, `open` or `probing`.
    pub state: String,
    /// Until when (a pause or an open breaker), ms.
    pub until: Option<Millis>,
}

/// One sync's last pass.
#[derive(Debug, Serialize)]
pub struct SyncPass {
    /// Sync name.
    pub sync: String,
    /// Its last pass, `null` before the first.
    pub last_pass: Option<ferry::sync::LastRun>,
}

/// Run `ferry status`.
pub async fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let Some(hub) = build_hub(&args.config, args.env_file.as_deref(), &args.store).await? else {
        return Ok(ExitCode::FAILURE);
    };
    let ports = &hub.ports;
    let at = ports.clock.now_ms();

    let mut workflows = Vec::new();
    for name in hub.config.workflows.keys() {
        let day = ports
            .runs
            .list(&RunQuery {
                workflow: Some(name.clone()),
                since: Some(at - DAY_MS),
                limit: DAY_LIMIT,
                ..RunQuery::default()
            })
            .await?;
        let mut runs = BTreeMap::new();
        for r in &day {
            *runs.entry(r.status.as_str().to_owned()).or_insert(0) += 1;
        }
        workflows.push(WorkflowDay {
            workflow: name.clone(),
            runs,
            truncated: day.len() >= DAY_LIMIT,
        });
    }

    let mut sources = Vec::new();
    for name in hub.config.sources.keys() {
        let newest = ports
            .runs
            .list(&RunQuery {
                source: Some(name.clone()),
                limit: 1,
                ..RunQuery::default()
            })
            .await?;
        let newest = newest.first();
        sources.push(SourceSeen {
            source: name.clone(),
            last_event_at: newest.map(|r| r.created_at),
            last_event_id: newest.map(|r| r.event_id.clone()),
        });
    }

    let connections = ferry::breaker::status(&hub)
        .await?
        .into_iter()
        .map(|c| {
            let (state, until) = match c.breaker {
                State::Open => ("open", c.until),
                State::Probing => ("probing", c.until),
                _ if c.paused_until.is_some_and(|p| p > at) => ("paused", c.paused_until),
                _ => ("ok", None),
            };
            ConnectionState {
                connection: c.name,
                state: state.to_owned(),
                until,
            }
        })
        .collect();

    let dlq_depth = ports.queue.dead_letters(DLQ_LIMIT).await?.len();

    let mut syncs = Vec::new();
    for name in hub.config.syncs.keys() {
        let state = ferry::sync::status(&hub, name).await?;
        syncs.push(SyncPass {
            sync: name.clone(),
            last_pass: state.and_then(|(s, _)| s.last_run),
        });
    }

    let paused = ferry::pause::list(&hub)
        .await
        .map_err(anyhow::Error::msg)?
        .into_iter()
        .map(|p| PausedRow {
            kind: p.kind.as_str(),
            name: p.name,
            by: if p.by_config { "config" } else { "ferry pause" },
            since: (!p.by_config).then_some(p.since),
        })
        .collect();

    let report = Report {
        at,
        workflows,
        sources,
        connections,
        dlq_depth,
        syncs,
        paused,
    };
    if args.json {
        out!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print(&report)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print(r: &Report) -> std::io::Result<()> {
    out!("workflows (runs in the last 24 h)");
    for w in &r.workflows {
        let counts = if w.runs.is_empty() {
            "none".to_owned()
        } else {
            w.runs
                .iter()
                .map(|(s, n)| format!("{s} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let more = if w.truncated { " (newest 10000)" } else { "" };
        out!("  {:<20}  {counts}{more}", w.workflow);
    }
    out!("sources (last event)");
    for s in &r.sources {
        let seen = match (s.last_event_at, &s.last_event_id) {
            (Some(at), Some(id)) => format!("{} ({id})", when(at)),
            _ => "never".to_owned(),
        };
        out!("  {:<20}  {seen}", s.source);
    }
    out!("connections");
    for c in &r.connections {
        let until = c
            .until
            .map(|u| format!(" until {}", when(u)))
            .unwrap_or_default();
        out!("  {:<20}  {}{until}", c.connection, c.state);
    }
    out!("dead-letter queue: {}", r.dlq_depth);
    if !r.paused.is_empty() {
        out!("paused");
        for p in &r.paused {
            let since = p
                .since
                .map(|s| format!(" since {}", when(s)))
                .unwrap_or_default();
            out!("  {} {:<20}  by {}{since}", p.kind, p.name, p.by);
        }
    }
    if !r.syncs.is_empty() {
        out!("syncs (last pass)");
        for s in &r.syncs {
            let pass = match &s.last_pass {
                Some(p) => format!(
                    "{} {} (seen {}, sent {}, failed {})",
                    when(p.finished_at),
                    p.outcome,
                    p.counts.seen,
                    p.counts.sent,
                    p.counts.failed
                ),
                None => "never ran".to_owned(),
            };
            out!("  {:<20}  {pass}", s.sync);
        }
    }
    Ok(())
}

fn when(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}
