//! Lambda: the web console, on the HTTP API under `/console`.
//!
//! Cold start: the hub is built (see `ferry::boot`), the console token is
//! read once from the Secrets Manager secret `FERRY_CONSOLE_SECRET_ARN`
//! names; a missing or short token stops the function here.

use lambda_http::{Error, run};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let hub = ferry::boot::start_or_exit("console").await;
    let config = aws_config::load_from_env().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&config);
    let token = match ferry_console::token_from_env(&secrets, &|n| std::env::var(n).ok()).await {
        Ok(t) => t,
        Err(error) => {
            tracing::error!(error = %error, "cannot start: no console token");
            std::process::exit(1)
        }
    };
    run(ferry_console::app(hub, token)).await
}
