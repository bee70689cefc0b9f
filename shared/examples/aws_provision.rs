//! Create the AWS adapter's table and queues on any endpoint: the emulator
//! (`AWS_ENDPOINT_URL=http://127.0.0.1:PORT`) or a real account for a smoke
//! test (production uses `template.yaml`). Safe to run twice. Prints the
//! variables `FERRY_STORE=aws` reads.
//!
//! ```sh
//! cargo run -p ferry-shared --example aws_provision -- TABLE QUEUE [MAX_RECEIVES]
//! ```
//!
//! Region and credentials come from the usual AWS environment.

use std::process::ExitCode;

use ferry::store::aws::provision::{QueueSpec, provision};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (table, queue) = match args.as_slice() {
        [table, queue] | [table, queue, _] => (table, queue),
        _ => {
            eprintln!("usage: aws_provision TABLE QUEUE [MAX_RECEIVES]");
            return ExitCode::from(2);
        }
    };
    let mut spec = QueueSpec::default();
    if let Some(n) = args.get(2) {
        match n.parse() {
            Ok(n) => spec.max_receives = n,
            Err(_) => {
                eprintln!("MAX_RECEIVES must be a number, not {n:?}");
                return ExitCode::from(2);
            }
        }
    }
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    match provision(&config, table, queue, spec).await {
        Ok(names) => {
            println!("FERRY_STORE=aws");
            println!("FERRY_TABLE={}", names.table);
            println!("FERRY_QUEUE_URL={}", names.queue_url);
            println!("FERRY_DLQ_URL={}", names.dlq_url);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("aws_provision: {e}");
            ExitCode::FAILURE
        }
    }
}
