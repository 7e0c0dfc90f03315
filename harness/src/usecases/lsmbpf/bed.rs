//! lsmbpf's test bed. The host kernel has no BPF LSM, so everything runs in the VM guest
//! ([`crate::vm`]): [`run_all_in_guest`] boots it with implementations and the `lsmbpf-guest`
//! binary (this crate's `src/bin/lsmbpf-guest.rs`), which runs [`guest_scenario`] there for
//! each in turn and prints a [`Report`] per implementation as JSON. Tests and `harness run
//! lsmbpf` judge the same report.
//!
//! The scenario, each phase with a fresh loader:
//! * `enforce` (defaults): chroot to "/" and to another directory from the host namespaces and
//!   from a new PID namespace; only the last-but-one (new PID namespace, "/") is denied.
//! * `after_exit`: the loader stopped with SIGTERM; the same chroot is allowed again.
//! * `audit`: allowed, and reported as an `audit` event.
//! * `mnt`: with `--containerized mnt` a new mount namespace is containerized, a new PID
//!   namespace alone is not.
//! * `prior_deny`: an auditing loader, then an enforcing one. BPF LSM programs on one hook run
//!   last-attached first and the kernel stops at the first denial, so the auditing program must
//!   neither override the denial nor report an allowed chroot (if the kernel still calls it, it
//!   sees the denial in `ret`, passes it on and counts `prior_deny`).
//! * `bench`: the cost of chroot("/") in the host namespaces without and with the program
//!   attached (enforcing), as a ratio measured in the same guest (TCG times are emulated).
//!
//! Every phase records the kernel's LSM list and the program's `counters` (read through raw
//! bpf(2), not the loader), because an LSM program attached while the BPF LSM is inactive does
//! nothing, silently.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bpf;
use crate::process::{Implementation, Running};
use crate::vm::Guest;

pub const USECASE: &str = "lsmbpf";
/// Where the guest program is in the guest.
const GUEST_BIN: &str = "/usr/local/bin/lsmbpf-guest";
/// The directory that is not "/".
const JAIL: &str = "/tmp/jail";
/// The command name of the processes that chroot, as events must report it.
pub const PROBE_COMM: &str = "lsmbpf-probe";
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// Rounds of the chroot bench per side.
const BENCH_ROUNDS: u32 = 5;

/// Who calls chroot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Who {
    /// The host's namespaces (the loader's).
    Host,
    /// A process in a new PID namespace (`unshare(CLONE_NEWPID)`, then fork).
    NewPidNs,
    /// A process in a new mount namespace (`unshare(CLONE_NEWNS)`).
    NewMntNs,
}

/// One chroot and what it gave.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Case {
    /// `<phase>/<who>_<target>`, e.g. `enforce/new_pid_ns_root`.
    pub name: String,
    pub who: Who,
    /// "/" or the other directory.
    pub target: String,
    /// 0 for success, else the errno.
    pub expected: i32,
    pub observed: i32,
}

impl Case {
    pub fn pass(&self) -> bool {
        self.expected == self.observed
    }
}

/// One loader run in the guest.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Phase {
    pub name: String,
    /// The `ready` line.
    pub ready: Value,
    /// `counters` by name, read with raw bpf(2) before the loader stopped.
    pub counters: BTreeMap<String, u64>,
    /// The loader's `chroot` event lines.
    pub events: Vec<Value>,
    /// The loader's exit code after SIGTERM, and whether its last line was `exit`.
    pub exit_code: Option<i32>,
    pub exit_line: bool,
    /// Whether the program was gone from the kernel once the loader had exited.
    pub prog_gone: bool,
    /// `verified_insns`, `xlated_bytes`, `jited_bytes` of the program and the loader's `rss_kib`.
    pub program: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bench {
    /// chroot calls per round.
    pub iterations: u64,
    pub ns_without: f64,
    pub ns_with: f64,
}

impl Bench {
    pub fn ratio(&self) -> f64 {
        self.ns_with / self.ns_without
    }
}

/// Everything the scenario observed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub lib: String,
    /// `/sys/kernel/security/lsm`.
    pub lsm: String,
    /// The loader's PID namespace inode, for checking event namespace ids.
    pub host_pidns: u64,
    pub host_mntns: u64,
    pub cases: Vec<Case>,
    pub phases: Vec<Phase>,
    pub bench: Option<Bench>,
}

impl Report {
    pub fn bpf_lsm_active(&self) -> bool {
        self.lsm.trim().split(',').any(|l| l == "bpf")
    }

    pub fn phase(&self, name: &str) -> Result<&Phase> {
        self.phases.iter().find(|p| p.name == name).with_context(|| format!("no phase {name} in the report"))
    }

    pub fn case(&self, name: &str) -> Result<&Case> {
        self.cases.iter().find(|c| c.name == name).with_context(|| format!("no case {name} in the report"))
    }
}

impl Phase {
    pub fn counter(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }
}

/// Boots the guest with `imp` and `guest_bin`, runs the scenario (and the bench with
/// `bench_iterations` > 0) and returns its report.
pub fn run_in_guest(imp: &Implementation, guest_bin: &Path, bench_iterations: u64) -> Result<Report> {
    let mut reports = run_all_in_guest(std::slice::from_ref(imp), guest_bin, bench_iterations)?;
    let report = reports.pop().context("no report")?;
    report.with_context(|| format!("lsmbpf scenario for {} in the guest", imp.lib))
}

/// One guest boot for `imps`, each running the scenario in turn: a report or the reason there
/// is none, per implementation, in order. An error when the guest itself failed.
pub fn run_all_in_guest(imps: &[Implementation], guest_bin: &Path, bench_iterations: u64) -> Result<Vec<Result<Report>>> {
    // ~3 s per implementation under TCG (14-18 s for five, measured); four minutes each for a
    // slower machine.
    let mut guest = Guest::new().carry_as(guest_bin, GUEST_BIN)?.timeout(Duration::from_secs(240 * imps.len() as u64));
    let mut script = format!("{GUEST_BIN} {bench_iterations}");
    for imp in imps {
        script.push_str(&format!(" {}={}", imp.lib, crate::vm::carried_path(&imp.binary)?));
        guest = guest.carry(&imp.binary)?;
    }
    let out = guest.run(&script)?;
    // One line per implementation: its report, or `{"lib": …, "error": …}`.
    let lines: Vec<Value> = out.json_lines()?;
    let reports = imps
        .iter()
        .map(|imp| {
            let line = lines.iter().find(|l| l["lib"] == imp.lib.as_str());
            match line {
                None => match out.success() {
                    Err(e) => Err(e),
                    Ok(_) => Err(anyhow::anyhow!("the guest printed no report; stderr: {}", out.stderr.trim())),
                },
                Some(l) if l.get("error").is_some() => Err(anyhow::anyhow!("{}", l["error"].as_str().unwrap_or("?"))),
                Some(l) => serde_json::from_value(l.clone()).context("parsing the guest report"),
            }
        })
        .collect();
    Ok(reports)
}

/// `lsmbpf-guest`'s path: next to the running executable (the harness binary, or a test's
/// `deps/` directory one level below it).
pub fn guest_binary() -> Result<std::path::PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("executable without a directory")?;
    for d in [Some(dir), dir.parent()].into_iter().flatten() {
        let p = d.join("lsmbpf-guest");
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!("lsmbpf-guest not found next to {}: build the harness package (`make build`)", exe.display())
}

/// The scenario, run inside the guest as root (`lsmbpf-guest <bench iterations> <lib>=<binary>…`).
pub fn guest_scenario(imp: &Implementation, bench_iterations: u64) -> Result<Report> {
    std::fs::create_dir_all(JAIL)?;
    let lsm = std::fs::read_to_string("/sys/kernel/security/lsm").context("reading /sys/kernel/security/lsm")?;
    let ns_ino = |ns: &str| -> Result<u64> {
        use std::os::unix::fs::MetadataExt;
        Ok(std::fs::metadata(format!("/proc/self/ns/{ns}"))?.ino())
    };
    let mut report = Report {
        lib: imp.lib.clone(),
        lsm,
        host_pidns: ns_ino("pid")?,
        host_mntns: ns_ino("mnt")?,
        cases: Vec::new(),
        phases: Vec::new(),
        bench: None,
    };
    const EPERM: i32 = libc::EPERM;
    let everyone = [(Who::Host, "/", 0), (Who::Host, JAIL, 0), (Who::NewPidNs, "/", EPERM), (Who::NewPidNs, JAIL, 0)];

    let loader = Loader::start(imp, &[])?;
    probe(&mut report, "enforce", &everyone)?;
    report.phases.push(loader.finish("enforce")?);
    // The denial must end with the loader.
    probe(&mut report, "after_exit", &[(Who::NewPidNs, "/", 0)])?;

    let loader = Loader::start(imp, &["--mode", "audit"])?;
    probe(&mut report, "audit", &[(Who::Host, "/", 0), (Who::NewPidNs, "/", 0), (Who::NewPidNs, JAIL, 0)])?;
    report.phases.push(loader.finish("audit")?);

    let loader = Loader::start(imp, &["--containerized", "mnt"])?;
    probe(
        &mut report,
        "mnt",
        &[(Who::Host, "/", 0), (Who::NewPidNs, "/", 0), (Who::NewMntNs, "/", EPERM), (Who::NewMntNs, JAIL, 0)],
    )?;
    report.phases.push(loader.finish("mnt")?);

    // The trampoline runs the program attached last first, and stops at the first non-zero
    // verdict: the enforcing program (attached second) decides before the auditing one.
    let auditor = Loader::start(imp, &["--mode", "audit"])?;
    let enforcer = Loader::start(imp, &[])?;
    probe(&mut report, "prior_deny", &[(Who::NewPidNs, "/", EPERM), (Who::Host, "/", 0)])?;
    report.phases.push(enforcer.finish("prior_deny_enforcer")?);
    report.phases.push(auditor.finish("prior_deny")?);

    if bench_iterations > 0 {
        // Baselines before and after bracket the run with the program; each side keeps its
        // fastest round, the one least disturbed by the emulator and the rest of the guest.
        let before = chroot_cost(bench_iterations)?;
        let loader = Loader::start(imp, &[])?;
        let ns_with = chroot_cost(bench_iterations)?;
        report.phases.push(loader.finish("bench")?);
        let ns_without = before.min(chroot_cost(bench_iterations)?);
        report.bench = Some(Bench { iterations: bench_iterations, ns_without, ns_with });
    }
    Ok(report)
}

/// A running loader in the guest.
struct Loader {
    running: Running,
    pid: u32,
    ready: Value,
    prog_id: u32,
    program: BTreeMap<String, f64>,
}

impl Loader {
    fn start(imp: &Implementation, args: &[&str]) -> Result<Loader> {
        let mut all = vec!["--stats-interval-ms", "0"];
        all.extend_from_slice(args);
        let mut running = imp.spawn(&all, None)?;
        let pid = running.wait_ready(READY_TIMEOUT).with_context(|| format!("{} did not get ready", imp.lib))?;
        let ready =
            running.history().iter().find(|l| l.event() == "ready").map(|l| l.value()).unwrap_or_default();
        let info = bpf::find_prog(pid, "lsmbpf")?.info()?;
        let mut program = BTreeMap::from([
            ("xlated_bytes".to_string(), info.xlated_prog_len as f64),
            ("jited_bytes".to_string(), info.jited_prog_len as f64),
            ("rss_kib".to_string(), crate::measure::load::rss_kib(pid)? as f64),
        ]);
        if let Some(n) = info.verified_insns {
            program.insert("verified_insns".into(), n as f64);
        }
        Ok(Loader { running, pid, ready, prog_id: info.id, program })
    }

    /// Reads the counters, stops the loader and collects its events.
    fn finish(mut self, name: &str) -> Result<Phase> {
        let map = bpf::find_map(self.pid, "counters")?;
        let mut counters = BTreeMap::new();
        for (i, n) in bpfeval_shared::lsmbpf::abi::COUNTER_NAMES.iter().enumerate() {
            counters.insert(n.to_string(), map.lookup_percpu_u64_sum(&(i as u32).to_ne_bytes())?);
        }
        drop(map);
        let status = self.running.stop(STOP_TIMEOUT)?;
        let history = self.running.history();
        let events = history.iter().filter(|l| l.event() == "chroot").map(|l| l.value()).collect();
        let exit_line = history.last().is_some_and(|l| l.event() == "exit");
        Ok(Phase {
            name: name.into(),
            ready: self.ready,
            counters,
            events,
            exit_code: status.code(),
            exit_line,
            prog_gone: !bpf::prog_exists(self.prog_id),
            program: self.program,
        })
    }
}

/// Runs each (who, target, expected errno) chroot in a child process and records the outcome.
fn probe(report: &mut Report, phase: &str, cases: &[(Who, &str, i32)]) -> Result<()> {
    for &(who, target, expected) in cases {
        let observed = chroot_as(who, target)?;
        let what = if target == "/" { "root" } else { "dir" };
        let who_name = serde_json::to_value(who)?.as_str().unwrap_or("?").to_string();
        report.cases.push(Case {
            name: format!("{phase}/{who_name}_{what}"),
            who,
            target: target.into(),
            expected,
            observed,
        });
    }
    Ok(())
}

/// chroot(`target`) in a forked process in the namespaces `who` says; 0 or the errno.
fn chroot_as(who: Who, target: &str) -> Result<i32> {
    let path = CString::new(target)?;
    let comm = CString::new(PROBE_COMM)?;
    // Only raw syscalls between fork and _exit: the parent has threads.
    // SAFETY: the child calls async-signal-safe functions only and leaves with _exit.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(std::io::Error::last_os_error()).context("fork");
    }
    if child == 0 {
        unsafe {
            let flags = match who {
                Who::Host => 0,
                Who::NewPidNs => libc::CLONE_NEWPID,
                Who::NewMntNs => libc::CLONE_NEWNS,
            };
            if flags != 0 && libc::unshare(flags) != 0 {
                libc::_exit(200);
            }
            // A new PID namespace applies to children only: fork once more.
            if who == Who::NewPidNs {
                let inner = libc::fork();
                if inner < 0 {
                    libc::_exit(201);
                }
                if inner > 0 {
                    let mut status = 0;
                    libc::waitpid(inner, &mut status, 0);
                    libc::_exit(if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { 202 });
                }
            }
            libc::prctl(libc::PR_SET_NAME, comm.as_ptr() as libc::c_ulong, 0, 0, 0);
            let rc = libc::chroot(path.as_ptr());
            libc::_exit(if rc == 0 { 0 } else { *libc::__errno_location() });
        }
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    if unsafe { libc::waitpid(child, &mut status, 0) } < 0 {
        return Err(std::io::Error::last_os_error()).context("waitpid");
    }
    ensure!(libc::WIFEXITED(status), "chroot probe died (status {status:#x})");
    match libc::WEXITSTATUS(status) {
        200 => bail!("unshare({who:?}) failed in the probe"),
        201 | 202 => bail!("the probe's PID-namespace child failed"),
        code => Ok(code),
    }
}

/// ns per chroot("/") in this process (host namespaces: always allowed, root unchanged): the
/// fastest of [`BENCH_ROUNDS`] rounds of `iterations` calls, after one warm-up round.
fn chroot_cost(iterations: u64) -> Result<f64> {
    let root = CString::new("/")?;
    let mut best = f64::INFINITY;
    for round in 0..=BENCH_ROUNDS {
        let started = Instant::now();
        for _ in 0..iterations {
            // SAFETY: a valid C string.
            if unsafe { libc::chroot(root.as_ptr()) } != 0 {
                return Err(std::io::Error::last_os_error()).context("chroot(\"/\") in the bench");
            }
        }
        if round > 0 {
            best = best.min(started.elapsed().as_nanos() as f64 / iterations as f64);
        }
    }
    Ok(best)
}
