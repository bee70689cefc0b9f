//! `ferry bench execute`: how many single-step runs per second `ferry dev`'s engine
//! executes against a fast local target with no rate limit, the CPU each run
//! costs, and the time ferry adds to each call over the bare HTTP round trip.
//!
//! Everything runs in this process on 127.0.0.1: a target that answers
//! `200 {"ok":true}` at once, a fresh store in a temporary directory, the
//! same hub and workers `ferry dev` runs. Runs are queued first (as ingest
//! would), then the clock starts and the workers drain them.
//!
//! The per-call figures time each message one at a time from its receive to
//! its settlement (receive, run, call, record, ack), and split ferry's
//! overhead (that time less the bare call's median) into the time the
//! store spent in `COMMIT` (writing and syncing the WAL: the disk's share)
//! and the rest (ferry's own work).

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use clap::Args;
use ferry::hub::Hub;
use ferry::model::{Event, Job, RunJob, RunQuery, RunStatus, new_run_id};
use ferry::ports::Ports;
use ferry::store::WriteStats;
use tokio::sync::watch;

use crate::bench_stats::Latency;
use crate::dev::open_store;
use crate::proc_cpu;

/// `ferry bench execute` options.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Runs to execute for the throughput figure.
    #[arg(long, default_value_t = 20_000)]
    pub runs: usize,
    /// Runs executing at once (as `ferry dev --workers`).
    #[arg(long, default_value_t = 64)]
    pub workers: usize,
    /// Sequential runs timed one by one for the per-call overhead.
    #[arg(long, default_value_t = 2_000)]
    pub samples: usize,
    /// Run on the embedded store in this directory (e.g. one filled by
    /// `ferry bench seed`) instead of a fresh one; it is kept afterwards.
    #[arg(long)]
    pub data: Option<std::path::PathBuf>,
}

const CONFIG: &str = r#"version: 1
connections:
  fast: { base_url: "${env:BENCH_TARGET}" }
sources:
  bench:
    verify: { scheme: none }
workflows:
  bench:
    trigger: { source: bench }
    steps:
      - id: send
        connection: fast
        request: { method: POST, path: "/items/{{ body.n }}", json: { n: "{{ body.n }}", email: "{{ body.email | lower }}" } }
"#;

/// Run the benchmark and print its figures.
pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let calls = Arc::new(AtomicU64::new(0));
    let target = start_target(calls.clone()).await?;
    let dir = match &args.data {
        Some(dir) => dir.clone(),
        None => tempdir()?,
    };
    let url = format!("http://{target}");
    let env = move |name: &str| (name == "BENCH_TARGET").then(|| url.clone());
    let loaded = ferry::config::load_str(CONFIG, &env).map_err(|e| anyhow::anyhow!("{e}"))?;
    let store = open_store(&dir)?;
    let hub =
        Hub::new(loaded.config, loaded.secrets, store.ports()).map_err(|e| anyhow::anyhow!(e))?;

    out!(
        "ferry bench execute — {} cores, {} runs, {} at once, store {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        args.runs,
        args.workers,
        dir.display()
    );

    // Throughput: queue every run, then let the workers drain them.
    let since = hub.ports.clock.now_ms();
    enqueue(&hub, args.runs, 0).await?;
    let before = store.write_stats();
    let cpu_before = proc_cpu::read(std::process::id())?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let started = Instant::now();
    let workers = tokio::spawn(ferry::worker::run_workers(
        hub.clone(),
        args.workers,
        stop_rx,
    ));
    while calls.load(Ordering::Relaxed) < args.runs as u64 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        if started.elapsed() > Duration::from_secs(600) {
            anyhow::bail!("the runs did not finish in 10 minutes");
        }
    }
    // Every call answered; wait for the last runs to be recorded as succeeded.
    let done = loop {
        let n = succeeded(&hub.ports, args.runs, since).await?;
        if n >= args.runs {
            break started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let _ = stop_tx.send(true);
    let _ = workers.await;
    let drained = store.write_stats();
    let cpu = cpu_before.until(proc_cpu::read(std::process::id())?);
    let rate = args.runs as f64 / done.as_secs_f64();
    out!(
        "throughput: {} single-step runs in {:.2}s = {:.0} runs/s (each: claim, call, record; every run succeeded)",
        args.runs,
        done.as_secs_f64(),
        rate
    );
    out!(
        "  store writes per run: {}",
        per_run(before, drained, args.runs)
    );
    out!(
        "  process CPU per run: {:.0} µs (user + system, the in-process target and HTTP client included), {:.1} context switches",
        proc_cpu::micros_per_event(
            cpu.cpu.user + cpu.cpu.system,
            proc_cpu::ticks_per_second(),
            args.runs
        ),
        cpu.switches as f64 / args.runs.max(1) as f64
    );

    // Overhead: the same runs one at a time, against the bare HTTP call.
    let conn = hub
        .connection("fast")
        .expect("the bench connection")
        .clone();
    let req = ferry::outbound::Prepared {
        method: http::Method::POST,
        url: format!("http://{target}/items/1").parse()?,
        query: Vec::new(),
        headers: Vec::new(),
        body: ferry::outbound::Body::Json(serde_json::json!({"n": 1, "email": "a@b.c"})),
    };
    let mut bare = Vec::with_capacity(args.samples);
    for _ in 0..args.samples {
        let t = Instant::now();
        hub.http
            .send_with(
                conn.timeout
                    .map_or(ferry::outbound::DEFAULT_TIMEOUT, |d| d.get()),
                &req,
                "bench",
                &ferry::auth::static_credential(&conn),
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        bare.push(t.elapsed());
    }
    enqueue(&hub, args.samples, args.runs).await?;
    let before = store.write_stats();
    let (mut full, mut commit) = (Vec::new(), Vec::new());
    while full.len() < args.samples {
        let (t, stats) = (Instant::now(), store.write_stats());
        let msgs = hub
            .ports
            .queue
            .receive(1, ferry::worker::VISIBILITY, Duration::from_secs(1))
            .await?;
        for msg in msgs {
            let ran = ferry::execute::execute_acking(&hub, &msg).await;
            let d = ran.disposition;
            anyhow::ensure!(
                d == ferry::execute::Disposition::Done,
                "a run did not succeed: {d:?}"
            );
            if !ran.acked {
                ferry::worker::settle(hub.ports.queue.as_ref(), &msg, d).await;
            }
            full.push(t.elapsed());
            let micros = store.write_stats().commit_micros - stats.commit_micros;
            commit.push(Duration::from_micros(micros));
        }
    }
    let alone = store.write_stats();
    let bare50 = Latency::of(&mut bare.clone()).p50;
    // Per sample: what ferry adds over the bare call, and of that what is not
    // the store's COMMIT.
    let over: Vec<Duration> = full.iter().map(|f| f.saturating_sub(bare50)).collect();
    let own: Vec<Duration> = over
        .iter()
        .zip(&commit)
        .map(|(o, c)| o.saturating_sub(*c))
        .collect();
    let line = |name: &str, v: &[Duration]| {
        let l = Latency::of(&mut v.to_vec());
        out!(
            "  {name:<34} p50 {:>8.3} ms   p99 {:>8.3} ms   max {:>8.3} ms",
            ms(l.p50),
            ms(l.p99),
            ms(l.max)
        );
        anyhow::Ok(())
    };
    out!("per run, one at a time ({} samples):", args.samples);
    out!(
        "  store writes per run: {} (receive and ack included)",
        per_run(before, alone, args.samples)
    );
    line("bare HTTP call", &bare)?;
    line("receive → settled, through ferry", &full)?;
    line("ferry's overhead (less bare p50)", &over)?;
    line("  of which in COMMIT (WAL, sync)", &commit)?;
    line("  ferry's own (overhead − COMMIT)", &own)?;
    drop(hub);
    drop(store);
    if args.data.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(ExitCode::SUCCESS)
}

/// Queue `n` runs as ingest would (the run recorded, then its message),
/// 1,000 at a time and concurrently, so their writes share group commits.
async fn enqueue(hub: &Arc<Hub>, n: usize, offset: usize) -> anyhow::Result<()> {
    let now = hub.ports.clock.now_ms();
    for chunk in (offset..offset + n).collect::<Vec<_>>().chunks(1000) {
        let mut created = tokio::task::JoinSet::new();
        for &i in chunk {
            let hub = hub.clone();
            created.spawn(async move {
                let job = RunJob {
                    run_id: new_run_id(),
                    workflow: "bench".into(),
                    source: "bench".into(),
                    event_id: format!("bench-{i}"),
                    event: Event {
                        body: serde_json::json!({ "n": i, "email": format!("User{i}@Example.com") }),
                        received_at: now,
                        ..Event::default()
                    },
                };
                let record = ferry::execute::queued_record(&hub, job.borrowed());
                hub.ports.runs.create(&record).await?;
                anyhow::Ok((Job::Run(job).encode(), Duration::ZERO))
            });
        }
        let mut bodies = Vec::with_capacity(chunk.len());
        while let Some(body) = created.join_next().await {
            bodies.push(body??);
        }
        hub.ports.queue.send_batch(&bodies).await?;
    }
    Ok(())
}

/// This bench's runs created since `since` that succeeded (up to `limit`).
/// Counted from their summaries: listing them decoded every record, inside
/// the window the rate and the CPU per run are taken over.
async fn succeeded(ports: &Ports, limit: usize, since: i64) -> anyhow::Result<usize> {
    let runs = ports
        .runs
        .summaries(&RunQuery {
            // Only this bench's runs: a seeded store holds others.
            workflow: Some("bench".into()),
            status: Some(RunStatus::Succeeded),
            since: Some(since),
            limit,
            ..RunQuery::default()
        })
        .await?;
    Ok(runs.len())
}

async fn start_target(calls: Arc<AtomicU64>) -> anyhow::Result<std::net::SocketAddr> {
    let app = Router::new().fallback(move || {
        let calls = calls.clone();
        async move {
            calls.fetch_add(1, Ordering::Relaxed);
            axum::Json(serde_json::json!({ "ok": true }))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr)
}

fn tempdir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("ferry-bench-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Transactions, durable commits and operations per run between two
/// readings of the store's writer, and the batches it redid (in all).
fn per_run(before: WriteStats, after: WriteStats, runs: usize) -> String {
    let n = runs.max(1) as f64;
    let per = |a: u64, b: u64| b.saturating_sub(a) as f64 / n;
    format!(
        "{:.2} durable commits, {:.2} operations, {:.2} transactions ({} batches redone)",
        per(before.synced, after.synced),
        per(before.operations, after.operations),
        per(before.commits, after.commits),
        after.redone.saturating_sub(before.redone)
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
