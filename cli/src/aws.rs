//! `ferry aws provision`: create the AWS store's table (indexes, TTL) and
//! queues on any endpoint (`AWS_ENDPOINT_URL` for an emulator), then print
//! the variables `--store aws` and the functions read. Safe to run twice.

use std::process::ExitCode;

use clap::Subcommand;
use ferry::store::aws::provision::{QueueSpec, provision_with_dlq};

/// `ferry aws ...`.
#[derive(Debug, Subcommand)]
pub enum AwsCommand {
    /// Create the DynamoDB table and the SQS queue pair; print `export FERRY_…=` lines.
    Provision {
        /// The DynamoDB table.
        #[arg(long)]
        table: String,
        /// The work queue.
        #[arg(long)]
        queue: String,
        /// The dead-letter queue (default: `<queue>-dlq`).
        #[arg(long)]
        dlq: Option<String>,
        /// Receives before SQS moves a message to the dead-letter queue.
        #[arg(long, default_value_t = QueueSpec::default().max_receives)]
        max_receives: u32,
    },
}

/// Run an `aws` subcommand.
pub async fn run(cmd: AwsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AwsCommand::Provision {
            table,
            queue,
            dlq,
            max_receives,
        } => {
            let env = |name: &str| std::env::var(name).ok();
            let config = ferry::boot::aws_sdk_config(&env)
                .await
                .map_err(anyhow::Error::msg)?;
            let dlq = dlq.unwrap_or_else(|| format!("{queue}-dlq"));
            let spec = QueueSpec {
                max_receives,
                ..QueueSpec::default()
            };
            let names = provision_with_dlq(&config, &table, &queue, &dlq, spec).await?;
            out!("export FERRY_STORE=aws");
            out!("export FERRY_TABLE={}", names.table);
            out!("export FERRY_QUEUE_URL={}", names.queue_url);
            out!("export FERRY_DLQ_URL={}", names.dlq_url);
            Ok(ExitCode::SUCCESS)
        }
    }
}
