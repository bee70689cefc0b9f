//! The hub under test: a config, the SQLite store in a temp dir, and the
//! queue drained in-process by the real executor.

use std::sync::Arc;
use std::time::Duration;

use ferry::clock::{Clock, ManualClock, SystemClock};
use ferry::execute::execute;
use ferry::hub::Hub;
use ferry::store::{SqliteOptions, SqliteStore};
use ferry::worker::{VISIBILITY, settle};

pub struct Env {
    pub hub: Arc<Hub>,
    _dir: tempfile::TempDir,
}

/// Load `yaml` with `API_URL` (and `B_URL`) set, on a fresh store with `clock`.
pub fn hub(yaml: &str, vars: &[(&str, &str)], clock: Option<Arc<ManualClock>>) -> Env {
    let env = |name: &str| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    };
    let loaded = ferry::config::load_str(yaml, &env).unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<dyn Clock> = match clock {
        Some(c) => c,
        None => Arc::new(SystemClock),
    };
    let store = SqliteStore::open(
        &dir.path().join("ferry.db"),
        SqliteOptions {
            max_receives: 5,
            clock,
        },
    )
    .unwrap();
    let hub = Hub::new(loaded.config, loaded.secrets, store.ports()).unwrap();
    Env { hub, _dir: dir }
}

/// Execute every queued run (the worker's loop, in-process, many at once) until the queue is empty.
pub async fn drain(hub: &Hub) -> usize {
    let mut done = 0;
    loop {
        let msgs = hub
            .ports
            .queue
            .receive(200, VISIBILITY, Duration::ZERO)
            .await
            .unwrap();
        if msgs.is_empty() {
            return done;
        }
        done += msgs.len();
        futures::future::join_all(msgs.iter().map(|m| async move {
            let d = execute(hub, m).await;
            settle(hub.ports.queue.as_ref(), m, d).await;
        }))
        .await;
    }
}
