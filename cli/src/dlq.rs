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
    /// Put dead letters back on the queue: by id, or every one the filters
    /// pick (`--all` for every one). Each run resumes at its failed step with
    /// a fresh retry budget; a dead letter is never replayed twice.
    Replay {
        /// Dead letter ids (from `ferry dlq list`).
        ids: Vec<String>,
        /// Every dead letter (narrowed by the filters, if any).
        #[arg(long)]
        all: bool,
        /// Only runs of this workflow.
        #[arg(long)]
        workflow: Option<String>,
        /// Only those dead-lettered since then: a time (RFC 3339) or a duration ago (`2h`).
        #[arg(long)]
        since: Option<String>,
        /// Only those whose reason contains this text.
        #[arg(long)]
        reason_contains: Option<String>,
        /// Print how many and which would be replayed; change nothing.
        #[arg(long)]
        dry_run: bool,
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
            ids,
            all,
            workflow,
            since,
            reason_contains,
            dry_run,
            config,
            store,
            env_file,
        } => {
            let Some(hub) = build_hub(&config, env_file.as_deref(), &store).await? else {
                return Ok(ExitCode::FAILURE);
            };
            let since = since
                .map(|s| ferry::dlq::parse_since(&s, hub.ports.clock.now_ms()))
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let sel = ferry::dlq::Selection {
                ids,
                all,
                workflow,
                since,
                reason_contains,
            };
            if sel.is_empty() {
                eprintln!(
                    "error: name dead letter ids, or pick them with --all, --workflow, --since or --reason-contains"
                );
                return Ok(ExitCode::FAILURE);
            }
            let letters = match ferry::dlq::select(&hub, &sel).await {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(ExitCode::FAILURE);
                }
            };
            if dry_run {
                out!("would replay {} dead letters", letters.len());
                for l in &letters {
                    out!(
                        "{}  run {}  workflow {}\n    {}",
                        l.dead.id,
                        l.run_id.as_deref().unwrap_or("-"),
                        l.workflow.as_deref().unwrap_or("-"),
                        l.dead.reason
                    );
                }
                return Ok(ExitCode::SUCCESS);
            }
            let done = ferry::dlq::replay_all(&hub, &letters, |i, n| {
                eprint!("\rreplaying {i}/{n}");
                if i == n {
                    eprintln!();
                }
            })
            .await;
            for (id, run) in &done.replayed {
                out!(
                    "replayed {id}{}",
                    run.as_ref()
                        .map(|r| format!(" (run {r} is queued again)"))
                        .unwrap_or_default()
                );
            }
            for (id, why) in &done.failed {
                eprintln!("error: {id}: {why}");
            }
            out!(
                "{} replayed, {} already replayed, {} failed",
                done.replayed.len(),
                done.skipped,
                done.failed.len()
            );
            Ok(if done.failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
