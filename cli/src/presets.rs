//! `ferry presets`: the built-in connector presets, and what one sets.

use std::process::ExitCode;

use clap::Args;

/// `ferry presets [NAME]`.
#[derive(Debug, Args)]
pub struct PresetsArgs {
    /// Print this preset's file: every value it sets, with the vendor documents it comes from.
    name: Option<String>,
}

pub fn run(args: PresetsArgs) -> anyhow::Result<ExitCode> {
    let all = ferry::config::presets::presets();
    match args.name {
        None => {
            let width = all.iter().map(|p| p.name.len()).max().unwrap_or(0);
            for p in &all {
                out!("{:width$}  {:<26}  {}", p.name, p.parts.join(", "), p.title);
            }
            if all.is_empty() {
                out!("(no presets are built in)");
            }
        }
        Some(name) => {
            let Some(p) = all.iter().find(|p| p.name == name) else {
                let names: Vec<_> = all.iter().map(|p| p.name).collect();
                anyhow::bail!("unknown preset {name:?}; built in: {}", names.join(", "));
            };
            out!("{}", p.text.trim_end());
        }
    }
    Ok(ExitCode::SUCCESS)
}
