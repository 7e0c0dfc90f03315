//! `harness doctor`: is this machine able to build, test and measure? For each missing thing,
//! what to run.

use std::path::Path;
use std::process::Command;

struct Check {
    what: &'static str,
    ok: bool,
    detail: String,
    fix: String,
}

/// What a command printed, if it ran and printed something (`xdp-filter load --version`
/// prints its version and exits 1).
fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() || !text.is_empty()).then_some(text)
}

fn mounted(fstype: &str, at: &str) -> bool {
    std::fs::read_to_string("/proc/self/mounts")
        .map(|m| m.lines().any(|l| l.split(' ').nth(1) == Some(at) && l.split(' ').nth(2) == Some(fstype)))
        .unwrap_or(false)
}

fn tool(what: &'static str, cmd: &str, args: &[&str], fix: &str) -> Check {
    let found = output(cmd, args);
    Check { what, ok: found.is_some(), detail: found.map(|s| first_line(&s)).unwrap_or_else(|| "not found".into()), fix: fix.into() }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

/// Set-up's Debian packages (scripts/apt-packages), as `scripts/setup.sh --doctor` judges them:
/// missing, installed from the wrong suite, or not installable (with apt's reason), and the fix.
/// One line for all when every package is there.
fn packages(workspace: &Path) -> Vec<Check> {
    let out = match Command::new(workspace.join("scripts/setup.sh")).arg("--doctor").output() {
        Ok(out) => String::from_utf8_lossy(&out.stdout).to_string(),
        Err(e) => {
            return vec![Check { what: "Debian packages", ok: false, detail: e.to_string(), fix: "run from the repository".into() }]
        }
    };
    let lines: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
    let bad: Vec<&str> = lines.iter().copied().filter(|l| !l.starts_with("ok ")).collect();
    if bad.is_empty() {
        let detail = format!("all {} of scripts/apt-packages installed", lines.len());
        return vec![Check { what: "Debian packages", ok: !lines.is_empty(), detail, fix: "make setup".into() }];
    }
    bad.iter()
        .map(|l| {
            // "<STATUS> apt <package> ...; fix: <what to do>"
            let (what, fix) = l.split_once("; fix: ").unwrap_or((l, "make setup"));
            Check { what: "Debian package", ok: false, detail: what.to_string(), fix: fix.to_string() }
        })
        .collect()
}

/// Prints the checks; returns false if any failed.
pub fn run(workspace: &Path) -> bool {
    let nightly = std::fs::read_to_string(workspace.join("impls/aya/nightly-toolchain")).unwrap_or_default();
    let nightly = nightly.trim();
    let release = output("uname", &["-r"]).unwrap_or_default();
    let lsm = std::fs::read_to_string("/sys/kernel/security/lsm").unwrap_or_default();
    let kvm_image = std::fs::read_dir("/boot")
        .map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().starts_with("vmlinuz-6.1")))
        .unwrap_or(false);

    let redbpf_rust = std::fs::read_to_string(workspace.join("impls/redbpf/rust-toolchain")).unwrap_or_default();
    let mut checks = vec![
        Check {
            what: "running as root",
            // SAFETY: geteuid has no preconditions.
            ok: unsafe { libc::geteuid() } == 0,
            detail: String::new(),
            fix: "run as root: loading BPF programs and creating namespaces needs it".into(),
        },
        Check { what: "kernel", ok: true, detail: release, fix: String::new() },
        Check {
            what: "kernel BTF",
            ok: Path::new("/sys/kernel/btf/vmlinux").exists(),
            detail: String::new(),
            fix: "a kernel built with CONFIG_DEBUG_INFO_BTF=y is needed (CO-RE, Aya type bindings)".into(),
        },
        Check { what: "bpffs at /sys/fs/bpf", ok: mounted("bpf", "/sys/fs/bpf"), detail: String::new(), fix: "make setup".into() },
        Check {
            what: "tracefs at /sys/kernel/tracing",
            ok: mounted("tracefs", "/sys/kernel/tracing"),
            detail: String::new(),
            fix: "make setup".into(),
        },
        Check {
            what: "BPF LSM active on the host",
            ok: true,
            detail: if lsm.contains("bpf") { "yes".into() } else { "no: lsmbpf runs in the VM guest".into() },
            fix: "".into(),
        },
        tool("bpf-linker", "bpf-linker", &["--version"], "make setup (cargo install bpf-linker)"),
        tool("Aya nightly", "rustup", &["run", nightly, "rustc", "--version"], "make setup (rustup toolchain install)"),
        tool("RedBPF Rust", "rustup", &["run", redbpf_rust.trim(), "rustc", "--version"], "make setup (rustup toolchain install)"),
        tool("cargo-bpf (RedBPF)", "cargo-bpf", &["bpf", "--version"], "make setup (impls/redbpf/setup.sh builds it)"),
        Check {
            what: "Debian 6.1 kernel image (VM guest)",
            ok: kvm_image,
            detail: String::new(),
            fix: "make setup (apt: linux-image-amd64)".into(),
        },
    ];
    checks.extend(packages(workspace));

    let mut all_ok = true;
    for c in &checks {
        all_ok &= c.ok;
        let mark = if c.ok { "ok  " } else { "MISS" };
        let detail = if c.detail.is_empty() { String::new() } else { format!(" ({})", c.detail) };
        println!("{mark} {}{detail}", c.what);
        if !c.ok {
            println!("     fix: {}", c.fix);
        }
    }
    all_ok
}
