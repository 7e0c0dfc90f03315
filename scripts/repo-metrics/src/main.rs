//! `repo-metrics --repo aya=/src/aya --repo libbpf-rs=/src/libbpf-rs --since 2022-06-05
//! --until 2023-06-05 [--issues aya=aya-issues.json] --out DIR`; see README.md.

use anyhow::Result;
use clap::Parser;

#[derive(Parser)]
#[command(version, about = "Repository metrics of BPF libraries: activity, issues, tertiles and an OSSPal-style score")]
struct Cli {
    #[command(flatten)]
    args: repo_metrics::Args,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let opts = cli.args.options()?;
    let report = repo_metrics::run(&opts)?;
    for lib in &report.libraries {
        let score = lib.score.map_or("-".to_string(), |s| format!("{s:.2}"));
        println!(
            "{}: {} commits, {} contributors, {:.2} files/commit, score {score}",
            lib.name, lib.commits.commits, lib.commits.contributors, lib.commits.files_per_commit
        );
    }
    for f in repo_metrics::report_files(&opts.out) {
        println!("wrote {}", f.display());
    }
    Ok(())
}
