//! Cold start of each function's release binary, as Lambda runs it: process
//! start → first request for an event (init: config loaded and checked,
//! store and clients built), then that first event → its answer.
//!
//! ```sh
//! cargo build --release -p ferry-ingest -p ferry-execute -p ferry-sync
//! cargo run --release -p ferry-testkit --example coldstart [RUNS]
//! ```
//!
//! Each run is a fresh process on a fresh embedded store, served by a
//! stand-in Runtime API on 127.0.0.1; the HTTP targets are a local server.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ferry_testkit::runtime_api::{RuntimeApi, events_env};
use ferry_testkit::target::Target;
use ferry_testkit::{events_dir, repo_root};
use serde_json::{Value, json};

fn release_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
        .join("release")
}

fn event(path: &str) -> Value {
    let text = std::fs::read_to_string(events_dir().join(path)).expect("the event exists");
    serde_json::from_str(&text).expect("JSON")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn summary(mut xs: Vec<f64>) -> String {
    xs.sort_by(f64::total_cmp);
    let at = |q: f64| xs[((xs.len() - 1) as f64 * q).round() as usize];
    format!(
        "median {:6.2} ms  p90 {:6.2} ms  min {:6.2} ms  max {:6.2} ms",
        at(0.5),
        at(0.9),
        xs[0],
        xs[xs.len() - 1]
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(20);
    let target = Target::start().await;
    target.respond(
        "/crm/contacts",
        200,
        json!({ "results": [{ "id": "c-1", "email": "ada@example.com", "updated_at": "2023-11-14T10:00:00Z" }] }),
    );
    let cases = [
        ("ferry-ingest", event("ingest/http-v2/hmac-sha256.json")),
        ("ferry-execute", event("sqs/batch.json")),
        ("ferry-sync", event("schedule/input.json")),
    ];
    println!("{runs} cold starts each, release build, {}", machine());
    for (bin, ev) in cases {
        let binary = release_dir().join(bin);
        anyhow::ensure!(
            binary.is_file(),
            "{} is missing: cargo build --release -p {bin}",
            binary.display()
        );
        let size = std::fs::metadata(&binary)?.len();
        let (mut init, mut own, mut first) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            let dir = tempfile::tempdir()?;
            let mut env = events_env(dir.path());
            for (k, p) in [
                ("CRM_URL", "crm"),
                ("CHAT_URL", "chat"),
                ("AUDIT_URL", "audit"),
            ] {
                env.push((k.into(), format!("{}/{p}", target.url())));
            }
            let api = RuntimeApi::start().await;
            let id = api.invoke(ev.clone());
            let started = Instant::now();
            let mut child = api.spawn(&binary, &env);
            let answered = api.outcome(&id, Duration::from_secs(30)).await;
            let _ = child.kill();
            let out = child.wait_with_output()?;
            // The function's own measure: main's start to the hub built.
            let ready = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|l| l["message"] == "ready")
                .and_then(|l| l["init_us"].as_f64());
            own.push(ready.unwrap_or(f64::NAN) / 1000.0);
            anyhow::ensure!(answered.is_some(), "{bin} did not answer");
            let polled = api.first_poll().expect("it asked for an event");
            let done = api.answered_at(&id).expect("it answered");
            init.push(ms(polled - started));
            first.push(ms(done - polled));
        }
        println!(
            "{bin} (binary {:.1} MiB, {} host build)",
            size as f64 / 1048576.0,
            std::env::consts::ARCH
        );
        println!("  init (start → ready):  {}", summary(init));
        println!("  of which in main:      {}", summary(own));
        println!("  first event:           {}", summary(first));
    }
    Ok(())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} cores")
}
