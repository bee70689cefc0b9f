//! One store selector for every command that reads or changes state:
//! `--store embedded` (the default: the SQLite file under `--data`) or
//! `--store aws` (DynamoDB + SQS named by `FERRY_TABLE`, `FERRY_QUEUE_URL`
//! and `FERRY_DLQ_URL`; region and credentials from the usual AWS
//! environment, `AWS_ENDPOINT_URL` for an emulator). `--stack NAME` reads
//! those three from a deployed stack's outputs instead (and implies `aws`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::builder::ArgPredicate;
use clap::{Args, ValueEnum};
use ferry::clock::{Clock, SystemClock};
use ferry::hub::Hub;
use ferry::ports::Ports;
use ferry::store::{AwsStore, SqliteStore};

use crate::dev::{DEFAULT_DATA, open_store};
use crate::env::load_config;

/// Which backend holds the state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    /// The embedded SQLite store under `--data` (what `ferry dev` runs on).
    #[default]
    Embedded,
    /// DynamoDB + SQS: `FERRY_TABLE`, `FERRY_QUEUE_URL`, `FERRY_DLQ_URL`.
    Aws,
}

/// `--store`, `--stack` and `--data`, flattened into each state command.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Where the state lives: `embedded` (under --data) or `aws` (DynamoDB + SQS named by FERRY_TABLE, FERRY_QUEUE_URL, FERRY_DLQ_URL).
    #[arg(long, value_enum, default_value_t = StoreKind::Embedded,
          default_value_if("stack", ArgPredicate::IsPresent, "aws"))]
    pub store: StoreKind,
    /// The AWS store a deployed CloudFormation stack names: its outputs TableName, WorkQueueUrl and DeadLetterQueueUrl, which win over FERRY_TABLE, FERRY_QUEUE_URL and FERRY_DLQ_URL. Implies --store aws.
    #[arg(long, value_name = "NAME")]
    pub stack: Option<String>,
    /// Directory of the embedded store.
    #[arg(long, default_value = DEFAULT_DATA)]
    pub data: PathBuf,
}

/// An opened store.
pub enum Store {
    /// The SQLite file.
    Embedded(Arc<SqliteStore>),
    /// DynamoDB + SQS.
    Aws(Arc<AwsStore>),
}

impl Store {
    /// Every port on it.
    pub fn ports(&self) -> Ports {
        match self {
            Store::Embedded(s) => s.ports(),
            Store::Aws(s) => s.ports(),
        }
    }
}

impl StoreArgs {
    /// Open the selected store. With `aws`, a missing variable (or, with
    /// `--stack`, a missing stack or output) is an error naming it.
    pub async fn open(&self) -> anyhow::Result<Store> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let env = |name: &str| std::env::var(name).ok();
        match (self.store, &self.stack) {
            (StoreKind::Embedded, None) => Ok(Store::Embedded(open_store(&self.data)?)),
            (StoreKind::Embedded, Some(_)) => Err(anyhow::anyhow!(
                "--stack names an AWS store; it cannot be combined with --store embedded"
            )),
            (StoreKind::Aws, None) => {
                let store = ferry::boot::aws_store(&env, clock)
                    .await
                    .map_err(|e| anyhow::anyhow!("--store aws: {e}"))?;
                Ok(Store::Aws(store))
            }
            (StoreKind::Aws, Some(stack)) => {
                let store = ferry::boot::aws_store_from_stack(&env, stack, clock)
                    .await
                    .map_err(|e| anyhow::anyhow!("--stack {stack}: {e}"))?;
                Ok(Store::Aws(store))
            }
        }
    }

    /// How to name this store in a hint to the user (`--data DIR`,
    /// `--store aws` or `--stack NAME`).
    pub fn flag(&self) -> String {
        match (self.store, &self.stack) {
            (_, Some(stack)) => format!("--stack {stack}"),
            (StoreKind::Embedded, None) => format!("--data {}", self.data.display()),
            (StoreKind::Aws, None) => "--store aws".into(),
        }
    }
}

/// Load the config (printing every problem) and build the hub on the selected store.
pub async fn build_hub(
    config: &Path,
    env_file: Option<&Path>,
    store: &StoreArgs,
) -> anyhow::Result<Option<Arc<Hub>>> {
    Ok(build(config, env_file, store).await?.map(|(hub, _)| hub))
}

/// [`build_hub`], keeping the opened store.
pub async fn build(
    config: &Path,
    env_file: Option<&Path>,
    store: &StoreArgs,
) -> anyhow::Result<Option<(Arc<Hub>, Store)>> {
    let loaded = match load_config(config, env_file) {
        Ok(l) => l,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(None);
        }
    };
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    let opened = store.open().await?;
    let hub =
        Hub::new(loaded.config, loaded.secrets, opened.ports()).map_err(|e| anyhow::anyhow!(e))?;
    Ok(Some((hub, opened)))
}
