//! The web console in `ferry dev`: open on a loopback listener; on any
//! other address a console token (given as a reference) is required, or
//! `ferry dev` does not start (docs/console.md).

use crate::dev::DevArgs;

/// The console's options for `args`: open on a loopback listener without a
/// token; a token (a reference, resolved like the config's) is required
/// on any other address.
pub fn options(
    args: &DevArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<ferry::console::Options> {
    let loopback = args.listen.ip().is_loopback();
    let access = match (&args.console_token, loopback) {
        (Some(reference), _) => ferry::console::Access::Token(
            ferry::console::access::resolve_token(reference, env)
                .map_err(|e| anyhow::anyhow!("--console-token: {e}"))?,
        ),
        (None, true) => ferry::console::Access::Open,
        (None, false) => anyhow::bail!(
            "--listen {} is not a loopback address: the console needs a login token; \
             pass --console-token '${{env:NAME}}' (or FERRY_CONSOLE_TOKEN) naming a variable that holds it, \
             or --no-console",
            args.listen
        ),
    };
    let mut cli_config = format!("--config {}", args.config.display());
    if let Some(env_file) = &args.env_file {
        cli_config.push_str(&format!(" --env-file {}", env_file.display()));
    }
    Ok(ferry::console::Options {
        base: String::new(),
        access,
        secure_cookie: !loopback && !args.console_insecure_cookie,
        cli_store: args.store.flag(),
        cli_config,
    })
}
