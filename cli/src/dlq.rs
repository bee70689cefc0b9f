//! `ferry dlq list|replay`: what failed for good, and putting it back.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use crate::store_opt::{StoreArgs, build_hub};

/// `ferry dlq ...`.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Dead letters, newest first, with the reason each was dead-lettered.
    List {
        /// The config file.
        #[arg(long, short, default_value = "examples/new-lead.yaml")]
        config: PathBuf,
        /// The store: `--store embedded --data DIR` (default) or `--store aws`.
        #[command(flatten)]
        store: StoreArgs,
        /// KEY=VALUE file for `${env:NAME}` references.
        #[arg(long)]
        env_file: Option<PathBuf>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Put dead letter ID back on the queue; its run resumes at the failed step.
    Replay {
        /// Dead letter id (from `ferry dlq list`).
        id: String,
        /// The config file.
        #[arg(long, short, default_value = "examples/new-lead.yaml")]
        config: PathBuf,
        /// The store: `--store embedded --data DIR` (default) or `--store aws`.
        #[command(flatten)]
        store: StoreArgs,
        /// KEY=VALUE file for `${env:NAME}` references.
        #[arg(long)]
        env_file: Option<PathBuf>,
    },
}

/// Run a `dlq` subcommand.
pub async fn run(cmd: DlqCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DlqCommand::List {
            config,
            store,
            env_file,
            limit,
            json,
        } => {
            let Some(hub) = build_hub(&config, env_file.as_deref(), &store).await? else {
                return Ok(ExitCode::FAILURE);
            };
            let letters = ferry::dlq::list(&hub, limit)
                .await
                .map_err(anyhow::Error::msg)?;
            if json {
                let rows: Vec<_> = letters
                    .iter()
                    .map(|(d, run)| {
                        serde_json::json!({ "id": d.id, "run_id": run, "reason": d.reason, "receive_count": d.receive_count, "dead_at": d.dead_at })
                    })
                    .collect();
                out!("{}", serde_json::to_string_pretty(&rows)?);
            } else if letters.is_empty() {
                out!("the dead-letter queue is empty");
            } else {
                for (d, run) in &letters {
                    out!(
                        "{}  run {}\n    {}",
                        d.id,
                        run.as_deref().unwrap_or("-"),
                        d.reason
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        DlqCommand::Replay {
            id,
            config,
            store,
            env_file,
        } => {
            let Some(hub) = build_hub(&config, env_file.as_deref(), &store).await? else {
                return Ok(ExitCode::FAILURE);
            };
            match ferry::dlq::replay(&hub, &id).await {
                Ok(run) => {
                    out!(
                        "replayed {id}{}",
                        run.map(|r| format!(" (run {r} is queued again)"))
                            .unwrap_or_default()
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}
