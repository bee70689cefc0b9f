//! A hub on a virtual clock (a manual clock that also moves by whatever a
//! call waits for in-process: a short pause, a rate-limit token — on a
//! plain manual clock such a wait never ends) and a fresh store; calls on
//! a connection through the call path; webhooks through ingest; the queue
//! driven by hand.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry::call::{Called, call};
use ferry::clock::{Clock, VirtualClock};
use ferry::config::{Method, RequestSpec};
use ferry::model::RunRecord;
use ferry::retry::{Rules, Verdict};
use ferry::store::{SqliteOptions, SqliteStore};
use serde_json::Value;

/// Where the manual clock starts (2027-01-15T08:00:00Z).
pub const T0: i64 = 1_800_000_000_000;

/// A hub and its clock.
pub struct Bench {
    pub hub: Arc<ferry::hub::Hub>,
    pub clock: Arc<VirtualClock>,
    _dir: tempfile::TempDir,
}

/// What ingest answered.
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Bench {
    /// `yaml` loaded with `vars` as the environment, on a fresh store at [`T0`].
    pub fn start(yaml: &str, vars: &[(&str, String)]) -> Bench {
        Bench::start_on(yaml, vars, VirtualClock::at(T0))
    }

    /// [`Bench::start`] on `clock`.
    pub fn start_on(yaml: &str, vars: &[(&str, String)], clock: Arc<VirtualClock>) -> Bench {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        let env = move |name: &str| vars.get(name).cloned();
        let loaded = ferry::config::load_str(yaml, &env).unwrap_or_else(|e| panic!("{e}"));
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(
            dir.path(),
            SqliteOptions {
                max_receives: 5,
                clock: clock.clone() as Arc<dyn Clock>,
            },
        )
        .unwrap();
        let hub = ferry::hub::Hub::new(loaded.config, loaded.secrets, store.ports()).unwrap();
        Bench {
            hub,
            clock,
            _dir: dir,
        }
    }

    /// The clock as a function, for the fakes' buckets.
    pub fn now_fn(&self) -> Arc<dyn Fn() -> i64 + Send + Sync> {
        let clock = self.clock.clone();
        Arc::new(move || clock.now_ms())
    }

    /// One call on connection `name` as a step without its own `classify`.
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

    /// POST `body` to `/hooks/<source>` with `headers`.
    pub async fn webhook(&self, source: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let mut map = http::HeaderMap::new();
        map.insert("content-type", "application/json".parse().unwrap());
        for (k, v) in headers {
            map.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let reply = ferry::ingest::ingest(
            &self.hub,
            ferry::ingest::Inbound {
                method: http::Method::POST,
                source: source.into(),
                headers: map,
                query: None,
                body: bytes::Bytes::copy_from_slice(body),
            },
        )
        .await;
        Reply {
            status: reply.status,
            body: reply.body,
        }
    }

    /// Receive and execute what is due now; how many messages there were.
    pub async fn step(&self) -> usize {
        ferry_testkit::drive::step(&self.hub).await
    }

    /// Run the queue, moving the clock 100 ms whenever nothing is due, until
    /// every run in `ids` is final (panics after 60 s of real time); the runs.
    pub async fn drive(&self, ids: &[&str]) -> Vec<RunRecord> {
        let started = Instant::now();
        loop {
            let mut runs = Vec::new();
            for id in ids {
                match self.hub.ports.runs.get(id).await.unwrap() {
                    Some(r) if r.status.is_final() => runs.push(r),
                    _ => break,
                }
            }
            if runs.len() == ids.len() {
                return runs;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "timed out waiting for runs {ids:?}"
            );
            if self.step().await == 0 {
                self.clock.advance(100);
            }
        }
    }
}

/// A request on a connection.
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
        other => panic!("expected a call, got {other:?}"),
    }
}

/// A recipe's text (`examples/recipes/<name>`).
pub fn recipe(name: &str) -> String {
    let path = ferry_testkit::repo_root()
        .join("examples/recipes")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
