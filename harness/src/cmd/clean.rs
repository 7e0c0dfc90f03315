//! `harness clean`: removes what a crashed or killed run left behind. Everything the project
//! creates is named with the `bpfeval-` prefix, so nothing else is touched; namespaces of a
//! harness process that is still running are left alone.

use std::process::Command;

use anyhow::Result;
use harness::netns;

pub fn run() -> Result<Vec<String>> {
    let mut removed = Vec::new();
    // Processes inside a stale namespace (implementations, references) go first, so that their
    // BPF links close with their file descriptors; the xdp-filter reference is unloaded so
    // that its pins go too.
    for ns in netns::list_ours()? {
        if !netns::is_stale(&ns) {
            continue;
        }
        let out = Command::new("ip").args(["netns", "pids", &ns]).output()?;
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
            // SAFETY: kill(2) on a pid that `ip netns pids` reports inside our namespace.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            removed.push(format!("process {pid} in {ns}"));
        }
        harness::reference::unload_xdp_filter(&ns);
    }
    removed.extend(netns::cleanup_stale()?.into_iter().map(|n| format!("network namespace {n}")));

    // The xdp-filter reference pins its maps globally; if its namespace vanished before it was
    // unloaded, the pins stay behind.
    let pins = std::path::Path::new(harness::reference::XDP_FILTER_PINS);
    if pins.exists() {
        std::fs::remove_dir_all(pins)?;
        removed.push(pins.display().to_string());
    }
    Ok(removed)
}
