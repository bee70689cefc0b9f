//! Cold start for the Lambda functions: load and validate the config once,
//! open the storage backend once, build the hub once. A broken config fails
//! here, at init, with a clear log line — not on the first event.
//!
//! - `FERRY_CONFIG`: path of the config file (default `ferry.yaml`, bundled
//!   next to the function's binary).
//! - `FERRY_STORE`: the backend, `sqlite:<path>` (the embedded store).

use std::path::PathBuf;
use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::hub::Hub;
use crate::store::{SqliteOptions, SqliteStore};

/// Receives before the embedded queue dead-letters a message.
pub const MAX_RECEIVES: u32 = 100;

/// Build the hub from the environment.
pub fn hub_from_env() -> Result<Arc<Hub>, String> {
    let path = PathBuf::from(std::env::var("FERRY_CONFIG").unwrap_or_else(|_| "ferry.yaml".into()));
    let env = |name: &str| std::env::var(name).ok();
    let loaded = crate::config::load_file(&path, &env).map_err(|e| e.to_string())?;
    for w in &loaded.warnings {
        tracing::warn!(warning = %w, "config warning");
    }
    let store =
        std::env::var("FERRY_STORE").unwrap_or_else(|_| "sqlite:/tmp/ferry/ferry.db".into());
    let ports = match store.split_once(':') {
        Some(("sqlite", file)) => {
            let file = PathBuf::from(file);
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("FERRY_STORE: creating {}: {e}", dir.display()))?;
            }
            let clock: Arc<dyn Clock> = Arc::new(SystemClock);
            SqliteStore::open(
                &file,
                SqliteOptions {
                    max_receives: MAX_RECEIVES,
                    clock,
                },
            )
            .map_err(|e| format!("FERRY_STORE {store}: {e}"))?
            .ports()
        }
        _ => return Err(format!("FERRY_STORE={store:?}: expected sqlite:<path>")),
    };
    Hub::new(loaded.config, loaded.secrets, ports)
}

/// Structured JSON logs for Lambda (CloudWatch), level from `FERRY_LOG` (default info).
pub fn init_json_logs() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("FERRY_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .without_time()
        .with_target(false)
        .try_init();
}
