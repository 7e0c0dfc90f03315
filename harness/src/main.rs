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
    Report {
        dir: PathBuf,
        /// Weights of the decision aid: YAML of dimension -> weight (defaults: metrics/weights.yaml).
        #[arg(long)]
        weights: Option<PathBuf>,
    },
    /// Which metrics moved beyond their noise between two runs (writes compare.md and compare.html).
    Compare {
        a: PathBuf,
        b: PathBuf,
        /// Where to write compare.md and compare.html (default: B).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Instead: check that every ranking either run calls significant is the other's too
        /// (same leaders); exit 1 listing those that are not.
        #[arg(long)]
        rankings: bool,
    },
    /// Every implementation on each kernel (Debian's packages in a VM guest, one boot per kernel,
    /// and `host`): writes kernels.csv (`usecase,lib,kernel,status,detail`) into --out.
    Kernels {
        /// Kernel series: 5.10, 6.1, 6.12, 7.2, host.
        #[arg(long, value_delimiter = ',', default_value = "5.10,6.1,6.12,7.2,host")]
        kernels: Vec<String>,
        /// Use cases (default: all).
        #[arg(long, value_delimiter = ',')]
        usecases: Vec<String>,
        /// Libraries (default: every library of the registry).
        #[arg(long, value_delimiter = ',')]
        libs: Vec<String>,
        /// The run directory that gets kernels.csv.
        #[arg(long, default_value = "reports/kernels")]
        out: PathBuf,
        /// Reuse cells an earlier run checked with the same binary, kernel and checks (passes
        /// and lacks-a-feature only; marked ↻ in the report).
        #[arg(long)]
        reuse: bool,
    },
    /// Combine the kernel matrices of runs made on several machines (same git revision) into one.
    Merge {
        #[arg(required = true, num_args = 2..)]
        runs: Vec<PathBuf>,
        #[arg(long, default_value = "reports/merged")]
        out: PathBuf,
    },
    /// The implementations' packages (`<usecase>-<lib>`) that build in one cargo workspace, one a
    /// line, from the library registry: what `make build` builds.
    Impls {
        /// The cargo workspace, relative to the repository (RedBPF's: impls/redbpf).
        #[arg(long, default_value = ".")]
        workspace: PathBuf,
    },
    /// Sustained load on loadbalancer or comtrace for N minutes per library: loader RSS over
    /// time, events, events lost and errors (CSV and JSON in --out); fails on 1 MiB RSS growth
    /// or any error.
    Soak(cmd::soak::Options),
    /// Check this machine's kernel features, mounts and toolchains.
    Doctor,
    /// Remove what a crashed run left behind (namespaces, attachments, pins).
    Clean,
    /// Run CMD holding the run lock (`make test`, `make run`): refuses at once if a run is going.
    Lock {
        #[arg(trailing_var_arg = true, required = true)]
        cmd: Vec<String>,
    },
    /// Repository metrics of library clones (see scripts/repo-metrics/README.md).
    RepoMetrics(repo_metrics::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let workspace = harness::process::workspace_dir();
    let result = match cli.cmd {
        Cmd::Run(opts) => cmd::run::run(&workspace, &opts, cli.quiet),
        Cmd::Report { dir, weights } => weights
            .map_or_else(|| Ok(metrics::weights::Weights::defaults()), |w| metrics::weights::Weights::load(&w))
            .and_then(|w| metrics::report::render_with(&dir, &w))
            .map(|files| {
                for f in files {
                    println!("{}", f.display());
                }
                true
            }),
        Cmd::Compare { a, b, rankings: true, .. } => cmd::compare_rankings(&a, &b),
        Cmd::Compare { a, b, out, .. } => cmd::compare(&a, &b, out.as_deref().unwrap_or(&b)),
        Cmd::Kernels { kernels, usecases, libs, out, reuse } => {
            cmd::kernels::run(&kernels, &usecases, &libs, &harness::process::impls_dir(), &out, reuse)
        }
        Cmd::Merge { runs, out } => cmd::kernels::merge(&runs, &out),
        Cmd::Impls { workspace: dir } => {
            harness::measure::build::packages_in(&workspace, &workspace.join(dir)).map(|packages| {
                println!("{}", packages.join("\n"));
                true
            })
        }
        Cmd::Soak(opts) => cmd::soak::run(&opts),
        Cmd::Doctor => Ok(cmd::doctor::run(&workspace)),
        Cmd::RepoMetrics(args) => repo_metrics::run_cli(&args).map(|()| true),
        Cmd::Lock { cmd } => harness::lock::acquire().and_then(|_held| {
            let status = std::process::Command::new(&cmd[0]).args(&cmd[1..]).status()?;
            Ok(status.success())
        }),
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
            // Bad input exits 2 (as clap does for malformed arguments): nothing was started.
            if e.chain().any(|c| c.is::<harness::BadInput>()) {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
