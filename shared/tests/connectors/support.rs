//! A hub on a manual clock and a scriptable target, and one call through
//! the call path.

use std::sync::Arc;

use ferry::call::{Called, call};
use ferry::clock::{Clock, ManualClock};
use ferry::config::RequestSpec;
use ferry::hub::Hub;
use ferry::ports::Ports;
use ferry::retry::Rules;
use ferry::store::{SqliteOptions, SqliteStore};
pub use ferry_testkit::bench::last;
use ferry_testkit::target::Target;
use serde_json::json;

/// Where the manual clock starts.
pub const NOW: i64 = 1_700_000_000_000;

pub struct Env {
    pub hub: Arc<Hub>,
    /// Another instance on the same store (its own in-process token cache).
    pub second: Arc<Hub>,
    pub clock: Arc<ManualClock>,
    pub target: Target,
    _dir: tempfile::TempDir,
}

impl Env {
    /// `yaml` loaded with `API_URL` (the target) and `TOKEN` set, on a fresh store at [`NOW`].
    pub async fn start(yaml: &str) -> Env {
        Self::start_on(yaml, |p| p).await
    }

    /// [`Env::start`] with the store's ports passed through `wrap` (a store
    /// that fails on purpose, say).
    pub async fn start_on(yaml: &str, wrap: impl FnOnce(Ports) -> Ports) -> Env {
        let target = Target::start().await;
        let url = target.url();
        let vars = |name: &str| match name {
            "API_URL" => Some(url.clone()),
            "TOKEN" => Some("xoxb-test-token".to_owned()),
            _ => None,
        };
        let loaded = ferry::config::load_str(yaml, &vars).unwrap_or_else(|e| panic!("{e}"));
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::at(NOW);
        let store = SqliteStore::open(
            &dir.path().join("ferry.db"),
            SqliteOptions {
                max_receives: 5,
                clock: clock.clone() as Arc<dyn Clock>,
            },
        )
        .unwrap();
        let ports = wrap(store.ports());
        let hub = Hub::new(loaded.config.clone(), loaded.secrets.clone(), ports.clone()).unwrap();
        Env {
            hub,
            second: Hub::new(loaded.config, loaded.secrets, ports).unwrap(),
            clock,
            target,
            _dir: dir,
        }
    }
}

/// One `POST /call` on connection `name`, as a step without its own `classify`.
pub async fn post(env: &Env, name: &str) -> Called {
    post_on(&env.hub, name).await
}

/// One `POST /call` on connection `name` of `hub`.
pub async fn post_on(hub: &Hub, name: &str) -> Called {
    let conn = hub.connection(name).unwrap();
    let spec = RequestSpec {
        method: ferry::config::Method::Post,
        path: "/call".into(),
        query: Default::default(),
        headers: Default::default(),
        json: Some(json!({"text": "hi"})),
        form: None,
    };
    let ctx = ferry::template::context(&json!({}));
    let req = ferry::outbound::prepare(&hub.templates, conn, &spec, &ctx).unwrap();
    let rules = Rules {
        step: None,
        connection: Some(&conn.classify),
    };
    call(hub, name, conn, &req, "key-1", rules, None).await
}

/// When the shared pause on connection `name` ends (0: never paused).
pub async fn paused_until(env: &Env, name: &str) -> i64 {
    let key = ferry::keys::connection(name);
    env.hub.ports.limits.paused_until(&key).await.unwrap()
}
