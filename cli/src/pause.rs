//! `ferry pause|resume workflow|connection NAME`: hold a workflow's runs or
//! a connection's calls, for every instance, until resumed.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use ferry::pause::Kind;

use crate::store_opt::{StoreArgs, build_hub};

/// What to pause or resume.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum What {
    /// A workflow: events are accepted and held; none of its runs execute.
    Workflow,
    /// A connection: no calls go out on it; runs that need it wait.
    Connection,
}

/// `ferry pause` / `ferry resume` arguments.
#[derive(Debug, Args)]
pub struct PauseArgs {
    /// `workflow` or `connection`.
    what: What,
    /// Its name in the config.
    name: String,
    /// The config file.
    #[arg(long, short, default_value = "examples/new-lead.yaml")]
    config: PathBuf,
    /// The store: `--store embedded --data DIR` (default) or `--store aws`.
    #[command(flatten)]
    store: StoreArgs,
    /// KEY=VALUE file for `${env:NAME}` references.
    #[arg(long)]
    env_file: Option<PathBuf>,
}

/// Pause (`paused`) or resume.
pub async fn run(args: PauseArgs, paused: bool) -> anyhow::Result<ExitCode> {
    let Some(hub) = build_hub(&args.config, args.env_file.as_deref(), &args.store).await? else {
        return Ok(ExitCode::FAILURE);
    };
    let kind = match args.what {
        What::Workflow => Kind::Workflow,
        What::Connection => Kind::Connection,
    };
    if let Err(e) = ferry::pause::set(&hub, kind, &args.name, paused).await {
        eprintln!("error: {e}");
        return Ok(ExitCode::FAILURE);
    }
    let verb = if paused { "paused" } else { "resumed" };
    out!("{verb} {} {}", kind.as_str(), args.name);
    let off = ferry::pause::list(&hub)
        .await
        .map_err(anyhow::Error::msg)?
        .into_iter()
        .any(|p| p.kind == kind && p.name == args.name && p.by_config);
    if !paused && off {
        eprintln!(
            "note: {} {} stays held: `enabled: false` in the config",
            kind.as_str(),
            args.name
        );
    }
    Ok(ExitCode::SUCCESS)
}
