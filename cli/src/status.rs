//! `ferry status`: the hub on one screen, on either store — per workflow the
//! runs of the last 24 hours by status, per source its latest event, per
//! connection ok / paused / its breaker, the dead-letter queue's depth, per
//! sync its last pass.
//!
//! The report is made by `ferry::status::report`, which the console's
//! overview shows too.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use ferry::clock::Millis;
use ferry::status::Report;

use crate::store_opt::{StoreArgs, build_hub};

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

/// Run `ferry status`.
pub async fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let Some(hub) = build_hub(&args.config, args.env_file.as_deref(), &args.store).await? else {
        return Ok(ExitCode::FAILURE);
    };
    let report = ferry::status::report(&hub)
        .await
        .map_err(anyhow::Error::msg)?;
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
