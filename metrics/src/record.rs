//! The tidy data model of a run directory and its files:
//!
//! | file | content |
//! |---|---|
//! | `results.csv` | one [`Row`] per line, header `usecase,lib,metric,class,unit,rep,value` |
//! | `results.json` | [`Results`]: the same rows plus [`RunMeta`] (`meta.partial`: why data is missing) |
//! | `meta.csv` | `key,value`: [`RunMeta`]'s created, git revision and partial (`true`/`false`, one `partial_reason` row per reason), for readers of the CSV |
//! | `environment.json` | [`Environment`] |
//! | `failures.json` | `[`[`Failure`]`]` |
//! | `capabilities.json` | `[`[`Capability`]`]` |
//! | `findings.json` | `[`[`Finding`]`]`: causes of large differences (optional) |
//! | `histograms.csv` | distributions, see [`crate::hist`] (optional) |
//! | `repo-metrics.csv` | scripts/repo-metrics' table, here or in `repo-metrics/` (optional) |
//!
//! Reference measurements (a baseline that is not one of the libraries, such as an empty XDP
//! program or `xdp-filter`) are ordinary rows whose `lib` starts with [`REFERENCE_PREFIX`].

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub const RESULTS_CSV: &str = "results.csv";
pub const RESULTS_JSON: &str = "results.json";
pub const META_CSV: &str = "meta.csv";
pub const ENVIRONMENT_JSON: &str = "environment.json";
pub const FAILURES_JSON: &str = "failures.json";
pub const CAPABILITIES_JSON: &str = "capabilities.json";
pub const FINDINGS_JSON: &str = "findings.json";
pub const PROVENANCE_JSON: &str = "provenance.json";
pub const REPO_METRICS_CSV: &str = "repo-metrics.csv";

/// `lib` of a reference row: `ref:empty XDP program`, `ref:xdp-filter`.
pub const REFERENCE_PREFIX: &str = "ref:";

/// One measured value. Field order is the CSV column order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub usecase: String,
    pub lib: String,
    pub metric: String,
    /// A sub-series of the metric, e.g. the packet class of `test_run_ns`; empty in the CSV when none.
    pub class: Option<String>,
    pub unit: String,
    /// Repetition number; single-shot metrics (LOC, sizes) use 1.
    pub rep: u32,
    pub value: f64,
}

impl Row {
    pub fn new(usecase: &str, lib: &str, metric: &str, unit: &str, rep: u32, value: f64) -> Row {
        Row {
            usecase: usecase.into(),
            lib: lib.into(),
            metric: metric.into(),
            class: None,
            unit: unit.into(),
            rep,
            value,
        }
    }

    pub fn with_class(mut self, class: &str) -> Row {
        self.class = Some(class.into());
        self
    }

    /// The label of a reference row (`ref:xdp-filter` -> `xdp-filter`), `None` for a library.
    pub fn reference(&self) -> Option<&str> {
        self.lib.strip_prefix(REFERENCE_PREFIX)
    }
}

/// What `results.json` holds besides the rows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    /// RFC 3339, UTC.
    pub created: String,
    pub git_revision: Option<String>,
    pub command_line: Vec<String>,
    /// Free-form settings of the run (scenario, repetitions, ...), as the harness sees fit.
    #[serde(default)]
    pub settings: BTreeMap<String, serde_json::Value>,
    /// Why this run's data is incomplete (interrupted, a stage that failed); empty when it is
    /// complete. Written even when empty, so that a reader sees the run was checked.
    #[serde(default)]
    pub partial: Vec<String>,
}

impl RunMeta {
    pub fn new(settings: BTreeMap<String, serde_json::Value>) -> RunMeta {
        RunMeta {
            created: now_rfc3339(),
            git_revision: git_revision(),
            command_line: std::env::args().collect(),
            settings,
            partial: Vec::new(),
        }
    }

    /// Whether data the run set out to measure is missing.
    pub fn is_partial(&self) -> bool {
        !self.partial.is_empty()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Results {
    pub meta: RunMeta,
    pub rows: Vec<Row>,
}

/// Toolchains and crate versions of one implementation, e.g. `{"rustc": "1.95.0", "bpf-linker": "0.10.3"}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Implementation {
    #[serde(default)]
    pub toolchains: BTreeMap<String, String>,
    #[serde(default)]
    pub crates: BTreeMap<String, String>,
}

/// The machine and source fingerprint of a run: enough to tell whether two runs are comparable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    pub kernel_release: Option<String>,
    pub kernel_version: Option<String>,
    pub os: Option<String>,
    pub arch: String,
    pub cpu_model: Option<String>,
    pub cores: usize,
    pub memory_kib: Option<u64>,
    /// Keyed by library name.
    #[serde(default)]
    pub implementations: BTreeMap<String, Implementation>,
    pub git_revision: Option<String>,
    /// RFC 3339, UTC.
    pub timestamp: String,
    pub command_line: Vec<String>,
}

impl Environment {
    /// Fills in what the machine tells (from /proc, `uname`, `git rev-parse HEAD` in the current
    /// directory); the per-implementation toolchains and crates come from the caller, who built
    /// them. Whatever cannot be read stays `None`: a fingerprint is never worth failing a run.
    pub fn collect(implementations: BTreeMap<String, Implementation>) -> Environment {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |text: &str, key: &str| {
            text.lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim() == key)
                .map(|(_, v)| v.trim().trim_matches('"').to_string())
        };
        let processors = cpuinfo
            .lines()
            .filter(|l| l.starts_with("processor"))
            .count();
        Environment {
            kernel_release: read_trimmed("/proc/sys/kernel/osrelease")
                .or_else(|| run("uname", &["-r"])),
            kernel_version: read_trimmed("/proc/sys/kernel/version")
                .or_else(|| run("uname", &["-v"])),
            os: pretty_os_name(),
            arch: std::env::consts::ARCH.into(),
            cpu_model: field(&cpuinfo, "model name"),
            cores: if processors > 0 {
                processors
            } else {
                std::thread::available_parallelism().map_or(0, |n| n.get())
            },
            memory_kib: field(
                &fs::read_to_string("/proc/meminfo").unwrap_or_default(),
                "MemTotal",
            )
            .and_then(|v| v.trim_end_matches("kB").trim().parse().ok()),
            implementations,
            git_revision: git_revision(),
            timestamp: now_rfc3339(),
            command_line: std::env::args().collect(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Build,
    Load,
    Conformance,
    Measure,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Build => "build",
            Stage::Load => "load",
            Stage::Conformance => "conformance",
            Stage::Measure => "measure",
        }
    }
}

/// One implementation that did not make it through a stage of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub usecase: String,
    pub lib: String,
    pub stage: Stage,
    pub error: String,
}

/// How far a library can express a use case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// With the library as released.
    Native,
    /// Only with a patch to the library.
    WithPatch,
    /// Part of it written outside the library (e.g. a C program loaded by a Rust loader).
    Hybrid,
    /// The library cannot express it.
    Impossible,
    /// Not implemented (yet).
    Missing,
    /// The library cannot be built on this machine kind (the note says why).
    NotBuildable,
}

impl Status {
    /// Whether there is an implementation to build and measure.
    pub fn is_implemented(self) -> bool {
        matches!(self, Status::Native | Status::WithPatch | Status::Hybrid)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Native => "native",
            Status::WithPatch => "with_patch",
            Status::Hybrid => "hybrid",
            Status::Impossible => "impossible",
            Status::Missing => "missing",
            Status::NotBuildable => "not_buildable",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capability {
    pub usecase: String,
    pub lib: String,
    pub status: Status,
    #[serde(default)]
    pub note: String,
}

/// Values of a run that it did not measure itself, and where they come from: build metrics
/// reused from an earlier run whose inputs were the same, toolchain costs replayed from
/// set-up's timing, or why a value is missing. `provenance.json`; the report lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub usecase: String,
    pub lib: String,
    pub metrics: Vec<String>,
    pub source: String,
}

/// The one-line cause of a large difference between libraries, with links that show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub usecase: String,
    pub metric: String,
    /// The libraries it is about; empty in the curated file, where the run decides.
    #[serde(default)]
    pub libs: Vec<String>,
    pub cause: String,
    /// Links (URLs or paths relative to the run directory) or plain references; one or a list.
    #[serde(default, deserialize_with = "one_or_many")]
    pub evidence: Vec<String>,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// `repo-metrics.csv` as scripts/repo-metrics writes it: per library its metrics, their
/// tertiles (`tertile_<metric>`) and the OSSPal score.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RepoMetrics {
    pub metrics: Vec<String>,
    pub libraries: Vec<RepoLibrary>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RepoLibrary {
    pub name: String,
    /// One per [`RepoMetrics::metrics`].
    pub values: Vec<Option<f64>>,
    pub tertiles: Vec<Option<f64>>,
    pub score: Option<f64>,
}

impl RepoMetrics {
    pub fn read(path: &Path) -> Result<RepoMetrics> {
        let mut r =
            csv::Reader::from_path(path).with_context(|| format!("opening {}", path.display()))?;
        let header = r.headers()?.clone();
        let col = |name: &str| header.iter().position(|h| h == name);
        let metrics: Vec<String> = header
            .iter()
            .filter(|h| col(&format!("tertile_{h}")).is_some())
            .map(String::from)
            .collect();
        let mut libraries = Vec::new();
        for record in r.records() {
            let record = record.with_context(|| format!("reading {}", path.display()))?;
            let num = |name: &str| {
                col(name)
                    .and_then(|i| record.get(i))
                    .and_then(|v| v.parse::<f64>().ok())
            };
            libraries.push(RepoLibrary {
                name: col("library")
                    .and_then(|i| record.get(i))
                    .unwrap_or_default()
                    .to_string(),
                values: metrics.iter().map(|m| num(m)).collect(),
                tertiles: metrics.iter().map(|m| num(&format!("tertile_{m}"))).collect(),
                score: num("score"),
            });
        }
        Ok(RepoMetrics { metrics, libraries })
    }
}

pub fn write_csv(path: &Path, rows: &[Row]) -> Result<()> {
    let mut w =
        csv::Writer::from_path(path).with_context(|| format!("creating {}", path.display()))?;
    for row in rows {
        w.serialize(row)?;
    }
    // serialize() writes the header only with the first row; an empty run still gets one.
    if rows.is_empty() {
        w.write_record(["usecase", "lib", "metric", "class", "unit", "rep", "value"])?;
    }
    w.flush()
        .with_context(|| format!("writing {}", path.display()))
}

/// The tidy rows carry no metadata, so a reader of CSV files alone learns from this one
/// whether the run is partial.
fn write_meta_csv(path: &Path, meta: &RunMeta) -> Result<()> {
    let mut w = csv::Writer::from_path(path).with_context(|| format!("creating {}", path.display()))?;
    w.write_record(["key", "value"])?;
    w.write_record(["created", meta.created.as_str()])?;
    w.write_record(["git_revision", meta.git_revision.as_deref().unwrap_or("")])?;
    w.write_record(["partial", if meta.is_partial() { "true" } else { "false" }])?;
    for reason in &meta.partial {
        w.write_record(["partial_reason", reason.as_str()])?;
    }
    w.flush().with_context(|| format!("writing {}", path.display()))
}

pub fn read_csv(path: &Path) -> Result<Vec<Row>> {
    let mut r =
        csv::Reader::from_path(path).with_context(|| format!("opening {}", path.display()))?;
    r.deserialize()
        .collect::<Result<_, _>>()
        .with_context(|| format!("reading {}", path.display()))
}

/// Writes `results.csv`, `meta.csv` and `results.json` into `dir`.
pub fn write_results(dir: &Path, meta: &RunMeta, rows: &[Row]) -> Result<()> {
    write_csv(&dir.join(RESULTS_CSV), rows)?;
    write_meta_csv(&dir.join(META_CSV), meta)?;
    write_json(
        &dir.join(RESULTS_JSON),
        &Results {
            meta: meta.clone(),
            rows: rows.to_vec(),
        },
    )
}

pub fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn read_json_if_exists<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    if path.exists() {
        read_json(path).map(Some)
    } else {
        Ok(None)
    }
}

/// Everything recorded in one run directory.
#[derive(Debug, Clone, Default)]
pub struct Run {
    pub dir: PathBuf,
    pub meta: Option<RunMeta>,
    pub rows: Vec<Row>,
    pub environment: Option<Environment>,
    pub failures: Vec<Failure>,
    pub capabilities: Vec<Capability>,
    pub findings: Vec<Finding>,
    pub provenance: Vec<Provenance>,
    /// `None` when the run has no `histograms.csv`.
    pub histograms: Option<Vec<crate::hist::Histogram>>,
    pub repo_metrics: Option<RepoMetrics>,
}

impl Run {
    /// Loads a run directory. Rows come from `results.csv` when present (the tidy file people
    /// edit and share), else from `results.json`; the other files are optional.
    pub fn load(dir: &Path) -> Result<Run> {
        let results: Option<Results> = read_json_if_exists(&dir.join(RESULTS_JSON))?;
        let csv_path = dir.join(RESULTS_CSV);
        let (meta, rows) = match (results, csv_path.exists()) {
            (results, true) => (results.map(|r| r.meta), read_csv(&csv_path)?),
            (Some(results), false) => (Some(results.meta), results.rows),
            (None, false) => bail!(
                "{} holds neither {RESULTS_CSV} nor {RESULTS_JSON}",
                dir.display()
            ),
        };
        Ok(Run {
            dir: dir.to_path_buf(),
            meta,
            rows,
            environment: read_json_if_exists(&dir.join(ENVIRONMENT_JSON))?,
            failures: read_json_if_exists(&dir.join(FAILURES_JSON))?.unwrap_or_default(),
            capabilities: read_json_if_exists(&dir.join(CAPABILITIES_JSON))?.unwrap_or_default(),
            findings: read_json_if_exists(&dir.join(FINDINGS_JSON))?.unwrap_or_default(),
            provenance: read_json_if_exists(&dir.join(PROVENANCE_JSON))?.unwrap_or_default(),
            histograms: {
                let path = dir.join(crate::hist::HISTOGRAMS_CSV);
                if path.exists() {
                    Some(crate::hist::read_histograms(&path)?)
                } else {
                    None
                }
            },
            repo_metrics: [dir.join(REPO_METRICS_CSV), dir.join("repo-metrics").join(REPO_METRICS_CSV)]
                .iter()
                .find(|p| p.exists())
                .map(|p| RepoMetrics::read(p))
                .transpose()?,
        })
    }

    /// Writes every part of the run into `dir` (creating it).
    pub fn save(&self, dir: &Path) -> Result<()> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        write_results(dir, &self.meta.clone().unwrap_or_default(), &self.rows)?;
        if let Some(env) = &self.environment {
            write_json(&dir.join(ENVIRONMENT_JSON), env)?;
        }
        write_json(&dir.join(FAILURES_JSON), &self.failures)?;
        if !self.findings.is_empty() {
            write_json(&dir.join(FINDINGS_JSON), &self.findings)?;
        }
        if !self.provenance.is_empty() {
            write_json(&dir.join(PROVENANCE_JSON), &self.provenance)?;
        }
        if let Some(h) = &self.histograms {
            crate::hist::write_histograms(&dir.join(crate::hist::HISTOGRAMS_CSV), h)?;
        }
        write_json(&dir.join(CAPABILITIES_JSON), &self.capabilities)
    }
}

fn read_trimmed(path: &str) -> Option<String> {
    fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// stdout of a command that succeeded, trimmed; `None` if it is missing or failed.
fn run(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// `PRETTY_NAME` from os-release, which uses `KEY="value"` lines.
fn pretty_os_name() -> Option<String> {
    let text = fs::read_to_string("/etc/os-release").ok()?;
    let value = text.lines().find_map(|l| l.strip_prefix("PRETTY_NAME="))?;
    Some(value.trim_matches('"').to_string())
}

fn git_revision() -> Option<String> {
    run("git", &["rev-parse", "HEAD"])
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn now_rfc3339() -> String {
    rfc3339_utc(now_secs())
}

/// The current UTC time as a directory name that sorts by time: `2026-05-01_12-00-00`.
pub fn timestamp_for_path() -> String {
    path_timestamp(now_secs())
}

fn path_timestamp(secs: u64) -> String {
    rfc3339_utc(secs)
        .trim_end_matches('Z')
        .replace('T', "_")
        .replace(':', "-")
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`, without a date crate
/// (days-to-civil from Howard Hinnant's calendar algorithms).
fn rfc3339_utc(secs: u64) -> String {
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_rows() -> Vec<Row> {
        vec![
            Row::new("packetfilter", "aya", "obj_bytes", "bytes", 1, 4096.0),
            Row::new(
                "packetfilter",
                "libbpf-rs",
                "test_run_ns",
                "ns",
                2,
                0.1 + 0.2,
            )
            .with_class("ipv4, blocked"),
            Row::new(
                "packetfilter",
                "ref:empty XDP program",
                "test_run_ns",
                "ns",
                1,
                12.5,
            )
            .with_class("ipv4, blocked"),
        ]
    }

    #[test]
    fn csv_and_json_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let rows = sample_rows();
        let meta = RunMeta {
            created: "2026-01-01T00:00:00Z".into(),
            ..Default::default()
        };
        write_results(dir.path(), &meta, &rows).unwrap();

        let csv = fs::read_to_string(dir.path().join(RESULTS_CSV)).unwrap();
        let mut lines = csv.lines();
        assert_eq!(
            lines.next(),
            Some("usecase,lib,metric,class,unit,rep,value")
        );
        assert_eq!(
            lines.next(),
            Some("packetfilter,aya,obj_bytes,,bytes,1,4096.0")
        );
        assert_eq!(read_csv(&dir.path().join(RESULTS_CSV)).unwrap(), rows);

        let json: Results = read_json(&dir.path().join(RESULTS_JSON)).unwrap();
        assert_eq!(json.rows, rows);
        assert_eq!(json.meta, meta);
        assert_eq!(rows[2].reference(), Some("empty XDP program"));
        assert_eq!(rows[0].reference(), None);
    }

    #[test]
    fn partial_run_says_so_in_json_and_csv() {
        let dir = tempfile::tempdir().unwrap();
        let complete = RunMeta::default();
        write_results(dir.path(), &complete, &sample_rows()).unwrap();
        let meta_csv = fs::read_to_string(dir.path().join(META_CSV)).unwrap();
        assert!(meta_csv.contains("\npartial,false\n") && !meta_csv.contains("partial_reason"), "{meta_csv}");
        let json = fs::read_to_string(dir.path().join(RESULTS_JSON)).unwrap();
        assert!(json.contains("\"partial\": []"), "{json}");

        let partial = RunMeta {
            partial: vec!["interrupted by SIGINT during packetfilter/aya: repetition 2/5".into(), "a, \"quoted\" reason".into()],
            ..Default::default()
        };
        write_results(dir.path(), &partial, &sample_rows()).unwrap();
        let json: Results = read_json(&dir.path().join(RESULTS_JSON)).unwrap();
        assert!(json.meta.is_partial());
        assert_eq!(json.meta.partial, partial.partial);
        let mut r = csv::Reader::from_path(dir.path().join(META_CSV)).unwrap();
        let kv: Vec<(String, String)> = r.deserialize().collect::<Result<_, _>>().unwrap();
        assert!(kv.contains(&("partial".into(), "true".into())), "{kv:?}");
        let reasons: Vec<&str> = kv.iter().filter(|(k, _)| k == "partial_reason").map(|(_, v)| v.as_str()).collect();
        assert_eq!(reasons, partial.partial);
        // A results.json written before `partial` existed reads as complete.
        let old: RunMeta = serde_json::from_str(r#"{"created": "", "git_revision": null, "command_line": []}"#).unwrap();
        assert!(!old.is_partial());
    }

    #[test]
    fn empty_csv_keeps_its_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RESULTS_CSV);
        write_csv(&path, &[]).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "usecase,lib,metric,class,unit,rep,value\n"
        );
        assert!(read_csv(&path).unwrap().is_empty());
    }

    #[test]
    fn run_round_trip_with_failures_and_capabilities() {
        let dir = tempfile::tempdir().unwrap();
        let run = Run {
            dir: dir.path().into(),
            meta: Some(RunMeta::default()),
            rows: sample_rows(),
            environment: Some(Environment::collect(BTreeMap::from([(
                "aya".to_string(),
                Implementation {
                    toolchains: BTreeMap::from([("rustc".into(), "1.95.0".into())]),
                    crates: BTreeMap::from([("aya".into(), "0.14.0".into())]),
                },
            )]))),
            failures: vec![Failure {
                usecase: "lsmbpf".into(),
                lib: "redbpf".into(),
                stage: Stage::Load,
                error: "EPERM".into(),
            }],
            capabilities: vec![Capability {
                usecase: "lsmbpf".into(),
                lib: "redbpf".into(),
                status: Status::WithPatch,
                note: "needs lsm section support".into(),
            }],
            findings: vec![Finding {
                usecase: "lsmbpf".into(),
                metric: "load_attach_ms".into(),
                libs: vec!["aya".into(), "redbpf".into()],
                cause: "BTF is parsed twice".into(),
                evidence: vec!["https://example.org/issue/1".into()],
            }],
            provenance: vec![crate::record::Provenance {
                usecase: "packetfilter".into(),
                lib: "aya".into(),
                metrics: vec!["toolchain_build_s (target/toolchain-cost/bpf_linker_build_s)".into()],
                source: "replayed from set-up's timing".into(),
            }],
            histograms: Some(vec![crate::hist::Histogram::from_samples(
                "lsmbpf", "aya", "latency_us", None, "µs", &[1.0, 2.0],
            )]),
            repo_metrics: None,
        };
        run.save(dir.path()).unwrap();
        let text = fs::read_to_string(dir.path().join(CAPABILITIES_JSON)).unwrap();
        assert!(text.contains("\"with_patch\""));
        assert!(fs::read_to_string(dir.path().join(FAILURES_JSON))
            .unwrap()
            .contains("\"load\""));
        let back = Run::load(dir.path()).unwrap();
        assert_eq!(back.rows, run.rows);
        assert_eq!(back.environment, run.environment);
        assert_eq!(back.failures, run.failures);
        assert_eq!(back.capabilities, run.capabilities);
        assert_eq!(back.findings, run.findings);
        assert_eq!(back.provenance, run.provenance);
        assert_eq!(back.histograms.unwrap()[0].total(), 2);
    }

    #[test]
    fn findings_take_one_link_or_many() {
        let f: Vec<Finding> = serde_json::from_str(
            r#"[{"usecase":"u","metric":"m","libs":["aya"],"cause":"c","evidence":"a.log"},
                {"usecase":"u","metric":"m","cause":"c","evidence":["x","y"]}]"#,
        )
        .unwrap();
        assert_eq!(f[0].evidence, vec!["a.log"]);
        assert_eq!(f[1].evidence.len(), 2);
        assert!(f[1].libs.is_empty());
    }

    #[test]
    fn reads_repo_metrics_csv() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(REPO_METRICS_CSV);
        fs::write(
            &path,
            "library,repo,since,until,commits,issues_opened,tertile_commits,tertile_issues_opened,score\n\
             aya,/src/aya,2022-06-05,2023-06-05,812,90,3,2,2.5\n\
             redbpf,/src/redbpf,2022-06-05,2023-06-05,12,,1,,1\n",
        )
        .unwrap();
        let r = RepoMetrics::read(&path).unwrap();
        assert_eq!(r.metrics, vec!["commits", "issues_opened"]);
        assert_eq!(r.libraries[0].name, "aya");
        assert_eq!(r.libraries[0].values, vec![Some(812.0), Some(90.0)]);
        assert_eq!(r.libraries[1].tertiles, vec![Some(1.0), None]);
        assert_eq!(r.libraries[1].score, Some(1.0));
    }

    #[test]
    fn environment_reads_this_machine() {
        let env = Environment::collect(BTreeMap::new());
        assert!(env.cores > 0);
        assert!(!env.arch.is_empty());
        assert!(env.timestamp.ends_with('Z'));
        // /proc is there on every machine this runs on.
        assert!(env.kernel_release.is_some());
    }

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(1_767_225_599), "2025-12-31T23:59:59Z");
        assert_eq!(path_timestamp(1_767_225_599), "2025-12-31_23-59-59");
    }
}
