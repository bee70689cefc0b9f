//! `ferry`: the whole hub on one machine (`ferry dev`) and the tools around it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// `println!` for command output that hands a failed write back with `?`
/// instead of panicking: when the reader goes away (`ferry runs list --json |
/// head`) the write fails with a broken pipe, and `main` ends quietly.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?;
    }};
}

mod alerts;
mod authorize;
mod aws;
mod bench;
mod bench_console;
mod bench_execute;
mod bench_seed;
mod bench_stats;
mod bins;
mod connections;
mod describe;
mod dev;
mod dev_console;
mod dev_routes;
mod dlq;
mod env;
mod graph;
mod pause;
mod presets;
mod proc_cpu;
mod run_filter;
mod runs;
mod sandbox;
mod send;
mod serve;
mod sources;
mod status;
mod store_opt;
mod sync;
mod test;

/// mimalloc instead of glibc's malloc: ferry dev allocates per request on
/// the tokio workers and frees much of it on the store's writer thread, where
/// glibc spent ~27 % of the hub's CPU per accepted webhook (arena locks,
/// `malloc_consolidate`); see docs/performance.md (2026-12-01).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// ferry — a serverless integration hub.
#[derive(Debug, Parser)]
#[command(name = "ferry", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole hub in one process: webhook URLs, workers, scheduler (and, with --sandbox, request bins).
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
    /// Each connection's circuit breaker (closed, open, probing: since when, why) and 429 pause; `authorize NAME` for OAuth 2.0.
    Connections(connections::ConnectionsArgs),
    /// The hub on one screen: runs per workflow (24 h), last event per source, connections, DLQ depth, syncs.
    Status(status::StatusArgs),
    /// Read the run log.
    Runs {
        #[command(subcommand)]
        command: runs::RunsCommand,
    },
    /// Load generators for measuring a running hub.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// The dead-letter queue: list what failed for good, replay it.
    Dlq {
        #[command(subcommand)]
        command: dlq::DlqCommand,
    },
    /// Draw what flows where (sources, workflows, steps, connections, syncs).
    Graph(graph::GraphArgs),
    /// Say in words what the config does: triggers, fields, permissions, failures, alerts.
    Describe(describe::DescribeArgs),
    /// Alerts: open and recent ones (`ferry alerts list`), a sample on a channel (`ferry alerts test CHANNEL`).
    Alerts {
        #[command(subcommand)]
        command: alerts::AlertsCmd,
    },
    /// Create the AWS store (table and queues) on any endpoint.
    Aws {
        #[command(subcommand)]
        command: aws::AwsCommand,
    },
    /// The built-in connector presets (`preset: NAME`), or one preset's settings and sources.
    Presets(presets::PresetsArgs),
    /// Hold a workflow's runs (events still accepted) or a connection's calls, on every instance.
    Pause(pause::PauseArgs),
    /// Let a paused workflow or connection go on; held runs drain within rate limits.
    Resume(pause::PauseArgs),
    /// What ferry has seen of a webhook source's events: fields, drift, alerts.
    Sources {
        #[command(subcommand)]
        command: sources::SourcesCommand,
    },
    /// Test workflows in-process against mocked APIs: test files, generated cases, JUnit for CI.
    Test(test::TestArgs),
    /// Run a sync once now, or show every sync's status.
    Sync {
        #[command(subcommand)]
        command: sync::SyncCommand,
    },
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Post signed, distinct events to SOURCE as fast as the hub accepts them.
    Ingest(bench::BenchArgs),
    /// Runs per second through the workers against a fast local target, and
    /// ferry's per-call overhead (p50/p99).
    Execute(bench_execute::BenchArgs),
    /// The web console's server time per page with 100,000 runs in a fresh embedded store.
    Console(bench_console::BenchArgs),
    /// Fill an embedded store with N runs in minutes (for the growth figures).
    Seed(bench_seed::SeedArgs),
    /// Time `ferry runs list` with each filter on a (seeded) store.
    List(bench_seed::ListArgs),
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
                out!(
                    "{}",
                    serde_json::to_string_pretty(&ferry::config::json_schema())
                        .expect("schema serializes")
                );
                Ok(ExitCode::SUCCESS)
            }
            Command::Send(args) => send::run(args).await,
            Command::Runs { command } => runs::run(command).await,
            Command::Status(args) => status::run(args).await,
            Command::Connections(args) => connections::run(args).await,
            Command::Sync { command } => sync::run(command).await,
            Command::Sources { command } => sources::run(command).await,
            Command::Graph(args) => graph::run(args),
            Command::Describe(args) => describe::run(args),
            Command::Test(args) => test::run(args).await,
            Command::Dlq { command } => dlq::run(command).await,
            Command::Aws { command } => aws::run(command).await,
            Command::Alerts { command } => alerts::run(command).await,
            Command::Presets(args) => presets::run(args),
            Command::Pause(args) => pause::run(args, true).await,
            Command::Resume(args) => pause::run(args, false).await,
            Command::Bench {
                command: BenchCommand::Ingest(args),
            } => bench::run(args).await,
            Command::Bench {
                command: BenchCommand::Execute(args),
            } => bench_execute::run(args).await,
            Command::Bench {
                command: BenchCommand::Console(args),
            } => bench_console::run(args).await,
            Command::Bench {
                command: BenchCommand::Seed(args),
            } => bench_seed::seed(args).await,
            Command::Bench {
                command: BenchCommand::List(args),
            } => bench_seed::list(args).await,
        }
    });
    match result {
        Ok(code) => code,
        // The reader of our output went away (`| head`): nothing left to say to anyone.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Whether `e` comes from writing to a pipe whose reader has gone.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn validate(config: PathBuf, env_file: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    match env::load_config(&config, env_file.as_deref()) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("warning: {w}");
            }
            out!("{}: ok", config.display());
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            eprintln!("{errors}");
            Ok(ExitCode::FAILURE)
        }
    }
}
