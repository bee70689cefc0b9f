//! `ferry connections`: each connection's circuit breaker (closed, open until
//! when, probing; since when and why) and whether a `429` has paused it, read
//! from the selected store. The logic is `ferry::breaker::status`.
//! `ferry connections authorize NAME` authorizes an OAuth 2.0 connection
//! ([`crate::authorize`]).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use ferry::breaker::{ConnectionStatus, State};

use crate::store_opt::{StoreArgs, build_hub};

/// `ferry connections` options.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ConnectionsArgs {
    /// Something to do to one connection (none: show them all).
    #[command(subcommand)]
    pub command: Option<ConnectionsCommand>,
    /// The config file.
    #[arg(long, short, default_value = "examples/new-lead.yaml")]
    pub config: PathBuf,
    /// The store: `--store embedded --data DIR` (default) or `--store aws`.
    #[command(flatten)]
    pub store: StoreArgs,
    /// KEY=VALUE file for `${env:NAME}` references.
    #[arg(long)]
    pub env_file: Option<PathBuf>,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

/// `ferry connections` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConnectionsCommand {
    /// Authorize an OAuth 2.0 connection (`grant: authorization_code`) in a browser: prints the URL, catches the redirect on 127.0.0.1, stores the tokens sealed in the store.
    Authorize(crate::authorize::AuthorizeArgs),
}

/// Run `ferry connections`.
pub async fn run(args: ConnectionsArgs) -> anyhow::Result<ExitCode> {
    if let Some(ConnectionsCommand::Authorize(a)) = args.command {
        return crate::authorize::run(a).await;
    }
    let Some(hub) = build_hub(&args.config, args.env_file.as_deref(), &args.store).await? else {
        return Ok(ExitCode::FAILURE);
    };
    let all = ferry::breaker::status(&hub).await?;
    if args.json {
        out!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(ExitCode::SUCCESS);
    }
    if all.is_empty() {
        out!("no connections in the config");
        return Ok(ExitCode::SUCCESS);
    }
    let now = hub.ports.clock.now_ms();
    out!("{:<20}  {:<8}  DETAIL", "CONNECTION", "BREAKER");
    for c in &all {
        let state = serde_json::to_value(c.breaker)?;
        out!(
            "{:<20}  {:<8}  {}",
            c.name,
            state.as_str().unwrap_or_default(),
            detail(c, now)
        );
        if let Some(why) = &c.why {
            out!("{:<20}  {:<8}  why: {why}", "", "");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn detail(c: &ConnectionStatus, now: i64) -> String {
    let mut parts = Vec::new();
    match (c.breaker, c.since, c.until) {
        (State::Open, Some(since), Some(until)) if until > now => {
            parts.push(format!(
                "since {}, calls wait until {}",
                when(since),
                when(until)
            ));
        }
        (State::Open, Some(since), Some(_)) => {
            parts.push(format!("since {}, the next call probes", when(since)));
        }
        (State::Probing, Some(since), _) => {
            parts.push(format!("since {}, one probe call is out", when(since)));
        }
        _ => {}
    }
    if let Some(p) = c.paused_until {
        parts.push(format!("paused by a 429 until {}", when(p)));
    }
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join("; ")
    }
}

fn when(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}
