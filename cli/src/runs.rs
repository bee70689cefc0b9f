//! `ferry runs list|show|rerun`: the run log, for people and for scripts (`--json`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use ferry::model::{RunQuery, RunRecord, RunStatus};

use crate::dev::{DEFAULT_DATA, build_hub, open_store};

/// `ferry runs ...`.
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Recent runs, newest first.
    List {
        /// Directory of the embedded store.
        #[arg(long, default_value = DEFAULT_DATA)]
        data: PathBuf,
        /// Only this workflow.
        #[arg(long)]
        workflow: Option<String>,
        /// Only this status (queued, running, retrying, succeeded, skipped, dead_lettered, auth_failed).
        #[arg(long)]
        status: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// JSON output.
        #[arg(long)]
        json: bool,
        /// The config file: with it, paused workflows and connections are
        /// listed first (`ferry pause`, `enabled: false`).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// KEY=VALUE file for `${env:NAME}` references.
        #[arg(long)]
        env_file: Option<PathBuf>,
    },
    /// Start a new run of run ID's event (linked: `rerun_of` / `reruns`).
    Rerun {
        /// Run id.
        id: String,
        /// The config file.
        #[arg(long, short, default_value = "examples/new-lead.yaml")]
        config: PathBuf,
        /// Directory of the embedded store.
        #[arg(long, default_value = DEFAULT_DATA)]
        data: PathBuf,
        /// KEY=VALUE file for `${env:NAME}` references.
        #[arg(long)]
        env_file: Option<PathBuf>,
    },
    /// One run with its steps and attempts.
    Show {
        /// Run id.
        id: String,
        /// Directory of the embedded store.
        #[arg(long, default_value = DEFAULT_DATA)]
        data: PathBuf,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

fn parse_status(s: &str) -> anyhow::Result<RunStatus> {
    RunStatus::ALL
        .into_iter()
        .find(|st| st.as_str() == s)
        .ok_or_else(|| {
            let all: Vec<&str> = RunStatus::ALL.iter().map(|s| s.as_str()).collect();
            anyhow::anyhow!("unknown status {s:?}; one of {}", all.join(", "))
        })
}

/// Run a `runs` subcommand.
pub async fn run(cmd: RunsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        RunsCommand::List {
            data,
            workflow,
            status,
            limit,
            json,
            config,
            env_file,
        } => {
            if let Some(config) = &config
                && !json
            {
                let Some(hub) = build_hub(config, env_file.as_deref(), &data)? else {
                    return Ok(ExitCode::FAILURE);
                };
                for p in ferry::pause::list(&hub).await.map_err(anyhow::Error::msg)? {
                    let why = if p.by_config {
                        "enabled: false in the config".to_owned()
                    } else {
                        format!("paused at {}", crate::runs::when(p.since))
                    };
                    out!("PAUSED {} {} ({why})", p.kind.as_str(), p.name);
                }
            }
            let store = open_store(&data)?;
            let status = status.as_deref().map(parse_status).transpose()?;
            let runs = store
                .ports()
                .runs
                .list(&RunQuery {
                    workflow,
                    status,
                    limit,
                })
                .await?;
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
        RunsCommand::Rerun {
            id,
            config,
            data,
            env_file,
        } => {
            let Some(hub) = build_hub(&config, env_file.as_deref(), &data)? else {
                return Ok(ExitCode::FAILURE);
            };
            match ferry::rerun::rerun(&hub, &id).await {
                Ok(new) => {
                    out!("run {new} re-runs {id} (queued)");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        RunsCommand::Show { id, data, json } => {
            let store = open_store(&data)?;
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
    if let Some(of) = &r.rerun_of {
        out!("rerun of  {of}");
    }
    if !r.reruns.is_empty() {
        out!("reruns    {}", r.reruns.join(", "));
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

/// A store time, for people (RFC 3339, seconds).
pub fn when(ms: i64) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}
