//! Cold start for the Lambda functions: load and validate the config once,
//! open the storage backend once, build the hub once. A broken config fails
//! here, at init, with a clear log line — not on the first event.
//!
//! - `FERRY_CONFIG`: path of the config file (default `ferry.yaml`). A
//!   relative path is resolved against `LAMBDA_TASK_ROOT` (the function's
//!   directory, `/var/task`) when that is set: a file bundled next to the
//!   binary. `template.yaml` ships the config in a layer, `/opt/ferry.yaml`
//!   (see `docs/deploy.md`).
//! - `FERRY_STORE`: the backend, `sqlite:<path>` (the embedded store). Required
//!   under a Lambda runtime (`AWS_LAMBDA_RUNTIME_API` set): a default store in
//!   the sandbox's `/tmp` would not be shared with the other functions.
//! - `FERRY_LOG`: the log filter (default `info`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::clock::{Clock, SystemClock};
use crate::hub::Hub;
use crate::store::{SqliteOptions, SqliteStore};

/// Receives before the embedded queue dead-letters a message.
pub const MAX_RECEIVES: u32 = 100;

/// Build the hub from the environment.
pub fn hub_from_env() -> Result<Arc<Hub>, String> {
    let env = |name: &str| std::env::var(name).ok();
    let path = config_path(&env);
    let loaded = crate::config::load_file(&path, &env).map_err(|e| e.to_string())?;
    for w in &loaded.warnings {
        tracing::warn!(warning = %w, "config warning");
    }
    let store = match std::env::var("FERRY_STORE") {
        Ok(store) => store,
        // In a Lambda sandbox a default /tmp store would be this sandbox's
        // alone, and lost with it: accepted work would never run.
        Err(_) if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() => {
            return Err("FERRY_STORE is not set; a function needs the shared store (template.yaml sets FERRY_STORE=aws)".into());
        }
        Err(_) => "sqlite:/tmp/ferry/ferry.db".into(),
    };
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

/// The config file `FERRY_CONFIG` names (default `ferry.yaml`); relative
/// paths are taken from `LAMBDA_TASK_ROOT` when it is set.
pub fn config_path(env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    let named = PathBuf::from(env("FERRY_CONFIG").unwrap_or_else(|| "ferry.yaml".into()));
    match env("LAMBDA_TASK_ROOT") {
        Some(root) if named.is_relative() => Path::new(&root).join(named),
        _ => named,
    }
}

/// A Lambda function's cold start: JSON logs, then the hub from the
/// environment. On failure it logs one JSON line — every config problem,
/// with its line and path — and exits, so Lambda reports the init error
/// instead of the first event failing.
pub fn start_or_exit(function: &str) -> Arc<Hub> {
    let started = Instant::now();
    init_json_logs();
    match hub_from_env() {
        Ok(hub) => {
            tracing::info!(
                function,
                init_us = started.elapsed().as_micros() as u64,
                "ready"
            );
            hub
        }
        Err(error) => {
            tracing::error!(function, error = %error, "cannot start: the config or FERRY_STORE is broken");
            std::process::exit(1)
        }
    }
}

/// Structured JSON logs for Lambda (CloudWatch adds the time), level from
/// `FERRY_LOG` (default info). One object per line: the event's fields at
/// the top level, the innermost span under `span` and all of them under
/// `spans` (request id, run id, event id, …).
pub fn init_json_logs() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("FERRY_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(true)
        .without_time()
        .with_target(false)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn config_path_defaults_to_ferry_yaml_in_the_function_directory() {
        assert_eq!(config_path(&env(&[])), PathBuf::from("ferry.yaml"));
        assert_eq!(
            config_path(&env(&[("LAMBDA_TASK_ROOT", "/var/task")])),
            PathBuf::from("/var/task/ferry.yaml")
        );
        assert_eq!(
            config_path(&env(&[
                ("LAMBDA_TASK_ROOT", "/var/task"),
                ("FERRY_CONFIG", "deploy/config/ferry.yaml")
            ])),
            PathBuf::from("/var/task/deploy/config/ferry.yaml")
        );
        assert_eq!(
            config_path(&env(&[
                ("LAMBDA_TASK_ROOT", "/var/task"),
                ("FERRY_CONFIG", "/opt/ferry.yaml")
            ])),
            PathBuf::from("/opt/ferry.yaml")
        );
    }
}
