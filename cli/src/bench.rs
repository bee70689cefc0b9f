//! `ferry bench ingest`: a load generator for a running hub. It signs each
//! request the way the source's provider would (a distinct event id per
//! request, so every one is a new event that must be durably accepted) and
//! reports the accepted rate and latency percentiles.
//!
//! Two shapes of load:
//! - closed loop (the default): `--concurrency` senders, each sending its
//!   next request when the previous one is answered — the most the hub
//!   takes;
//! - open loop (`--rate N`): requests are due at a constant arrival rate
//!   whatever the hub does, each on a connection of its own when the others
//!   are busy, and latency is counted from when a request was *due*, so a
//!   slow answer cannot hide the requests queued behind it (no coordinated
//!   omission).
//!
//! With `--pid` it also reads the hub's CPU time and context switches from
//! `/proc` before and after the load and prints them per accepted event.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Args;
use ferry::verify::Verifier;

use crate::bench_stats::{Latency, due, planned};
use crate::env::load_config;
use crate::proc_cpu;

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
    /// Requests in all (with `--rate`, unless `--duration` is given).
    #[arg(long, default_value_t = 50_000)]
    pub requests: usize,
    /// Requests in flight at once (closed loop; ignored with `--rate`).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Open loop: offer this many requests per second, at a constant arrival rate.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate: Option<u32>,
    /// With `--rate`: offer load for this long (e.g. `30s`) instead of `--requests`.
    #[arg(long, value_parser = humantime::parse_duration, requires = "rate")]
    pub duration: Option<Duration>,
    /// The hub's process id: print its CPU time (user + system, from
    /// `/proc/PID/stat`) and context switches per accepted event.
    #[arg(long)]
    pub pid: Option<u32>,
    /// KEY=VALUE file for `${env:NAME}` references.
    #[arg(long)]
    pub env_file: Option<PathBuf>,
}

/// What every request needs: where to post, how to sign, what to call it.
struct Sender {
    client: reqwest::Client,
    url: String,
    verifier: Verifier,
    run_tag: u128,
    /// Requests sent and not answered yet, and the most there were at once.
    in_flight: AtomicUsize,
    peak: AtomicUsize,
}

impl Sender {
    /// Send request `i` (a new event); its latency counted from `since`, or
    /// `None` when it was not accepted with a `202`.
    async fn send(&self, i: usize, since: Instant) -> Option<Duration> {
        let run_tag = self.run_tag;
        let body = format!(
            r#"{{"submission_id":"bench-{run_tag}-{i}","email":"lead{i}@example.com","first_name":"Ada","last_name":"Lovelace","id":"evt_{run_tag}_{i}","event_id":"Ev{run_tag}{i}"}}"#
        );
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let mut req = self
            .client
            .post(self.url.as_str())
            .header("content-type", "application/json");
        let delivery = format!("bench-{run_tag}-{i}");
        for (k, v) in self.verifier.sign(body.as_bytes(), now_ms, Some(&delivery)) {
            req = req.header(k, v);
        }
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak.fetch_max(now, Ordering::Relaxed);
        let sent = req.body(body).send().await;
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        match sent {
            Ok(r) if r.status().as_u16() == 202 => Some(since.elapsed()),
            _ => None,
        }
    }
}

/// Latencies of the accepted requests, and how many were not accepted.
type Outcome = (Vec<Duration>, usize);

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
    let verifier = Verifier::from_config(&source.verify).map_err(|e| anyhow::anyhow!("{e}"))?;
    let sender = Arc::new(Sender {
        client: ferry::destination::client_builder()
            .pool_max_idle_per_host(usize::MAX)
            .build()?,
        url: format!("{}/hooks/{}", args.url.trim_end_matches('/'), args.source),
        verifier,
        run_tag: SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis(),
        in_flight: AtomicUsize::new(0),
        peak: AtomicUsize::new(0),
    });
    let before = args.pid.map(proc_cpu::read).transpose()?;

    let started = Instant::now();
    let (mut latencies, failures, offered) = match args.rate {
        None => {
            let (l, f) = closed_loop(&sender, args.requests, args.concurrency).await?;
            (l, f, args.requests)
        }
        Some(rate) => {
            let n = planned(rate, args.duration, args.requests);
            let (l, f) = open_loop(&sender, n, rate).await?;
            (l, f, n)
        }
    };
    let elapsed = started.elapsed();
    let usage = match (args.pid, before) {
        (Some(pid), Some(before)) => Some(before.until(proc_cpu::read(pid)?)),
        _ => None,
    };

    let l = Latency::of(&mut latencies);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let shape = match args.rate {
        None => format!("concurrency {}", args.concurrency),
        Some(rate) => format!(
            "open loop, {rate}/s offered, up to {} in flight",
            sender.peak.load(Ordering::Relaxed)
        ),
    };
    let measured_from = if args.rate.is_some() {
        ", from when due"
    } else {
        ""
    };
    out!(
        "accepted {} of {} in {:.2}s: {:.0} webhooks/s ({shape}); latency{measured_from} p50 {:.2}ms p99 {:.2}ms p99.9 {:.2}ms max {:.2}ms; failures {}",
        l.count,
        offered,
        elapsed.as_secs_f64(),
        l.count as f64 / elapsed.as_secs_f64(),
        ms(l.p50),
        ms(l.p99),
        ms(l.p999),
        ms(l.max),
        failures
    );
    if let Some(u) = usage {
        let hz = proc_cpu::ticks_per_second();
        let per = |ticks| proc_cpu::micros_per_event(ticks, hz, l.count);
        out!(
            "hub cpu: {:.1} µs per accepted event (user {:.1} + system {:.1}; {} ticks at {hz}/s); {:.2} context switches per event",
            per(u.cpu.user + u.cpu.system),
            per(u.cpu.user),
            per(u.cpu.system),
            u.cpu.user + u.cpu.system,
            u.switches as f64 / l.count.max(1) as f64,
        );
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `concurrency` senders sharing `total` requests, each waiting for its answer.
async fn closed_loop(
    sender: &Arc<Sender>,
    total: usize,
    concurrency: usize,
) -> anyhow::Result<Outcome> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (sender, next) = (sender.clone(), next.clone());
        tasks.spawn(async move {
            let mut out: Outcome = (Vec::new(), 0);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break out;
                }
                tally(&mut out, sender.send(i, Instant::now()).await);
            }
        });
    }
    let mut out: Outcome = (Vec::with_capacity(total), 0);
    while let Some(done) = tasks.join_next().await {
        let (l, f) = done?;
        out.0.extend(l);
        out.1 += f;
    }
    Ok(out)
}

/// `total` requests, request `i` due at `i / rate` s after the start and sent
/// then on its own task (a new connection if none is idle); latency counted
/// from when it was due.
async fn open_loop(sender: &Arc<Sender>, total: usize, rate: u32) -> anyhow::Result<Outcome> {
    let start = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut out: Outcome = (Vec::with_capacity(total), 0);
    for i in 0..total {
        let at = start + due(i as u64, rate);
        tokio::time::sleep_until(at).await;
        let sender = sender.clone();
        tasks.spawn(async move { sender.send(i, at.into_std()).await });
        // Collect what is done as we go, so finished tasks do not pile up.
        while let Some(done) = tasks.try_join_next() {
            tally(&mut out, done?);
        }
    }
    while let Some(done) = tasks.join_next().await {
        tally(&mut out, done?);
    }
    Ok(out)
}

fn tally(out: &mut Outcome, latency: Option<Duration>) {
    match latency {
        Some(l) => out.0.push(l),
        None => out.1 += 1,
    }
}
