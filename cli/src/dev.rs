//! `ferry dev`: the whole hub in one process, on the embedded store or on
//! DynamoDB + SQS (`--store aws`) — webhook URLs, queue workers, the sync
//! scheduler and the sandbox.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use ferry::clock::{Clock, SystemClock};
use ferry::hub::Hub;
use ferry::scheduler::Scheduler;
use ferry::store::{SqliteOptions, SqliteStore};
use ferry::sync::{RunOptions, Trigger, run_sync_with};
use tokio::sync::watch;

use crate::serve::{Bounds, serve};
use crate::store_opt::{Store, StoreArgs, StoreKind, build};

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8787";
/// Default data directory.
pub const DEFAULT_DATA: &str = ".ferry";
/// Receives before the embedded queue dead-letters a message that keeps failing to settle.
pub const MAX_RECEIVES: u32 = 100;

/// `ferry dev` options.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// The config file.
    #[arg(long, short, default_value = "examples/new-lead.yaml")]
    pub config: PathBuf,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// The store: `--store embedded --data DIR` (default) or `--store aws`.
    #[command(flatten)]
    pub store: StoreArgs,
    /// KEY=VALUE file for `${env:NAME}` references (default: `<config>.env` when it exists).
    #[arg(long)]
    pub env_file: Option<PathBuf>,
    /// Runs executing at once (0: accept webhooks only, run nothing).
    #[arg(long, default_value_t = 64)]
    pub workers: usize,
    /// Time budget of each scheduled sync run, e.g. `2m` (default: each sync's `budget`, else 5m).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub sync_budget: Option<Duration>,
    /// How often alert conditions are evaluated and the alert outbox delivered (docs/alerts.md).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub alerts_every: Duration,
    /// Serve the sandbox's request bins under `/_sandbox/<bin>/...` (for learning and examples).
    #[arg(long)]
    pub sandbox: bool,
    /// Close a connection whose request head has not arrived within this time (also an idle keep-alive connection).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub header_timeout: Duration,
    /// Answer 408 and close when a request body has not arrived within this time.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    pub body_timeout: Duration,
    /// The console's login token, as a reference (`${env:NAME}`), never the token itself.
    /// Required when --listen is not a loopback address; on loopback the console is open without it.
    #[arg(long, env = "FERRY_CONSOLE_TOKEN", value_name = "REF")]
    pub console_token: Option<String>,
    /// Send the console's session cookie without `Secure` on a non-loopback listener
    /// (plain HTTP on a private network; put TLS in front of anything else).
    #[arg(long)]
    pub console_insecure_cookie: bool,
    /// Do not serve the web console at `/`.
    #[arg(long)]
    pub no_console: bool,
}

/// Open the embedded store under `data`.
pub fn open_store(data: &Path) -> anyhow::Result<Arc<SqliteStore>> {
    std::fs::create_dir_all(data)
        .with_context(|| format!("creating data directory {}", data.display()))?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    SqliteStore::open(
        &data.join("ferry.db"),
        SqliteOptions {
            max_receives: MAX_RECEIVES,
            clock,
        },
    )
    .map_err(|e| anyhow::anyhow!("opening the store in {}: {e}", data.display()))
}

/// The lock file `ferry dev` holds in its data directory while it runs.
pub const LOCK_FILE: &str = "ferry.lock";

/// Take the data directory for this process: one `ferry dev` per directory,
/// so the one starting may release what a dead predecessor held. The OS drops
/// the lock when the process ends, however it ends (`kill -9` included).
fn lock_data(data: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::create_dir_all(data)
        .with_context(|| format!("creating data directory {}", data.display()))?;
    let path = data.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another `ferry dev` is running on {} (it holds {}); stop it, or use another --data",
            data.display(),
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

/// Run the hub until Ctrl-C.
pub async fn run(args: DevArgs) -> anyhow::Result<ExitCode> {
    init_tracing();
    // One `ferry dev` per data directory; on AWS any number share the store
    // (SQS's visibility timeouts release what a dead process held).
    let _lock = match args.store.store {
        StoreKind::Embedded => Some(lock_data(&args.store.data)?),
        StoreKind::Aws => None,
    };
    let console = if args.no_console {
        None
    } else {
        let env = crate::env::lookup(&args.config, args.env_file.as_deref());
        Some(crate::dev_console::options(&args, &env)?)
    };
    let Some((hub, store)) = build(&args.config, args.env_file.as_deref(), &args.store).await?
    else {
        return Ok(ExitCode::FAILURE);
    };
    // We hold the data directory: whatever a previous process still held is orphaned.
    if let Store::Embedded(store) = &store {
        match store.recover_after_crash().await {
            Ok(r) if r.messages + r.claims > 0 => eprintln!(
                "ferry: resuming after an unclean stop: {} run(s) released, {} step claim(s) dropped",
                r.messages, r.claims
            ),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not release work held by a previous process")
            }
        }
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let workers = tokio::spawn(ferry::worker::run_workers(
        hub.clone(),
        args.workers,
        stop_rx.clone(),
    ));
    let scheduler = tokio::spawn(scheduler(hub.clone(), args.sync_budget, stop_rx.clone()));
    let mut senders = ferry::alerts::Senders::with_clock(hub.ports.clock.clone());
    if args.store.store == StoreKind::Aws {
        senders = senders.with_sns_from_env().await;
    }
    let alerts = tokio::spawn(ferry::alerts::watch(
        hub.clone(),
        Arc::new(senders),
        args.alerts_every,
        stop_rx.clone(),
    ));
    let _ = print_banner(&hub, addr, &args);
    if !args.sandbox
        && let Some(name) = hub
            .config
            .connections
            .iter()
            .find_map(|(name, c)| c.base_url.contains("/_sandbox/").then_some(name))
    {
        eprintln!(
            "warning: connection {name:?} points at the sandbox, which is off; start `ferry dev --sandbox`"
        );
    }

    let console = console.map(|opts| ferry::console::Console::new(hub.clone(), opts));
    let app = crate::dev_routes::router(hub.clone(), args.sandbox, console);
    let bounds = Bounds {
        header_timeout: args.header_timeout,
        body_timeout: args.body_timeout,
    };
    let mut stop_http = stop_rx.clone();
    let server = tokio::spawn(serve(listener, app, bounds, async move {
        let _ = stop_http.wait_for(|s| *s).await;
    }));

    shutdown_signal().await;
    eprintln!("ferry: shutting down — finishing in-flight runs (Ctrl-C again to force)");
    let _ = stop_tx.send(true);
    let drain = async {
        let _ = workers.await;
        let _ = scheduler.await;
        let _ = alerts.await;
        let _ = server.await;
    };
    tokio::select! {
        _ = drain => eprintln!("ferry: stopped cleanly"),
        _ = tokio::signal::ctrl_c() => eprintln!("ferry: forced stop; unfinished runs resume on the next start"),
        _ = tokio::time::sleep(Duration::from_secs(30)) => eprintln!("ferry: gave up waiting; unfinished runs resume on the next start"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Fire each sync on its schedule until `stop`, each run within `budget`
/// (default: the sync's own `budget`).
async fn scheduler(hub: Arc<Hub>, budget: Option<Duration>, stop: watch::Receiver<bool>) {
    let now = hub.ports.clock.now_ms();
    let plans = hub
        .config
        .syncs
        .iter()
        .map(|(name, def)| (name.as_str(), def.schedule.as_str()));
    let plan = match Scheduler::new(plans, now) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "bad schedule; the scheduler is off");
            return;
        }
    };
    let clock = hub.ports.clock.clone();
    ferry::scheduler::run(clock, plan, ferry::scheduler::TICK, stop, move |name| {
        let hub = hub.clone();
        async move {
            let opts = RunOptions {
                budget,
                trigger: Trigger::Schedule,
                ..RunOptions::default()
            };
            match run_sync_with(&hub, &name, &opts).await {
                Ok(r) => tracing::info!(
                    sync = %name,
                    outcome = ?r.outcome,
                    seen = r.counts.seen,
                    sent = r.counts.sent,
                    "scheduled sync ran"
                ),
                Err(e) => tracing::error!(sync = %name, error = %e, "scheduled sync failed"),
            }
        }
    })
    .await;
}

/// The banner; a closed stdout does not stop the hub (its log goes to stderr).
fn print_banner(hub: &Hub, addr: SocketAddr, args: &DevArgs) -> std::io::Result<()> {
    let base = format!("http://{addr}");
    out!("ferry dev — the hub is running on {base}");
    out!("  config:  {}", args.config.display());
    match args.store.store {
        StoreKind::Embedded => out!("  data:    {}", args.store.data.join("ferry.db").display()),
        StoreKind::Aws => match &args.store.stack {
            Some(stack) => out!("  store:   DynamoDB + SQS (stack {stack}'s outputs)"),
            None => {
                out!("  store:   DynamoDB + SQS (FERRY_TABLE, FERRY_QUEUE_URL, FERRY_DLQ_URL)")
            }
        },
    }
    if !args.no_console {
        out!("  console: {base}/");
    }
    out!("  webhook URLs:");
    for name in hub.config.sources.keys() {
        out!("    POST {base}/hooks/{name}");
    }
    if args.sandbox {
        out!(
            "  sandbox: {base}/_sandbox/<bin>/...  (GET {base}/_sandbox/<bin>/_requests shows what a bin received)"
        );
    }
    for (name, def) in &hub.config.syncs {
        out!("  sync {name}: {}", def.schedule);
    }
    if let Some(source) = hub.config.sources.keys().next() {
        let exe = std::env::args().next().unwrap_or_else(|| "ferry".into());
        let sample = args.config.with_file_name(format!("{source}.json"));
        let file = if sample.is_file() {
            sample.display().to_string()
        } else {
            "PAYLOAD.json".into()
        };
        out!("  fire a signed sample event:");
        out!(
            "    {exe} send {source} --config {} --file {file} --url {base}",
            args.config.display()
        );
        out!("  then: {exe} runs list {}", args.store.flag());
    }
    out!("Ctrl-C stops (in-flight runs finish first).");
    Ok(())
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("FERRY_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler installs");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
