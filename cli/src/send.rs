//! `ferry send`: sign a payload exactly as SOURCE's provider would and POST it,
//! so users can test their own sources.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Args;
use ferry::verify::Verifier;

use crate::env::load_config;

/// `ferry send` options.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// Source name (a key of `sources`).
    pub source: String,
    /// The config file.
    #[arg(long, short)]
    pub config: PathBuf,
    /// The payload to send.
    #[arg(long, short)]
    pub file: PathBuf,
    /// Base URL of the hub.
    #[arg(long, default_value = "http://127.0.0.1:8787")]
    pub url: String,
    /// Content type of the payload.
    #[arg(long, default_value = "application/json")]
    pub content_type: String,
    /// KEY=VALUE file for `${env:NAME}` references (default: `<config>.env` when it exists).
    #[arg(long)]
    pub env_file: Option<PathBuf>,
}

/// Sign and send.
pub async fn run(args: SendArgs) -> anyhow::Result<ExitCode> {
    let loaded = match load_config(&args.config, args.env_file.as_deref()) {
        Ok(l) => l,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let source = loaded.config.sources.get(&args.source).with_context(|| {
        format!(
            "no source named {:?} in {}",
            args.source,
            args.config.display()
        )
    })?;
    let verifier = Verifier::from_config(&source.verify)
        .map_err(|e| anyhow::anyhow!("sources.{}.verify: {e}", args.source))?;
    let body =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
    let delivery_id = uuid::Uuid::now_v7().to_string();
    let url = format!("{}/hooks/{}", args.url.trim_end_matches('/'), args.source);

    // The signature may carry the source's secret: no cross-origin redirects, no Referer.
    let client = ferry::destination::client_builder().build()?;
    let mut req = client
        .post(&url)
        .header("content-type", &args.content_type)
        .body(body.clone());
    for (name, value) in verifier.sign(&body, now_ms, Some(&delivery_id)) {
        req = req.header(name, value);
    }
    let resp = req.send().await.with_context(|| format!("POST {url}"))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    out!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    out!("{text}");
    Ok(if status.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
