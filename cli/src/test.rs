//! `ferry test`: run test files (and the generated cases) in-process, print
//! one line per case and a summary, write JUnit XML for CI. The runner is
//! `ferry::testing`; this only reads the arguments and prints.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use ferry::testing::{self, CaseResult, Plan, Runner, TestFile};

/// `ferry test` options.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// Test files or directories of `*.ferry.yaml` (default: `tests/` beside --config, or in the current directory).
    pub paths: Vec<PathBuf>,
    /// The config under test (wins over each test file's `config:`).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Write a JUnit XML report here (for CI).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Also run the generated cases of every workflow (normal, missing fields, duplicate, signatures, credentials, permission, volume).
    #[arg(long)]
    pub standard: bool,
    /// Write the generated cases to FILE (default `tests/<config>.standard.ferry.yaml` beside the config) instead of running.
    #[arg(long, value_name = "FILE", num_args = 0..=1)]
    pub generate: Option<Option<PathBuf>>,
}

/// Run `ferry test`.
pub async fn run(args: TestArgs) -> anyhow::Result<ExitCode> {
    let plans = match plans(&args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    if let Some(target) = &args.generate {
        return generate(&plans, target.as_deref()).await;
    }
    let mut results: Vec<CaseResult> = Vec::new();
    let mut generated_for: Vec<PathBuf> = Vec::new();
    for plan in &plans {
        let runner = match Runner::new(&plan.config, &plan.file.env).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: {}: {e}", plan.origin.display());
                return Ok(ExitCode::FAILURE);
            }
        };
        let mut cases = plan.file.cases.clone();
        if args.standard && !generated_for.contains(&plan.config) {
            generated_for.push(plan.config.clone());
            match testing::generated(plan, &runner) {
                Ok(g) => cases.extend(g),
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
        out!("{} ({} cases)", plan.origin.display(), cases.len());
        // Each line as its case ends (a closed pipe is noticed at the summary).
        let done = testing::run_cases(plan, &runner, &cases, &mut |r| {
            use std::io::Write as _;
            let _ = writeln!(std::io::stdout().lock(), "{}", testing::report_line(r));
        })
        .await;
        results.extend(done);
    }
    out!("");
    out!("{}", testing::summary(&results));
    if let Some(path) = &args.junit {
        std::fs::write(path, testing::junit::report(&results))
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    }
    Ok(if results.iter().all(CaseResult::passed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The test files found, each with its config; with none, the config alone.
fn plans(args: &TestArgs) -> Result<Vec<Plan>, String> {
    let files = testing::discover(&args.paths, args.config.as_deref())?;
    let mut plans = files
        .iter()
        .map(|f| testing::plan(f, args.config.as_deref()))
        .collect::<Result<Vec<_>, _>>()?;
    if plans.is_empty() {
        let Some(config) = &args.config else {
            return Err("no test files in tests/: name a test file, or pass --config (with --standard for the generated cases)".into());
        };
        plans.push(Plan {
            origin: config.clone(),
            file: TestFile::default(),
            config: config.clone(),
        });
    }
    Ok(plans)
}

/// `--generate`: write each config's generated cases to a test file.
async fn generate(plans: &[Plan], target: Option<&Path>) -> anyhow::Result<ExitCode> {
    let mut done: Vec<&Path> = Vec::new();
    for plan in plans {
        if done.contains(&plan.config.as_path()) {
            continue;
        }
        done.push(&plan.config);
        let runner = Runner::new(&plan.config, &plan.file.env)
            .await
            .map_err(anyhow::Error::msg)?;
        let cases = testing::generated(plan, &runner).map_err(anyhow::Error::msg)?;
        let dir = plan.config.parent().unwrap_or(Path::new("."));
        let stem = plan
            .config
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy();
        let path = target.map_or_else(
            || {
                dir.join("tests")
                    .join(format!("{stem}.standard.ferry.yaml"))
            },
            Path::to_path_buf,
        );
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let file = TestFile {
            config: Some(testing::relative_to(&path, &plan.config)),
            env: plan.file.env.clone(),
            example: plan.file.example.as_ref().map(|e| {
                testing::relative_to(
                    &path,
                    &plan.origin.parent().unwrap_or(Path::new(".")).join(e),
                )
            }),
            volume: plan.file.volume,
            cases,
        };
        let yaml = testing::file::to_yaml(&file).map_err(anyhow::Error::msg)?;
        std::fs::write(
            &path,
            format!("# Generated by `ferry test --generate`: edit freely.\n{yaml}"),
        )?;
        out!("wrote {} cases to {}", file.cases.len(), path.display());
    }
    Ok(ExitCode::SUCCESS)
}
