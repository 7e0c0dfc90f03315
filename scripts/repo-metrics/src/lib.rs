//! The thesis' repository metrics, for any set of BPF library repositories given as local git
//! clones: activity in a date window (commits, contributors, files changed per commit), ticket
//! statistics from `gh api` exports, each metric ranked into tertiles across the libraries, and
//! an OSSPal-style score. Two sets of definitions ([`Method`]): the thesis' scripts' exactly, and
//! corrected ones. Definitions are in README.md; [`run`] is the whole pipeline.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use chrono::{NaiveDate, NaiveTime};
use serde::Serialize;

pub mod git;
pub mod issues;
pub mod output;
pub mod preset;
pub mod rank;

pub use git::{CommitRange, CommitStats};
pub use issues::IssueStats;
pub use rank::Metric;

/// Which definitions the metrics follow (README.md, "Definitions").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// The thesis' scripts (pydriller, PyGithub, statistics.quantiles), reproduced exactly.
    Thesis,
    /// Today's definitions: no merges, no bots, author identities through .mailmap, whole days.
    Corrected,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Thesis => "thesis",
            Method::Corrected => "corrected",
        }
    }
}

/// `--method`: one set of definitions, or both side by side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MethodArg {
    Thesis,
    Corrected,
    Both,
}

impl MethodArg {
    pub fn methods(self) -> Vec<Method> {
        match self {
            MethodArg::Thesis => vec![Method::Thesis],
            MethodArg::Corrected => vec![Method::Corrected],
            MethodArg::Both => vec![Method::Thesis, Method::Corrected],
        }
    }
}

/// Command-line arguments; the `repo-metrics` binary and the harness' subcommand share them.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// A library's local git clone (its top directory), as NAME=PATH (repeat for each library).
    #[arg(long = "repo", value_name = "NAME=PATH", required = true, value_parser = parse_named)]
    pub repos: Vec<(String, PathBuf)>,
    /// Definitions: the thesis' scripts' exactly, today's corrected ones, or both side by side.
    #[arg(long, value_enum, default_value = "corrected")]
    pub method: MethodArg,
    /// A predefined set of libraries: `thesis` = its six libraries, their files-per-commit
    /// ranges and its window (each library's path still comes from --repo).
    #[arg(long, value_enum)]
    pub preset: Option<preset::Preset>,
    /// First day of the window, YYYY-MM-DD (00:00:00 UTC).
    #[arg(long, value_name = "DATE", required_unless_present = "preset")]
    pub since: Option<NaiveDate>,
    /// Last day of the window, YYYY-MM-DD: included whole (corrected); only its 00:00:00 UTC
    /// instant (thesis: pydriller's `to`).
    #[arg(long, value_name = "DATE", required_unless_present = "preset")]
    pub until: Option<NaiveDate>,
    /// Thesis method: files per commit over this commit range instead of the window, as
    /// NAME=FROM..TO (pydriller's from_commit/to_commit: FROM included).
    #[arg(long = "range", value_name = "NAME=FROM..TO", value_parser = parse_range)]
    pub ranges: Vec<(String, CommitRange)>,
    /// A library's ticket export (`gh api`, see README.md), as NAME=FILE.
    #[arg(long = "issues", value_name = "NAME=FILE", value_parser = parse_named)]
    pub issues: Vec<(String, PathBuf)>,
    /// Exit successfully even when a library has no commit in the window.
    #[arg(long)]
    pub allow_empty: bool,
    /// Directory for repo-metrics.csv, .json, .svg and .html.
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

/// `NAME=FROM..TO`, for clap.
pub fn parse_range(s: &str) -> Result<(String, CommitRange), String> {
    let (name, range) = parse_named(s).map_err(|_| format!("`{s}`: expected NAME=FROM..TO"))?;
    match range.to_str().and_then(|r| r.split_once("..")) {
        Some((from, to)) if !from.is_empty() && !to.is_empty() && !to.starts_with('.') => {
            Ok((name, CommitRange { from: from.into(), to: to.into() }))
        }
        _ => Err(format!("`{s}`: expected NAME=FROM..TO")),
    }
}

/// The days `since` to `until`; each [`Method`] bounds them differently.
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

    /// Unix time of `since` 00:00:00 UTC: the first second in the window (both methods).
    pub fn start(&self) -> i64 {
        midnight(self.since)
    }

    /// Unix time of `until` 00:00:00 UTC: the thesis' last second in the window (git's
    /// `--until`, which pydriller's `to` becomes, keeps commits at that very second).
    pub fn thesis_end(&self) -> i64 {
        midnight(self.until)
    }

    /// Unix time of the day after `until`, 00:00:00 UTC: the corrected window's first second
    /// outside.
    pub fn end(&self) -> i64 {
        self.thesis_end() + 86_400
    }

    /// Whether a time is in the corrected window.
    pub fn contains(&self, unix: i64) -> bool {
        (self.start()..self.end()).contains(&unix)
    }

    /// The window as a method bounds it, for reports.
    pub fn describe(&self, method: Method) -> String {
        match method {
            Method::Thesis => format!("[{}T00:00:00Z, {}T00:00:00Z]", self.since, self.until),
            Method::Corrected => format!("[{}T00:00:00Z, {}T00:00:00Z)", self.since, self.until.succ_opt().unwrap()),
        }
    }
}

fn midnight(day: NaiveDate) -> i64 {
    day.and_time(NaiveTime::MIN).and_utc().timestamp()
}

/// One library to measure.
#[derive(Debug, Clone)]
pub struct Library {
    pub name: String,
    pub repo: PathBuf,
    pub issues: Option<PathBuf>,
    /// Thesis method: the commit range files per commit is averaged over.
    pub range: Option<CommitRange>,
}

/// What [`run`] needs: the libraries, the methods, the window and where to write.
#[derive(Debug, Clone)]
pub struct Options {
    pub libraries: Vec<Library>,
    pub methods: Vec<Method>,
    pub window: Window,
    pub preset: Option<preset::Preset>,
    pub allow_empty: bool,
    pub out: PathBuf,
}

impl Args {
    /// Checks the arguments together: unique names, every issues file and range belongs to a
    /// repository, a preset's libraries all given.
    pub fn options(&self) -> Result<Options> {
        let thesis = self.preset.map(preset::Preset::libraries);
        let (default_since, default_until) = match self.preset {
            Some(p) => (Some(p.since()), Some(p.until())),
            None => (None, None),
        };
        let since = self.since.or(default_since).context("--since is required without --preset")?;
        let until = self.until.or(default_until).context("--until is required without --preset")?;
        let window = Window::new(since, until)?;
        let mut libraries: Vec<Library> = Vec::new();
        for (name, repo) in &self.repos {
            ensure!(!libraries.iter().any(|l| &l.name == name), "--repo {name}=...: `{name}` is given twice");
            let range = match &thesis {
                Some(list) => match list.iter().find(|l| l.name == name) {
                    Some(l) => Some(l.range()),
                    None => bail!("--repo {name}=...: the preset has no library `{name}`"),
                },
                None => None,
            };
            libraries.push(Library { name: name.clone(), repo: repo.clone(), issues: None, range });
        }
        if let Some(list) = &thesis {
            let missing: Vec<&str> =
                list.iter().map(|l| l.name).filter(|n| !libraries.iter().any(|l| l.name == *n)).collect();
            ensure!(missing.is_empty(), "the preset needs --repo NAME=PATH for: {}", missing.join(", "));
        }
        let find = |flag: &str, name: &str, what: &dyn std::fmt::Display| -> Result<usize> {
            libraries
                .iter()
                .position(|l| l.name == name)
                .with_context(|| format!("--{flag} {name}={what}: no --repo is named `{name}`"))
        };
        let mut issues = Vec::new();
        for (name, file) in &self.issues {
            let i = find("issues", name, &file.display())?;
            ensure!(!issues.contains(&i), "--issues {name}=...: `{name}` is given twice");
            issues.push(i);
        }
        let mut ranges = Vec::new();
        for (name, range) in &self.ranges {
            ranges.push((find("range", name, range)?, range.clone()));
        }
        for (i, (_, file)) in issues.into_iter().zip(&self.issues) {
            libraries[i].issues = Some(file.clone());
        }
        // An explicit --range replaces the preset's.
        for (i, range) in ranges {
            libraries[i].range = Some(range);
        }
        Ok(Options {
            libraries,
            methods: self.method.methods(),
            window,
            preset: self.preset,
            allow_empty: self.allow_empty,
            out: self.out.clone(),
        })
    }
}

/// The measured values of one library under one method, its tertiles and its score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LibraryReport {
    pub method: Method,
    pub name: String,
    pub repo: PathBuf,
    /// The commit HEAD pointed at when measured.
    pub head: String,
    /// The window as this method bounds it.
    pub window: String,
    pub commits: CommitStats,
    /// None: ticket metrics skipped (`tickets` says why).
    pub issues: Option<IssueStats>,
    /// Which tickets were counted, or why none were.
    pub tickets: String,
    /// Tertile (1 = worst third .. 3 = best third) of every metric ranked across the libraries.
    pub tertiles: BTreeMap<Metric, u8>,
    /// Mean of `tertiles` (1.0 ..= 3.0); `None` when no metric could be ranked.
    pub score: Option<f64>,
    /// The metrics `score` is the mean over.
    pub score_over: Vec<Metric>,
}

impl LibraryReport {
    pub fn value(&self, metric: Metric) -> Option<f64> {
        metric.value(&self.commits, self.issues.as_ref())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// This tool and its version.
    pub tool: String,
    pub methods: Vec<Method>,
    pub preset: Option<preset::Preset>,
    pub window: Window,
    /// One entry per method and library, method by method.
    pub libraries: Vec<LibraryReport>,
    /// Thesis method: the cut points `statistics.quantiles(values, n=3)` gives per metric.
    pub cut_points: BTreeMap<Metric, [f64; 2]>,
    /// Per method, how tertiles and scores are made, and what of that is known of the thesis.
    pub scoring: BTreeMap<Method, &'static str>,
    /// Skipped metrics, empty windows.
    pub notes: Vec<String>,
    /// `--method both`: one line per value that differs between the methods, and why.
    pub differences: Vec<String>,
}

impl Report {
    pub fn of(&self, method: Method) -> impl Iterator<Item = &LibraryReport> {
        self.libraries.iter().filter(move |l| l.method == method)
    }
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
    ensure!(!opts.methods.is_empty(), "no method");
    let mut heads = Vec::new();
    let mut tickets = Vec::new();
    for lib in &opts.libraries {
        let head = git::head(&lib.repo).with_context(|| format!("library {} ({})", lib.name, lib.repo.display()))?;
        heads.push(head);
        let list =
            lib.issues.as_deref().map(issues::load).transpose().with_context(|| format!("library {}", lib.name))?;
        tickets.push(list);
    }
    let mut report = Report {
        tool: format!("repo-metrics {}", env!("CARGO_PKG_VERSION")),
        methods: opts.methods.clone(),
        preset: opts.preset,
        window: opts.window,
        libraries: Vec::new(),
        cut_points: BTreeMap::new(),
        scoring: opts.methods.iter().map(|&m| (m, rank::scoring(m))).collect(),
        notes: Vec::new(),
        differences: Vec::new(),
    };
    for &method in &opts.methods {
        let first = report.libraries.len();
        for ((lib, head), list) in opts.libraries.iter().zip(&heads).zip(&tickets) {
            let range = if method == Method::Thesis { lib.range.as_ref() } else { None };
            let commits = git::commit_stats(&lib.repo, &opts.window, method, range)
                .with_context(|| format!("library {} ({})", lib.name, lib.repo.display()))?;
            if commits.commits == 0 {
                report.notes.push(format!(
                    "warning: {}: no commit of {} in the window {}",
                    method.name(),
                    lib.name,
                    opts.window.describe(method)
                ));
            }
            let issues = list
                .as_deref()
                .map(|list| issues::stats(list, &opts.window, method))
                .transpose()
                .with_context(|| format!("library {}, {} method", lib.name, method.name()))?;
            let tickets = match &issues {
                Some(_) => issues::basis(&opts.window, method),
                None => "skipped: no --issues export".to_string(),
            };
            report.libraries.push(LibraryReport {
                method,
                name: lib.name.clone(),
                repo: lib.repo.clone(),
                head: head.clone(),
                window: opts.window.describe(method),
                commits,
                issues,
                tickets,
                tertiles: BTreeMap::new(),
                score: None,
                score_over: Vec::new(),
            });
        }
        let cuts = rank::score(&mut report.libraries[first..], method);
        if method == Method::Thesis {
            report.cut_points = cuts;
        }
    }
    let skipped: Vec<&str> = opts.libraries.iter().filter(|l| l.issues.is_none()).map(|l| l.name.as_str()).collect();
    if !skipped.is_empty() {
        let over: Vec<&str> = report.libraries[0].score_over.iter().map(|m| m.name()).collect();
        report.notes.push(format!(
            "ticket metrics skipped: no --issues export for {}; scores are averaged over {}",
            skipped.join(", "),
            if over.is_empty() { "nothing".to_string() } else { over.join(", ") }
        ));
    }
    report.differences = output::differences(&report);
    Ok(report)
}

/// Report file names, relative to the output directory.
pub const CSV_FILE: &str = "repo-metrics.csv";
pub const JSON_FILE: &str = "repo-metrics.json";
pub const SVG_FILE: &str = "repo-metrics.svg";
pub const HTML_FILE: &str = "repo-metrics.html";

/// Paths of the report files in `dir`.
pub fn report_files(dir: &Path) -> [PathBuf; 4] {
    [CSV_FILE, JSON_FILE, SVG_FILE, HTML_FILE].map(|f| dir.join(f))
}

/// The whole command (also `harness repo-metrics`): compute, write the files, print a summary;
/// fails after writing when a window holds no commit, unless `--allow-empty`.
pub fn run_cli(args: &Args) -> Result<()> {
    let opts = args.options()?;
    let report = run(&opts)?;
    for lib in &report.libraries {
        let score = lib.score.map_or("-".to_string(), |s| format!("{s:.2}"));
        println!(
            "{} {}: {} commits, {} contributors, {:.2} files/commit, score {score} (HEAD {})",
            lib.method.name(),
            lib.name,
            lib.commits.commits,
            lib.commits.contributors,
            lib.commits.files_per_commit,
            &lib.head[..12.min(lib.head.len())]
        );
    }
    for line in &report.differences {
        println!("differs: {line}");
    }
    for (method, rule) in &report.scoring {
        println!("scoring ({}): {rule}", method.name());
    }
    for note in &report.notes {
        eprintln!("{note}");
    }
    for f in report_files(&opts.out) {
        println!("wrote {}", f.display());
    }
    let empty = report.libraries.iter().filter(|l| l.commits.commits == 0).count();
    if empty > 0 && !opts.allow_empty {
        bail!("{empty} window(s) hold no commit (see the warnings; --allow-empty accepts that)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn window_bounds_per_method() {
        let w = Window::new(day("2023-01-01"), day("2023-01-02")).unwrap();
        assert_eq!(w.start(), 1_672_531_200);
        assert_eq!(w.thesis_end(), 1_672_531_200 + 86_400);
        assert_eq!(w.end(), 1_672_531_200 + 2 * 86_400);
        assert!(w.contains(w.start()) && w.contains(w.end() - 1) && !w.contains(w.end()) && !w.contains(w.start() - 1));
        assert_eq!(w.describe(Method::Thesis), "[2023-01-01T00:00:00Z, 2023-01-02T00:00:00Z]");
        assert_eq!(w.describe(Method::Corrected), "[2023-01-01T00:00:00Z, 2023-01-03T00:00:00Z)");
        assert!(Window::new(day("2023-01-02"), day("2023-01-01")).unwrap_err().to_string().contains("empty"));
    }

    fn args(repos: &[&str], issues: &[&str], ranges: &[&str], preset: Option<preset::Preset>) -> Args {
        Args {
            repos: repos.iter().map(|s| parse_named(s).unwrap()).collect(),
            issues: issues.iter().map(|s| parse_named(s).unwrap()).collect(),
            ranges: ranges.iter().map(|s| parse_range(s).unwrap()).collect(),
            method: MethodArg::Both,
            preset,
            since: preset.is_none().then(|| day("2022-06-05")),
            until: preset.is_none().then(|| day("2023-06-05")),
            allow_empty: false,
            out: "out".into(),
        }
    }

    #[test]
    fn args_are_checked_together() {
        let o = args(&["aya=/a", "libbpf-rs=/b"], &["aya=/a.json"], &["libbpf-rs=v1..v2"], None).options().unwrap();
        assert_eq!(o.libraries[0].issues.as_deref(), Some(Path::new("/a.json")));
        assert_eq!(o.libraries[1].issues, None);
        assert_eq!(o.libraries[1].range, Some(CommitRange { from: "v1".into(), to: "v2".into() }));
        assert_eq!(o.methods, [Method::Thesis, Method::Corrected]);
        let e = args(&["aya=/a"], &["redbpf=/r.json"], &[], None).options().unwrap_err().to_string();
        assert!(e.contains("no --repo is named `redbpf`"), "{e}");
        let e = args(&["aya=/a"], &[], &["redbpf=a..b"], None).options().unwrap_err().to_string();
        assert!(e.contains("--range redbpf=a..b: no --repo is named `redbpf`"), "{e}");
        let e = args(&["aya=/a", "aya=/b"], &[], &[], None).options().unwrap_err().to_string();
        assert!(e.contains("given twice"), "{e}");
        assert!(parse_named("aya").is_err() && parse_named("=/x").is_err() && parse_named("aya=").is_err());
        assert!(parse_range("aya=a").is_err() && parse_range("aya=a..").is_err() && parse_range("aya=..b").is_err());
        assert!(parse_range("aya=a...b").is_err());
    }

    #[test]
    fn the_thesis_preset() {
        let p = Some(preset::Preset::Thesis);
        let all = ["aya=/1", "ebpf=/2", "libbpf=/3", "libbpfgo=/4", "libbpf-rs=/5", "redbpf=/6"];
        let o = args(&all, &[], &["redbpf=x..y"], p).options().unwrap();
        assert_eq!(o.window, Window::new(day("2022-12-01"), day("2023-06-05")).unwrap());
        let aya = o.libraries[0].range.as_ref().unwrap();
        assert_eq!(aya.from, "15be301f8c1c57df3b94a79bdb808cb9135013c8");
        assert_eq!(aya.to, "d85b36f6d80236f142395f1ab173acbed74af99b");
        assert_eq!(o.libraries[5].range, Some(CommitRange { from: "x".into(), to: "y".into() }));
        let e = args(&all[..4], &[], &[], p).options().unwrap_err().to_string();
        assert!(e.contains("needs --repo NAME=PATH for: libbpf-rs, redbpf"), "{e}");
        let e = args(&["cilium=/x"], &[], &[], p).options().unwrap_err().to_string();
        assert!(e.contains("the preset has no library `cilium`"), "{e}");
    }
}
