//! `ferry alerts …`: `list` shows open and recent alerts and the messages
//! waiting for a channel (on either store); `test CHANNEL` sends a sample
//! alert on a configured channel to check the wiring (URL, secret, SMTP
//! server, SNS topic).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use ferry::alerts::Notice;
use ferry::alerts::channel::{Senders, kind};
use ferry::clock::{Clock, SystemClock, rfc3339};
use ferry::config::Channel;

use crate::store_opt::{StoreArgs, build_hub};

/// `ferry alerts` subcommands.
#[derive(Debug, Subcommand)]
pub enum AlertsCmd {
    /// Open alerts, the latest resolved ones, and messages not delivered yet.
    List(ListArgs),
    /// Send a sample firing alert on CHANNEL; exit 1 if it is not delivered.
    Test(TestArgs),
}

/// `ferry alerts list` options.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// The config file.
    #[arg(long, short, default_value = "examples/new-lead.yaml")]
    pub config: PathBuf,
    /// KEY=VALUE file for `${env:NAME}` references.
    #[arg(long)]
    pub env_file: Option<PathBuf>,
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// JSON output (the alert book as stored, see docs/alerts.md).
    #[arg(long)]
    pub json: bool,
}

/// `ferry alerts test` options.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// The channel's name under `alerts.channels`.
    pub channel: String,
    /// The config file.
    #[arg(long, short, default_value = "examples/new-lead.yaml")]
    pub config: PathBuf,
    /// KEY=VALUE file for `${env:NAME}` references (default: `<config>.env` when it exists).
    #[arg(long)]
    pub env_file: Option<PathBuf>,
}

/// Runs an `alerts` subcommand.
pub async fn run(cmd: AlertsCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        AlertsCmd::List(args) => list(args).await,
        AlertsCmd::Test(args) => test(args).await,
    }
}

async fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let Some(hub) = build_hub(&args.config, args.env_file.as_deref(), &args.store).await? else {
        return Ok(ExitCode::FAILURE);
    };
    let book = ferry::alerts::list(&hub).await?;
    if args.json {
        out!("{}", serde_json::to_string_pretty(&book)?);
        return Ok(ExitCode::SUCCESS);
    }
    if book.open.is_empty() {
        out!("no open alerts");
    } else {
        out!("open:");
        for a in book.open.values() {
            out!(
                "  {:<13} {}  (since {}, {} so far)",
                a.condition.as_str(),
                a.title,
                rfc3339(a.opened_at),
                a.total()
            );
            for c in a.commands.iter().take(2) {
                out!("  {:<13}   $ {c}", "");
            }
        }
    }
    if !book.recent.is_empty() {
        out!("\nresolved (newest first):");
        for a in book.recent.iter().rev().take(20) {
            out!(
                "  {:<13} {}  ({} → {})",
                a.condition.as_str(),
                a.title,
                rfc3339(a.opened_at),
                a.resolved_at.map(rfc3339).unwrap_or_default()
            );
        }
    }
    if !book.outbox.is_empty() {
        out!("\nnot delivered yet:");
        for p in &book.outbox {
            out!(
                "  {} → {}: attempt {} next at {}{}",
                p.notice.title,
                p.channel,
                p.attempts + 1,
                rfc3339(p.due),
                p.last_error
                    .as_deref()
                    .map(|e| format!(" (last: {e})"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn test(args: TestArgs) -> anyhow::Result<ExitCode> {
    let loaded = match crate::env::load_config(&args.config, args.env_file.as_deref()) {
        Ok(loaded) => loaded,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let channels = loaded
        .config
        .alerts
        .as_ref()
        .map(|a| &a.channels)
        .filter(|c| !c.is_empty());
    let Some(channels) = channels else {
        eprintln!(
            "error: {} has no alerts.channels; see docs/alerts.md",
            args.config.display()
        );
        return Ok(ExitCode::FAILURE);
    };
    let Some(channel) = channels.get(&args.channel) else {
        let names: Vec<&str> = channels.keys().map(String::as_str).collect();
        eprintln!(
            "error: no channel {:?} under alerts.channels in {}; its channels: {}",
            args.channel,
            args.config.display(),
            names.join(", ")
        );
        return Ok(ExitCode::FAILURE);
    };
    let mut senders = Senders::new();
    // SNS only for a channel that has no other way (on AWS the evaluator
    // builds its senders with SNS).
    if let Channel::Email {
        sns_topic: Some(_),
        smtp: None,
        ..
    } = channel
    {
        senders = senders.with_sns_from_env().await;
    }
    let notice = Notice::sample(SystemClock.now_ms());
    match senders.send(&args.channel, channel, &notice).await {
        Ok(()) => {
            out!(
                "sent a sample alert to {} ({})",
                args.channel,
                kind(channel)
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            let later = if e.retryable {
                " (temporary: trying again later may work)"
            } else {
                ""
            };
            eprintln!("error: {e}{later}");
            Ok(ExitCode::FAILURE)
        }
    }
}
