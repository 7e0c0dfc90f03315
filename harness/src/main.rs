//! `harness`: builds every implementation, checks it, measures it, and writes reports.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

#[derive(Debug, Parser)]
#[command(about = "Build, check and measure every bpf-eval implementation side by side.")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
    /// No progress bars; one line per step (for CI logs).
    #[arg(long, global = true)]
    quiet: bool,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Measure `all` use cases or the ones named, and write a report.
    Run(cmd::run::Options),
    /// Regenerate the report of a finished run from its data files.
    Report { dir: PathBuf },
    /// Which metrics moved beyond their noise between two runs.
    Compare { a: PathBuf, b: PathBuf },
    /// Check this machine's kernel features, mounts and toolchains.
    Doctor,
    /// Remove what a crashed run left behind (namespaces, attachments, pins).
    Clean,
    /// Repository metrics of library clones (see scripts/repo-metrics/README.md).
    RepoMetrics(repo_metrics::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let workspace = harness::process::workspace_dir();
    let result = match cli.cmd {
        Cmd::Run(opts) => cmd::run::run(&workspace, &opts, cli.quiet),
        Cmd::Report { dir } => metrics::report::render(&dir).map(|files| {
            for f in files {
                println!("{}", f.display());
            }
            true
        }),
        Cmd::Compare { a, b } => cmd::compare(&a, &b),
        Cmd::Doctor => Ok(cmd::doctor::run(&workspace)),
        Cmd::RepoMetrics(args) => repo_metrics::run_cli(&args).map(|()| true),
        Cmd::Clean => cmd::clean::run().map(|removed| {
            if removed.is_empty() {
                println!("nothing to clean");
            }
            for r in removed {
                println!("removed {r}");
            }
            true
        }),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("harness: {e:#}");
            ExitCode::FAILURE
        }
    }
}
