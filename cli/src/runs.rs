//! `ferry runs list|show|rerun`: the run log, for people and for scripts (`--json`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use ferry::model::RunRecord;

use crate::run_filter::RunFilter;
use crate::store_opt::{StoreArgs, build_hub};

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
        /// The store: `--store embedded --data DIR` (default) or `--store aws`.
        #[command(flatten)]
        store: StoreArgs,
        /// KEY=VALUE file for `${env:NAME}` references.
        #[arg(long)]
        env_file: Option<PathBuf>,
    },
    /// A run as a `ferry test` case (`--as-test`): its payload, and the answers each step got.
    Export {
        /// Run id.
        id: String,
        /// Write it as a test case (YAML test file); the only format so far.
        #[arg(long, required = true)]
        as_test: bool,
        /// The config the run ran on (to write paths after each connection's base URL).
        #[arg(long, short, default_value = "examples/new-lead.yaml")]
        config: PathBuf,
        /// The store: `--store embedded --data DIR` (default) or `--store aws`.
        #[command(flatten)]
        store: StoreArgs,
        /// KEY=VALUE file for `${env:NAME}` references.
        #[arg(long)]
        env_file: Option<PathBuf>,
        /// Write the test file here (its `config:` relative to it) instead of to standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
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
            config,
            env_file,
        } => {
            if let Some(config) = &config
                && !json
            {
                let Some(hub) = build_hub(config, env_file.as_deref(), &store).await? else {
                    return Ok(ExitCode::FAILURE);
                };
                for p in ferry::pause::list(&hub).await.map_err(anyhow::Error::msg)? {
                    let why = if p.by_config {
                        "enabled: false in the config".to_owned()
                    } else {
                        format!("paused at {}", when(p.since))
                    };
                    out!("PAUSED {} {} ({why})", p.kind.as_str(), p.name);
                }
            }
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
        RunsCommand::Rerun {
            id,
            config,
            store,
            env_file,
        } => {
            let Some(hub) = build_hub(&config, env_file.as_deref(), &store).await? else {
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
        RunsCommand::Export {
            id,
            as_test: _,
            config,
            store,
            env_file,
            output,
        } => export(&id, &config, &store, env_file.as_deref(), output.as_deref()).await,
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

/// `ferry runs export ID --as-test`.
async fn export(
    id: &str,
    config: &std::path::Path,
    store: &StoreArgs,
    env_file: Option<&std::path::Path>,
    output: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    let loaded = match crate::env::load_config(config, env_file) {
        Ok(l) => l,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let ports = store.open().await?.ports();
    let Some(run) = ports.runs.get(id).await? else {
        eprintln!("no run with id {id}");
        return Ok(ExitCode::FAILURE);
    };
    let steps = loaded
        .config
        .workflows
        .get(&run.workflow)
        .map(|w| w.steps.as_slice())
        .unwrap_or_default();
    let bases = steps
        .iter()
        .filter_map(|s| {
            let c = loaded.config.connections.get(&s.connection)?;
            Some((s.id.clone(), c.base_url.clone()))
        })
        .collect();
    let case = match ferry::testing::export::case_of(&run, &bases) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let file = ferry::testing::TestFile {
        config: Some(match output {
            Some(out) => ferry::testing::relative_to(out, config),
            None => config.to_owned(),
        }),
        cases: vec![case],
        ..Default::default()
    };
    let yaml = ferry::testing::file::to_yaml(&file).map_err(anyhow::Error::msg)?;
    match output {
        Some(path) => {
            std::fs::write(path, &yaml)?;
            out!("wrote run {id} as a test case to {}", path.display());
        }
        None => out!("{yaml}"),
    }
    Ok(ExitCode::SUCCESS)
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

/// A store time, for people (RFC 3339, seconds).
pub fn when(ms: i64) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}
