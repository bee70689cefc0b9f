//! `ferry connections authorize NAME`: the OAuth 2.0 authorization-code
//! bootstrap. Prints the URL to open, catches the redirect on the loopback
//! port, exchanges the code and stores the tokens (sealed) in the selected
//! store. The logic is `ferry::authorize`; no token is ever printed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use crate::store_opt::{StoreArgs, build_hub};

/// `ferry connections authorize` options.
#[derive(Debug, Args)]
pub struct AuthorizeArgs {
    /// The connection (`auth.type: oauth2`, `grant: authorization_code`).
    pub name: String,
    /// The config file.
    #[arg(long, short, default_value = "examples/new-lead.yaml")]
    pub config: PathBuf,
    /// The store the hub reads its tokens from: `--store embedded --data DIR` (default) or `--store aws`.
    #[command(flatten)]
    pub store: StoreArgs,
    /// KEY=VALUE file for `${env:NAME}` references.
    #[arg(long)]
    pub env_file: Option<PathBuf>,
    /// The loopback port for the redirect (overrides `auth.redirect_port`; 0: any free port).
    #[arg(long)]
    pub port: Option<u16>,
    /// How long to wait for the redirect.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// Run `ferry connections authorize`.
pub async fn run(args: AuthorizeArgs) -> anyhow::Result<ExitCode> {
    let Some(hub) = build_hub(&args.config, args.env_file.as_deref(), &args.store).await? else {
        return Ok(ExitCode::FAILURE);
    };
    let name = &args.name;
    let started = match ferry::authorize::begin(&hub, name, args.port).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    out!("Open this URL in a browser and allow access for connection {name}:");
    out!();
    out!("  {}", started.url());
    out!();
    out!(
        "Waiting up to {} for the redirect to {} ...",
        humantime::format_duration(args.timeout),
        started.redirect_uri()
    );
    match started.finish(&hub, args.timeout).await {
        Ok(done) => {
            let renew = if done.refresh_token {
                "a refresh token renews it from then on"
            } else {
                "the provider sent no refresh token: once it expires, runs fail as auth_failed until you authorize again (some providers need an `offline_access` scope)"
            };
            out!(
                "connection {name} authorized: tokens stored sealed in the store ({}); the access token is good for {}, {renew}",
                args.store.flag(),
                humantime::format_duration(done.lifetime)
            );
            if let Some(scope) = done.scope {
                out!("granted scope: {scope}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
