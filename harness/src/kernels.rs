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
        }
    }
}

/// The first line of `text` that says why a load failed (the verifier's or loader's), else its first line.
pub fn first_relevant(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let keys = ["invalid", "unknown func", "verifier", "permission", "not supported", "error", "failed"];
    lines
        .iter()
        .find(|l| keys.iter().any(|k| l.to_lowercase().contains(k)))
        .or(lines.first())
        .map(|l| l.chars().take(300).collect())
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

/// Checks one implementation on the running kernel: what its use case checks there
/// ([`crate::usecases::UseCase::on_kernel`]).
pub fn check(imp: &Implementation, f: &Features) -> Cell {
    let (status, detail) = match crate::usecases::by_name(&imp.usecase) {
        Some(usecase) => usecase.on_kernel(imp, f),
        None => (NOT_BUILT.into(), format!("no check for use case {}", imp.usecase)),
    };
    Cell { usecase: imp.usecase.clone(), lib: imp.lib.clone(), kernel: f.release.clone(), status, detail, host: String::new() }
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

/// One guest boot on kernel `series` checks every implementation in `imps`.
pub fn run_kernel(series: &str, imps: &[Implementation], guest_bin: &Path) -> Result<Vec<Cell>> {
    let dir = fetch(series)?;
    let mut guest = crate::vm::Guest::new().kernel(&dir).carry(guest_bin)?.timeout(Duration::from_secs(1500));
    for tool in ["ip", "tc"] {
        guest = guest.carry(which(tool)?)?;
    }
    for m in ["veth", "sch_fq", "sch_netem", "sch_ingress", "cls_bpf"] {
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
        let name = imp.binary.file_name().and_then(|n| n.to_str()).context("binary name")?;
        guest = guest.carry(&imp.binary)?;
        args.push_str(&format!(" {}={}=/usr/local/bin/{name}", imp.usecase, imp.lib));
    }
    let out = guest.run(&format!("/usr/local/bin/kernels-guest{args}"))?;
    let cells: Vec<Cell> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).with_context(|| format!("guest line {l}")))
        .collect::<Result<_>>()?;
    out.success().context("kernels-guest in the VM")?;
    Ok(cells.into_iter().map(|c| Cell { kernel: series.into(), ..c }).collect())
}

fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let p = e?.path();
        if p.is_dir() {
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

/// Writes `kernels.csv` (`usecase,lib,kernel,status,detail`).
pub fn write_csv(path: &Path, cells: &[Cell]) -> Result<()> {
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\"").replace('\n', " "));
    let mut text = String::from("usecase,lib,kernel,status,detail\n");
    for c in cells {
        text.push_str(&format!("{},{},{},{},{}\n", c.usecase, c.lib, c.kernel, c.status, q(&c.detail)));
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
