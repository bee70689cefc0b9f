//! `ferry bench ingest`: a load generator for a running hub. It signs each
//! request the way the source's provider would (a distinct event id per
//! request, so every one is a new event that must be durably accepted) and
//! reports the accepted rate and latency percentiles.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Args;
use ferry::verify::Verifier;

use crate::env::load_config;

/// `ferry bench ingest` options.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Source to post to.
    pub source: String,
    /// The hub's config (for the source's signing scheme and secret).
    #[arg(long, short)]
    pub config: PathBuf,
    /// Base URL of the hub.
    #[arg(long, default_value = "http://127.0.0.1:8787")]
    pub url: String,
    /// Requests in all.
    #[arg(long, default_value_t = 50_000)]
    pub requests: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// KEY=VALUE file for `${env:NAME}` references.
    #[arg(long)]
    pub env_file: Option<PathBuf>,
}

/// Run the load and print the figures.
pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let loaded = match load_config(&args.config, args.env_file.as_deref()) {
        Ok(l) => l,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let source = loaded
        .config
        .sources
        .get(&args.source)
        .with_context(|| format!("no source {:?}", args.source))?;
    let verifier =
        Arc::new(Verifier::from_config(&source.verify).map_err(|e| anyhow::anyhow!("{e}"))?);
    let url = Arc::new(format!(
        "{}/hooks/{}",
        args.url.trim_end_matches('/'),
        args.source
    ));
    let client = ferry::destination::client_builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let run_tag = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));

    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency.max(1) {
        let (client, url, verifier, next) =
            (client.clone(), url.clone(), verifier.clone(), next.clone());
        let total = args.requests;
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0usize;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let body = format!(
                    r#"{{"submission_id":"bench-{run_tag}-{i}","email":"lead{i}@example.com","first_name":"Ada","last_name":"Lovelace","id":"evt_{run_tag}_{i}","event_id":"Ev{run_tag}{i}"}}"#
                );
                let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
                let mut req = client.post(url.as_str()).header("content-type", "application/json").body(body.clone());
                for (k, v) in verifier.sign(body.as_bytes(), now_ms, Some(&format!("bench-{run_tag}-{i}"))) {
                    req = req.header(k, v);
                }
                let t = Instant::now();
                match req.send().await {
                    Ok(r) if r.status().as_u16() == 202 => latencies.push(t.elapsed()),
                    _ => failures += 1,
                }
            }
            (latencies, failures)
        });
    }
    let mut latencies: Vec<Duration> = Vec::with_capacity(args.requests);
    let mut failures = 0;
    while let Some(r) = tasks.join_next().await {
        let (l, f) = r?;
        latencies.extend(l);
        failures += f;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    out!(
        "accepted {} of {} in {:.2}s: {:.0} webhooks/s (concurrency {}); latency p50 {:.2}ms p99 {:.2}ms max {:.2}ms; failures {}",
        latencies.len(),
        args.requests,
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        args.concurrency,
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        failures
    );
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
