//! The kernel matrix: every implementation binary the host build made, on each kernel of
//! Debian's packages (`scripts/fetch-kernels.sh`: 5.10, 6.1, 6.12, 7.2) in one VM guest boot per
//! kernel, and on the host. Inside the guest `kernels-guest` runs [`check_all`], which prints one
//! [`Cell`] per implementation as a JSON line; [`run_kernel`] boots the guest and reads them.
//! A cell's status comes from what the kernel did (the load, the vectors) and from probing the
//! running kernel (`/proc/kallsyms`, `/sys/kernel/security/lsm`), never from a version table.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::conformance::ConformanceReport;
use crate::process::Implementation;

pub const PASS: &str = "pass";
pub const FAILS_TO_LOAD: &str = "fails-to-load";
pub const WRONG_RESULTS: &str = "wrong-results";
pub const LACKS_FEATURE: &str = "lacks-feature";
pub const NOT_BUILT: &str = "not-built";
/// Every status a cell can have.
pub const STATUSES: &[&str] = &[PASS, FAILS_TO_LOAD, WRONG_RESULTS, LACKS_FEATURE, NOT_BUILT];

/// The kernels of the full matrix (`host` is the machine's own).
pub const ALL: &[&str] = &["5.10", "6.1", "6.12", "7.2", "host"];

/// One cell of the matrix: `kernels.csv`'s row (the report reads it with the same type).
pub use metrics::report::kernels::Cell;

/// What the running kernel offers that some implementations need (probed, not looked up).
#[derive(Debug, Clone)]
pub struct Features {
    pub release: String,
    pub bpf_lsm: bool,
    pub tcx: bool,
    pub skb_set_tstamp: bool,
    /// sch_fq, built in or its module loaded (the guest loads it before the checks).
    pub fq: bool,
}

impl Features {
    pub fn probe() -> Features {
        let syms = std::fs::read_to_string("/proc/kallsyms").unwrap_or_default();
        // The helper's and TCX's kernel functions exist exactly when the kernel has them.
        let has = |f: &str| syms.lines().any(|l| l.split_whitespace().nth(2) == Some(f));
        let lsm = std::fs::read_to_string("/sys/kernel/security/lsm").unwrap_or_default();
        Features {
            release: std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().into(),
            bpf_lsm: lsm.trim().split(',').any(|l| l == "bpf"),
            tcx: has("tcx_prog_attach"),
            skb_set_tstamp: has("bpf_skb_set_tstamp"),
            fq: has("fq_enqueue"),
        }
    }
}

/// The line of `text` that says why a load failed, else its first line: the verifier's own
/// complaint (in a loader's printed load log) before the loader's summary of it ("BPF program
/// load failed: Invalid argument"), hence the keys in order of precedence.
pub fn first_relevant(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let keys = ["unknown func", "invalid", "not supported", "permission", "verifier", "error", "failed"];
    keys.iter()
        .find_map(|k| lines.iter().find(|l| l.to_lowercase().contains(k)))
        .or(lines.first())
        .map(|l| {
            // Errors nest outside in: the innermost cause (the kernel's, the loader's) ends the line.
            let chars: Vec<char> = l.chars().collect();
            match chars.len() {
                n if n > 400 => format!("…{}", chars[n - 400..].iter().collect::<String>()),
                _ => l.to_string(),
            }
        })
        .unwrap_or_default()
}

/// A cell's status and detail from a conformance run on this kernel.
pub fn from_conformance(report: Result<ConformanceReport>) -> (String, String) {
    let report = match report {
        Ok(r) => r,
        Err(e) => return (FAILS_TO_LOAD.into(), first_relevant(&format!("{e:#}"))),
    };
    if report.mismatches.is_empty() {
        return (PASS.into(), format!("{} cases, {} vectors", report.cases, report.packets));
    }
    // A case that never ran is a program that did not load or attach.
    if report.mismatches.iter().all(|m| m.problem.starts_with("the case did not run")) {
        return (FAILS_TO_LOAD.into(), first_relevant(&report.mismatches[0].problem));
    }
    let shown: Vec<String> =
        report.mismatches.iter().take(3).map(|m| format!("{} / {}: {}", m.case, m.packet, m.problem)).collect();
    (WRONG_RESULTS.into(), format!("{} mismatches: {}", report.mismatches.len(), shown.join("; ")))
}

/// After passing vectors, the use case's check on a real wire (`problems`: what was wrong).
pub fn wire(vectors: (String, String), what: &str, problems: impl FnOnce() -> Result<Vec<String>>) -> (String, String) {
    if vectors.0 != PASS {
        return vectors;
    }
    match problems() {
        Ok(p) if p.is_empty() => (PASS.into(), format!("{}; {what} pass", vectors.1)),
        Ok(p) => (WRONG_RESULTS.into(), format!("{what}: {}", p.join("; "))),
        Err(e) => (WRONG_RESULTS.into(), format!("{what} did not run: {}", first_relevant(&format!("{e:#}")))),
    }
}

/// `name=count` per program, `name=n/a` where the kernel does not report the count.
fn insns_text(seen: &crate::process::VerifiedInsns) -> String {
    let one = |(name, n): (&String, &Option<u32>)| match n {
        Some(n) => format!("{name}={n}"),
        None => format!("{name}=n/a"),
    };
    seen.iter().map(one).collect::<Vec<_>>().join(" ")
}

/// Checks one implementation on the running kernel: what its use case checks there
/// ([`crate::usecases::UseCase::on_kernel`]), with the verifier's instruction counts of the
/// programs the check loaded.
pub fn check(imp: &Implementation, f: &Features) -> Cell {
    let seen = crate::process::ProgramsSeen::start();
    let (status, detail) = match crate::usecases::by_name(&imp.usecase) {
        Some(usecase) => usecase.on_kernel(imp, f),
        None => (NOT_BUILT.into(), format!("no check for use case {}", imp.usecase)),
    };
    let verified_insns = insns_text(&seen.take());
    Cell { usecase: imp.usecase.clone(), lib: imp.lib.clone(), kernel: f.release.clone(), status, detail, verified_insns, ..Default::default() }
}

/// Every implementation of `usecases` × `libs` in `dir` (not-built cells for missing binaries).
pub fn implementations(dir: &Path, usecases: &[&str], libs: &[&str]) -> (Vec<Implementation>, Vec<(String, String)>) {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for u in usecases {
        for l in libs {
            let binary = dir.join(format!("{u}-{l}"));
            if binary.is_file() {
                found.push(Implementation { usecase: u.to_string(), lib: l.to_string(), binary });
            } else {
                missing.push((u.to_string(), l.to_string()));
            }
        }
    }
    (found, missing)
}

/// Runs every check on the running kernel (the guest's, or the host's for `host`).
pub fn check_all(imps: &[Implementation], mut emit: impl FnMut(Cell)) {
    let features = Features::probe();
    for imp in imps {
        emit(check(imp, &features));
    }
}

/// The host's tools a guest kernel's checks carry in (and so part of what decides a cell).
const GUEST_TOOLS: [&str; 3] = ["ip", "tc", "ethtool"];

/// Where `fetch-kernels.sh` unpacked `series` (fetching it first if needed).
pub fn fetch(series: &str) -> Result<PathBuf> {
    let script = crate::process::workspace_dir().join("scripts/fetch-kernels.sh");
    let out = std::process::Command::new(&script)
        .arg(series)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!("{} {series} failed ({})", script.display(), out.status);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let dir = text.lines().find_map(|l| l.strip_prefix(&format!("{series}\t"))).context("fetch-kernels printed no directory")?;
    Ok(PathBuf::from(dir.trim()))
}

/// One guest boot on kernel `series` checks every implementation in `imps`: conformance vectors,
/// and each use case's short check on a real wire or hook (see [`check`]).
pub fn run_kernel(series: &str, imps: &[Implementation], guest_bin: &Path) -> Result<Vec<Cell>> {
    let dir = fetch(series)?;
    let mut guest = crate::vm::Guest::new().kernel(&dir).carry(guest_bin)?.timeout(Duration::from_secs(1500));
    // ethtool and bridge: the loadbalancer's wire check (its test bed).
    for tool in GUEST_TOOLS {
        guest = guest.carry(which(tool)?)?;
    }
    for m in ["veth", "sch_fq", "sch_netem", "sch_ingress", "cls_bpf", "bridge"] {
        guest = guest.module(m)?;
    }
    // The checks read scenarios/ at the workspace path compiled into them.
    let ws = crate::process::workspace_dir();
    for f in files_under(&ws.join("scenarios"))? {
        let data = std::fs::read(&f)?;
        guest = guest.file(f.to_str().context("UTF-8 path")?, data, 0o644);
    }
    let mut args = String::new();
    for imp in imps {
        args.push_str(&format!(" {}={}={}", imp.usecase, imp.lib, crate::vm::carried_path(&imp.binary)?));
        guest = guest.carry(&imp.binary)?;
    }
    let out = guest.run(&format!("/usr/local/bin/kernels-guest{args}"))?;
    let cells: Vec<Cell> = out.json_lines()?;
    out.success().context("kernels-guest in the VM")?;
    Ok(cells.into_iter().map(|c| Cell { kernel: series.into(), ..c }).collect())
}

fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e?;
        let p = e.path();
        // Not into a symlinked directory: the tree's own files only.
        if e.file_type()?.is_dir() {
            out.extend(files_under(&p)?);
        } else {
            out.push(p);
        }
    }
    Ok(out)
}

fn which(tool: &str) -> Result<PathBuf> {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file())
        .with_context(|| format!("`{tool}` not found on the host (iproute2)"))
}

/// Cells of earlier matrices, reused when nothing that decides them changed: the
/// implementation's binary, the kernel (a guest kernel's unpacked files, the host's
/// `/proc/version` and probed features) and the checks (the harness, `kernels-guest`, the tools
/// carried into the guest, `scenarios/`). Only passing and lacks-a-feature cells are stored: a
/// failure is always checked again. A reused cell names the run that checked it
/// (`Cell::reused_from`).
pub struct CellCache {
    dir: PathBuf,
    checks: String,
    /// This run's output directory, recorded with each stored cell.
    run: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Cached {
    key: String,
    run: String,
    cell: Cell,
}

impl CellCache {
    /// The cache under `<target>/kernels-cache`, for checks done by this harness and `guest_bin`.
    pub fn open(guest_bin: &Path, run: &Path) -> Result<CellCache> {
        let mut h = crate::fingerprint::Fingerprint::default();
        h.file(&std::env::current_exe()?).file(guest_bin);
        for tool in GUEST_TOOLS {
            h.file(&which(tool)?);
        }
        let mut scenarios = files_under(&crate::process::workspace_dir().join("scenarios"))?;
        scenarios.sort();
        for f in &scenarios {
            h.file(f);
        }
        let dir = crate::process::impls_dir().parent().context("target/impls has a parent")?.join("kernels-cache");
        Ok(CellCache::at(dir, h.hex(), run))
    }

    pub fn at(dir: PathBuf, checks: String, run: &Path) -> CellCache {
        CellCache { dir, checks, run: run.display().to_string() }
    }

    /// What identifies kernel `series`: for a guest kernel its unpacked files (names and
    /// sizes: a package of another version has other names), for the host its build and
    /// features.
    pub fn kernel_id(series: &str) -> Result<String> {
        let mut h = crate::fingerprint::Fingerprint::default();
        if series == "host" {
            h.feed(std::fs::read_to_string("/proc/version")?.as_bytes()).feed(format!("{:?}", Features::probe()).as_bytes());
        } else {
            let mut files = files_under(&fetch(series)?)?;
            files.sort();
            for f in files {
                // The link itself: Debian's 7.2 packages ship dangling symlinks (usr/share/doc),
                // whose targets' metadata failed, and with it every reuse of 7.2's cells.
                h.feed(f.as_os_str().as_encoded_bytes()).feed(&f.symlink_metadata()?.len().to_le_bytes());
            }
        }
        Ok(h.hex())
    }

    fn path(&self, series: &str, imp: &Implementation) -> PathBuf {
        self.dir.join(series).join(format!("{}-{}.json", imp.usecase, imp.lib))
    }

    fn key(&self, kernel_id: &str, imp: &Implementation) -> String {
        let mut h = crate::fingerprint::Fingerprint::default();
        h.feed(self.checks.as_bytes()).feed(kernel_id.as_bytes()).file(&imp.binary);
        h.hex()
    }

    /// The stored cell of `imp` on `series`, if its key still matches.
    pub fn get(&self, series: &str, kernel_id: &str, imp: &Implementation) -> Option<Cell> {
        let cached: Cached = serde_json::from_str(&std::fs::read_to_string(self.path(series, imp)).ok()?).ok()?;
        (cached.key == self.key(kernel_id, imp)).then(|| Cell { reused_from: cached.run, ..cached.cell })
    }

    /// Stores `cell` (checked by this run) if it passed or the kernel lacks the feature.
    pub fn put(&self, series: &str, kernel_id: &str, imp: &Implementation, cell: &Cell) -> Result<()> {
        if !(cell.status == PASS || cell.status == LACKS_FEATURE) || !cell.reused_from.is_empty() {
            return Ok(());
        }
        let path = self.path(series, imp);
        std::fs::create_dir_all(path.parent().expect("has a parent"))?;
        let cached = Cached { key: self.key(kernel_id, imp), run: self.run.clone(), cell: cell.clone() };
        std::fs::write(&path, serde_json::to_string_pretty(&cached)?).with_context(|| format!("writing {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dangling_symlink_does_not_hide_a_tree() {
        let tmp = crate::process::TempDir::new("files-under").unwrap();
        std::fs::create_dir_all(tmp.path().join("doc")).unwrap();
        std::fs::write(tmp.path().join("vmlinuz"), b"k").unwrap();
        std::os::unix::fs::symlink("/nonexistent/changelog.gz", tmp.path().join("doc/changelog.gz")).unwrap();
        let files = files_under(tmp.path()).unwrap();
        assert_eq!(files.len(), 2, "{files:?}");
        assert!(files.iter().all(|f| f.symlink_metadata().is_ok()));
    }

    #[test]
    fn cells_are_reused_only_while_binary_kernel_and_checks_are_unchanged() {
        let tmp = crate::process::TempDir::new("cellcache").unwrap();
        let binary = tmp.path().join("packetfilter-aya");
        std::fs::write(&binary, b"one").unwrap();
        let imp = Implementation { usecase: "packetfilter".into(), lib: "aya".into(), binary: binary.clone() };
        let cache = CellCache::at(tmp.path().join("cache"), "checks-1".into(), Path::new("reports/first"));
        let cell = |status: &str| Cell { usecase: "packetfilter".into(), lib: "aya".into(), kernel: "6.1".into(), status: status.into(), detail: "d".into(), ..Default::default() };
        assert!(cache.get("6.1", "k1", &imp).is_none());
        cache.put("6.1", "k1", &imp, &cell(PASS)).unwrap();
        let got = cache.get("6.1", "k1", &imp).unwrap();
        assert_eq!((got.status.as_str(), got.reused_from.as_str()), (PASS, "reports/first"));
        // Another kernel build, other checks, another series, another binary: checked again.
        assert!(cache.get("6.1", "k2", &imp).is_none());
        assert!(CellCache::at(tmp.path().join("cache"), "checks-2".into(), Path::new("x")).get("6.1", "k1", &imp).is_none());
        assert!(cache.get("6.12", "k1", &imp).is_none());
        std::fs::write(&binary, b"two").unwrap();
        assert!(cache.get("6.1", "k1", &imp).is_none());
        // A failure is not stored: the next run checks it again.
        cache.put("6.1", "k1", &imp, &cell(WRONG_RESULTS)).unwrap();
        assert!(cache.get("6.1", "k1", &imp).is_none());
        // Nor is a reused cell stored again (it keeps the run that checked it).
        cache.put("6.1", "k1", &imp, &cell(PASS)).unwrap();
        let later = CellCache::at(tmp.path().join("cache"), "checks-1".into(), Path::new("reports/second"));
        let reused = later.get("6.1", "k1", &imp).unwrap();
        later.put("6.1", "k1", &imp, &reused).unwrap();
        assert_eq!(later.get("6.1", "k1", &imp).unwrap().reused_from, "reports/first");
    }
}
