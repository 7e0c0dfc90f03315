//! `harness doctor`: is this machine able to build, test and measure? For each missing thing,
//! what to run.

use std::path::Path;
use std::process::Command;

struct Check {
    what: &'static str,
    ok: bool,
    detail: String,
    fix: &'static str,
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

fn tool(what: &'static str, cmd: &str, args: &[&str], fix: &'static str) -> Check {
    let found = output(cmd, args);
    Check { what, ok: found.is_some(), detail: found.map(|s| first_line(&s)).unwrap_or_else(|| "not found".into()), fix }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
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

    let checks = vec![
        Check {
            what: "running as root",
            // SAFETY: geteuid has no preconditions.
            ok: unsafe { libc::geteuid() } == 0,
            detail: String::new(),
            fix: "run as root: loading BPF programs and creating namespaces needs it",
        },
        Check { what: "kernel", ok: true, detail: release, fix: "" },
        Check {
            what: "kernel BTF",
            ok: Path::new("/sys/kernel/btf/vmlinux").exists(),
            detail: String::new(),
            fix: "a kernel built with CONFIG_DEBUG_INFO_BTF=y is needed (CO-RE, Aya type bindings)",
        },
        Check { what: "bpffs at /sys/fs/bpf", ok: mounted("bpf", "/sys/fs/bpf"), detail: String::new(), fix: "make setup" },
        Check {
            what: "tracefs at /sys/kernel/tracing",
            ok: mounted("tracefs", "/sys/kernel/tracing"),
            detail: String::new(),
            fix: "make setup",
        },
        Check {
            what: "BPF LSM active on the host",
            ok: true,
            detail: if lsm.contains("bpf") { "yes".into() } else { "no: lsmbpf runs in the VM guest".into() },
            fix: "",
        },
        tool("clang", "clang", &["--version"], "make setup (apt: clang)"),
        tool("bpftool", "bpftool", &["version"], "make setup (apt: bpftool)"),
        tool("xdp-filter (reference)", "xdp-filter", &["load", "--version"], "make setup (apt: xdp-tools)"),
        tool("bpf-linker", "bpf-linker", &["--version"], "make setup (cargo install bpf-linker)"),
        tool("Aya nightly", "rustup", &["run", nightly, "rustc", "--version"], "make setup (rustup toolchain install)"),
        tool("qemu (VM guest)", "qemu-system-x86_64", &["--version"], "make setup (apt: qemu-system-x86)"),
        Check {
            what: "Debian 6.1 kernel image (VM guest)",
            ok: kvm_image,
            detail: String::new(),
            fix: "make setup (apt: linux-image-amd64)",
        },
        Check {
            what: "report font",
            ok: Path::new("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf").exists(),
            detail: String::new(),
            fix: "make setup (apt: fonts-dejavu-core)",
        },
    ];

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
