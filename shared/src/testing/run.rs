//! Running a case: a fresh embedded store and hub, the event delivered
//! through the real [`crate::ingest`], its runs driven through the real
//! [`crate::execute`] and [`crate::worker::settle`] on a [`VirtualClock`]:
//! when nothing is due, the clock jumps to the next retry or rate-limit wait.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::deliver;
use super::file::Case;
use super::mock::{Limits, MockServer, Received};
use crate::clock::{Clock, Millis, VirtualClock};
use crate::config::{Auth, Config};
use crate::execute::{Disposition, execute};
use crate::hub::Hub;
use crate::ingest::Reply;
use crate::model::RunRecord;
use crate::ports::DeadLetter;
use crate::store::{SqliteOptions, SqliteStore};
use crate::worker;

/// Where every run of `ferry test` starts: 2026-01-01T00:00:00Z.
pub const EPOCH: Millis = 1_767_225_600_000;
/// A case that has not settled after this much virtual time is stopped.
pub const MAX_VIRTUAL: Duration = Duration::from_secs(7 * 24 * 3600);
/// How far back a `stale` signature is made.
pub const STALE_BY: Duration = Duration::from_secs(24 * 3600);

/// Everything a case left behind, for the expectations.
#[derive(Debug)]
pub struct Outcome {
    /// The payload of the (first) event.
    pub payload: Value,
    /// Ingest's answer to the last delivery.
    pub ingest: Reply,
    /// The runs the deliveries started, final.
    pub runs: Vec<RunRecord>,
    /// Dead letters.
    pub dead_letters: Vec<DeadLetter>,
    /// Calls the mocks received.
    pub received: Vec<Received>,
    /// Calls no mock answered.
    pub unmocked: Vec<String>,
    /// Calls over a documented rate limit.
    pub over_limit: Vec<String>,
    /// Virtual time from the first delivery to the end.
    pub virtual_elapsed: Duration,
    /// Why the case could not be run to the end, if so.
    pub error: Option<String>,
    /// The alerts sent once the runs ended, when the case expects one and
    /// the config has an `alerts:` section (`None` otherwise).
    pub alerts: Option<Vec<crate::alerts::Notice>>,
}

/// A config under test, loaded once, with its mock server.
pub struct Runner {
    /// The config file.
    pub config_path: PathBuf,
    config: Config,
    secrets: Vec<String>,
    clock: Arc<VirtualClock>,
    mock: MockServer,
}

/// The value a `${env:NAME}` nobody sets gets: a URL (so it also serves as a base URL).
pub fn placeholder(name: &str) -> String {
    format!("https://ferry-test.invalid/{name}")
}

impl Runner {
    /// Load `config_path` with `env` (the test file's) for its `${env:NAME}`
    /// references, and a [`placeholder`] for every other: the process
    /// environment is not read, so a test is the same on every machine and
    /// no real credential can reach its output. Every connection is pointed
    /// at a new mock server.
    pub async fn new(config_path: &Path, env: &BTreeMap<String, String>) -> Result<Self, String> {
        let lookup = |name: &str| Some(env.get(name).cloned().unwrap_or_else(|| placeholder(name)));
        let loaded = crate::config::load_file(config_path, &lookup).map_err(|e| e.to_string())?;
        let clock = VirtualClock::at(EPOCH);
        let limits = loaded
            .config
            .connections
            .iter()
            .map(|(name, c)| {
                let rate = c
                    .rate_limit
                    .as_ref()
                    .map(|r| (r.requests.get(), crate::clock::millis(r.per.get())));
                let timeout = c
                    .timeout
                    .map_or(crate::outbound::DEFAULT_TIMEOUT, |t| t.get());
                (name.clone(), Limits { rate, timeout })
            })
            .collect();
        // Verifiers are built here too: a secret a scheme cannot take (a
        // placeholder where `whsec_…` is needed) is one error, before any case.
        for (name, source) in &loaded.config.sources {
            crate::verify::Verifier::from_config(&source.verify).map_err(|e| {
                format!(
                    "sources.{name}.verify: {e} (a ${{env:NAME}} the test file's `env:` does not set stands for {})",
                    placeholder("NAME")
                )
            })?;
        }
        let mock = MockServer::start(clock.clone(), limits).await?;
        let mut config = loaded.config;
        for (name, c) in &mut config.connections {
            c.base_url = mock.connection_url(name);
            if let Some(Auth::OAuth2 { token_url, .. }) = &mut c.auth {
                *token_url = mock.token_url(name);
            }
        }
        Ok(Self {
            config_path: config_path.to_owned(),
            config,
            secrets: loaded.secrets,
            clock,
            mock,
        })
    }

    /// The config under test (connections pointed at the mocks).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Run one case on a fresh store.
    pub async fn run(&self, case: &Case) -> Outcome {
        self.mock.reset(case.mocks.clone());
        // A day between cases: nothing one case left in time leaks into the next.
        self.clock.advance(24 * 3600 * 1000);
        let mut out = self.empty(case);
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => return out.broken(format!("temporary store: {e}")),
        };
        let opts = SqliteOptions {
            max_receives: crate::boot::MAX_RECEIVES,
            clock: self.clock.clone(),
        };
        let store = match SqliteStore::open(&dir.path().join("test.db"), opts) {
            Ok(s) => s,
            Err(e) => return out.broken(format!("temporary store: {e}")),
        };
        let hub = match Hub::new(self.config.clone(), self.secrets.clone(), store.ports()) {
            Ok(h) => h,
            Err(e) => return out.broken(e),
        };
        let started = self.clock.now_ms();
        let mut run_ids = Vec::new();
        match deliver::all(&hub, case, &mut run_ids).await {
            Ok((payload, last)) => {
                out.payload = payload;
                out.ingest = last;
            }
            Err(e) => return out.broken(e),
        }
        if let Err(e) = self.drive(&hub).await {
            out.error = Some(e);
        }
        for id in &run_ids {
            if let Ok(Some(r)) = hub.ports.runs.get(id).await {
                out.runs.push(r);
            }
        }
        out.dead_letters = hub.ports.queue.dead_letters(1000).await.unwrap_or_default();
        out.received = self.mock.received();
        out.unmocked = self.mock.unmocked();
        out.over_limit = self.mock.over_limit();
        out.virtual_elapsed = Duration::from_millis((self.clock.now_ms() - started).max(0) as u64);
        // After the elapsed time is taken: the evaluator's minutes are not the runs'.
        if case.expect.alert.is_some() && hub.config.alerts.is_some() {
            match super::alerts::fired(&hub, &self.clock).await {
                Ok(sent) => out.alerts = Some(sent),
                Err(e) => out.error = Some(e),
            }
        }
        out
    }

    /// Receive, execute and settle every message the real worker would,
    /// one at a time; when none is due, jump to the earliest wait.
    async fn drive(&self, hub: &Hub) -> Result<(), String> {
        let queue = hub.ports.queue.as_ref();
        let limit = self.clock.now_ms() + crate::clock::millis(MAX_VIRTUAL);
        let mut due: Vec<Millis> = Vec::new();
        loop {
            let now = self.clock.now_ms();
            if now > limit {
                return Err(format!(
                    "the runs had not settled after {} of virtual time",
                    humantime::format_duration(MAX_VIRTUAL)
                ));
            }
            let messages = queue
                .receive(worker::BATCH, worker::VISIBILITY, Duration::ZERO)
                .await
                .map_err(|e| format!("test store: {e}"))?;
            if messages.is_empty() {
                due.retain(|t| *t > now);
                match due.iter().min() {
                    Some(next) => self.clock.advance_to(*next),
                    None => return Ok(()),
                }
                continue;
            }
            for msg in messages {
                let d = execute(hub, &msg).await;
                if let Disposition::RetryIn(w) | Disposition::Requeue(w) = &d {
                    due.push(crate::clock::after(self.clock.now_ms(), *w));
                }
                worker::settle(queue, &msg, d).await;
            }
        }
    }

    fn empty(&self, case: &Case) -> Outcome {
        Outcome {
            payload: case.event.payload.clone(),
            ingest: Reply {
                status: 0,
                body: Value::Null,
            },
            runs: Vec::new(),
            dead_letters: Vec::new(),
            received: Vec::new(),
            unmocked: Vec::new(),
            over_limit: Vec::new(),
            virtual_elapsed: Duration::ZERO,
            error: None,
            alerts: None,
        }
    }
}

impl Outcome {
    fn broken(mut self, why: String) -> Self {
        self.error = Some(why);
        self
    }
}
