//! The thesis' repository metrics, for any set of BPF library repositories given as local git
//! clones: activity in a date window (commits, contributors, files changed per commit), issue
//! statistics from an issues export, each metric ranked into tertiles across the libraries, and
//! an OSSPal-style score. Definitions are in README.md; [`run`] is the whole pipeline.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use chrono::{NaiveDate, NaiveTime};
use serde::Serialize;

pub mod git;
pub mod issues;
pub mod output;
pub mod rank;

pub use git::CommitStats;
pub use issues::IssueStats;
pub use rank::Metric;

/// Command-line arguments; the `repo-metrics` binary and the harness' subcommand share them.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// A library's local git clone, as NAME=PATH (repeat for each library).
    #[arg(long = "repo", value_name = "NAME=PATH", required = true, value_parser = parse_named)]
    pub repos: Vec<(String, PathBuf)>,
    /// First day of the window, YYYY-MM-DD (UTC, inclusive).
    #[arg(long, value_name = "DATE")]
    pub since: NaiveDate,
    /// Last day of the window, YYYY-MM-DD (UTC, inclusive).
    #[arg(long, value_name = "DATE")]
    pub until: NaiveDate,
    /// A library's issues export (GitHub REST JSON, see README.md), as NAME=FILE.
    #[arg(long = "issues", value_name = "NAME=FILE", value_parser = parse_named)]
    pub issues: Vec<(String, PathBuf)>,
    /// Directory for repo-metrics.csv, repo-metrics.json and repo-metrics.svg.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// `NAME=PATH`, for clap.
pub fn parse_named(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => Ok((name.to_string(), PathBuf::from(path))),
        _ => Err(format!("`{s}`: expected NAME=PATH")),
    }
}

/// The days `since..=until`, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    pub since: NaiveDate,
    pub until: NaiveDate,
}

impl Window {
    pub fn new(since: NaiveDate, until: NaiveDate) -> Result<Window> {
        ensure!(since <= until, "the window is empty: --since {since} is after --until {until}");
        Ok(Window { since, until })
    }

    /// Unix time of `since` 00:00:00 UTC.
    pub fn start(&self) -> i64 {
        self.since.and_time(NaiveTime::MIN).and_utc().timestamp()
    }

    /// Unix time of the day after `until`, 00:00:00 UTC: the first second outside the window.
    pub fn end(&self) -> i64 {
        self.start() + (self.until - self.since).num_days() * 86_400 + 86_400
    }

    pub fn contains(&self, unix: i64) -> bool {
        (self.start()..self.end()).contains(&unix)
    }
}

/// One library to measure.
#[derive(Debug, Clone)]
pub struct Library {
    pub name: String,
    pub repo: PathBuf,
    pub issues: Option<PathBuf>,
}

/// What [`run`] needs: the libraries, the window and where to write.
#[derive(Debug, Clone)]
pub struct Options {
    pub libraries: Vec<Library>,
    pub window: Window,
    pub out: PathBuf,
}

impl Args {
    /// Checks the arguments together: unique names, every issues file belongs to a repository.
    pub fn options(&self) -> Result<Options> {
        let window = Window::new(self.since, self.until)?;
        let mut libraries: Vec<Library> = Vec::new();
        for (name, repo) in &self.repos {
            ensure!(!libraries.iter().any(|l| &l.name == name), "--repo {name}=...: `{name}` is given twice");
            libraries.push(Library { name: name.clone(), repo: repo.clone(), issues: None });
        }
        for (name, file) in &self.issues {
            let Some(lib) = libraries.iter_mut().find(|l| &l.name == name) else {
                bail!("--issues {name}={}: no --repo is named `{name}`", file.display());
            };
            ensure!(lib.issues.is_none(), "--issues {name}=...: `{name}` is given twice");
            lib.issues = Some(file.clone());
        }
        Ok(Options { libraries, window, out: self.out.clone() })
    }
}

/// The measured values of one library, its tertile per ranked metric and its score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LibraryReport {
    pub name: String,
    pub repo: PathBuf,
    pub commits: CommitStats,
    pub issues: Option<IssueStats>,
    /// Tertile (1 = worst third .. 3 = best third) of every metric ranked across the libraries.
    pub tertiles: BTreeMap<Metric, u8>,
    /// Mean of `tertiles` (1.0 ..= 3.0); `None` when no metric could be ranked.
    pub score: Option<f64>,
}

impl LibraryReport {
    pub fn value(&self, metric: Metric) -> Option<f64> {
        metric.value(&self.commits, self.issues.as_ref())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub window: Window,
    pub libraries: Vec<LibraryReport>,
}

/// Measures every library, ranks and scores them, and writes the report files to `opts.out`.
pub fn run(opts: &Options) -> Result<Report> {
    let report = collect(opts)?;
    output::write(&report, &opts.out)?;
    Ok(report)
}

/// Measures every library and ranks and scores them, without writing anything.
pub fn collect(opts: &Options) -> Result<Report> {
    ensure!(!opts.libraries.is_empty(), "no library to measure");
    let mut libraries = Vec::new();
    for lib in &opts.libraries {
        let commits = git::commit_stats(&lib.repo, &opts.window)
            .with_context(|| format!("library {} ({})", lib.name, lib.repo.display()))?;
        let issues = lib
            .issues
            .as_deref()
            .map(|file| issues::load(file).map(|list| issues::stats(&list, &opts.window)))
            .transpose()
            .with_context(|| format!("library {}", lib.name))?;
        libraries.push(LibraryReport {
            name: lib.name.clone(),
            repo: lib.repo.clone(),
            commits,
            issues,
            tertiles: BTreeMap::new(),
            score: None,
        });
    }
    rank::score(&mut libraries);
    Ok(Report { window: opts.window, libraries })
}

/// Report file names, relative to the output directory.
pub const CSV_FILE: &str = "repo-metrics.csv";
pub const JSON_FILE: &str = "repo-metrics.json";
pub const SVG_FILE: &str = "repo-metrics.svg";

/// Paths of the report files in `dir`.
pub fn report_files(dir: &Path) -> [PathBuf; 3] {
    [CSV_FILE, JSON_FILE, SVG_FILE].map(|f| dir.join(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn window_is_whole_utc_days() {
        let w = Window::new(day("2023-01-01"), day("2023-01-02")).unwrap();
        assert_eq!(w.start(), 1_672_531_200);
        assert_eq!(w.end(), 1_672_531_200 + 2 * 86_400);
        assert!(w.contains(w.start()) && w.contains(w.end() - 1) && !w.contains(w.end()) && !w.contains(w.start() - 1));
        assert!(Window::new(day("2023-01-02"), day("2023-01-01")).unwrap_err().to_string().contains("empty"));
    }

    #[test]
    fn args_are_checked_together() {
        let args = |repos: &[&str], issues: &[&str]| Args {
            repos: repos.iter().map(|s| parse_named(s).unwrap()).collect(),
            issues: issues.iter().map(|s| parse_named(s).unwrap()).collect(),
            since: day("2022-06-05"),
            until: day("2023-06-05"),
            out: "out".into(),
        };
        let o = args(&["aya=/a", "libbpf-rs=/b"], &["aya=/a.json"]).options().unwrap();
        assert_eq!(o.libraries[0].issues.as_deref(), Some(Path::new("/a.json")));
        assert_eq!(o.libraries[1].issues, None);
        let e = args(&["aya=/a"], &["redbpf=/r.json"]).options().unwrap_err().to_string();
        assert!(e.contains("no --repo is named `redbpf`"), "{e}");
        let e = args(&["aya=/a", "aya=/b"], &[]).options().unwrap_err().to_string();
        assert!(e.contains("given twice"), "{e}");
        assert!(parse_named("aya").is_err() && parse_named("=/x").is_err() && parse_named("aya=").is_err());
    }
}

/// The whole command (also `harness repo-metrics`): compute, write the files, print a summary.
pub fn run_cli(args: &Args) -> Result<()> {
    let opts = args.options()?;
    let report = run(&opts)?;
    for lib in &report.libraries {
        let score = lib.score.map_or("-".to_string(), |s| format!("{s:.2}"));
        println!(
            "{}: {} commits, {} contributors, {:.2} files/commit, score {score}",
            lib.name, lib.commits.commits, lib.commits.contributors, lib.commits.files_per_commit
        );
    }
    for f in report_files(&opts.out) {
        println!("wrote {}", f.display());
    }
    Ok(())
}
