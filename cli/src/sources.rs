//! `ferry sources show SOURCE`: what ferry has seen of a source's events —
//! every body field with first and last seen and how often, the fields its
//! workflows need that the latest events lacked, its latest event, and its
//! open alerts (silence, drift). On either store.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use ferry::alerts::drift::SourceFields;
use ferry::clock::rfc3339;
use ferry::model::RunQuery;

use crate::store_opt::{StoreArgs, build_hub};

/// `ferry sources …`
#[derive(Debug, Subcommand)]
pub enum SourcesCommand {
    /// The fields seen in SOURCE's events, what its workflows miss, and its alerts.
    Show(ShowArgs),
}

/// `ferry sources show` options.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The source's name in the config.
    pub source: String,
    /// The config file.
    #[arg(long, short, default_value = "examples/new-lead.yaml")]
    pub config: PathBuf,
    /// KEY=VALUE file for `${env:NAME}` references.
    #[arg(long)]
    pub env_file: Option<PathBuf>,
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

/// Run `ferry sources`.
pub async fn run(cmd: SourcesCommand) -> anyhow::Result<ExitCode> {
    let SourcesCommand::Show(args) = cmd;
    let Some(hub) = build_hub(&args.config, args.env_file.as_deref(), &args.store).await? else {
        return Ok(ExitCode::FAILURE);
    };
    let name = &args.source;
    if !hub.config.sources.contains_key(name) {
        let known: Vec<&str> = hub.config.sources.keys().map(String::as_str).collect();
        eprintln!(
            "error: no source {name:?} in the config (sources: {})",
            known.join(", ")
        );
        return Ok(ExitCode::FAILURE);
    }
    let fields: SourceFields = ferry::alerts::drift::fields(&hub, name).await?;
    let last = hub
        .ports
        .runs
        .list(&RunQuery {
            source: Some(name.clone()),
            limit: 1,
            ..RunQuery::default()
        })
        .await?
        .into_iter()
        .next();
    let book = ferry::alerts::list(&hub).await?;
    let alerts: Vec<_> = book
        .open
        .values()
        .filter(|a| a.subject == *name || a.facts.get("source") == Some(name))
        .collect();
    if args.json {
        out!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "source": name,
                "last_event_at": last.as_ref().map(|r| r.created_at),
                "events_examined": fields.events,
                "fields": fields.seen,
                "missing": fields.missing,
                "alerts": alerts,
            }))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    out!("source {name}");
    match &last {
        Some(r) => out!("last event: {} ({})", rfc3339(r.created_at), r.event_id),
        None => out!("last event: none yet"),
    }
    out!("events examined: {}", fields.events);
    if fields.seen.is_empty() {
        out!("fields: none seen yet (ferry looks at events once per alert evaluation)");
    } else {
        out!(
            "\n{:<40} {:>8}  {:<20}  {:<20}",
            "field",
            "events",
            "first seen",
            "last seen"
        );
        for (f, s) in &fields.seen {
            out!(
                "{f:<40} {:>8}  {:<20}  {:<20}",
                s.count,
                rfc3339(s.first),
                rfc3339(s.last)
            );
        }
    }
    if !fields.missing.is_empty() {
        out!("\nneeded but missing from the latest events:");
        for (f, n) in &fields.missing {
            out!("  {f}: {n} in a row");
        }
    }
    if !alerts.is_empty() {
        out!("\nopen alerts:");
        for a in alerts {
            out!(
                "  {} — {} (since {})",
                a.condition.as_str(),
                a.title,
                rfc3339(a.opened_at)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
