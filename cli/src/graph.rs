//! `ferry graph`: what flows where, drawn from the config (Graphviz DOT or
//! Mermaid). The drawing depends on the config alone: `${env:…}` references
//! are not resolved (no secret or environment value can reach the output),
//! so the same config always gives the same bytes, and `--check FILE` can
//! keep a committed drawing from going stale.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use ferry::describe::Graph;

/// `ferry graph` options.
#[derive(Debug, Args)]
pub struct GraphArgs {
    /// The config file.
    #[arg(long, short)]
    pub config: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Mermaid)]
    pub format: Format,
    /// Compare with FILE instead of printing: exit 1 (and say so) when they differ.
    #[arg(long, value_name = "FILE")]
    pub check: Option<PathBuf>,
}

/// Drawing formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// A Mermaid flowchart (GitHub renders it in Markdown).
    Mermaid,
    /// Graphviz DOT (`dot -Tsvg`).
    Dot,
}

/// Run `ferry graph`.
pub fn run(args: GraphArgs) -> anyhow::Result<ExitCode> {
    let loaded = match crate::env::load_with_stand_ins(&args.config) {
        Ok(l) => l,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let graph = Graph::of(&loaded.config);
    let text = match args.format {
        Format::Mermaid => graph.to_mermaid(),
        Format::Dot => graph.to_dot(),
    };
    let Some(path) = args.check else {
        use std::io::Write as _;
        std::io::stdout().lock().write_all(text.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    };
    let regenerate = format!(
        "ferry graph --config {} --format {} > {}",
        args.config.display(),
        match args.format {
            Format::Mermaid => "mermaid",
            Format::Dot => "dot",
        },
        path.display()
    );
    crate::describe::check(&path, &text, &regenerate)
}
