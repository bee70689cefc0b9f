//! `ferry bench execute`: how many single-step runs per second `ferry dev`'s engine
//! executes against a fast local target with no rate limit, and the time
//! ferry adds to each call (p50/p99) over the bare HTTP round trip.
//!
//! Everything runs in this process on 127.0.0.1: a target that answers
//! `200 {"ok":true}` at once, a fresh store in a temporary directory, the
//! same hub and workers `ferry dev` runs. Runs are queued first (as ingest
//! would), then the clock starts and the workers drain them.

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

use crate::dev::open_store;

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

    // Overhead: the same runs one at a time, against the bare HTTP call.
    let conn = hub
        .connection("fast")
        .expect("the bench connection")
        .clone();
    let req = ferry::outbound::Prepared {
        method: http::Method::POST,
        url: format!("http://{target}/items/1"),
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
    let mut full = Vec::with_capacity(args.samples);
    while full.len() < args.samples {
        let msgs = hub
            .ports
            .queue
            .receive(1, ferry::worker::VISIBILITY, Duration::from_secs(1))
            .await?;
        for msg in msgs {
            let t = Instant::now();
            let ran = ferry::execute::execute_acking(&hub, &msg).await;
            full.push(t.elapsed());
            let d = ran.disposition;
            anyhow::ensure!(
                d == ferry::execute::Disposition::Done,
                "a run did not succeed: {d:?}"
            );
            if !ran.acked {
                ferry::worker::settle(hub.ports.queue.as_ref(), &msg, d).await;
            }
        }
    }
    let alone = store.write_stats();
    let (b50, b99) = (pct(&mut bare, 50.0), pct(&mut bare, 99.0));
    let (f50, f99) = (pct(&mut full, 50.0), pct(&mut full, 99.0));
    out!("per run, one at a time ({} samples):", args.samples);
    out!(
        "  store writes per run: {} (receive and ack included)",
        per_run(before, alone, args.samples)
    );
    out!(
        "  bare HTTP call     p50 {:>8.3} ms   p99 {:>8.3} ms",
        ms(b50),
        ms(b99)
    );
    out!(
        "  run through ferry  p50 {:>8.3} ms   p99 {:>8.3} ms",
        ms(f50),
        ms(f99)
    );
    out!(
        "  ferry's overhead   p50 {:>8.3} ms   p99 {:>8.3} ms  (templates, claim, run log, rate-limit/pause check, result; durable commits)",
        ms(f50.saturating_sub(b50)),
        ms(f99.saturating_sub(b99))
    );
    drop(hub);
    drop(store);
    if args.data.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(ExitCode::SUCCESS)
}

async fn enqueue(hub: &Hub, n: usize, offset: usize) -> anyhow::Result<()> {
    let ports = &hub.ports;
    let now = ports.clock.now_ms();
    for chunk in (offset..offset + n).collect::<Vec<_>>().chunks(1000) {
        let mut bodies = Vec::with_capacity(chunk.len());
        for i in chunk {
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
            ports
                .runs
                .create(&ferry::execute::new_record(hub, &job, now))
                .await?;
            bodies.push((Job::Run(job).encode(), Duration::ZERO));
        }
        ports.queue.send_batch(&bodies).await?;
    }
    Ok(())
}

/// This bench's runs created since `since` that succeeded (up to `limit`).
async fn succeeded(ports: &Ports, limit: usize, since: i64) -> anyhow::Result<usize> {
    let runs = ports
        .runs
        .list(&RunQuery {
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

/// Durable commits and operations per run between two readings of the
/// store's writer.
fn per_run(before: WriteStats, after: WriteStats, runs: usize) -> String {
    let n = runs.max(1) as f64;
    format!(
        "{:.2} durable commits, {:.2} operations",
        after.commits.saturating_sub(before.commits) as f64 / n,
        after.operations.saturating_sub(before.operations) as f64 / n
    )
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort_unstable();
    let i = ((p / 100.0) * (v.len() as f64 - 1.0)).round() as usize;
    v[i.min(v.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
