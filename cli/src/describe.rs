//! `ferry describe`: what the config does, in words (Markdown or JSON), from
//! the config alone. Like `ferry graph`, `${env:…}` references are not
//! resolved, so the output never shows a value and is the same on every
//! machine; `--check FILE` keeps a committed copy from going stale.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use ferry::describe::Description;

/// `ferry describe` options.
#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// The config file.
    #[arg(long, short)]
    pub config: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Markdown)]
    pub format: Format,
    /// Compare with FILE instead of printing: exit 1 (with a short diff) when they differ.
    #[arg(long, value_name = "FILE")]
    pub check: Option<PathBuf>,
}

/// Output formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// A Markdown document for people.
    Markdown,
    /// The same facts as JSON, for tools.
    Json,
}

/// Run `ferry describe`.
pub fn run(args: DescribeArgs) -> anyhow::Result<ExitCode> {
    let loaded = match crate::env::load_with_stand_ins(&args.config) {
        Ok(l) => l,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let d = Description::of(&loaded.config);
    let (text, format) = match args.format {
        Format::Markdown => (d.to_markdown(), "markdown"),
        Format::Json => (serde_json::to_string_pretty(&d)? + "\n", "json"),
    };
    let Some(path) = args.check else {
        use std::io::Write as _;
        std::io::stdout().lock().write_all(text.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    };
    let regenerate = format!(
        "ferry describe --config {} --format {format} > {}",
        args.config.display(),
        path.display()
    );
    check(&path, &text, &regenerate)
}

/// Compare `text` with the committed `path`: `up to date`, or a short diff
/// on stderr and exit 1 (also used by `ferry graph --check`).
pub fn check(path: &Path, text: &str, regenerate: &str) -> anyhow::Result<ExitCode> {
    let committed = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    if committed == text {
        out!("{}: up to date", path.display());
        return Ok(ExitCode::SUCCESS);
    }
    let diff = similar::TextDiff::from_lines(committed.as_str(), text);
    let shown = diff
        .unified_diff()
        .context_radius(1)
        .header(
            &format!("{} (committed)", path.display()),
            "from the config",
        )
        .to_string();
    const MAX_LINES: usize = 40;
    let mut lines: Vec<&str> = shown.lines().take(MAX_LINES).collect();
    let more = shown.lines().count().saturating_sub(MAX_LINES);
    let tail = format!("… {more} more diff lines");
    if more > 0 {
        lines.push(&tail);
    }
    eprintln!(
        "{}: differs from the config; regenerate it with `{regenerate}`\n{}",
        path.display(),
        lines.join("\n")
    );
    Ok(ExitCode::FAILURE)
}
