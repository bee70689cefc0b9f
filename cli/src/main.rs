//! `ferry`: the whole hub on one machine (`ferry dev`) and the tools around it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod dev;
mod env;
mod runs;
mod sandbox;
mod send;

/// ferry — a serverless integration hub.
#[derive(Debug, Parser)]
#[command(name = "ferry", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole hub in one process: webhook URLs, workers, scheduler, sandbox.
    Dev(dev::DevArgs),
    /// Check a config file; exit 0, or list every problem and exit 1.
    Validate {
        /// The config file.
        #[arg(long, short)]
        config: PathBuf,
        /// KEY=VALUE file for `${env:NAME}` references (default: `<config>.env` when it exists).
        #[arg(long)]
        env_file: Option<PathBuf>,
    },
    /// Print the JSON Schema of the config format (for editors).
    Schema,
    /// Sign a payload the way SOURCE's provider would, and POST it.
    Send(send::SendArgs),
    /// Read the run log.
    Runs {
        #[command(subcommand)]
        command: runs::RunsCommand,
    },
    /// Measure executions per second and ferry's per-call overhead against a local target.
    Bench(bench::BenchArgs),
    /// Run a sync once, now.
    Sync {
        #[command(subcommand)]
        command: dev::SyncCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime starts");
    let result = rt.block_on(async move {
        match cli.command {
            Command::Dev(args) => dev::run(args).await,
            Command::Validate { config, env_file } => validate(config, env_file),
            Command::Schema => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&ferry::config::json_schema())
                        .expect("schema serializes")
                );
                Ok(ExitCode::SUCCESS)
            }
            Command::Send(args) => send::run(args).await,
            Command::Runs { command } => runs::run(command).await,
            Command::Sync { command } => dev::sync_command(command).await,
            Command::Bench(args) => bench::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn validate(config: PathBuf, env_file: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    match env::load_config(&config, env_file.as_deref()) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("warning: {w}");
            }
            println!("{}: ok", config.display());
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            eprintln!("{errors}");
            Ok(ExitCode::FAILURE)
        }
    }
}
