//! `ferry bench seed` and `ferry bench list`: the growth figures.
//!
//! `seed` fills an embedded store with `--runs` finished run records in
//! minutes (5 million webhooks over HTTP would take an hour): four
//! workflows on three sources, a realistic mix of statuses, ~1 KB payloads,
//! run ids as the embedded store's ingest makes them (time-ordered),
//! spread over `--days` up to now, each expiring 30 days after its last
//! change as retention would set it — so the oldest expire while a benchmark
//! runs, and the writer's retention sweep has work. The rows go through the
//! store's own encoding and indexes (`SqliteStore::import_runs`), thousands
//! per transaction. Run `ferry dev --data DIR`, `ferry bench execute --data
//! DIR` or `ferry runs list --data DIR` on the result.
//!
//! `list` times `ferry runs list` with each filter (and some combinations)
//! on a store: the query through the store in this process (p50 and slowest
//! of `--rounds`), and the wall time of the whole `ferry runs list` process,
//! which opens the store first.

use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Args;
use ferry::model::{Attempt, RunRecord, RunStatus, StepRecord, StepStatus, ordered_run_id};
use ferry::runlog::{DEFAULT_RETENTION, ReceivedEvent};

use crate::dev::open_store;

/// `ferry bench seed` options.
#[derive(Debug, Args)]
pub struct SeedArgs {
    /// Directory of the embedded store to fill (created if missing; runs are added).
    #[arg(long)]
    pub data: PathBuf,
    /// Runs to write.
    #[arg(long, default_value_t = 1_000_000)]
    pub runs: usize,
    /// The runs are spread evenly over this many days up to now.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// Runs per transaction.
    #[arg(long, default_value_t = 5_000)]
    pub batch: usize,
}

/// `ferry bench list` options.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Directory of the embedded store (seeded with `ferry bench seed`).
    #[arg(long)]
    pub data: PathBuf,
    /// Times each listing is made (in this process, and as a `ferry runs list` process).
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
}

/// The seeded workflows: name, source, share of the runs in thousandths.
const WORKFLOWS: [(&str, &str, u64); 4] = [
    ("new-lead", "website-form", 500),
    ("order", "shop", 300),
    ("refund", "shop", 150),
    ("crm-sync", "crm", 50),
];

/// The seeded statuses and their share in thousandths.
const STATUSES: [(RunStatus, u64); 7] = [
    (RunStatus::Succeeded, 900),
    (RunStatus::Skipped, 40),
    (RunStatus::DeadLettered, 30),
    (RunStatus::Retrying, 10),
    (RunStatus::AuthFailed, 10),
    (RunStatus::Queued, 5),
    (RunStatus::Running, 5),
];

/// The listings `ferry bench list` times: every filter of `ferry runs list`
/// alone and in combinations, common and rare values.
const LISTINGS: &[&[&str]] = &[
    &[],
    &["--workflow", "new-lead"],
    &["--workflow", "crm-sync"],
    &["--status", "dead_lettered"],
    &["--status", "auth_failed"],
    &["--source", "shop"],
    &["--source", "crm"],
    &["--since", "1h"],
    &["--since", "20d", "--until", "19d"],
    &["--workflow", "order", "--status", "dead_lettered"],
    &["--workflow", "crm-sync", "--status", "auth_failed"],
    &["--workflow", "crm-sync", "--status", "queued"],
    &["--source", "shop", "--status", "retrying"],
    &["--source", "crm", "--status", "running"],
    &["--workflow", "refund", "--since", "2d", "--until", "1d"],
    &[
        "--source",
        "website-form",
        "--status",
        "skipped",
        "--since",
        "24h",
    ],
    &["--status", "auth_failed", "--since", "10d", "--until", "9d"],
    &["--workflow", "nope"],
    &["--source", "nope"],
];

/// A number from `i` and `salt` (splitmix64): the same store every time.
fn mix(i: u64, salt: u64) -> u64 {
    let mut z = i.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(salt);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The entry of `table` whose share covers `i`'s draw.
fn pick<T: Copy>(table: &[(T, u64)], draw: u64) -> T {
    let mut at = draw % 1000;
    for &(v, share) in table {
        if at < share {
            return v;
        }
        at -= share;
    }
    table[0].0
}

/// Run `i` of `n`, created at `at`.
fn record(i: u64, at: i64) -> RunRecord {
    let wf = pick(&WORKFLOWS.map(|(w, s, share)| ((w, s), share)), mix(i, 1));
    let (workflow, source) = wf;
    let status = pick(&STATUSES, mix(i, 2));
    let event_id = format!("evt-{i:09}");
    let updated_at = at + 150 + (mix(i, 3) % 400) as i64;
    let notes: String = (0..40)
        .map(|k| format!("{:016x}", mix(i, 10 + k)))
        .collect::<Vec<_>>()
        .join(" ");
    let payload = serde_json::json!({
        "submission_id": event_id,
        "email": format!("person{i}@example.com"),
        "name": "A Person",
        "company": format!("Company {}", mix(i, 4) % 10_000),
        "phone": format!("+1 555 {:07}", mix(i, 5) % 10_000_000),
        "items": [{"sku": format!("sku-{}", mix(i, 6) % 500), "qty": 1 + mix(i, 7) % 5, "price": 19.99}],
        "tags": ["inbound", "web", workflow],
        "notes": notes,
        "consent": true,
    });
    let mut run = finished_run(
        ordered_run_id(at, source, &event_id, workflow),
        (workflow, source, "contact"),
        event_id,
        status,
        (at, updated_at),
        payload,
    );
    run.expires_at = Some(ferry::runlog::expiry(updated_at, DEFAULT_RETENTION));
    run
}

/// A finished single-step run `id` of `(workflow, source, step)`, created
/// and last updated at `times`: its step answered 201, or 400 five times
/// over when `status` is a failure (dead-lettered, auth failed).
pub(crate) fn finished_run(
    id: String,
    (workflow, source, step): (&str, &str, &str),
    event_id: String,
    status: RunStatus,
    (at, updated_at): (i64, i64),
    payload: serde_json::Value,
) -> RunRecord {
    let failed = matches!(status, RunStatus::DeadLettered | RunStatus::AuthFailed);
    RunRecord {
        id,
        workflow: workflow.into(),
        source: source.into(),
        event_id,
        status,
        attempts: if failed { 5 } else { 1 },
        created_at: at,
        updated_at,
        error: failed.then(|| format!("step {step}: HTTP 400 (rejected)")),
        failure: failed.then_some(ferry::model::Failure::Rejected),
        steps: vec![StepRecord {
            id: step.into(),
            status: if failed {
                StepStatus::Failed
            } else {
                StepStatus::Succeeded
            },
            attempts: vec![Attempt {
                n: 1,
                started_at: at + 10,
                duration_ms: 120,
                status_code: Some(if failed { 400 } else { 201 }),
                ..Attempt::default()
            }],
            budget_from: 0,
            last_error: None,
        }],
        rerun_of: None,
        reruns: Vec::new(),
        event: Some(ReceivedEvent {
            received_at: at,
            headers: [("content-type".to_owned(), "application/json".to_owned())].into(),
            query: Default::default(),
            payload,
            truncated: false,
        }),
        expires_at: None,
    }
}

/// Fill the store and print how long it took and how big it is.
pub async fn seed(args: SeedArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(&args.data)?;
    let now = ferry::clock::Clock::now_ms(&ferry::clock::SystemClock);
    let span = i64::from(args.days) * 86_400_000;
    let n = args.runs as u64;
    let started = Instant::now();
    let mut pending = tokio::task::JoinSet::new();
    let mut first_bytes = 0;
    for chunk in (0..n).collect::<Vec<_>>().chunks(args.batch.max(1)) {
        let runs: Vec<RunRecord> = chunk
            .iter()
            .map(|&i| record(i, now - span + (i as i64 * span / n.max(1) as i64)))
            .collect();
        if first_bytes == 0 {
            first_bytes = serde_json::to_string(&runs[0])?.len();
        }
        let store = store.clone();
        pending.spawn(async move { store.import_runs(&runs).await });
        // Two batches in flight: one committing while the next is built.
        while pending.len() >= 2 {
            if let Some(done) = pending.join_next().await {
                done??;
            }
        }
    }
    while let Some(done) = pending.join_next().await {
        done??;
    }
    let took = started.elapsed();
    let path = store.path().to_owned();
    drop(store);
    let size = std::fs::metadata(&path).map_or(0, |m| m.len());
    out!(
        "seeded {} runs over {} days in {:.1} s ({:.0} runs/s); a record is ~{} bytes; {} is {:.2} GiB",
        args.runs,
        args.days,
        took.as_secs_f64(),
        args.runs as f64 / took.as_secs_f64().max(1e-9),
        first_bytes,
        path.display(),
        size as f64 / (1u64 << 30) as f64
    );
    Ok(ExitCode::SUCCESS)
}

/// Time each listing and print a table.
pub async fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe()?;
    let rounds = args.rounds.max(1);
    out!(
        "{:<62} {:>6} {:>9} {:>9} {:>11}",
        "ferry runs list …",
        "runs",
        "query p50",
        "query max",
        "process p50"
    );
    for listing in LISTINGS {
        let store = open_store(&args.data)?;
        let ports = store.ports();
        let filter = parse_flags(listing)?;
        let mut query = Vec::with_capacity(rounds);
        let mut found = 0;
        for _ in 0..rounds {
            let t = Instant::now();
            found = filter.list(&*ports.runs, ports.clock.now_ms()).await?.len();
            query.push(t.elapsed());
        }
        drop(ports);
        drop(store);
        let mut process = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let t = Instant::now();
            let status = std::process::Command::new(&exe)
                .args(["runs", "list", "--data"])
                .arg(&args.data)
                .args(*listing)
                .stdout(Stdio::null())
                .status()?;
            process.push(t.elapsed());
            anyhow::ensure!(status.success(), "ferry runs list {listing:?}: {status}");
        }
        query.sort_unstable();
        process.sort_unstable();
        out!(
            "{:<62} {:>6} {:>9.1} {:>9.1} {:>11.1}",
            if listing.is_empty() {
                "(no filter)".to_owned()
            } else {
                listing.join(" ")
            },
            found,
            ms(query[rounds / 2]),
            ms(query[rounds - 1]),
            ms(process[rounds / 2])
        );
    }
    out!(
        "(ms; query: the listing through the store, in this process; process: the whole `ferry runs list`, store opened)"
    );
    Ok(ExitCode::SUCCESS)
}

/// `ferry runs list`'s filter flags, parsed as the command parses them.
fn parse_flags(flags: &[&str]) -> anyhow::Result<crate::run_filter::RunFilter> {
    #[derive(clap::Parser)]
    struct Flags {
        #[command(flatten)]
        filter: crate::run_filter::RunFilter,
    }
    let args = std::iter::once("list").chain(flags.iter().copied());
    Ok(<Flags as clap::Parser>::try_parse_from(args)?.filter)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seeded_mix_follows_its_shares() {
        let n = 20_000;
        let runs: Vec<RunRecord> = (0..n).map(|i| record(i, 0)).collect();
        let share =
            |f: &dyn Fn(&RunRecord) -> bool| runs.iter().filter(|r| f(r)).count() as f64 / n as f64;
        let crm = share(&|r| r.workflow == "crm-sync");
        assert!((0.04..0.06).contains(&crm), "{crm}");
        let dead = share(&|r| r.status == RunStatus::DeadLettered);
        assert!((0.02..0.04).contains(&dead), "{dead}");
        let len = serde_json::to_string(&runs[0]).unwrap().len();
        assert!((900..2_000).contains(&len), "{len}");
        assert_ne!(runs[0].id, runs[1].id);
    }
}
