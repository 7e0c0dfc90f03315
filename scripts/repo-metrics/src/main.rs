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
    repo_metrics::run_cli(&Cli::parse().args)
}
