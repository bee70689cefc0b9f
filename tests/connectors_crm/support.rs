//! An in-process hub on the embedded store and a virtual clock (a manual
//! clock that also moves by whatever a run waits for in-process, such as a
//! rate-limit token): webhooks are ingested as `ferry dev` would, the queue
//! is driven by hand and the clock moved between rounds — so no test waits
//! out a backoff, a pause or a rate-limit window in real time.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use ferry::clock::VirtualClock;
use ferry::hub::Hub;
use ferry::ingest::{Inbound, Reply, ingest};
use ferry::model::RunRecord;
use ferry::store::{SqliteOptions, SqliteStore};
use hmac::{KeyInit, Mac};

/// When the manual clock starts: 2026-11-30T00:00:00Z.
pub const T0: i64 = 1_795_996_800_000;

pub struct Bench {
    pub hub: Arc<Hub>,
    pub clock: Arc<VirtualClock>,
    _dir: tempfile::TempDir,
}

impl Bench {
    /// A hub for `yaml` with the `${env:…}` values in `vars`, on a fresh store at [`T0`].
    pub fn start(yaml: &str, vars: &[(&str, String)]) -> Bench {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        let env = move |name: &str| vars.get(name).cloned();
        let loaded = ferry::config::load_str(yaml, &env).unwrap_or_else(|e| panic!("{e}"));
        let dir = tempfile::tempdir().unwrap();
        let clock = VirtualClock::at(T0);
        let store = SqliteStore::open(
            dir.path(),
            SqliteOptions {
                max_receives: 50,
                clock: clock.clone(),
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

    /// POST `body` with `headers` to `/hooks/<source>`.
    pub async fn post(&self, source: &str, headers: &[(String, String)], body: &[u8]) -> Reply {
        let mut map = http::HeaderMap::new();
        for (k, v) in headers {
            map.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map.insert("content-type", "application/json".parse().unwrap());
        ingest(
            &self.hub,
            Inbound {
                method: http::Method::POST,
                source: source.into(),
                headers: map,
                query: None,
                body: bytes::Bytes::from(body.to_vec()),
            },
        )
        .await
    }

    /// Receive and execute what is due now; how many messages there were.
    pub async fn step(&self) -> usize {
        ferry_testkit::drive::step(&self.hub).await
    }

    /// Run the queue, moving the clock `tick` ms after each round, until
    /// `done` holds; panics after 60 s of real time.
    pub async fn until<F, Fut>(&self, what: &str, tick: i64, mut done: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let started = Instant::now();
        while !done().await {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "timed out waiting for {what}"
            );
            // The clock moves after every round, not only idle ones: a run
            // held back (a rate-limit token, a pause) comes back due at once
            // until time passes.
            self.step().await;
            self.clock.advance(tick);
        }
    }

    /// Run the queue until run `id` is final; the run.
    pub async fn drive(&self, id: &str) -> RunRecord {
        self.until(&format!("run {id} to finish"), 500, || async {
            self.run(id).await.is_some_and(|r| r.status.is_final())
        })
        .await;
        self.run(id).await.unwrap()
    }

    /// Run the queue, moving the clock 500 ms after each round, until
    /// nothing was due for `idle` rounds in a row.
    pub async fn drain(&self, idle: u32) {
        let mut quiet = 0;
        let started = Instant::now();
        while quiet < idle {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "queue never drained"
            );
            if self.step().await == 0 {
                quiet += 1;
            } else {
                quiet = 0;
            }
            self.clock.advance(500);
        }
    }

    pub async fn run(&self, id: &str) -> Option<RunRecord> {
        self.hub.ports.runs.get(id).await.unwrap()
    }
}

/// A recipe's YAML from `examples/recipes/`.
pub fn recipe(slug: &str) -> String {
    let path = format!(
        "{}/../examples/recipes/{slug}.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The `${env:…}` names a recipe's `.env` file lists, with its values.
pub fn recipe_env(slug: &str) -> Vec<(String, String)> {
    let path = format!(
        "{}/../examples/recipes/{slug}.env",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// HMAC-SHA256 of `parts` with `secret` — computed here, independently of ferry.
pub fn hmac(secret: &str, parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().to_vec()
}

/// The headers HubSpot sends with a v3-signed webhook to `uri` at `ts_ms`.
pub fn hubspot_signed(secret: &str, uri: &str, body: &[u8], ts_ms: i64) -> Vec<(String, String)> {
    let ts = ts_ms.to_string();
    let sig = hmac(secret, &[b"POST", uri.as_bytes(), body, ts.as_bytes()]);
    vec![
        (
            "x-hubspot-signature-v3".into(),
            base64::engine::general_purpose::STANDARD.encode(sig),
        ),
        ("x-hubspot-request-timestamp".into(), ts),
    ]
}

/// The website form's signature: hex HMAC-SHA256 of the body in `X-Signature`.
pub fn form_signed(secret: &str, body: &[u8]) -> Vec<(String, String)> {
    vec![("x-signature".into(), hex::encode(hmac(secret, &[body])))]
}

/// The errors of every attempt of `run`, joined.
pub fn errors(run: &RunRecord) -> String {
    let mut out: Vec<String> = run.error.iter().cloned().collect();
    for s in &run.steps {
        out.extend(s.attempts.iter().filter_map(|a| a.error.clone()));
    }
    out.join("\n")
}
