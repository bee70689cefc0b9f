//! An in-process hub for the connector suites: a config on the embedded store
//! in a temporary folder and a virtual clock (a manual clock that also moves
//! by whatever a call waits for in-process: a short pause, a rate-limit
//! token), webhooks through ingest as `ferry dev` takes them, calls through
//! the one call path, and the queue driven by hand with the clock moved
//! between rounds — so no test waits out a backoff, a pause or a rate-limit
//! window in real time.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry::call::{Called, call};
use ferry::clock::{Clock, VirtualClock};
use ferry::config::{Loaded, Method, RequestSpec};
use ferry::execute::execute;
use ferry::hub::Hub;
use ferry::ingest::{Inbound, Reply};
use ferry::model::RunRecord;
use ferry::respond::Wire;
use ferry::retry::{Rules, Verdict};
use ferry::store::{SqliteOptions, SqliteStore};
use ferry::worker::{VISIBILITY, settle};

/// How long a loop that drives the queue may take in real time before the
/// test fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(60);

/// A hub, its clock and its store's folder.
pub struct Bench {
    pub hub: Arc<Hub>,
    pub clock: Arc<VirtualClock>,
    /// How far the clock moves after each round of [`Bench::step`] in the
    /// driving loops, in ms (100 unless set).
    pub tick: i64,
    /// Execute the messages of a round one at a time, in the order received,
    /// instead of all at once as workers in parallel would (for a test that
    /// needs one call's answer — a rate-limit header — before the next call).
    pub in_order: bool,
    _dir: tempfile::TempDir,
}

impl Bench {
    /// `yaml` with its `${env:…}` values from `vars`, on a fresh store,
    /// `clock` its time; a message goes to the dead letters after 5 receives.
    pub fn start(yaml: &str, vars: &[(&str, String)], clock: Arc<VirtualClock>) -> Bench {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        let loaded = ferry::config::load_str(yaml, &|n: &str| vars.get(n).cloned())
            .unwrap_or_else(|e| panic!("{e}"));
        Bench::on(loaded, clock, 5)
    }

    /// The recipe `examples/recipes/<slug>.yaml` with its `<slug>.env`,
    /// `overrides` winning (the fakes' URLs); a recipe loads without warnings.
    pub fn recipe(slug: &str, overrides: &[(&str, String)], clock: Arc<VirtualClock>) -> Bench {
        let dir = crate::repo_root().join("examples/recipes");
        let mut vars = env_file(&dir.join(format!("{slug}.env")));
        for (k, v) in overrides {
            vars.insert((*k).to_owned(), v.clone());
        }
        let path = dir.join(format!("{slug}.yaml"));
        let loaded = ferry::config::load_file(&path, &|n: &str| vars.get(n).cloned())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        Bench::on(loaded, clock, 5)
    }

    /// A loaded config on a fresh store with `max_receives`.
    pub fn on(loaded: Loaded, clock: Arc<VirtualClock>, max_receives: u32) -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(
            dir.path(),
            SqliteOptions {
                max_receives,
                clock: clock.clone() as Arc<dyn Clock>,
            },
        )
        .unwrap();
        let hub = Hub::new(loaded.config, loaded.secrets, store.ports()).unwrap();
        Bench {
            hub,
            clock,
            tick: 100,
            in_order: false,
            _dir: dir,
        }
    }

    /// Now, on the hub's clock, in seconds.
    pub fn now_secs(&self) -> i64 {
        self.clock.now_ms() / 1000
    }

    /// The clock as a function, for the fakes' buckets.
    pub fn now_fn(&self) -> Arc<dyn Fn() -> i64 + Send + Sync> {
        let clock = self.clock.clone();
        Arc::new(move || clock.now_ms())
    }

    /// POST `body` to `/hooks/<source>` with `headers` (JSON unless they name
    /// a `content-type`): ingest's answer.
    pub async fn post<K, V>(&self, source: &str, headers: &[(K, V)], body: &[u8]) -> Reply
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        ferry::ingest::ingest(&self.hub, inbound(source, headers, body)).await
    }

    /// [`Bench::post`], answered as the front ends answer the sender (a
    /// source's `respond` applied).
    pub async fn post_wire<K, V>(&self, source: &str, headers: &[(K, V)], body: &[u8]) -> Wire
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        ferry::respond::serve(&self.hub, inbound(source, headers, body)).await
    }

    /// One call on connection `name` as a step without its own `classify`,
    /// with Idempotency-Key `key`.
    pub async fn call(&self, name: &str, spec: RequestSpec, key: &str) -> Called {
        let conn = self.hub.connection(name).unwrap();
        let ctx = ferry::template::context(&serde_json::json!({}));
        let req = ferry::outbound::prepare(&self.hub.templates, conn, &spec, &ctx).unwrap();
        let rules = Rules {
            step: None,
            connection: Some(&conn.classify),
        };
        call(&self.hub, name, conn, &req, key, rules, None).await
    }

    /// When the shared pause on connection `name` ends (0: never paused).
    pub async fn paused_until(&self, name: &str) -> i64 {
        let key = ferry::keys::connection(name);
        self.hub.ports.limits.paused_until(&key).await.unwrap()
    }

    /// Receive and execute what is due now; how many messages there were.
    pub async fn step(&self) -> usize {
        if !self.in_order {
            return crate::drive::step(&self.hub).await;
        }
        let got = self
            .hub
            .ports
            .queue
            .receive(100, VISIBILITY, Duration::ZERO)
            .await
            .unwrap();
        let n = got.len();
        for msg in got {
            let d = execute(&self.hub, &msg).await;
            settle(self.hub.ports.queue.as_ref(), &msg, d).await;
        }
        n
    }

    /// Run the queue, moving the clock [`Bench::tick`] after each round
    /// (every round, not only idle ones: a run held back by a rate-limit
    /// token or a pause is due again at once until time passes), until
    /// `done` holds; panics after a minute of real time.
    pub async fn until<F, Fut>(&self, what: &str, mut done: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let started = Instant::now();
        while !done().await {
            assert!(started.elapsed() < PATIENCE, "timed out waiting for {what}");
            self.step().await;
            self.clock.advance(self.tick);
        }
    }

    /// Run the queue until run `id` is final; the run.
    pub async fn drive(&self, id: &str) -> RunRecord {
        self.drive_all(&[id]).await.remove(0)
    }

    /// Run the queue, moving the clock as [`Bench::until`] does, until every
    /// run in `ids` is final; the runs.
    pub async fn drive_all(&self, ids: &[&str]) -> Vec<RunRecord> {
        let started = Instant::now();
        loop {
            let mut runs = Vec::new();
            for id in ids {
                match self.run(id).await {
                    Some(r) if r.status.is_final() => runs.push(r),
                    _ => break,
                }
            }
            if runs.len() == ids.len() {
                return runs;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "timed out waiting for runs {ids:?} to finish"
            );
            self.step().await;
            self.clock.advance(self.tick);
        }
    }

    /// Run the queue until nothing was due for `idle` rounds in a row.
    pub async fn drain(&self, idle: u32) {
        let mut quiet = 0;
        let started = Instant::now();
        while quiet < idle {
            assert!(started.elapsed() < PATIENCE, "the queue never drained");
            if self.step().await == 0 {
                quiet += 1;
            } else {
                quiet = 0;
            }
            self.clock.advance(self.tick);
        }
    }

    /// Run `id` as stored now.
    pub async fn run(&self, id: &str) -> Option<RunRecord> {
        self.hub.ports.runs.get(id).await.unwrap()
    }
}

/// A `POST /hooks/<source>` carrying `body` and `headers` as `ferry dev`
/// hands it to ingest (`content-type: application/json` unless given).
pub fn inbound<K: AsRef<str>, V: AsRef<str>>(
    source: &str,
    headers: &[(K, V)],
    body: &[u8],
) -> Inbound {
    let mut map = http::HeaderMap::new();
    for (k, v) in headers {
        map.append(
            http::HeaderName::from_bytes(k.as_ref().as_bytes()).unwrap(),
            v.as_ref().parse().unwrap(),
        );
    }
    if !map.contains_key(http::header::CONTENT_TYPE) {
        map.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
    }
    Inbound {
        method: http::Method::POST,
        source: source.to_owned(),
        headers: map,
        query: None,
        body: bytes::Bytes::copy_from_slice(body),
    }
}

/// A request on a connection, without query, headers or body.
pub fn request(method: Method, path: &str) -> RequestSpec {
    RequestSpec {
        method,
        path: path.into(),
        query: Default::default(),
        headers: Default::default(),
        json: None,
        form: None,
    }
}

/// The last try's verdict and status.
pub fn last(called: &Called) -> (Verdict, Option<u16>) {
    match called {
        Called::Done(tries) => {
            let t = tries.last().unwrap();
            (t.verdict.clone(), t.attempt.status_code)
        }
        other => panic!("no call was made: {other:?}"),
    }
}

/// The run id of an accepted event's first workflow.
pub fn run_id(body: &serde_json::Value) -> String {
    body["run_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no run id in {body}"))
        .to_owned()
}

/// The text of `examples/recipes/<file>`.
pub fn recipe_text(file: &str) -> String {
    let path = crate::repo_root().join("examples/recipes").join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
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
