//! `ferry runs list|show`: the run log, for people and for scripts (`--json`).

use std::process::ExitCode;

use clap::Subcommand;
use ferry::model::RunRecord;

use crate::run_filter::RunFilter;
use crate::store_opt::StoreArgs;

/// `ferry runs ...`.
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Recent runs, newest first, filtered (see docs/operations.md for which filter uses which index).
    List {
        /// The store: `--store embedded --data DIR` (default) or `--store aws`.
        #[command(flatten)]
        store: StoreArgs,
        /// Which runs.
        #[command(flatten)]
        filter: RunFilter,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// One run with its steps and attempts.
    Show {
        /// Run id.
        id: String,
        /// The store: `--store embedded --data DIR` (default) or `--store aws`.
        #[command(flatten)]
        store: StoreArgs,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

/// Run a `runs` subcommand.
pub async fn run(cmd: RunsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        RunsCommand::List {
            store,
            filter,
            json,
        } => {
            let ports = store.open().await?.ports();
            let runs = filter.list(&*ports.runs, ports.clock.now_ms()).await?;
            if json {
                out!("{}", serde_json::to_string_pretty(&runs)?);
            } else if runs.is_empty() {
                out!("no runs yet");
            } else {
                out!(
                    "{:<36}  {:<14}  {:<16}  {:>8}  EVENT",
                    "RUN",
                    "STATUS",
                    "WORKFLOW",
                    "ATTEMPTS"
                );
                for r in &runs {
                    out!(
                        "{:<36}  {:<14}  {:<16}  {:>8}  {}",
                        r.id,
                        r.status.as_str(),
                        r.workflow,
                        r.attempts,
                        r.event_id
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        RunsCommand::Show { id, store, json } => {
            let store = store.open().await?;
            let Some(run) = store.ports().runs.get(&id).await? else {
                eprintln!("no run with id {id}");
                return Ok(ExitCode::FAILURE);
            };
            if json {
                out!("{}", serde_json::to_string_pretty(&run)?);
            } else {
                print_run(&run)?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_run(r: &RunRecord) -> std::io::Result<()> {
    out!("run       {}", r.id);
    out!(
        "workflow  {}  (source {}, event {})",
        r.workflow,
        r.source,
        r.event_id
    );
    out!(
        "status    {}  after {} deliveries",
        r.status.as_str(),
        r.attempts
    );
    if let Some(e) = &r.error {
        out!("error     {e}");
    }
    if let Some(f) = r.failure {
        let kind = serde_json::to_value(f)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        out!("failure   {kind}");
    }
    if let Some(ev) = &r.event {
        let cut = if ev.truncated { " (truncated)" } else { "" };
        out!(
            "event     received {}  {} headers  payload {}{cut}",
            ev.received_at,
            ev.headers.len(),
            ferry::outbound::excerpt(&ev.payload, 200)
        );
    }
    for s in &r.steps {
        out!("  step {:<16} {}", s.id, step_status(s.status));
        for a in &s.attempts {
            let code = a.status_code.map_or("---".to_owned(), |c| c.to_string());
            out!(
                "    #{} {code} {}ms {}",
                a.n,
                a.duration_ms,
                a.error.as_deref().unwrap_or("")
            );
            if let Some(req) = &a.request {
                out!("       {} {}", req.method, req.url);
            }
            if let Some(d) = &a.decision {
                out!("       → {d}");
            }
        }
    }
    Ok(())
}

fn step_status(s: ferry::model::StepStatus) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
