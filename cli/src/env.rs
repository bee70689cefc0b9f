//! Config loading for the CLI: `${env:NAME}` references are resolved from the
//! process environment, then from an env file (`--env-file`, or `<config>.env`
//! next to the config when it exists). The process environment wins.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ferry::config::{ConfigErrors, Loaded};

/// The env file used for `config`: the one given, else `<config stem>.env` beside it.
pub fn env_file_for(config: &Path, explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_owned());
    }
    let candidate = config.with_extension("env");
    candidate.is_file().then_some(candidate)
}

/// Load and validate `config` with a stand-in URL for every `${env:NAME}`
/// (`ferry describe`, `ferry graph`: documents that never show values).
pub fn load_with_stand_ins(config: &Path) -> Result<Loaded, ConfigErrors> {
    let lookup = |name: &str| Some(format!("http://127.0.0.1/env/{name}"));
    ferry::config::load_file(config, &lookup)
}

/// Load and validate `config`.
pub fn load_config(config: &Path, env_file: Option<&Path>) -> Result<Loaded, ConfigErrors> {
    ferry::config::load_file(config, &lookup(config, env_file))
}

/// How `${env:NAME}` is resolved for `config`: the process environment,
/// then the env file.
pub fn lookup(config: &Path, env_file: Option<&Path>) -> impl Fn(&str) -> Option<String> {
    let mut file_vars = HashMap::new();
    if let Some(path) = env_file_for(config, env_file) {
        match dotenvy::from_path_iter(&path) {
            Ok(iter) => {
                for (k, v) in iter.flatten() {
                    file_vars.insert(k, v);
                }
            }
            Err(e) => eprintln!("warning: could not read env file {}: {e}", path.display()),
        }
    }
    move |name: &str| {
        std::env::var(name)
            .ok()
            .or_else(|| file_vars.get(name).cloned())
    }
}
