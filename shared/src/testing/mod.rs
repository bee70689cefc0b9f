//! `ferry test`: test a workflow before it goes live, as routinely as
//! `cargo test`. See `docs/testing.md`.
//!
//! A test file ([`file`]) names a config and its cases. Each case runs
//! in-process on a fresh embedded store with a [`crate::clock::VirtualClock`]
//! ([`run`]): the event goes through the real ingest ([`deliver`]), its runs
//! through the real execute and settle, and every call to a connection is
//! answered by a mock on 127.0.0.1 ([`mock`]); then the outcome is checked
//! ([`expect`]). [`standard`] generates the cases every workflow should have;
//! [`junit`] writes the report for CI; [`export`] turns a recorded run into a case.

pub mod alerts;
pub mod deliver;
pub mod expect;
pub mod export;
pub mod file;
pub mod junit;
pub mod mock;
pub mod run;
pub mod standard;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use file::{Case, TestFile};
pub use run::Runner;

/// The result of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The test file (or the config, for generated cases).
    pub file: PathBuf,
    /// The case's name.
    pub name: String,
    /// Every mismatch; empty when it passed.
    pub failures: Vec<String>,
    /// Virtual time the case took.
    pub virtual_elapsed: Duration,
    /// Real time the case took.
    pub wall: Duration,
}

impl CaseResult {
    /// Whether it passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// What to run: a test file (its own cases, and the generated ones with
/// `standard`) against a config.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Where the cases come from (a test file, or the config itself).
    pub origin: PathBuf,
    /// The test file's content (empty for a bare config).
    pub file: TestFile,
    /// The config.
    pub config: PathBuf,
}

/// The plan for test file `path`; `config` (from `--config`) wins over the file's own.
pub fn plan(path: &Path, config: Option<&Path>) -> Result<Plan, String> {
    let file = file::load(path)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let config = match (config, &file.config) {
        (Some(c), _) => c.to_owned(),
        (None, Some(c)) => dir.join(c),
        (None, None) => {
            return Err(format!(
                "{}: no config: add `config: <path>` or pass --config",
                path.display()
            ));
        }
    };
    Ok(Plan {
        origin: path.to_owned(),
        file,
        config,
    })
}

/// Whether test file `path` is about `config`: its `config:` names the same
/// file, or it names none (an unreadable file is kept: running it says why).
fn tests_config(path: &Path, config: &Path) -> bool {
    let Ok(f) = file::load(path) else { return true };
    let Some(own) = f.config else { return true };
    let dir = path.parent().unwrap_or(Path::new("."));
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    same(&dir.join(own), config)
}

/// The test files `paths` name (a directory: its `*.ferry.yaml`); none
/// given: `tests/*.ferry.yaml` beside `config` that test that config (their
/// `config:` names it, or they name none), or in the current directory.
pub fn discover(paths: &[PathBuf], config: Option<&Path>) -> Result<Vec<PathBuf>, String> {
    let default_dir = config
        .and_then(Path::parent)
        .unwrap_or(Path::new("."))
        .join("tests");
    let roots: Vec<PathBuf> = if paths.is_empty() {
        vec![default_dir]
    } else {
        paths.to_vec()
    };
    let mut out = Vec::new();
    let by_default = paths.is_empty();
    for root in roots {
        if root.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(&root)
                .map_err(|e| format!("{}: {e}", root.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.to_string_lossy().ends_with(".ferry.yaml"))
                .collect();
            found.sort();
            if by_default && let Some(config) = config {
                found.retain(|p| tests_config(p, config));
            }
            out.extend(found);
        } else if root.is_file() {
            out.push(root);
        } else if !paths.is_empty() {
            return Err(format!(
                "{}: no such test file or directory",
                root.display()
            ));
        }
    }
    Ok(out)
}

/// The example payloads of `plan`, by source: the test file's `example`
/// (for every source), else `<source>.json` beside the config.
pub fn examples(
    plan: &Plan,
    runner: &Runner,
) -> Result<BTreeMap<String, serde_json::Value>, String> {
    let read = |p: &Path| -> Result<serde_json::Value, String> {
        let text =
            std::fs::read_to_string(p).map_err(|e| format!("example {}: {e}", p.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("example {}: {e}", p.display()))
    };
    let mut out = BTreeMap::new();
    let config_dir = plan.config.parent().unwrap_or(Path::new("."));
    for name in runner.config().sources.keys() {
        let named = config_dir.join(format!("{name}.json"));
        if let Some(e) = &plan.file.example {
            let dir = plan.origin.parent().unwrap_or(Path::new("."));
            out.insert(name.clone(), read(&dir.join(e))?);
        } else if named.is_file() {
            out.insert(name.clone(), read(&named)?);
        }
    }
    Ok(out)
}

/// The generated cases of `plan` (see [`standard`]).
pub fn generated(plan: &Plan, runner: &Runner) -> Result<Vec<Case>, String> {
    let examples = examples(plan, runner)?;
    if examples.is_empty() {
        return Err(format!(
            "{}: no example payload for the generated cases: set `example: <file.json>` in a test file, or put <source>.json beside the config",
            plan.origin.display()
        ));
    }
    let volume = plan.file.volume.unwrap_or(standard::DEFAULT_VOLUME);
    Ok(standard::cases(runner.config(), &examples, volume))
}

/// Run `cases` of `plan` on `runner`, calling `each` as each one ends.
pub async fn run_cases(
    plan: &Plan,
    runner: &Runner,
    cases: &[Case],
    each: &mut dyn FnMut(&CaseResult),
) -> Vec<CaseResult> {
    let mut out = Vec::new();
    for case in cases {
        let started = Instant::now();
        let outcome = runner.run(case).await;
        let result = CaseResult {
            file: plan.origin.clone(),
            name: case.name.clone(),
            failures: expect::check(&case.expect, &outcome),
            virtual_elapsed: outcome.virtual_elapsed,
            wall: started.elapsed(),
        };
        each(&result);
        out.push(result);
    }
    out
}

/// The line a case gets in the report, with its failures indented below.
pub fn report_line(r: &CaseResult) -> String {
    if r.passed() {
        return format!("ok      {}", r.name);
    }
    let mut s = format!("FAILED  {}", r.name);
    for f in &r.failures {
        for (i, line) in f.lines().enumerate() {
            s.push_str(if i == 0 { "\n    - " } else { "\n      " });
            s.push_str(line);
        }
    }
    s
}

/// `N passed, M failed`.
pub fn summary(results: &[CaseResult]) -> String {
    let passed = results.iter().filter(|r| r.passed()).count();
    format!("{passed} passed, {} failed", results.len() - passed)
}

/// `target` as a path relative to the directory of `file` (what a test
/// file's `config:` and `example:` hold), or absolute when they share nothing.
pub fn relative_to(file: &Path, target: &Path) -> PathBuf {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
    let from = abs(file.parent().unwrap_or(Path::new(".")));
    let to = abs(target);
    let (from, to): (Vec<_>, Vec<_>) = (from.components().collect(), to.components().collect());
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    if common <= 1 {
        return to.iter().collect();
    }
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    to[common..].iter().for_each(|c| out.push(c));
    out
}

#[cfg(test)]
mod tests;
