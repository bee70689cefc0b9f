//! `ferry sync run NAME` (one run now, with a progress bar) and
//! `ferry sync status` (each sync's cursor, last run and counts).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Subcommand;
use ferry::sync::{Outcome, Progress, RunOptions, Trigger, run_sync_with};
use indicatif::{ProgressBar, ProgressStyle};

use crate::store_opt::{StoreArgs, build_hub};

/// `ferry sync ...`.
#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Run sync NAME once now (its runs execute when `ferry dev` runs on the same store).
    Run {
        /// Sync name.
        name: String,
        /// The config file.
        #[arg(long, short)]
        config: PathBuf,
        /// The store: `--store embedded --data DIR` (default) or `--store aws`.
        #[command(flatten)]
        store: StoreArgs,
        /// Env file.
        #[arg(long)]
        env_file: Option<PathBuf>,
        /// Stop after the page that reaches this budget, e.g. `30s` (default: the sync's `budget`, else 5m).
        #[arg(long, value_parser = humantime::parse_duration)]
        budget: Option<Duration>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show each sync's cursor, last run and records seen/sent/skipped/failed.
    Status {
        /// The config file.
        #[arg(long, short)]
        config: PathBuf,
        /// The store: `--store embedded --data DIR` (default) or `--store aws`.
        #[command(flatten)]
        store: StoreArgs,
        /// Env file.
        #[arg(long)]
        env_file: Option<PathBuf>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

/// Run a `ferry sync` command.
pub async fn run(cmd: SyncCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        SyncCommand::Run {
            name,
            config,
            store,
            env_file,
            budget,
            json,
        } => {
            let Some(hub) = build_hub(&config, env_file.as_deref(), &store).await? else {
                return Ok(ExitCode::FAILURE);
            };
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix} {msg} [{elapsed}]")
                    .expect("template parses"),
            );
            bar.set_prefix(name.clone());
            bar.enable_steady_tick(Duration::from_millis(120));
            let b = bar.clone();
            let progress = Arc::new(move |p: &Progress| show(&b, p));
            let opts = RunOptions {
                budget,
                trigger: Trigger::Manual,
                progress: Some(progress),
                ..RunOptions::default()
            };
            let result = run_sync_with(&hub, &name, &opts).await;
            bar.finish_and_clear();
            match result {
                Ok(r) if json => {
                    out!("{}", serde_json::to_string_pretty(&r)?);
                    Ok(ExitCode::SUCCESS)
                }
                Ok(r) => {
                    let c = &r.counts;
                    let how = match r.outcome {
                        Outcome::Completed => "completed".to_owned(),
                        Outcome::Stopped => {
                            "stopped at its budget; the next run continues".to_owned()
                        }
                        Outcome::Busy => "skipped: another run of this sync is in progress".into(),
                    };
                    out!("sync {name}: {how}");
                    out!(
                        "  pages {}  seen {}  sent {}  skipped {}  failed {}  deleted {}  conflicts {}",
                        r.pages,
                        c.seen,
                        c.sent,
                        c.skipped,
                        c.failed,
                        c.deleted,
                        c.conflicts
                    );
                    for f in &r.failures {
                        out!("  failed: {f}");
                    }
                    for f in &r.conflict_log {
                        out!("  {f}");
                    }
                    out!("  cursor: {}", r.state.cursor_text());
                    out!("  run log: ferry runs show {} {}", r.run_id, store.flag());
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("error: sync {name}: {e}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        SyncCommand::Status {
            config,
            store,
            env_file,
            json,
        } => {
            let Some(hub) = build_hub(&config, env_file.as_deref(), &store).await? else {
                return Ok(ExitCode::FAILURE);
            };
            let mut rows = Vec::new();
            for (name, def) in &hub.config.syncs {
                let state = ferry::sync::status(&hub, name).await?;
                rows.push((name.clone(), def.schedule.clone(), state));
            }
            if json {
                let out: Vec<_> = rows
                    .iter()
                    .map(|(name, schedule, st)| {
                        serde_json::json!({
                            "sync": name,
                            "schedule": schedule,
                            "state": st.as_ref().map(|(s, _)| s),
                            "updated_at": st.as_ref().map(|(_, at)| at),
                        })
                    })
                    .collect();
                out!("{}", serde_json::to_string_pretty(&out)?);
                return Ok(ExitCode::SUCCESS);
            }
            for (name, schedule, st) in rows {
                out!("{name}  ({schedule})");
                let Some((st, _)) = st else {
                    out!("  never ran");
                    continue;
                };
                out!("  cursor    {}", st.cursor_text());
                if let Some(l) = &st.last_run {
                    let c = &l.counts;
                    out!(
                        "  last run  {} {} ({} pages: seen {}, sent {}, skipped {}, failed {}){}",
                        when(l.finished_at),
                        l.outcome,
                        l.pages,
                        c.seen,
                        c.sent,
                        c.skipped,
                        c.failed,
                        l.detail
                            .as_deref()
                            .map(|d| format!(" — {d}"))
                            .unwrap_or_default()
                    );
                }
                let t = &st.totals;
                out!(
                    "  totals    seen {}  sent {}  skipped {}  failed {}  deleted {}  conflicts {}",
                    t.seen,
                    t.sent,
                    t.skipped,
                    t.failed,
                    t.deleted,
                    t.conflicts
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn show(bar: &ProgressBar, p: &Progress) {
    let c = &p.counts;
    if let Some(total) = p.total.filter(|t| *t > 0) {
        if bar.length() != Some(total) {
            bar.set_length(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {pos}/{len} {msg} [{elapsed}, eta {eta}]",
                )
                .expect("template parses")
                .progress_chars("=> "),
            );
        }
        bar.set_position(c.seen);
    }
    bar.set_message(format!(
        "{}: page {} · seen {} · sent {} · skipped {} · failed {}",
        p.poll, p.pages, c.seen, c.sent, c.skipped, c.failed
    ));
}

fn when(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}
