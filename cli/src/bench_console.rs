//! `ferry bench console`: the console's server time per page with a full
//! store. A fresh embedded store in a temporary directory is filled with
//! `--runs` run records (three workflows on two sources, a mix of statuses
//! over the last two days, each with an event and a step attempt) and
//! `--dead` dead letters; then each page is requested `--rounds` times
//! through the console's router in this process (no network), and the
//! median, p95 and slowest times are printed. A benchmark, not a test: the
//! numbers go in docs/performance.md with the machine they came from.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use axum::body::Body;
use clap::Args;
use ferry::hub::Hub;
use ferry::model::{Event, Job, RunJob, RunRecord, RunStatus, new_run_id};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::dev::open_store;

/// `ferry bench console` options.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Runs in the store.
    #[arg(long, default_value_t = 100_000)]
    pub runs: usize,
    /// Dead letters in the store (their runs are among `--runs`).
    #[arg(long, default_value_t = 1_000)]
    pub dead: usize,
    /// Requests per page.
    #[arg(long, default_value_t = 20)]
    pub rounds: usize,
}

const CONFIG: &str = r#"version: 1
connections:
  crm: { base_url: "http://127.0.0.1:9", rate_limit: { requests: 10, per: 1s } }
  chat: { base_url: "http://127.0.0.1:9" }
sources:
  form: { verify: { scheme: none }, max_silence: 1h }
  shop: { verify: { scheme: none } }
workflows:
  new-lead: { trigger: { source: form }, steps: [ { id: contact, connection: crm, request: { path: /contacts } } ] }
  order: { trigger: { source: shop }, steps: [ { id: notify, connection: chat, request: { path: /post } } ] }
  refund: { trigger: { source: shop }, steps: [ { id: notify, connection: chat, request: { path: /post } } ] }
"#;

const WORKFLOWS: [(&str, &str); 3] = [("new-lead", "form"), ("order", "shop"), ("refund", "shop")];
const STATUSES: [RunStatus; 5] = [
    RunStatus::Succeeded,
    RunStatus::Succeeded,
    RunStatus::Succeeded,
    RunStatus::DeadLettered,
    RunStatus::Queued,
];

/// Fill the store, time the pages, print the figures.
pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let dir = std::env::temp_dir().join(format!("ferry-bench-console-{}", uuid::Uuid::now_v7()));
    let store = open_store(&dir)?;
    let loaded = ferry::config::load_str(CONFIG, &|_| None).map_err(|e| anyhow::anyhow!("{e}"))?;
    let hub = Hub::new(loaded.config, loaded.secrets, store.ports()).map_err(anyhow::Error::msg)?;
    let now = hub.ports.clock.now_ms();

    let filled = Instant::now();
    let mut dead_run = None;
    let mut to_kill = Vec::new();
    // Written 256 at a time, so the store's writer commits them in groups.
    let mut writes = tokio::task::JoinSet::new();
    for i in 0..args.runs {
        let (workflow, source) = WORKFLOWS[i % 3];
        let status = STATUSES[(i / 3) % STATUSES.len()];
        // Spread over 48 hours, newest last.
        let at = now - 48 * 3_600_000 + (i as i64 * 48 * 3_600_000 / args.runs.max(1) as i64);
        let run = record(i, workflow, source, status, at);
        if status == RunStatus::DeadLettered && to_kill.len() < args.dead {
            dead_run.get_or_insert_with(|| run.id.clone());
            to_kill.push(Job::Run(RunJob {
                run_id: run.id.clone(),
                workflow: workflow.into(),
                source: source.into(),
                event_id: run.event_id.clone(),
                event: Event::default(),
            }));
        }
        let runs = hub.ports.runs.clone();
        writes.spawn(async move { runs.put(&run).await });
        if writes.len() >= 256 {
            while let Some(done) = writes.join_next().await {
                done??;
            }
        }
    }
    while let Some(done) = writes.join_next().await {
        done??;
    }
    for chunk in to_kill.chunks(100) {
        let bodies: Vec<_> = chunk.iter().map(|j| (j.encode(), Duration::ZERO)).collect();
        hub.ports.queue.send_batch(&bodies).await?;
    }
    loop {
        let got = hub
            .ports
            .queue
            .receive(100, Duration::from_secs(600), Duration::ZERO)
            .await?;
        if got.is_empty() {
            break;
        }
        for m in got {
            hub.ports
                .queue
                .dead_letter(&m.receipt, "step contact: HTTP 400 (rejected)")
                .await?;
        }
    }
    println!(
        "filled {} runs and {} dead letters in {:.1} s ({})",
        args.runs,
        to_kill.len(),
        filled.elapsed().as_secs_f64(),
        dir.display()
    );

    let console = ferry::console::Console::new(
        hub.clone(),
        ferry::console::Options {
            base: String::new(),
            access: ferry::console::Access::Open,
            secure_cookie: false,
            cli_store: "--data .ferry".into(),
            cli_config: String::new(),
        },
    );
    let app = ferry::console::router(console);
    let run_page = format!("/runs/{}", dead_run.unwrap_or_default());
    let pages = [
        "/",
        "/runs",
        "/runs?workflow=order&status=dead_lettered",
        "/runs?source=form&since=6h",
        "/runs?search=lead-4242",
        &run_page,
        "/dlq",
        "/dlq/replay?workflow=order",
        "/sources",
        "/connections",
        "/syncs",
        "/alerts",
    ];
    println!(
        "{:<44} {:>9} {:>9} {:>9}",
        "page", "p50 ms", "p95 ms", "max ms"
    );
    for page in pages {
        let mut times = Vec::with_capacity(args.rounds);
        for _ in 0..args.rounds.max(1) {
            let started = Instant::now();
            let resp = app
                .clone()
                .oneshot(http::Request::get(page).body(Body::empty())?)
                .await?;
            let status = resp.status();
            let _ = resp.into_body().collect().await?;
            times.push(started.elapsed());
            anyhow::ensure!(status.is_success(), "{page} answered {status}");
        }
        times.sort_unstable();
        let at =
            |p: f64| times[((p * (times.len() - 1) as f64).round() as usize).min(times.len() - 1)];
        println!(
            "{page:<44} {:>9.1} {:>9.1} {:>9.1}",
            ms(at(0.5)),
            ms(at(0.95)),
            ms(times[times.len() - 1])
        );
    }
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(ExitCode::SUCCESS)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn record(i: usize, workflow: &str, source: &str, status: RunStatus, at: i64) -> RunRecord {
    let step = if workflow == "new-lead" {
        "contact"
    } else {
        "notify"
    };
    crate::bench_seed::finished_run(
        new_run_id(),
        (workflow, source, step),
        format!("evt-{i}"),
        status,
        (at, at + 200),
        serde_json::json!({ "id": format!("lead-{i}"), "email": format!("p{i}@example.com"), "name": "A Person" }),
    )
}
