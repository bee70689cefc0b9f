//! Cold start for the Lambda functions: load and validate the config once,
//! open the storage backend once (SDK clients included), build the hub once.
//! A broken config fails here, at init, with a clear log line — not on the
//! first event.
//!
//! - `FERRY_CONFIG`: path of the config file (default `ferry.yaml`, bundled
//!   next to the function's binary).
//! - `FERRY_STORE`: the backend: `aws` (DynamoDB + SQS), or `sqlite:<path>`
//!   (the embedded store; the default is `sqlite:/tmp/ferry/ferry.db`).
//! - With `aws`: `FERRY_TABLE` (the DynamoDB table), `FERRY_QUEUE_URL` (the
//!   work queue), `FERRY_DLQ_URL` (its dead-letter queue). Region and
//!   credentials come from the usual AWS environment (the Lambda runtime sets
//!   them); `AWS_ENDPOINT_URL` points every client at an emulator.

use std::path::PathBuf;
use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::hub::Hub;
use crate::ports::Ports;
use crate::store::{AwsNames, AwsStore, SqliteOptions, SqliteStore};

/// Receives before the embedded queue dead-letters a message.
pub const MAX_RECEIVES: u32 = 100;

/// Build the hub from the process environment.
pub async fn hub_from_env() -> Result<Arc<Hub>, String> {
    hub_from(&|name| std::env::var(name).ok()).await
}

/// Build the hub from the variables `env` answers (see the module docs).
pub async fn hub_from(env: &(dyn Fn(&str) -> Option<String> + Sync)) -> Result<Arc<Hub>, String> {
    let path = PathBuf::from(env("FERRY_CONFIG").unwrap_or_else(|| "ferry.yaml".into()));
    let loaded = crate::config::load_file(&path, &env).map_err(|e| e.to_string())?;
    for w in &loaded.warnings {
        tracing::warn!(warning = %w, "config warning");
    }
    let ports = ports_from(env).await?;
    Hub::new(loaded.config, loaded.secrets, ports)
}

/// Open the storage backend `FERRY_STORE` names.
pub async fn ports_from(env: &(dyn Fn(&str) -> Option<String> + Sync)) -> Result<Ports, String> {
    let store = env("FERRY_STORE").unwrap_or_else(|| "sqlite:/tmp/ferry/ferry.db".into());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match store.split_once(':') {
        Some(("sqlite", file)) => {
            let file = PathBuf::from(file);
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("FERRY_STORE: creating {}: {e}", dir.display()))?;
            }
            Ok(SqliteStore::open(
                &file,
                SqliteOptions {
                    max_receives: MAX_RECEIVES,
                    clock,
                },
            )
            .map_err(|e| format!("FERRY_STORE {store}: {e}"))?
            .ports())
        }
        None if store == "aws" => {
            let names = aws_names(env)?;
            let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
            if let Some(endpoint) = env("AWS_ENDPOINT_URL").filter(|e| !e.is_empty()) {
                loader = loader.endpoint_url(endpoint);
            }
            let config = loader.load().await;
            if config.region().is_none() {
                return Err("FERRY_STORE=aws: no AWS region (set AWS_REGION)".into());
            }
            tracing::info!(table = %names.table, queue = %names.queue_url, "store: DynamoDB + SQS");
            Ok(AwsStore::new(&config, names, clock).ports())
        }
        _ => Err(format!(
            "FERRY_STORE={store:?}: expected `aws` or `sqlite:<path>`"
        )),
    }
}

/// `FERRY_TABLE`, `FERRY_QUEUE_URL`, `FERRY_DLQ_URL`; every missing one named.
fn aws_names(env: &(dyn Fn(&str) -> Option<String> + Sync)) -> Result<AwsNames, String> {
    let mut missing = Vec::new();
    let mut get = |name: &'static str, url: bool| {
        let value = env(name).map(|v| v.trim().to_owned()).unwrap_or_default();
        if value.is_empty() {
            missing.push(format!("{name} is not set"));
        } else if url && !value.starts_with("http") {
            missing.push(format!("{name}={value:?} is not a queue URL"));
        }
        value
    };
    let names = AwsNames {
        table: get("FERRY_TABLE", false),
        queue_url: get("FERRY_QUEUE_URL", true),
        dlq_url: get("FERRY_DLQ_URL", true),
    };
    if missing.is_empty() {
        Ok(names)
    } else {
        Err(format!("FERRY_STORE=aws: {}", missing.join("; ")))
    }
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + Sync + use<> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    #[tokio::test]
    async fn aws_store_names_every_missing_variable_at_once() {
        let err = ports_from(&env(&[("FERRY_STORE", "aws"), ("FERRY_QUEUE_URL", "work")]))
            .await
            .err()
            .unwrap();
        assert_eq!(
            err,
            "FERRY_STORE=aws: FERRY_TABLE is not set; FERRY_QUEUE_URL=\"work\" is not a queue URL; \
             FERRY_DLQ_URL is not set"
        );
    }

    #[tokio::test]
    async fn unknown_store_is_refused() {
        let err = ports_from(&env(&[("FERRY_STORE", "redis:x")]))
            .await
            .err()
            .unwrap();
        assert!(err.contains("expected `aws` or `sqlite:<path>`"), "{err}");
    }
}
