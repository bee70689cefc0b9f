//! Cold start for the Lambda functions: load and validate the config once,
//! open the storage backend once (SDK clients included), build the hub once.
//! A broken config fails here, at init, with a clear log line — not on the
//! first event.
//!
//! - `FERRY_CONFIG`: path of the config file (default `ferry.yaml`). A
//!   relative path is resolved against `LAMBDA_TASK_ROOT` (the function's
//!   directory, `/var/task`) when that is set: a file bundled next to the
//!   binary. `template.yaml` ships the config in a layer, `/opt/ferry.yaml`
//!   (see `docs/deploy.md`).
//! - `FERRY_STORE`: the backend: `aws` (DynamoDB + SQS), or `sqlite:<path>`
//!   (the embedded store; the default is `sqlite:/tmp/ferry/ferry.db`).
//!   Required under a Lambda runtime (`AWS_LAMBDA_RUNTIME_API` set): a default
//!   store in the sandbox's `/tmp` would not be shared with the other functions.
//! - With `aws`: `FERRY_TABLE` (the DynamoDB table), `FERRY_QUEUE_URL` (the
//!   work queue), `FERRY_DLQ_URL` (its dead-letter queue). Region and
//!   credentials come from the usual AWS environment (the Lambda runtime sets
//!   them); `AWS_ENDPOINT_URL` points every client at an emulator.
//!   [`TOKEN_KMS_KEY`] (`FERRY_TOKEN_KMS_KEY`), when set, seals the OAuth 2.0
//!   token cache with data keys from that KMS key (see
//!   [`token_envelope`](crate::token_envelope)).
//! - `FERRY_LOG`: the log filter (default `info`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::clock::{Clock, SystemClock};
use crate::hub::Hub;
use crate::ports::Ports;
use crate::store::{AwsNames, AwsStore, SqliteOptions, SqliteStore};

mod stack;
pub use stack::{STACK_OUTPUTS, aws_store_from_stack, stack_outputs};

/// Receives before the embedded queue dead-letters a message.
pub const MAX_RECEIVES: u32 = 100;

/// Build the hub from the process environment.
pub async fn hub_from_env() -> Result<Arc<Hub>, String> {
    hub_from(&|name| std::env::var(name).ok()).await
}

/// Build the hub from the variables `env` answers (see the module docs).
pub async fn hub_from(env: &(dyn Fn(&str) -> Option<String> + Sync)) -> Result<Arc<Hub>, String> {
    let path = config_path(&env);
    let loaded = crate::config::load_file(&path, &env).map_err(|e| e.to_string())?;
    for w in &loaded.warnings {
        tracing::warn!(warning = %w, "config warning");
    }
    let ports = ports_from(env).await?;
    Hub::new(loaded.config, loaded.secrets, ports)
}

/// Open the storage backend `FERRY_STORE` names.
pub async fn ports_from(env: &(dyn Fn(&str) -> Option<String> + Sync)) -> Result<Ports, String> {
    let store = match env("FERRY_STORE") {
        Some(store) => store,
        // In a Lambda sandbox a default /tmp store would be this sandbox's
        // alone, and lost with it: accepted work would never run.
        None if env("AWS_LAMBDA_RUNTIME_API").is_some() => {
            return Err("FERRY_STORE is not set; a function needs the shared store (template.yaml sets FERRY_STORE=aws)".into());
        }
        None => "sqlite:/tmp/ferry/ferry.db".into(),
    };
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
        None if store == "aws" => Ok(aws_store(env, clock)
            .await
            .map_err(|e| format!("FERRY_STORE=aws: {e}"))?
            .ports()),
        _ => Err(format!(
            "FERRY_STORE={store:?}: expected `aws` or `sqlite:<path>`"
        )),
    }
}

/// The AWS SDK config from the usual AWS environment that `env` answers
/// (region, credentials; `AWS_ENDPOINT_URL` points every client at an
/// emulator). An error when no region is set.
pub async fn aws_sdk_config(
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<aws_config::SdkConfig, String> {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(endpoint) = env("AWS_ENDPOINT_URL").filter(|e| !e.is_empty()) {
        loader = loader.endpoint_url(endpoint);
    }
    let config = loader.load().await;
    if config.region().is_none() {
        return Err("no AWS region (set AWS_REGION)".into());
    }
    Ok(config)
}

/// The AWS store `FERRY_TABLE`, `FERRY_QUEUE_URL` and `FERRY_DLQ_URL` name
/// (every missing one named in the error), on [`aws_sdk_config`].
pub async fn aws_store(
    env: &(dyn Fn(&str) -> Option<String> + Sync),
    clock: Arc<dyn Clock>,
) -> Result<Arc<AwsStore>, String> {
    let names = aws_names(env)?;
    let config = aws_sdk_config(env).await?;
    tracing::info!(table = %names.table, queue = %names.queue_url, "store: DynamoDB + SQS");
    Ok(with_token_key(
        env,
        &config,
        AwsStore::new(&config, names, clock.clone()),
        clock,
    ))
}

/// The variable naming the KMS key (key id, key ARN, alias name or alias
/// ARN) the token cache's data keys come from; unset or empty: keys derived
/// from each connection's secrets.
pub const TOKEN_KMS_KEY: &str = "FERRY_TOKEN_KMS_KEY";

/// `store`, with data keys from the KMS key [`TOKEN_KMS_KEY`] names, if set.
fn with_token_key(
    env: &(dyn Fn(&str) -> Option<String> + Sync),
    config: &aws_config::SdkConfig,
    store: Arc<AwsStore>,
    clock: Arc<dyn Clock>,
) -> Arc<AwsStore> {
    let Some(key) = env(TOKEN_KMS_KEY).filter(|k| !k.trim().is_empty()) else {
        return store;
    };
    tracing::info!(key = %key, "token cache: KMS envelope encryption");
    let keys = crate::store::aws::kms::KmsDataKeys::new(config, key.trim(), clock);
    store.with_data_keys(Arc::new(keys))
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
        Err(missing.join("; "))
    }
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
pub async fn start_or_exit(function: &str) -> Arc<Hub> {
    let started = Instant::now();
    init_json_logs();
    match hub_from_env().await {
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
