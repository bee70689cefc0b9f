//! An in-process hub on the embedded store and a virtual clock (every wait
//! moves it at once: no test waits for a pause or a rate limit to end),
//! driven by hand: webhooks go through ingest as the front ends send them
//! ([`ferry::respond::serve`]), the queue is received and executed in rounds.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry::clock::{Clock, VirtualClock};
use ferry::execute::execute;
use ferry::hub::Hub;
use ferry::ingest::Inbound;
use ferry::model::{RunRecord, StepRecord};
use ferry::respond::{Wire, serve};
use ferry::store::{SqliteOptions, SqliteStore};
use ferry::worker::settle;

/// When the clock starts: 2026-11-30T12:00:00Z.
pub const T0: i64 = 1_796_040_000_000;

pub struct Bench {
    pub hub: Arc<Hub>,
    pub clock: Arc<VirtualClock>,
    _dir: tempfile::TempDir,
}

impl Bench {
    /// A hub for `yaml`, with `${env:…}` from `env`.
    pub fn start(yaml: &str, env: &[(&str, String)]) -> Bench {
        let vars: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        let loaded = ferry::config::load_str(yaml, &|n: &str| vars.get(n).cloned())
            .unwrap_or_else(|e| panic!("{e}"));
        Bench::on(loaded)
    }

    /// A recipe from `examples/recipes/<slug>.yaml` with its `<slug>.env`,
    /// `overrides` winning (the fakes' URLs).
    pub fn recipe(slug: &str, overrides: &[(&str, String)]) -> Bench {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/recipes");
        let mut vars = env_file(&dir.join(format!("{slug}.env")));
        for (k, v) in overrides {
            vars.insert((*k).to_owned(), v.clone());
        }
        let path = dir.join(format!("{slug}.yaml"));
        let loaded = ferry::config::load_file(&path, &|n: &str| vars.get(n).cloned())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        Bench::on(loaded)
    }

    fn on(loaded: ferry::config::Loaded) -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let clock = VirtualClock::at(T0);
        let store = SqliteStore::open(
            dir.path(),
            SqliteOptions {
                max_receives: 5,
                clock: clock.clone() as Arc<dyn Clock>,
            },
        )
        .unwrap();
        let hub = Hub::new(loaded.config, loaded.secrets, store.ports()).unwrap();
        Bench {
            hub,
            clock,
            _dir: dir,
        }
    }

    /// Now, on the hub's clock, in seconds.
    pub fn now_secs(&self) -> i64 {
        self.clock.now_ms() / 1000
    }

    /// POST `body` to `/hooks/<source>` with `headers`: what the sender gets.
    pub async fn post(&self, source: &str, headers: &[(String, String)], body: &[u8]) -> Wire {
        let mut map = http::HeaderMap::new();
        for (k, v) in headers {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        serve(
            &self.hub,
            Inbound {
                method: http::Method::POST,
                source: source.to_owned(),
                headers: map,
                query: None,
                body: bytes::Bytes::copy_from_slice(body),
            },
        )
        .await
    }

    /// Receive and execute what is due now; how many messages there were.
    pub async fn step(&self) -> usize {
        let got = self
            .hub
            .ports
            .queue
            .receive(100, Duration::from_secs(120), Duration::ZERO)
            .await
            .unwrap();
        let n = got.len();
        for msg in got {
            let d = execute(&self.hub, &msg).await;
            settle(self.hub.ports.queue.as_ref(), &msg, d).await;
        }
        n
    }

    /// Run the queue, moving the clock 100 ms whenever nothing is due, until
    /// nothing has been due for `idle` such moves; panics after 60 s of real time.
    pub async fn drain(&self, idle: u32) {
        let mut quiet = 0;
        let started = Instant::now();
        while quiet < idle {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the queue never drained"
            );
            if self.step().await == 0 {
                quiet += 1;
                self.clock.advance(100);
            } else {
                quiet = 0;
            }
        }
    }

    /// Run the queue until run `id` is final; the run.
    pub async fn drive(&self, id: &str) -> RunRecord {
        let started = Instant::now();
        loop {
            if let Some(r) = self.run(id).await
                && r.status.is_final()
            {
                return r;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "timed out waiting for run {id} to finish"
            );
            if self.step().await == 0 {
                self.clock.advance(100);
            }
        }
    }

    pub async fn run(&self, id: &str) -> Option<RunRecord> {
        self.hub.ports.runs.get(id).await.unwrap()
    }
}

/// The run id of an accepted event's first workflow.
pub fn run_id(wire: &Wire) -> String {
    let body = wire.body.as_ref().expect("ferry's own JSON answer");
    body["run_id"].as_str().expect("a run id").to_owned()
}

/// Step `id` of `run`.
pub fn step<'r>(run: &'r RunRecord, id: &str) -> &'r StepRecord {
    run.steps
        .iter()
        .find(|s| s.id == id)
        .unwrap_or_else(|| panic!("no step {id} in {run:?}"))
}

/// `KEY=value` lines (comments and blank lines skipped).
pub fn env_file(path: &Path) -> BTreeMap<String, String> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}
