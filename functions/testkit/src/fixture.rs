//! A hub on the events config, the embedded store and a fixed clock.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferry::clock::{Clock, ManualClock};
use ferry::config::{Loaded, load_file};
use ferry::hub::Hub;
use ferry::ports::Ports;
use ferry::store::{SqliteOptions, SqliteStore};

use crate::SIGNED_AT_MS;
use crate::target::Target;

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// `events/`.
pub fn events_dir() -> PathBuf {
    repo_root().join("events")
}

/// `events/ferry.env`: the secrets the events are signed with, and URLs.
pub fn env_file() -> BTreeMap<String, String> {
    crate::bench::env_file(&events_dir().join("ferry.env"))
}

/// `events/ferry.yaml` loaded with `events/ferry.env`, `overrides` winning.
pub fn events_config(overrides: &[(&str, String)]) -> Loaded {
    let mut env = env_file();
    for (k, v) in overrides {
        env.insert((*k).to_owned(), v.clone());
    }
    let lookup = move |name: &str| env.get(name).cloned();
    load_file(&events_dir().join("ferry.yaml"), &lookup)
        .unwrap_or_else(|e| panic!("events/ferry.yaml does not load:\n{e}"))
}

/// A hub as a function builds it at cold start, but on the events config, a
/// store in a temporary folder, and a clock that only moves when told.
pub struct Fixture {
    /// The hub the handlers get.
    pub hub: Arc<Hub>,
    /// Its clock, at [`SIGNED_AT_MS`].
    pub clock: Arc<ManualClock>,
    /// The store's folder (removed on drop).
    pub dir: tempfile::TempDir,
}

/// Receives before the fixture's queue dead-letters a message.
pub const MAX_RECEIVES: u32 = 3;

impl Fixture {
    /// Connections pointing at `target` (`/crm`, `/chat`, `/audit`).
    pub fn new(target: &Target) -> Fixture {
        let url = target.url();
        Fixture::with_env(&[
            ("CRM_URL", format!("{url}/crm")),
            ("CHAT_URL", format!("{url}/chat")),
            ("AUDIT_URL", format!("{url}/audit")),
        ])
    }

    /// The events config with `overrides` of `events/ferry.env`.
    pub fn with_env(overrides: &[(&str, String)]) -> Fixture {
        let loaded = events_config(overrides);
        let dir = tempfile::tempdir().expect("a temporary folder");
        let clock = ManualClock::at(SIGNED_AT_MS);
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let store = SqliteStore::open(
            &dir.path().join("ferry.db"),
            SqliteOptions {
                max_receives: MAX_RECEIVES,
                clock: dyn_clock,
            },
        )
        .expect("the embedded store opens");
        let hub = Hub::new(loaded.config, loaded.secrets, store.ports()).expect("the hub builds");
        Fixture { hub, clock, dir }
    }

    /// The hub's ports.
    pub fn ports(&self) -> &Ports {
        &self.hub.ports
    }
}
