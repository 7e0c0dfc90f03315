//! Measurements shared by every use case; the use-case-specific ones live in `usecases`.

pub mod build;
pub mod library;
pub mod load;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use indicatif::{ProgressBar, ProgressStyle};

use metrics::hist::Histogram;
use metrics::record::{Provenance, Row};

use crate::libs::Tool;
use crate::process::Implementation;

/// What every measurement needs to know about the run.
pub struct Ctx {
    pub workspace: PathBuf,
    pub out: PathBuf,
    pub reps: u32,
    pub quick: bool,
    /// Where values come from when not from this run's own measurement (`provenance.json`).
    provenance: Mutex<Vec<Provenance>>,
    /// Build again even where an earlier run's build metrics could be reused.
    pub rebuild: bool,
    /// Distributions of the counted repetitions, merged per series ([`Ctx::record_distribution`]).
    histograms: Mutex<Vec<metrics::hist::Histogram>>,
    /// The repetition being measured (0: the warm-up, whose rows are dropped); see [`Ctx::rep_range`].
    rep: AtomicU32,
    quiet: bool,
    /// The signal that interrupted the run (0: none).
    interrupted: Arc<AtomicUsize>,
    /// The step in progress, for the partial report of an interrupted run.
    current: Mutex<String>,
    /// The spinner of the step in progress (none with `--quiet`).
    spinner: Mutex<Option<ProgressBar>>,
    /// For the plain progress lines: when the run started, steps begun, steps expected.
    started: Instant,
    steps: AtomicUsize,
    planned: AtomicUsize,
}

impl Ctx {
    /// Installs the SIGINT/SIGTERM flag: an interrupted run unwinds through its guards (which
    /// remove namespaces and stop implementations) instead of dying with them in place, and
    /// `harness run` still reports what it measured, marked partial.
    pub fn new(workspace: &Path, out: &Path, reps: u32, quick: bool, quiet: bool) -> Result<Ctx> {
        let interrupted = Arc::new(AtomicUsize::new(0));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register_usize(sig, interrupted.clone(), sig as usize)?;
        }
        // --quick shortens each repetition, not their number: five are what a ranking needs.
        let reps = reps.max(1);
        Ok(Ctx {
            workspace: workspace.into(),
            out: out.into(),
            reps,
            quick,
            rep: AtomicU32::new(1),
            histograms: Mutex::new(Vec::new()),
            provenance: Mutex::new(Vec::new()),
            rebuild: false,
            quiet,
            interrupted,
            current: Mutex::new(String::new()),
            spinner: Mutex::new(None),
            started: Instant::now(),
            steps: AtomicUsize::new(0),
            planned: AtomicUsize::new(0),
        })
    }

    /// Sets the repetition the next measurements make (`harness run` interleaves them across
    /// libraries and references: every subject's repetition 1, then every subject's 2, ...).
    pub fn set_rep(&self, rep: u32) {
        self.rep.store(rep, Ordering::Relaxed);
    }

    /// The repetitions a use case's measurement makes in this call: the one [`Ctx::set_rep`]
    /// chose (rows are numbered with it).
    pub fn rep_range(&self) -> RangeInclusive<u32> {
        let rep = self.rep.load(Ordering::Relaxed);
        rep..=rep
    }

    /// Whether this call is the warm-up (rows are dropped).
    pub fn warming_up(&self) -> bool {
        self.rep.load(Ordering::Relaxed) == 0
    }

    /// Adds one repetition's samples to the distribution of a series (`histograms.csv`); the
    /// samples themselves are not kept. Nothing during the warm-up.
    /// `key` names the series: usecase, lib, metric, class and unit of a row (its value unused).
    pub fn record_distribution(&self, key: &Row, samples: &[f64]) {
        if self.warming_up() {
            return;
        }
        self.record_histogram(Histogram::from_samples(
            &key.usecase,
            &key.lib,
            &key.metric,
            key.class.as_deref(),
            &key.unit,
            samples,
        ));
    }

    /// [`Ctx::record_distribution`] for samples already in buckets.
    pub fn record_histogram(&self, h: Histogram) {
        if self.warming_up() {
            return;
        }
        let mut all = self.histograms.lock().unwrap_or_else(|e| e.into_inner());
        match all.iter_mut().find(|x| (&x.usecase, &x.lib, &x.metric, &x.class) == (&h.usecase, &h.lib, &h.metric, &h.class)) {
            Some(x) => x.merge(&h),
            None => all.push(h),
        }
    }

    /// Says where values of this run come from when it did not measure them itself.
    pub fn provenance(&self, p: Provenance) {
        self.provenance.lock().unwrap_or_else(|e| e.into_inner()).push(p);
    }

    pub fn take_provenance(&self) -> Vec<Provenance> {
        std::mem::take(&mut *self.provenance.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The distributions recorded so far.
    pub fn take_histograms(&self) -> Vec<Histogram> {
        std::mem::take(&mut *self.histograms.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// How many steps the run expects, for the estimated remaining time of the progress lines.
    pub fn plan(&self, steps: usize) {
        self.planned.store(steps, Ordering::Relaxed);
    }

    /// `[12:34 elapsed, ~20:00 left]`: the time left assumes the remaining steps take as long as
    /// the finished ones did on average (unknown before the first one finishes).
    fn progress(&self) -> String {
        let done = self.steps.fetch_add(1, Ordering::Relaxed);
        let elapsed = self.started.elapsed().as_secs();
        let left = match self.planned.load(Ordering::Relaxed) {
            planned if done > 0 && planned > done => {
                let secs = elapsed * (planned - done) as u64 / done as u64;
                format!(", ~{}:{:02} left", secs / 60, secs % 60)
            }
            _ => String::new(),
        };
        format!("[{}:{:02} elapsed{left}]", elapsed / 60, elapsed % 60)
    }

    /// Time since the run started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn check_interrupted(&self) -> Result<()> {
        if self.interrupted_by().is_some() {
            bail!("interrupted");
        }
        Ok(())
    }

    /// The signal that interrupted the run, if one did.
    pub fn interrupted_by(&self) -> Option<&'static str> {
        match self.interrupted.load(Ordering::Relaxed) as i32 {
            0 => None,
            signal_hook::consts::SIGINT => Some("SIGINT"),
            signal_hook::consts::SIGTERM => Some("SIGTERM"),
            _ => Some("a signal"),
        }
    }

    /// The step begun last ([`Ctx::step`]).
    pub fn current_step(&self) -> String {
        self.current.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether this call measures briefly: `--quick`, or the warm-up, which only has to page in
    /// and warm up what the counted repetitions use, not to measure.
    pub fn brief(&self) -> bool {
        self.quick || self.warming_up()
    }

    /// Scales a count down for [`Ctx::brief`] calls.
    pub fn scaled(&self, full: u64, quick: u64) -> u64 {
        if self.brief() {
            quick
        } else {
            full
        }
    }

    /// The length of one timed traffic window (throughput, closed-loop connection rates): 1.5 s,
    /// 1 s when [`Ctx::brief`]: the precision comes from the interleaved repetitions, not from
    /// long windows (which cost `make run` 5 × libraries × references of them: 40 per round,
    /// 20 of them comtrace's). 3 s and 2 s windows left the spread alike (README).
    pub fn window(&self) -> Duration {
        Duration::from_millis(self.scaled(1500, 1000))
    }

    /// Starts a step of the run: a spinner with the elapsed time on stderr, or with `--quiet`
    /// or off a terminal (piped to a file, CI) one plain line with the elapsed and estimated
    /// remaining time: indicatif hides its bars there, which left such runs silent for minutes.
    /// The previous step's spinner is left as a finished line.
    pub fn step(&self, what: &str) {
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = what.to_string();
        let mut spinner = self.spinner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(done) = spinner.take() {
            done.finish();
        }
        let line = format!("harness: {what} {}", self.progress());
        if self.quiet || !std::io::stderr().is_terminal() {
            eprintln!("{line}");
            return;
        }
        // Bars on the terminal, and the line in the log that stdout is piped to.
        if !std::io::stdout().is_terminal() {
            println!("{line}");
        }
        let bar = ProgressBar::new_spinner()
            .with_style(ProgressStyle::with_template("{spinner} [{elapsed:>4}] {msg}").expect("valid template"))
            .with_message(what.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        *spinner = Some(bar);
    }

    /// A result line on stdout, after the last step's spinner.
    pub fn say(&self, what: &str) {
        if let Some(done) = self.spinner.lock().unwrap_or_else(|e| e.into_inner()).take() {
            done.finish();
        }
        println!("{what}");
    }

    /// Where implementations are built for their build metrics (`build/<lib>`: a target
    /// directory per library, see [`build`]), with the build cache and this run's binaries.
    pub fn target_root(&self) -> PathBuf {
        self.workspace.join("target").join("harness")
    }

    /// The binaries of this run's builds, `<usecase>-<lib>`, for its kernel matrix.
    pub fn bin_dir(&self) -> PathBuf {
        self.target_root().join("bin")
    }
}

/// Toolchains (today's rustc and its library's [`crate::libs::Library::tools`]) and crate
/// versions of one implementation, for `environment.json`.
pub fn versions(workspace: &Path, imp: &Implementation) -> metrics::record::Implementation {
    let mut v = metrics::record::Implementation::default();
    let cmd = |c: &str, args: &[&str]| {
        std::process::Command::new(c)
            .current_dir(workspace)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or("").trim().to_string())
    };
    if let Some(rustc) = cmd("rustc", &["--version"]) {
        v.toolchains.insert("rustc".into(), rustc.trim_start_matches("rustc ").into());
    }
    for tool in imp.library().tools {
        if let Tool::DebianPins { lock } = tool {
            let lock = std::fs::read_to_string(workspace.join(lock)).unwrap_or_default();
            for line in lock.lines().filter(|l| !l.trim_start().starts_with('#')) {
                if let [package, version, suite, ..] = line.split_whitespace().collect::<Vec<_>>()[..] {
                    v.toolchains.insert(package.to_string(), format!("{version} (Debian {suite})"));
                }
            }
            continue;
        }
        let (label, version) = match tool {
            Tool::Command { label, program, args, strip } => (label, cmd(program, args).map(|v| v.trim_start_matches(strip).to_string())),
            Tool::PinnedRustc { label, pin } => {
                let pin = std::fs::read_to_string(workspace.join(pin)).unwrap_or_default();
                (label, cmd("rustup", &["run", pin.trim(), "rustc", "--version"]).map(|v| v.trim_start_matches("rustc ").to_string()))
            }
            Tool::DebianPins { .. } => unreachable!("handled above"),
        };
        if let Some(version) = version {
            v.toolchains.insert(label.to_string(), version);
        }
    }
    // Direct dependencies as locked: `cargo tree --depth 1`.
    if let Some(tree) = build::Cargo::of_impl(workspace, imp)
        .ok()
        .map(|cargo| cargo.command())
        .and_then(|mut cargo| {
            cargo
                .args(["tree", "--locked", "-p", &imp.package(), "-e", "normal,build", "--depth", "1", "--prefix", "none"])
                .output()
                .ok()
        })
        .filter(|o| o.status.success())
    {
        for line in String::from_utf8_lossy(&tree.stdout).lines().skip(1) {
            let mut w = line.split_whitespace();
            if let (Some(name), Some(version)) = (w.next(), w.next()) {
                v.crates.insert(name.into(), version.trim_start_matches('v').into());
            }
        }
    }
    v
}
